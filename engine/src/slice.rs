//! Writes the first layers of a GGUF model as a smaller GGUF (`sworn model-slice`): real weights
//! in a file small enough to carry to a GPU machine for `scripts/gpu-check.sh`. The embedding,
//! the output norm and projection, the tokenizer and every other key are kept as they are; only
//! `blk.N.*` tensors with `N >= layers` are dropped and `{arch}.block_count` is set to `layers`.
//! The output is deterministic: keys in sorted order, tensors in the file's order.

use std::io::BufWriter;
use std::path::Path;

use candle_core::quantized::gguf_file::{self, Content, Value};

use crate::error::{EngineError, Result};

/// Writes `input`'s first `layers` layers to `output`; returns the layers the input had.
pub fn slice_layers(input: &Path, output: &Path, layers: usize) -> Result<usize> {
    let io = |path: &Path| {
        let p = path.display().to_string();
        move |source| EngineError::Io { path: p, source }
    };
    let bad = |e: candle_core::Error| EngineError::Malformed(e.to_string());
    let mut f = std::io::BufReader::new(std::fs::File::open(input).map_err(io(input))?);
    let content = Content::read(&mut f).map_err(bad)?;
    let arch = match content.metadata.get("general.architecture") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(EngineError::Malformed("no general.architecture".into())),
    };
    let key = format!("{arch}.block_count");
    let total = content
        .metadata
        .get(&key)
        .and_then(|v| v.to_u32().ok())
        .ok_or_else(|| EngineError::Malformed(format!("no {key}")))? as usize;
    if layers == 0 || layers > total {
        return Err(EngineError::InvalidRequest(format!(
            "cannot keep {layers} layers of a model with {total}"
        )));
    }
    let mut meta: Vec<(String, Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    meta.sort_by(|a, b| a.0.cmp(&b.0));
    for (k, v) in meta.iter_mut() {
        if *k == key {
            *v = Value::U32(layers as u32);
        }
    }
    let keep = |name: &str| match name.strip_prefix("blk.") {
        Some(rest) => rest
            .split('.')
            .next()
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| n < layers),
        None => true,
    };
    let mut names: Vec<(&String, u64)> = content
        .tensor_infos
        .iter()
        .filter(|(n, _)| keep(n))
        .map(|(n, i)| (n, i.offset))
        .collect();
    names.sort_by_key(|&(_, off)| off);
    let mut tensors = Vec::with_capacity(names.len());
    for (name, _) in names {
        let t = content
            .tensor(&mut f, name, &candle_core::Device::Cpu)
            .map_err(bad)?;
        tensors.push((name.clone(), t));
    }
    let mut out = BufWriter::new(std::fs::File::create(output).map_err(io(output))?);
    let meta_refs: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<_> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(&mut out, &meta_refs, &tensor_refs).map_err(bad)?;
    std::io::Write::flush(&mut out).map_err(io(output))?;
    Ok(total)
}
