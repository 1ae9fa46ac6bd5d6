//! Reading GGUF files: the header and metadata through `candle-core`'s reader, tensor bytes with
//! our own bounds checks, every failure a [`EngineError`].

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::GgmlDType;

use crate::error::{EngineError, Result};
use crate::qmatrix::GgufKind;

/// Metadata of a GGUF file and a handle to read its tensors.
pub struct GgufFile<R> {
    reader: R,
    content: Content,
    file_size: u64,
}

/// A tensor's description: element type and dimensions, outermost first (`[rows, cols]` for a
/// matrix, whose rows are contiguous in the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorDesc {
    pub name: String,
    pub kind: GgufKind,
    pub dims: Vec<usize>,
}

impl GgufFile<BufReader<File>> {
    /// Opens and parses `path`'s header and metadata. Buffered: the metadata is ~100,000 small
    /// strings (the vocabulary and merges), which candle's parser reads one field at a time.
    pub fn open(path: &Path) -> Result<Self> {
        let io = |source| EngineError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        GgufFile::from_reader(BufReader::with_capacity(1 << 16, file))
    }
}

impl<R: Read + Seek> GgufFile<R> {
    /// Parses the header and metadata from any seekable reader.
    pub fn from_reader(mut reader: R) -> Result<Self> {
        let io = |source| EngineError::Io {
            path: "<gguf>".into(),
            source,
        };
        let file_size = reader.seek(SeekFrom::End(0)).map_err(io)?;
        reader.seek(SeekFrom::Start(0)).map_err(io)?;
        if file_size < 4 {
            return Err(EngineError::Malformed(
                "file too short for a GGUF header".into(),
            ));
        }
        // candle's reader is bounds-checked, but a hostile header can still reach arithmetic it
        // does not guard (e.g. `general.alignment = 0`). A panic there is turned into an error:
        // malformed input must never take the process down.
        let parsed =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Content::read(&mut reader)));
        let content = match parsed {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(EngineError::Malformed(e.to_string())),
            Err(_) => {
                return Err(EngineError::Malformed(
                    "unparseable header: a field holds an impossible value (such as general.alignment = 0)".into(),
                ))
            }
        };
        if let Some(v) = content.metadata.get("general.alignment") {
            match v.to_u32() {
                Ok(a) if a > 0 && a.is_power_of_two() => {}
                _ => {
                    return Err(EngineError::Malformed(format!(
                        "bad general.alignment {v:?}"
                    )))
                }
            }
        }
        Ok(GgufFile {
            reader,
            content,
            file_size,
        })
    }

    /// Frees the vocabulary arrays (`tokenizer.ggml.tokens`, `scores`, `token_type`, `merges`)
    /// once they have been read: as parsed values they take ~100 bytes per token (25 MB for
    /// Gemma 3's 262,144), which a loader should not hold while it reads the weights.
    pub fn release_vocabulary(&mut self) {
        for key in ["tokens", "scores", "token_type", "merges"] {
            self.content
                .metadata
                .remove(&format!("tokenizer.ggml.{key}"));
        }
    }

    /// The raw metadata value under `key`.
    pub fn meta(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    /// A string metadata value.
    pub fn meta_str(&self, key: &str) -> Result<Option<&str>> {
        match self.meta(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(EngineError::Malformed(format!(
                "{key}: expected a string, found {v:?}"
            ))),
        }
    }

    /// An unsigned integer metadata value, whatever its stored width.
    pub fn meta_usize(&self, key: &str) -> Result<Option<usize>> {
        let Some(v) = self.meta(key) else {
            return Ok(None);
        };
        let n: Option<u64> = match v {
            Value::U8(x) => Some(*x as u64),
            Value::U16(x) => Some(*x as u64),
            Value::U32(x) => Some(*x as u64),
            Value::U64(x) => Some(*x),
            Value::I8(x) => u64::try_from(*x).ok(),
            Value::I16(x) => u64::try_from(*x).ok(),
            Value::I32(x) => u64::try_from(*x).ok(),
            Value::I64(x) => u64::try_from(*x).ok(),
            _ => None,
        };
        n.and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                EngineError::Malformed(format!("{key}: expected an unsigned integer, found {v:?}"))
            })
    }

    /// A float metadata value (f32 or f64 stored).
    pub fn meta_f32(&self, key: &str) -> Result<Option<f32>> {
        match self.meta(key) {
            None => Ok(None),
            Some(Value::F32(x)) => Ok(Some(*x)),
            Some(Value::F64(x)) => Ok(Some(*x as f32)),
            Some(v) => Err(EngineError::Malformed(format!(
                "{key}: expected a float, found {v:?}"
            ))),
        }
    }

    /// A boolean metadata value.
    pub fn meta_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.meta(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(EngineError::Malformed(format!(
                "{key}: expected a bool, found {v:?}"
            ))),
        }
    }

    /// An array of strings.
    pub fn meta_strings(&self, key: &str) -> Result<Option<Vec<&str>>> {
        let Some(v) = self.meta(key) else {
            return Ok(None);
        };
        let Value::Array(items) = v else {
            return Err(EngineError::Malformed(format!("{key}: expected an array")));
        };
        items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.as_str()),
                other => Err(EngineError::Malformed(format!(
                    "{key}: expected strings, found {other:?}"
                ))),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// An array of f32 values.
    pub fn meta_f32s(&self, key: &str) -> Result<Option<Vec<f32>>> {
        self.meta_array(key, "f32 values", |i| match i {
            Value::F32(x) => Some(*x),
            _ => None,
        })
    }

    /// An array of integers.
    pub fn meta_ints(&self, key: &str) -> Result<Option<Vec<i64>>> {
        self.meta_array(key, "integers", |i| match i {
            Value::I32(x) => Some(*x as i64),
            Value::U32(x) => Some(*x as i64),
            Value::I8(x) => Some(*x as i64),
            Value::U8(x) => Some(*x as i64),
            Value::I16(x) => Some(*x as i64),
            Value::U16(x) => Some(*x as i64),
            Value::I64(x) => Some(*x),
            _ => None,
        })
    }

    /// An array whose every item `item` accepts (`what` names them in the error).
    fn meta_array<T>(
        &self,
        key: &str,
        what: &str,
        item: impl Fn(&Value) -> Option<T>,
    ) -> Result<Option<Vec<T>>> {
        let Some(v) = self.meta(key) else {
            return Ok(None);
        };
        let Value::Array(items) = v else {
            return Err(EngineError::Malformed(format!("{key}: expected an array")));
        };
        items
            .iter()
            .map(|i| {
                item(i).ok_or_else(|| {
                    EngineError::Malformed(format!("{key}: expected {what}, found {i:?}"))
                })
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// Describes tensor `name`, or `None` if the file has no such tensor.
    pub fn describe(&self, name: &str) -> Result<Option<TensorDesc>> {
        let Some(info) = self.content.tensor_infos.get(name) else {
            return Ok(None);
        };
        let Some(kind) = GgufKind::from_ggml_code(ggml_type_code(info.ggml_dtype)) else {
            return Err(EngineError::Unsupported(format!(
                "tensor {name} has type {:?}; sworn reads F32, F16, BF16, Q4_0, Q4_1, Q5_0, \
                 Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K",
                info.ggml_dtype
            )));
        };
        Ok(Some(TensorDesc {
            name: name.to_string(),
            kind,
            dims: info.shape.dims().to_vec(),
        }))
    }

    /// Names of all tensors, sorted (never in hash-map order).
    pub fn tensor_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .content
            .tensor_infos
            .keys()
            .map(|s| s.as_str())
            .collect();
        v.sort_unstable();
        v
    }

    /// Where tensor `name`'s data lies in the file, checked to be inside it.
    pub fn tensor_data_range(&self, name: &str) -> Result<std::ops::Range<u64>> {
        let bad = |why: String| EngineError::Malformed(format!("tensor {name}: {why}"));
        let info = self
            .content
            .tensor_infos
            .get(name)
            .ok_or_else(|| bad("not in the file".into()))?;
        let elems = info
            .shape
            .dims()
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| bad("element count overflows".into()))?;
        let (bs, ts) = (info.ggml_dtype.block_size(), info.ggml_dtype.type_size());
        if !elems.is_multiple_of(bs) {
            return Err(bad(format!("{elems} elements do not fill whole blocks")));
        }
        let len = (elems / bs) as u64 * ts as u64;
        let start = self
            .content
            .tensor_data_offset
            .checked_add(info.offset)
            .ok_or_else(|| bad("offset overflows".into()))?;
        match start.checked_add(len) {
            Some(end) if end <= self.file_size => Ok(start..end),
            _ => Err(bad(format!(
                "needs {len} bytes at offset {start} but the file has {} (truncated?)",
                self.file_size
            ))),
        }
    }

    /// BLAKE3 of a tensor's identity and contents (docs/transcript.md §2):
    /// `TAG || u32 len || name || u32 ggml type || u32 ndims || u64 dims (ggml order) || data`,
    /// integers big-endian. The data is streamed, never held whole.
    pub fn tensor_hash(&mut self, name: &str) -> Result<[u8; 32]> {
        let info = self
            .content
            .tensor_infos
            .get(name)
            .ok_or_else(|| EngineError::Malformed(format!("tensor {name}: not in the file")))?;
        let mut h = blake3::Hasher::new();
        h.update(b"sworn.tensor.v1\0");
        h.update(&(name.len() as u32).to_be_bytes());
        h.update(name.as_bytes());
        h.update(&ggml_type_code(info.ggml_dtype).to_be_bytes());
        let dims = info.shape.dims();
        h.update(&(dims.len() as u32).to_be_bytes());
        for d in dims.iter().rev() {
            h.update(&(*d as u64).to_be_bytes());
        }
        let mut rd = self.tensor_reader(name)?;
        let mut buf = vec![0u8; 1 << 20];
        while rd.left() > 0 {
            let n = rd.left().min(buf.len() as u64) as usize;
            rd.read(&mut buf[..n])?;
            h.update(&buf[..n]);
        }
        Ok(*h.finalize().as_bytes())
    }

    /// A reader of tensor `name`'s bytes, in order and in pieces of any size, after checking
    /// that they lie inside the file.
    pub fn tensor_reader(&mut self, name: &str) -> Result<TensorReader<'_, R>> {
        let range = self.tensor_data_range(name)?;
        self.reader
            .seek(SeekFrom::Start(range.start))
            .map_err(|source| EngineError::Io {
                path: name.to_string(),
                source,
            })?;
        Ok(TensorReader {
            reader: &mut self.reader,
            left: range.end - range.start,
            name: name.to_string(),
        })
    }

    /// Reads tensor `desc`'s bytes after checking that they lie inside the file.
    pub fn read_bytes(&mut self, desc: &TensorDesc) -> Result<Vec<u8>> {
        let mut rd = self.tensor_reader(&desc.name)?;
        let mut buf = vec![0u8; rd.left() as usize];
        rd.read(&mut buf)?;
        Ok(buf)
    }
}

