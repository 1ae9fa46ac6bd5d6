//! The CUDA backend: sworn's CUDA C kernels (`engine/cuda/kernels.cu`, design in `docs/cuda.md`)
//! behind the [`Backend`] operations, on any [`Device`]: an NVIDIA GPU ([`driver::Gpu`]) or the
//! host shim ([`host::HostShim`]) that executes the same kernel sources on the CPU, which is how
//! every kernel and whole forward passes are proven bit-exact on machines without a GPU.
//!
//! Weights stay in the GGUF's own block layout in device memory (f32 for F32, F16 and BF16
//! tensors, widened exactly), and the kernels decode them on the fly. Keys and values live in
//! device memory per sequence ([`DevKv`], in [`crate::model::Sequence`]).

pub mod driver;
pub mod host;

use std::sync::Arc;

pub use crate::devmem::{Arg, DevBuf, DevKv, Device, Shape};

use super::{Backend, Gate, MatId, Positions, Qkv, VecId};
use crate::arch::{LAYER_MATRICES, LAYER_VECTORS};
use crate::error::{EngineError, Result};
use crate::gguf::GgufFile;
use crate::model::{Feed, Model};
use crate::qmatrix::GgufKind;

/// Largest grid dimension `y` the kernels are launched with (CUDA's limit), so the most tokens
/// one forward pass may carry on this backend.
pub const MAX_TOKENS: usize = 65_535;

/// Tokens above which the products take the tiled kernel rather than one warp per output.
const MATVEC_MAX_TOKENS: usize = 4;

/// ggml's type id for the kernels (`T_*` in `common.cuh`); 0 is f32.
pub fn type_code(kind: GgufKind) -> i32 {
    match kind {
        // F16 and BF16 are uploaded widened to f32.
        GgufKind::F32 | GgufKind::F16 | GgufKind::BF16 => 0,
        k => k.ggml_code() as i32,
    }
}

/// A weight matrix in device memory.
#[derive(Debug)]
pub struct DevMat {
    pub buf: DevBuf,
    /// ggml type id, 0 for f32 rows.
    pub code: i32,
    pub rows: usize,
    pub cols: usize,
}

impl DevMat {
    /// Uploads tensor `name` of `f`; `cpu` is the same tensor as the CPU engine loaded it (its
    /// f32 values serve F32, F16 and BF16 tensors, already widened and checked).
    pub fn upload<R: std::io::Read + std::io::Seek>(
        dev: &Arc<dyn Device>,
        f: &mut GgufFile<R>,
        name: &str,
        cpu: &crate::qmatrix::QMatrix,
    ) -> Result<DevMat> {
        let desc = f
            .describe(name)?
            .ok_or_else(|| EngineError::Malformed(format!("missing tensor {name}")))?;
        let code = type_code(desc.kind);
        let buf = if code == 0 {
            DevBuf::from_f32(dev, &cpu.f32s)?
        } else {
            DevBuf::from_bytes(dev, &f.read_bytes(&desc)?)?
        };
        Ok(DevMat {
            buf,
            code,
            rows: cpu.rows,
            cols: cpu.cols,
        })
    }
}

/// The model's weights in device memory, ready for [`Kernels`].
pub struct GpuModel {
    pub dev: Arc<dyn Device>,
    embd: DevMat,
    /// The untied output projection, if any.
    output: Option<DevMat>,
    out_norm: DevBuf,
    layers: Vec<GpuLayer>,
}

/// A layer's weights in device memory, by role ([`crate::arch`]'s tables).
struct GpuLayer {
    /// In [`LayerMat`] order.
    mats: Vec<DevMat>,
    /// In [`LayerVec`] order; `None` where the architecture has no such vector.
    vecs: Vec<Option<DevBuf>>,
}

