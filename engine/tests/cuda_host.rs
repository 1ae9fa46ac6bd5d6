//! sworn's CUDA kernels, executed on the host by the shim (`engine/cuda/shim/`), against the CPU
//! engine, bit for bit: each kernel on adversarial inputs, then whole forward passes of synthetic
//! models and of both real models. The shim runs every block's threads in a chosen order between
//! synchronization points; each check runs in several orders, which a kernel whose result
//! depended on scheduling would fail. (No GPU runs here: `scripts/gpu-check.sh` is that check.)
#![cfg(feature = "cuda")]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use half::f16;
use sworn_engine::backend::cuda::host::{HostShim, Order};
use sworn_engine::backend::cuda::{
    self, driver::KERNELS, launch, type_code, Arg, DevActs, DevBuf, DevMat, DevVec, Device,
    GpuModel,
};
use sworn_engine::canon::quant::QActs;
use sworn_engine::gguf::GgufFile;
use sworn_engine::kernels::{scalar, Isa, Runner};
use sworn_engine::model::Feed;
use sworn_engine::qmatrix::{GgufKind, QMatrix};
use sworn_engine::quant::QuantType;
use sworn_engine::synthetic::{filtered_sampling, request, write_model, SyntheticSpec};
use sworn_engine::{hash_logits, Engine, EngineOptions, Message, Prompt, Request, SamplingParams};

const ORDERS: [Order; 3] = [Order::Ascending, Order::Descending, Order::Shuffled(7)];

fn shim(order: Order) -> Arc<dyn Device> {
    Arc::new(HostShim::new(order))
}

use sworn_engine::synthetic::Rng;

#[track_caller]
fn same(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    if let Some(i) = (0..a.len()).find(|&i| a[i].to_bits() != b[i].to_bits()) {
        panic!(
            "{what}: element {i} differs: {:e} ({:#x}) on the CPU vs {:e} ({:#x}) in the CUDA kernel",
            a[i],
            a[i].to_bits(),
            b[i],
            b[i].to_bits()
        );
    }
}

#[test]
fn every_kernel_is_in_the_shim_and_in_the_ptx() {
    let mut shim = HostShim::kernels();
    shim.sort();
    let mut want: Vec<String> = KERNELS.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(shim, want, "the shim's kernel table");
    // One PTX, for compute capability 8.0: the driver JIT-compiles it for any later GPU.
    {
        let target = "sm_80";
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("cuda/ptx/{target}.ptx"));
        let ptx = std::fs::read_to_string(&p).unwrap();
        for k in KERNELS {
            assert!(
                ptx.contains(&format!(".entry {k}(")),
                "{target}.ptx lacks {k}"
            );
        }
        // The canonical arithmetic in the PTX itself: no fused multiply-adds, every f32 add and
        // multiply with an explicit rounding mode (so ptxas may not contract them either), no
        // approximate or flush-to-zero instructions.
        for bad in ["fma.", ".approx", ".ftz", "mad.f32"] {
            assert!(!ptx.contains(bad), "{target}.ptx contains {bad}");
        }
        for op in ["add.f32", "mul.f32", "sub.f32", "div.f32"] {
            assert!(!ptx.contains(op), "{target}.ptx has {op} without .rn");
        }
    }
}