/// Sequential reads of one tensor's bytes (see [`GgufFile::tensor_reader`]).
pub struct TensorReader<'a, R> {
    reader: &'a mut R,
    left: u64,
    name: String,
}

impl<R: Read> TensorReader<'_, R> {
    /// Fills `buf` with the tensor's next bytes; reading past its end is an error.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<()> {
        if buf.len() as u64 > self.left {
            return Err(EngineError::Malformed(format!(
                "tensor {}: read past its end",
                self.name
            )));
        }
        self.reader
            .read_exact(buf)
            .map_err(|source| EngineError::Io {
                path: self.name.clone(),
                source,
            })?;
        self.left -= buf.len() as u64;
        Ok(())
    }

    /// Bytes not read yet.
    pub fn left(&self) -> u64 {
        self.left
    }
}

/// ggml's numeric code of a tensor type (as stored in the file).
pub fn ggml_type_code(t: GgmlDType) -> u32 {
    match t {
        GgmlDType::F32 => 0,
        GgmlDType::F16 => 1,
        GgmlDType::Q4_0 => 2,
        GgmlDType::Q4_1 => 3,
        GgmlDType::Q5_0 => 6,
        GgmlDType::Q5_1 => 7,
        GgmlDType::Q8_0 => 8,
        GgmlDType::Q8_1 => 9,
        GgmlDType::Q2K => 10,
        GgmlDType::Q3K => 11,
        GgmlDType::Q4K => 12,
        GgmlDType::Q5K => 13,
        GgmlDType::Q6K => 14,
        GgmlDType::Q8K => 15,
        GgmlDType::BF16 => 30,
    }
}