impl GpuModel {
    /// Uploads `model`'s weights, read again from the file it was loaded from (`f`), to `dev`.
    pub fn upload<R: std::io::Read + std::io::Seek>(
        dev: Arc<dyn Device>,
        f: &mut GgufFile<R>,
        model: &Model,
    ) -> Result<GpuModel> {
        let embd = DevMat::upload(&dev, f, "token_embd.weight", &model.tok_embd)?;
        let output = match &model.output {
            Some(out) => Some(DevMat::upload(&dev, f, "output.weight", out)?),
            None => None,
        };
        let mut layers = Vec::with_capacity(model.cfg.n_layer);
        for (li, layer) in model.layers.iter().enumerate() {
            let mut mats = Vec::with_capacity(LAYER_MATRICES.len());
            for t in &LAYER_MATRICES {
                let name = format!("blk.{li}.{}.weight", t.gguf);
                mats.push(DevMat::upload(&dev, f, &name, layer.mat(t.role))?);
            }
            let mut vecs = Vec::with_capacity(LAYER_VECTORS.len());
            for t in &LAYER_VECTORS {
                vecs.push(match layer.vec(t.role) {
                    Some(v) => Some(DevBuf::from_f32(&dev, v)?),
                    None => None,
                });
            }
            layers.push(GpuLayer { mats, vecs });
        }
        let out_norm = DevBuf::from_f32(&dev, &model.out_norm)?;
        Ok(GpuModel {
            dev,
            embd,
            output,
            out_norm,
            layers,
        })
    }

    fn mat(&self, id: MatId) -> &DevMat {
        match id {
            MatId::TokEmbd => &self.embd,
            MatId::LmHead => self.output.as_ref().unwrap_or(&self.embd),
            MatId::Layer(l, role) => &self.layers[l].mats[role as usize],
        }
    }

    fn vector(&self, id: VecId) -> Result<(&DevBuf, usize)> {
        let v = match id {
            VecId::OutNorm => Some(&self.out_norm),
            VecId::Layer(l, role) => self.layers[l].vecs[role as usize].as_ref(),
        };
        v.map(|b| (b, b.bytes / 4))
            .ok_or_else(|| EngineError::Device(format!("the model has no {id:?}")))
    }
}

/// An f32 buffer on the device: `len` values in memory that may be larger.
#[derive(Debug, Default)]
pub struct DevVec {
    buf: Option<DevBuf>,
    pub len: usize,
}

impl DevVec {
    /// The device address (0 before the first use).
    pub fn ptr(&self) -> u64 {
        self.buf.as_ref().map_or(0, |b| b.ptr)
    }
}

/// Quantized activations on the device (spec §1.1): values, and per block `d`, `qsum`, `s`.
#[derive(Debug, Default)]
pub struct DevActs {
    q: DevVec,
    d: DevVec,
    qsum: DevVec,
    s: DevVec,
}

/// The CUDA kernels as the forward pass's backend: one model's weights on one device.
pub struct Kernels<'a> {
    pub model: &'a Model,
    pub gpu: &'a GpuModel,
    /// The RoPE table rows of the last positions rotated, per table, on the device: every layer
    /// with the same table reuses them instead of building and uploading them again.
    rope_rows: std::cell::RefCell<Vec<RopeRows>>,
}

/// One table's rows (cosines, sines) for a list of positions, on the device.
struct RopeRows {
    table: *const crate::canon::rope::RopeTable,
    positions: Vec<usize>,
    cos: DevBuf,
    sin: DevBuf,
}

impl<'a> Kernels<'a> {
    pub fn new(model: &'a Model, gpu: &'a GpuModel) -> Kernels<'a> {
        Kernels {
            model,
            gpu,
            rope_rows: Default::default(),
        }
    }
}

impl Kernels<'_> {
    fn dev(&self) -> &Arc<dyn Device> {
        &self.gpu.dev
    }

    fn go(&self, kernel: &str, grid: [usize; 3], block: u32, args: &[Arg]) -> Result<()> {
        launch(self.dev(), kernel, grid, block, args)
    }

    fn ensure(&self, v: &mut DevVec, n: usize) -> Result<()> {
        ensure(self.dev(), v, n)
    }

    /// `data` in a fresh device buffer.
    fn temp(&self, data: &[u8]) -> Result<DevBuf> {
        DevBuf::from_bytes(self.dev(), data)
    }

    /// RMSNorm of every row of `x` into the buffer at `y` (which may be `x`'s).
    fn norm(&self, x: &DevVec, w: VecId, y: u64) -> Result<()> {
        let (wb, n) = self.gpu.vector(w)?;
        let args = [
            Arg::Ptr(x.ptr()),
            Arg::Ptr(wb.ptr),
            Arg::I32(n as i32),
            Arg::F32(self.model.cfg.rms_eps),
            Arg::Ptr(y),
        ];
        self.go("rmsnorm", [x.len / n, 1, 1], 256, &args)
    }
}