/// Raw GGUF bytes of a random `rows x cols` matrix of `kind`, with finite f16 scales.
fn random_tensor(rng: &mut Rng, kind: GgufKind, rows: usize, cols: usize) -> Vec<u8> {
    let mut raw = Vec::new();
    let scale = |rng: &mut Rng| f16::from_f32(rng.f() * 0.05).to_le_bytes();
    match kind {
        GgufKind::F32 => (0..rows * cols).for_each(|_| raw.extend(rng.wild().to_le_bytes())),
        GgufKind::F16 => {
            (0..rows * cols).for_each(|_| raw.extend(f16::from_f32(rng.wild()).to_le_bytes()))
        }
        GgufKind::BF16 => (0..rows * cols)
            .for_each(|_| raw.extend(((rng.wild().to_bits() >> 16) as u16).to_le_bytes())),
        GgufKind::Q4_0 | GgufKind::Q4_1 | GgufKind::Q8_0 => {
            let (extra, quants) = match kind {
                GgufKind::Q4_0 => (0, 16),
                GgufKind::Q4_1 => (1, 16),
                _ => (0, 32),
            };
            for _ in 0..rows * cols / 32 {
                raw.extend(scale(rng));
                for _ in 0..extra {
                    raw.extend(scale(rng));
                }
                (0..quants).for_each(|_| raw.push(rng.byte()));
            }
        }
        GgufKind::Blocks(qt) => {
            let at: &[usize] = match qt {
                QuantType::Q4_0 | QuantType::Q8_0 | QuantType::Q5_0 => &[0],
                QuantType::Q4_1 | QuantType::Q5_1 | QuantType::Q4K | QuantType::Q5K => &[0, 2],
                QuantType::Q2K => &[80, 82],
                QuantType::Q3K => &[108],
                QuantType::Q6K => &[208],
            };
            for _ in 0..rows * cols / qt.block_elements() {
                let mut blk: Vec<u8> = (0..qt.block_bytes()).map(|_| rng.byte()).collect();
                for &o in at {
                    blk[o..o + 2].copy_from_slice(&scale(rng));
                }
                raw.extend(blk);
            }
        }
    }
    raw
}

/// Every tensor type sworn reads.
fn all_kinds() -> Vec<GgufKind> {
    let mut k = vec![
        GgufKind::F32,
        GgufKind::F16,
        GgufKind::BF16,
        GgufKind::Q4_0,
        GgufKind::Q4_1,
        GgufKind::Q8_0,
    ];
    k.extend(
        QuantType::ALL
            .iter()
            .filter(|q| !matches!(q, QuantType::Q4_0 | QuantType::Q4_1 | QuantType::Q8_0))
            .map(|&q| GgufKind::Blocks(q)),
    );
    k
}

/// The matrix on the device as the backend uploads it: GGUF blocks, or f32 rows.
fn dev_mat(dev: &Arc<dyn Device>, kind: GgufKind, raw: &[u8], cpu: &QMatrix) -> DevMat {
    let code = type_code(kind);
    let buf = if code == 0 {
        let mut rows = vec![0f32; cpu.rows * cpu.cols];
        for (r, row) in rows.chunks_exact_mut(cpu.cols).enumerate() {
            cpu.row_f32(r, row);
        }
        DevBuf::from_f32(dev, &rows).unwrap()
    } else {
        DevBuf::from_bytes(dev, raw).unwrap()
    };
    DevMat {
        buf,
        code,
        rows: cpu.rows,
        cols: cpu.cols,
    }
}

/// Activations with every hazard the quantizer meets: zero blocks, one `huge` value among small
/// ones, negative zeros, values at rounding ties. (Products take a moderate `huge`: one term
/// of 1e30 would hide every other, and with them any error in the order of the fold.)
fn hostile_acts(rng: &mut Rng, tokens: usize, cols: usize, huge: f32) -> Vec<f32> {
    let mut x: Vec<f32> = (0..tokens * cols).map(|_| rng.wild()).collect();
    for (b, blk) in x.chunks_exact_mut(32).enumerate() {
        match b % 7 {
            0 => blk.fill(0.0),
            1 => blk.iter_mut().for_each(|v| *v = -0.0),
            2 => blk[5] = huge,
            3 => {
                // amax 127: every value an exact integer or half-integer tie
                for (i, v) in blk.iter_mut().enumerate() {
                    *v = i as f32 - 15.5;
                }
                blk[0] = 127.0;
            }
            _ => {}
        }
    }
    x
}