/// Launches `kernel` on `grid` blocks of `block` threads; an empty grid launches nothing, and
/// one past CUDA's limits is refused with an error.
pub fn launch(
    dev: &Arc<dyn Device>,
    kernel: &str,
    grid: [usize; 3],
    block: u32,
    args: &[Arg],
) -> Result<()> {
    if grid.contains(&0) {
        return Ok(()); // nothing to compute
    }
    if grid[1] > MAX_TOKENS || grid[2] > MAX_TOKENS || grid[0] > u32::MAX as usize {
        return Err(EngineError::InvalidRequest(format!(
            "{kernel}: a launch of {grid:?} blocks is too large for the GPU backend (at most \
             {MAX_TOKENS} tokens in one forward pass)"
        )));
    }
    let shape = Shape {
        grid: grid.map(|g| g as u32),
        block,
    };
    dev.launch(kernel, shape, args)
}

/// Room for `n` f32 (or other 4-byte) values in `v`; the contents are unspecified.
fn ensure(dev: &Arc<dyn Device>, v: &mut DevVec, n: usize) -> Result<()> {
    if v.buf.as_ref().is_none_or(|b| b.bytes < n * 4) {
        v.buf = Some(DevBuf::new(dev, n * 4)?);
    }
    v.len = n;
    Ok(())
}

impl DevVec {
    /// `data` on the device.
    pub fn from_host(dev: &Arc<dyn Device>, data: &[f32]) -> Result<DevVec> {
        Ok(DevVec {
            buf: Some(DevBuf::from_f32(dev, data)?),
            len: data.len(),
        })
    }

    /// The values, on the host.
    pub fn to_host(&self) -> Result<Vec<f32>> {
        match &self.buf {
            Some(b) => b.read_f32(self.len),
            None => Ok(Vec::new()),
        }
    }
}

impl DevActs {
    /// The quantized activations on the host, in the CPU's form (`cols` wide rows).
    pub fn to_host(&self, cols: usize) -> Result<crate::canon::quant::QActs> {
        let raw = |v: &DevVec, n: usize| -> Result<Vec<u8>> {
            let mut out = vec![0u8; n];
            if let Some(b) = &v.buf {
                b.device().download(b.ptr, &mut out)?;
            }
            Ok(out)
        };
        let nb = self.d.len;
        let words = |b: Vec<u8>| -> Vec<[u8; 4]> {
            b.chunks_exact(4)
                .map(|c| [c[0], c[1], c[2], c[3]])
                .collect()
        };
        Ok(crate::canon::quant::QActs {
            rows: self.q.len / cols.max(1),
            cols,
            q: raw(&self.q, self.q.len)?
                .into_iter()
                .map(|b| b as i8)
                .collect(),
            d: words(raw(&self.d, nb * 4)?)
                .into_iter()
                .map(f32::from_le_bytes)
                .collect(),
            qsum: words(raw(&self.qsum, nb * 4)?)
                .into_iter()
                .map(i32::from_le_bytes)
                .collect(),
            s: words(raw(&self.s, nb * 4)?)
                .into_iter()
                .map(f32::from_le_bytes)
                .collect(),
        })
    }
}