#[test]
fn quantization_matches_the_cpu_on_hostile_blocks() {
    let mut rng = Rng(0x91);
    let cols = 32 * 9;
    let mut x = hostile_acts(&mut rng, 13, cols, 1e30);
    // Non-finite inputs too: the spec defines them (NaN never the maximum; NaN -> -127).
    x[7] = f32::NAN;
    x[33 * 32 + 3] = f32::INFINITY;
    x[40 * 32 + 1] = f32::NEG_INFINITY;
    let mut want = QActs::default();
    Isa::Scalar.quantize_rows(&x, cols, &mut want);
    for order in ORDERS {
        let dev = shim(order);
        let mut got = DevActs::default();
        cuda::quantize(&dev, &DevVec::from_host(&dev, &x).unwrap(), &mut got).unwrap();
        let got = got.to_host(cols).unwrap();
        let first_diff = |a: &[i32], b: &[i32]| (0..a.len()).find(|&i| a[i] != b[i]);
        let wide = |v: &[i8]| v.iter().map(|&x| x as i32).collect::<Vec<_>>();
        assert_eq!(want.q.len(), got.q.len());
        let d = first_diff(&wide(&want.q), &wide(&got.q));
        assert_eq!(d, None, "quantized value differs at {d:?}, {order:?}");
        let d = first_diff(&want.qsum, &got.qsum);
        assert_eq!(d, None, "block sum differs at {d:?}, {order:?}");
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&want.d), bits(&got.d), "scales, {order:?}");
        assert_eq!(bits(&want.s), bits(&got.s), "scaled sums, {order:?}");
    }
}

#[test]
fn every_tensor_type_s_products_match_the_cpu_in_every_thread_order() {
    // 45 rows: a partial warp group and a partial 32-row tile; 1280 columns: five K-quant
    // super-blocks, 40 pieces (more than a warp's 32, so the fold spans two runs).
    let (rows, cols) = (45, 256 * 5);
    let reference = Runner::new(Isa::Scalar, 1).unwrap();
    let mut rng = Rng(0xc0da);
    for kind in all_kinds() {
        let raw = random_tensor(&mut rng, kind, rows, cols);
        let cpu = QMatrix::from_gguf(kind, rows, cols, &raw).unwrap();
        // 1 and 3 tokens take the warp-per-output kernel, 11 and 70 the tiled one.
        for tokens in [1, 3, 11, 70] {
            let x = hostile_acts(&mut rng, tokens, cols, 24.0);
            let mut xq = QActs::default();
            Isa::Scalar.quantize_rows(&x, cols, &mut xq);
            let mut want = Vec::new();
            reference.matmul_many(&[&cpu], &xq, &x, tokens, &mut [&mut want]);
            for order in if tokens == 11 {
                &ORDERS[..]
            } else {
                &ORDERS[2..]
            } {
                let dev = shim(*order);
                let m = dev_mat(&dev, kind, &raw, &cpu);
                let xf = DevVec::from_host(&dev, &x).unwrap();
                let mut dq = DevActs::default();
                cuda::quantize(&dev, &xf, &mut dq).unwrap();
                let mut out = DevVec::default();
                cuda::product(&dev, &m, &dq, &xf, tokens, &mut out).unwrap();
                same(
                    &want,
                    &out.to_host().unwrap(),
                    &format!("{kind:?} product, {tokens} tokens, {order:?}"),
                );
            }
        }
    }
}

#[test]
fn embedding_rows_match_the_cpu_for_every_tensor_type() {
    let (rows, cols) = (9, 512);
    let mut rng = Rng(0xe3b);
    let toks: Vec<u32> = vec![0, 8, 3, 3, 5];
    for kind in all_kinds() {
        let raw = random_tensor(&mut rng, kind, rows, cols);
        let cpu = QMatrix::from_gguf(kind, rows, cols, &raw).unwrap();
        let mut want = vec![0f32; toks.len() * cols];
        for (row, &t) in want.chunks_exact_mut(cols).zip(&toks) {
            cpu.row_f32(t as usize, row);
        }
        let dev = shim(Order::Shuffled(3));
        let m = dev_mat(&dev, kind, &raw, &cpu);
        let tb: Vec<u8> = toks.iter().flat_map(|t| t.to_le_bytes()).collect();
        let tb = DevBuf::from_bytes(&dev, &tb).unwrap();
        let out = DevBuf::new(&dev, want.len() * 4).unwrap();
        launch(
            &dev,
            "embed",
            [cols.div_ceil(128), toks.len(), 1],
            128,
            &[
                Arg::Ptr(m.buf.ptr),
                Arg::I32(m.code),
                Arg::I32(cols as i32),
                Arg::Ptr(tb.ptr),
                Arg::Ptr(out.ptr),
            ],
        )
        .unwrap();
        same(
            &want,
            &out.read_f32(want.len()).unwrap(),
            &format!("{kind:?} embedding"),
        );
    }
}

/// Gate values at the edges of the spec's `exp` (clamps, overflow of `1 + exp`, ties).
fn gate_values(rng: &mut Rng, n: usize) -> Vec<f32> {
    let edge = [
        0.0, -0.0, 100.0, -100.0, 88.5, -88.5, 87.0, -87.0, 1e-30, -1e30, 1e30, 3.0, -3.0, 0.5,
        -0.5, 1e-7, 20.0, -20.0, 44.0, -44.0,
    ];
    (0..n)
        .map(|i| edge.get(i).copied().unwrap_or_else(|| rng.f() * 30.0))
        .collect()
}

#[test]
fn elementwise_kernels_match_the_cpu() {
    let mut rng = Rng(0x3e1);
    let n = 4096 + 77; // not a multiple of the block
    let g = gate_values(&mut rng, n);
    let u: Vec<f32> = (0..n).map(|_| rng.wild()).collect();
    for order in ORDERS {
        let dev = shim(order);
        let (dg, du) = (
            DevVec::from_host(&dev, &g).unwrap(),
            DevVec::from_host(&dev, &u).unwrap(),
        );
        for (kernel, f) in [
            (
                "silu_mul",
                scalar::silu_mul as fn(&[f32], &[f32], &mut [f32]),
            ),
            ("gelu_mul", scalar::gelu_mul),
        ] {
            let mut want = vec![0f32; n];
            f(&g, &u, &mut want);
            let h = DevBuf::new(&dev, n * 4).unwrap();
            let args = [
                Arg::Ptr(dg.ptr()),
                Arg::Ptr(du.ptr()),
                Arg::Ptr(h.ptr),
                Arg::I32(n as i32),
            ];
            launch(&dev, kernel, [n.div_ceil(256), 1, 1], 256, &args).unwrap();
            same(
                &want,
                &h.read_f32(n).unwrap(),
                &format!("{kernel}, {order:?}"),
            );
        }
        // RMSNorm rows of several widths (8 partial sums each, then tree8), in place and not.
        for cols in [8, 64, 576, 640, 1000] {
            let rows = 5;
            let x: Vec<f32> = (0..rows * cols).map(|_| rng.wild()).collect();
            let w: Vec<f32> = (0..cols).map(|_| rng.f() + 1.0).collect();
            let mut want = vec![0f32; x.len()];
            for (xr, yr) in x.chunks_exact(cols).zip(want.chunks_exact_mut(cols)) {
                scalar::rmsnorm_row(xr, &w, 1e-6, yr);
            }
            let dx = DevBuf::from_f32(&dev, &x).unwrap();
            let dw = DevBuf::from_f32(&dev, &w).unwrap();
            let args = [
                Arg::Ptr(dx.ptr),
                Arg::Ptr(dw.ptr),
                Arg::I32(cols as i32),
                Arg::F32(1e-6),
                Arg::Ptr(dx.ptr),
            ];
            launch(&dev, "rmsnorm", [rows, 1, 1], 256, &args).unwrap();
            same(
                &want,
                &dx.read_f32(x.len()).unwrap(),
                &format!("rmsnorm {cols}, {order:?}"),
            );
        }
    }
}