/// Quantizes `x` (rows a multiple of 32 wide) into `xq` (spec §1.1).
pub fn quantize(dev: &Arc<dyn Device>, x: &DevVec, xq: &mut DevActs) -> Result<()> {
    let nb = x.len / 32;
    ensure(dev, &mut xq.q, x.len.div_ceil(4))?;
    xq.q.len = x.len;
    ensure(dev, &mut xq.d, nb)?;
    ensure(dev, &mut xq.qsum, nb)?;
    ensure(dev, &mut xq.s, nb)?;
    launch(
        dev,
        "quantize_q8",
        [nb.div_ceil(8), 1, 1],
        256,
        &[
            Arg::Ptr(x.ptr()),
            Arg::I32(nb as i32),
            Arg::Ptr(xq.q.ptr()),
            Arg::Ptr(xq.d.ptr()),
            Arg::Ptr(xq.qsum.ptr()),
            Arg::Ptr(xq.s.ptr()),
        ],
    )
}

/// `out = m x` for `tokens` rows of `x`, quantized (`xq`) and as f32 (`xf`, for f32 weights):
/// one warp per output for a few tokens, the tiled kernel for more (the same bits either way).
pub fn product(
    dev: &Arc<dyn Device>,
    m: &DevMat,
    xq: &DevActs,
    xf: &DevVec,
    tokens: usize,
    out: &mut DevVec,
) -> Result<()> {
    ensure(dev, out, tokens * m.rows)?;
    let (rows, cols) = (m.rows as i32, m.cols as i32);
    if m.code == 0 {
        return launch(
            dev,
            "f32matmul",
            [m.rows.div_ceil(128), tokens, 1],
            128,
            &[
                Arg::Ptr(m.buf.ptr),
                Arg::I32(rows),
                Arg::I32(cols),
                Arg::Ptr(xf.ptr()),
                Arg::Ptr(out.ptr()),
            ],
        );
    }
    let mut args = vec![
        Arg::Ptr(m.buf.ptr),
        Arg::I32(m.code),
        Arg::I32(rows),
        Arg::I32(cols),
        Arg::Ptr(xq.q.ptr()),
        Arg::Ptr(xq.d.ptr()),
        Arg::Ptr(xq.s.ptr()),
    ];
    if tokens <= MATVEC_MAX_TOKENS {
        args.push(Arg::Ptr(out.ptr()));
        launch(dev, "qmatvec", [m.rows.div_ceil(4), tokens, 1], 128, &args)
    } else {
        args.extend([Arg::I32(tokens as i32), Arg::Ptr(out.ptr())]);
        let grid = [m.rows.div_ceil(32), tokens.div_ceil(8), 1];
        launch(dev, "qmatmul", grid, 256, &args)
    }
}