#[test]
fn rope_matches_the_cpu_in_both_pairings() {
    let mut rng = Rng(0x40e);
    let (hd, heads, tokens) = (64, 3, 5);
    let table = sworn_engine::canon::rope::RopeTable::new(hd, 10000.0, 4096);
    let pos = [0usize, 1, 17, 1000, 4095];
    let x: Vec<f32> = (0..tokens * heads * hd).map(|_| rng.f() * 4.0).collect();
    let (mut cs, mut sn) = (Vec::new(), Vec::new());
    for &p in &pos {
        let (c, s) = table.row(p);
        cs.extend_from_slice(c);
        sn.extend_from_slice(s);
    }
    for neox in [false, true] {
        let mut want = x.clone();
        for (t, &p) in pos.iter().enumerate() {
            for h in 0..heads {
                let v = &mut want[(t * heads + h) * hd..][..hd];
                if neox {
                    table.apply_neox(v, p)
                } else {
                    table.apply(v, p)
                }
            }
        }
        for order in ORDERS {
            let dev = shim(order);
            let (dx, dc, ds) = (
                DevBuf::from_f32(&dev, &x).unwrap(),
                DevBuf::from_f32(&dev, &cs).unwrap(),
                DevBuf::from_f32(&dev, &sn).unwrap(),
            );
            let args = [
                Arg::Ptr(dx.ptr),
                Arg::I32(heads as i32),
                Arg::I32(hd as i32),
                Arg::I32((heads * hd) as i32),
                Arg::Ptr(dc.ptr),
                Arg::Ptr(ds.ptr),
                Arg::I32(neox as i32),
            ];
            launch(
                &dev,
                "rope",
                [(heads * hd / 2).div_ceil(128), tokens, 1],
                128,
                &args,
            )
            .unwrap();
            same(
                &want,
                &dx.read_f32(x.len()).unwrap(),
                &format!("rope neox={neox}, {order:?}"),
            );
        }
    }
}

#[test]
fn attention_matches_the_cpu_for_every_head_width_and_length() {
    let mut rng = Rng(0xa77);
    // (head dim, keys): one key, fewer keys than threads, more than a block's 256 threads,
    // Gemma's 256-wide heads, and widths that are not powers of two.
    for (hd, n) in [(64, 1), (64, 37), (8, 300), (256, 9), (72, 20), (128, 257)] {
        let (n_head, group) = (4, 2);
        let kvd = hd * n_head / group;
        let qd = hd * n_head;
        // Two query tokens: the last position, and one with a sliding window starting at 3.
        let q: Vec<f32> = (0..2 * qd).map(|_| rng.f() * 3.0).collect();
        let keys: Vec<f32> = (0..n * kvd).map(|_| rng.f() * 3.0).collect();
        let vals: Vec<f32> = (0..n * kvd).map(|_| rng.wild()).collect();
        let first = [0usize, 3.min(n - 1)];
        let scale = 1.0 / (hd as f32).sqrt();
        let mut want = vec![0f32; 2 * qd];
        for t in 0..2 {
            let f0 = first[t];
            let count = n - f0;
            for h in 0..n_head {
                let g = h / group;
                let mut sc = vec![0f32; count];
                Isa::Scalar.attend(
                    &q[t * qd + h * hd..][..hd],
                    &keys[f0 * kvd..],
                    &vals[f0 * kvd..],
                    count,
                    kvd,
                    g * hd,
                    scale,
                    &mut sc,
                    &mut want[t * qd + h * hd..][..hd],
                );
            }
        }
        for order in ORDERS {
            let dev = shim(order);
            let up = |v: &[f32]| DevBuf::from_f32(&dev, v).unwrap();
            let (dq, dk, dv) = (up(&q), up(&keys), up(&vals));
            let kv: Vec<u8> = [dk.ptr, dv.ptr, dk.ptr, dv.ptr]
                .iter()
                .flat_map(|p| p.to_le_bytes())
                .collect();
            let kv = DevBuf::from_bytes(&dev, &kv).unwrap();
            let ints = |v: [i32; 2]| {
                DevBuf::from_bytes(
                    &dev,
                    &v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>(),
                )
                .unwrap()
            };
            let f = ints([first[0] as i32, first[1] as i32]);
            let c = ints([(n - first[0]) as i32, (n - first[1]) as i32]);
            let scratch = DevBuf::new(&dev, 2 * n_head * n * 4).unwrap();
            let out = DevBuf::new(&dev, 2 * qd * 4).unwrap();
            let args = [
                Arg::Ptr(dq.ptr),
                Arg::I32(qd as i32),
                Arg::I32(hd as i32),
                Arg::I32(group as i32),
                Arg::I32(kvd as i32),
                Arg::Ptr(kv.ptr),
                Arg::Ptr(f.ptr),
                Arg::Ptr(c.ptr),
                Arg::F32(scale),
                Arg::Ptr(scratch.ptr),
                Arg::I32(n as i32),
                Arg::Ptr(out.ptr),
            ];
            launch(&dev, "attention", [n_head, 2, 1], 256, &args).unwrap();
            same(
                &want,
                &out.read_f32(2 * qd).unwrap(),
                &format!("attention hd {hd} keys {n}, {order:?}"),
            );
        }
    }
}