fn u64_bytes(v: &[u64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
fn i32_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

impl Backend for Kernels<'_> {
    type Buf = DevVec;
    type Acts = DevActs;

    fn buf(&self) -> Result<DevVec> {
        Ok(DevVec::default())
    }

    fn acts(&self) -> Result<DevActs> {
        Ok(DevActs::default())
    }

    fn embed(&self, tokens: &[u32], x: &mut DevVec) -> Result<()> {
        let d = self.model.cfg.d_model;
        let toks: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
        let toks = self.temp(&toks)?;
        self.ensure(x, tokens.len() * d)?;
        let w = self.gpu.mat(MatId::TokEmbd);
        self.go(
            "embed",
            [d.div_ceil(128), tokens.len(), 1],
            128,
            &[
                Arg::Ptr(w.buf.ptr),
                Arg::I32(w.code),
                Arg::I32(d as i32),
                Arg::Ptr(toks.ptr),
                Arg::Ptr(x.ptr()),
            ],
        )
    }

    fn scale(&self, x: &mut DevVec, s: f32) -> Result<()> {
        self.go(
            "scale",
            [x.len.div_ceil(256), 1, 1],
            256,
            &[Arg::Ptr(x.ptr()), Arg::F32(s), Arg::I32(x.len as i32)],
        )
    }

    fn rmsnorm(&self, x: &DevVec, w: VecId, y: &mut DevVec) -> Result<()> {
        self.ensure(y, x.len)?;
        self.norm(x, w, y.ptr())
    }

    fn rmsnorm_in_place(&self, x: &mut DevVec, w: VecId) -> Result<()> {
        self.norm(x, w, x.ptr())
    }

    fn quantize(&self, x: &DevVec, cols: usize, xq: &mut DevActs) -> Result<()> {
        debug_assert_eq!(cols % 32, 0);
        quantize(self.dev(), x, xq)
    }

    fn matmul(
        &self,
        mats: &[MatId],
        xq: &DevActs,
        xf: &DevVec,
        tokens: usize,
        outs: &mut [&mut DevVec],
    ) -> Result<()> {
        for (&id, out) in mats.iter().zip(outs.iter_mut()) {
            product(self.dev(), self.gpu.mat(id), xq, xf, tokens, out)?;
        }
        Ok(())
    }

    fn add_rows(&self, x: &mut DevVec, b: VecId) -> Result<()> {
        let (bb, cols) = self.gpu.vector(b)?;
        self.go(
            "add_rows",
            [x.len.div_ceil(256), 1, 1],
            256,
            &[
                Arg::Ptr(x.ptr()),
                Arg::Ptr(bb.ptr),
                Arg::I32(cols as i32),
                Arg::I32(x.len as i32),
            ],
        )
    }

    fn rope(&self, layer: usize, q: &mut DevVec, k: &mut DevVec, at: &Positions) -> Result<()> {
        let cfg = &self.model.cfg;
        let table = self.model.rope_of(layer);
        let half = cfg.head_dim / 2;
        let positions: Vec<usize> = at.iter().map(|&(_, pos)| pos).collect();
        let mut cache = self.rope_rows.borrow_mut();
        let hit = cache
            .iter()
            .position(|r| std::ptr::eq(r.table, table) && r.positions == positions);
        let rows = match hit {
            Some(i) => &cache[i],
            None => {
                // The table rows of the tokens' positions (computed on the host, spec §2.3).
                let (mut cs, mut sn) = (Vec::with_capacity(at.len() * half), Vec::new());
                for &pos in &positions {
                    let (c, s) = table.row(pos);
                    cs.extend_from_slice(c);
                    sn.extend_from_slice(s);
                }
                cache.retain(|r| !std::ptr::eq(r.table, table));
                cache.push(RopeRows {
                    table,
                    positions,
                    cos: DevBuf::from_f32(self.dev(), &cs)?,
                    sin: DevBuf::from_f32(self.dev(), &sn)?,
                });
                cache.last().expect("just pushed")
            }
        };
        let (cs, sn) = (&rows.cos, &rows.sin);
        let neox = i32::from(cfg.arch.neox_rope());
        for (x, heads, stride) in [
            (&*q, cfg.n_head, cfg.q_dim()),
            (&*k, cfg.n_kv_head, cfg.kv_dim()),
        ] {
            self.go(
                "rope",
                [(heads * half).div_ceil(128), at.len(), 1],
                128,
                &[
                    Arg::Ptr(x.ptr()),
                    Arg::I32(heads as i32),
                    Arg::I32(cfg.head_dim as i32),
                    Arg::I32(stride as i32),
                    Arg::Ptr(cs.ptr),
                    Arg::Ptr(sn.ptr),
                    Arg::I32(neox),
                ],
            )?;
        }
        Ok(())
    }

    fn attend(
        &self,
        li: usize,
        feeds: &mut [Feed<'_>],
        at: &Positions,
        qkv: Qkv<'_, DevVec>,
        att: &mut DevVec,
    ) -> Result<()> {
        let Qkv { q, k, v } = qkv;
        let cfg = &self.model.cfg;
        let (kvd, qd, hd) = (cfg.kv_dim(), cfg.q_dim(), cfg.head_dim);
        let nt = at.len();
        // Room in every sequence's cache for its new positions.
        for (fi, f) in feeds.iter_mut().enumerate() {
            let last = at.iter().filter(|a| a.0 == fi).map(|a| a.1 + 1).max();
            let Some(need) = last else { continue };
            let seq = &mut *f.seq;
            if seq.dev.is_none() {
                if !seq.is_empty() {
                    return Err(EngineError::InvalidRequest(
                        "this sequence's keys and values are on another backend".into(),
                    ));
                }
                seq.dev = Some(DevKv::new(self.dev(), cfg.n_layer, kvd, need)?);
            }
            kv_of(seq)?.reserve(need)?;
        }
        // Where each token's key and value go, then where its sequence's cache starts.
        let (mut dst, mut base, mut first, mut count) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let sliding = cfg.is_sliding(li);
        for &(fi, pos) in at {
            let start = feeds[fi].seq.len();
            let kv = kv_of(feeds[fi].seq)?;
            if kv.rows[li] < start {
                return Err(EngineError::Device(format!(
                    "layer {li} of a sequence holds {} positions, not {start}",
                    kv.rows[li]
                )));
            }
            let off = (pos * kv.row_bytes) as u64;
            dst.extend([kv.k[li].ptr + off, kv.v[li].ptr + off]);
            base.extend([kv.k[li].ptr, kv.v[li].ptr]);
            let f0 = cfg.first_key(sliding, pos);
            first.push(f0 as i32);
            count.push((pos + 1 - f0) as i32);
        }
        let dst = self.temp(&u64_bytes(&dst))?;
        self.go(
            "store_kv",
            [kvd.div_ceil(256), nt, 1],
            256,
            &[
                Arg::Ptr(k.ptr()),
                Arg::Ptr(v.ptr()),
                Arg::I32(kvd as i32),
                Arg::Ptr(dst.ptr),
            ],
        )?;
        for &(fi, pos) in at {
            let kv = kv_of(feeds[fi].seq)?;
            kv.rows[li] = kv.rows[li].max(pos + 1);
        }
        let nmax = count.iter().copied().max().unwrap_or(0) as usize;
        let base = self.temp(&u64_bytes(&base))?;
        let first = self.temp(&i32_bytes(&first))?;
        let count = self.temp(&i32_bytes(&count))?;
        let scratch = DevBuf::new(self.dev(), nt * cfg.n_head * nmax * 4)?;
        self.ensure(att, nt * qd)?;
        self.go(
            "attention",
            [cfg.n_head, nt, 1],
            256,
            &[
                Arg::Ptr(q.ptr()),
                Arg::I32(qd as i32),
                Arg::I32(hd as i32),
                Arg::I32((cfg.n_head / cfg.n_kv_head) as i32),
                Arg::I32(kvd as i32),
                Arg::Ptr(base.ptr),
                Arg::Ptr(first.ptr),
                Arg::Ptr(count.ptr),
                Arg::F32(1.0 / (hd as f32).sqrt()),
                Arg::Ptr(scratch.ptr),
                Arg::I32(nmax as i32),
                Arg::Ptr(att.ptr()),
            ],
        )
    }

    fn add(&self, x: &mut DevVec, y: &DevVec) -> Result<()> {
        self.go(
            "add",
            [x.len.div_ceil(256), 1, 1],
            256,
            &[Arg::Ptr(x.ptr()), Arg::Ptr(y.ptr()), Arg::I32(x.len as i32)],
        )
    }

    fn gated(&self, act: Gate, g: &DevVec, u: &DevVec, _cols: usize, h: &mut DevVec) -> Result<()> {
        self.ensure(h, g.len)?;
        let k = match act {
            Gate::Silu => "silu_mul",
            Gate::Gelu => "gelu_mul",
        };
        self.go(
            k,
            [g.len.div_ceil(256), 1, 1],
            256,
            &[
                Arg::Ptr(g.ptr()),
                Arg::Ptr(u.ptr()),
                Arg::Ptr(h.ptr()),
                Arg::I32(g.len as i32),
            ],
        )
    }

    fn to_host(&self, x: DevVec) -> Result<Vec<f32>> {
        x.to_host()
    }
}

/// The sequence's device cache.
fn kv_of(seq: &mut crate::model::Sequence) -> Result<&mut DevKv> {
    seq.dev
        .as_mut()
        .filter(|kv| !kv.k.is_empty())
        .ok_or_else(|| {
            EngineError::Device("a sequence's device cache is missing (a failed copy?)".into())
        })
}

/// Hidden states from the host into a device buffer (for [`crate::forward::logits`]).
pub fn upload_rows(k: &Kernels<'_>, hidden: &[f32]) -> Result<DevVec> {
    DevVec::from_host(k.dev(), hidden)
}