#[test]
fn a_divergent_barrier_is_reported_not_hung() {
    // rmsnorm's blocks all reach both barriers; a launch with more threads than a block may
    // hold is refused with a message rather than run.
    let dev = shim(Order::Ascending);
    let err = dev
        .launch(
            "rmsnorm",
            cuda::Shape {
                grid: [1, 1, 1],
                block: 4096,
            },
            &[],
        )
        .unwrap_err();
    assert!(err.to_string().contains("bad launch shape"), "{err}");
    let err = dev
        .launch(
            "no_such_kernel",
            cuda::Shape {
                grid: [1, 1, 1],
                block: 32,
            },
            &[],
        )
        .unwrap_err();
    assert!(err.to_string().contains("no kernel named"), "{err}");
}

// ---- whole forward passes -------------------------------------------------------------------

fn synthetic(name: &str, spec: &SyntheticSpec) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sworn-cuda-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    write_model(&p, spec).unwrap();
    p
}

fn cpu_engine(path: &Path) -> Engine {
    Engine::load(
        path,
        &EngineOptions {
            threads: 2,
            ..Default::default()
        },
    )
    .unwrap()
}

/// The engine with its forward pass on the host-executed CUDA kernels, in `order`.
fn shim_engine(path: &Path, order: Order) -> Engine {
    let mut e = cpu_engine(path);
    let mut f = GgufFile::open(path).unwrap();
    let gpu = GpuModel::upload(shim(order), &mut f, &e.model).unwrap();
    e.set_accelerator(sworn_engine::accel::Accelerator::with_gpu(gpu));
    // The device serves alone: the host copy of the weights is gone (a CPU path touching it
    // would fail, so every check below also shows that none does).
    assert!(!e.model.has_host_weights());
    let mut seq = e.model.new_sequence();
    let mut feeds = [sworn_engine::model::Feed {
        seq: &mut seq,
        tokens: &[1],
    }];
    assert!(e.model.forward(&e.runner, &mut feeds).is_err());
    e
}

/// Logits hashes of every position of `tokens`, fed in chunks of `chunks`.
fn logits_by_chunks(e: &Engine, tokens: &[u32], chunks: &[usize]) -> Vec<[u8; 32]> {
    let mut seq = e.model.new_sequence();
    let (mut out, mut i) = (Vec::new(), 0);
    for &c in chunks {
        let hidden = e
            .forward(&mut [Feed {
                seq: &mut seq,
                tokens: &tokens[i..i + c],
            }])
            .unwrap();
        let logits = e.logits(&hidden).unwrap();
        out.extend(logits.chunks_exact(e.model.cfg.vocab).map(hash_logits));
        i += c;
    }
    out
}

fn requests() -> Vec<Request> {
    vec![
        request(
            Prompt::Text("Once upon a time".into()),
            SamplingParams::default(),
            6,
            &[],
        ),
        request(
            Prompt::Chat(vec![Message::new("user", "Name three colours.")]),
            filtered_sampling(7, 0.8),
            6,
            &[],
        ),
    ]
}

/// The CPU engine and the host-executed CUDA kernels agree on `path`'s model: logits of a
/// prefill, of token-by-token decoding and of uneven chunks; greedy and sampled generations,
/// alone and batched.
fn cpu_and_kernels_agree(path: &Path, orders: &[Order], n: usize) {
    let cpu = cpu_engine(path);
    let text = "The quick brown fox jumps over the lazy dog; then the dog naps. ".repeat(4);
    let mut toks = cpu.tokenizer.encode(&text, false).unwrap();
    toks.truncate(n);
    let want = logits_by_chunks(&cpu, &toks, &[n]);
    let reqs = requests();
    let want_batch = cpu.generate_batch(&reqs, None).unwrap();
    for &order in orders {
        let k = shim_engine(path, order);
        assert_eq!(
            want,
            logits_by_chunks(&k, &toks, &[n]),
            "prefill of {n}, {order:?}"
        );
        let ones = vec![1; n];
        let mut uneven = vec![n - 5, 1, 4];
        if order != orders[0] {
            uneven = ones;
        }
        assert_eq!(
            want,
            logits_by_chunks(&k, &toks, &uneven),
            "chunks {uneven:?}, {order:?}"
        );
        let got = k.generate_batch(&reqs, None).unwrap();
        for (i, (a, b)) in want_batch.iter().zip(&got).enumerate() {
            assert_eq!(a.tokens, b.tokens, "request {i} tokens, {order:?}");
            assert_eq!(
                a.logits_hashes, b.logits_hashes,
                "request {i} logits, {order:?}"
            );
        }
        let alone = k.generate(&reqs[1]).unwrap();
        assert_eq!(
            alone.logits_hashes, want_batch[1].logits_hashes,
            "alone vs batched"
        );
    }
}

#[test]
fn synthetic_llama_runs_bit_exact_on_the_kernels_in_every_order() {
    let p = synthetic("llama.gguf", &SyntheticSpec::default());
    cpu_and_kernels_agree(&p, &ORDERS, 40);
}

#[test]
fn synthetic_k_quants_gemma_qwen_and_llama3_run_bit_exact_on_the_kernels() {
    let kquants = SyntheticSpec::k_quants();
    let gemma = SyntheticSpec::gemma3();
    let qwen2 = SyntheticSpec {
        arch: sworn_engine::model::Arch::Qwen2,
        seed: 41,
        ..Default::default()
    };
    let qwen3 = SyntheticSpec {
        arch: sworn_engine::model::Arch::Qwen3,
        head_dim: Some(32),
        seed: 43,
        ..Default::default()
    };
    let llama3 = SyntheticSpec {
        llama3: true,
        seed: 50,
        ..Default::default()
    };
    for (name, spec) in [
        ("kquants", kquants),
        ("gemma3", gemma),
        ("qwen2", qwen2),
        ("qwen3", qwen3),
        ("llama3", llama3),
    ] {
        eprintln!("{name}");
        let p = synthetic(&format!("{name}.gguf"), &spec);
        cpu_and_kernels_agree(&p, &[Order::Shuffled(11), Order::Descending], 24);
    }
}

/// Both real models, a short prompt and a few decoding steps, in two thread orders.
#[test]
fn real_models_run_bit_exact_on_the_kernels() {
    for path in [
        common::real_model("real_models_run_bit_exact_on_the_kernels"),
        common::gemma_model("real_models_run_bit_exact_on_the_kernels"),
    ]
    .into_iter()
    .flatten()
    {
        let cpu = cpu_engine(&path);
        let toks = cpu
            .tokenizer
            .encode(
                "The capital of France is Paris, and the capital of Italy",
                false,
            )
            .unwrap();
        let n = toks.len().min(12);
        let chunks = [n - 3, 1, 1, 1];
        let want = logits_by_chunks(&cpu, &toks[..n], &chunks);
        for order in [Order::Shuffled(5), Order::Descending] {
            let k = shim_engine(&path, order);
            assert_eq!(
                want,
                logits_by_chunks(&k, &toks[..n], &chunks),
                "{}: {order:?}",
                path.display()
            );
        }
    }
}
