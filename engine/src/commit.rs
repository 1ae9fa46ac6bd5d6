//! Commitments to a model file, as transcripts record them (docs/transcript.md §2): the file's
//! BLAKE3, a Merkle root over per-tensor hashes (so a verifier holding the per-tensor list can
//! name a swapped tensor), the tokenizer's canonical description and the chat template, and
//! (format 4) the execution commitment of `docs/dispute.md` §5.5: the shape and a Keccak root
//! over the weights' rows.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use sworn_attest::codec::Writer;
use sworn_attest::{merkle, ModelCommitment};

use crate::error::{EngineError, Result};
use crate::gguf::GgufFile;

/// Everything a transcript commits to about a model, with the per-tensor hashes behind the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelManifest {
    pub commitment: ModelCommitment,
    /// `(name, hash)` for every tensor, sorted by name: the Merkle tree's leaves, in order.
    pub tensors: Vec<(String, [u8; 32])>,
}

/// BLAKE3 of a whole reader's bytes, streamed.
pub fn blake3_reader<R: Read + Seek>(r: &mut R) -> std::io::Result<[u8; 32]> {
    r.seek(SeekFrom::Start(0))?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(*h.finalize().as_bytes())
}

/// Computes the manifest of the model file at `path`.
pub fn manifest(path: &Path) -> Result<ModelManifest> {
    let io = |source| EngineError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let file_blake3 = blake3_reader(&mut file).map_err(io)?;
    // Buffered for the metadata's many small reads (see `GgufFile::open`).
    let mut f = GgufFile::from_reader(std::io::BufReader::with_capacity(1 << 16, file))?;
    manifest_of(&mut f, file_blake3)
}

/// Computes the manifest of a model file held in memory (a browser's `File`, say).
pub fn manifest_bytes(bytes: &[u8]) -> Result<ModelManifest> {
    let file_blake3 = *blake3::hash(bytes).as_bytes();
    manifest_of(
        &mut GgufFile::from_reader(std::io::Cursor::new(bytes))?,
        file_blake3,
    )
}

/// The manifest of an opened GGUF whose whole-file BLAKE3 is `file_blake3`.
pub fn manifest_of<R: Read + Seek>(
    f: &mut GgufFile<R>,
    file_blake3: [u8; 32],
) -> Result<ModelManifest> {
    // The metadata's commitments first, so the vocabulary can be freed before the tensors are
    // read.
    let tokenizer_blake3 = tokenizer_hash(f)?;
    let template = crate::chat::template_source(f)?.unwrap_or("");
    let chat_template_blake3 = *blake3::hash(template.as_bytes()).as_bytes();
    let cfg = crate::model::Config::from_gguf(f)?;
    f.release_vocabulary();
    let names: Vec<String> = f.tensor_names().into_iter().map(str::to_string).collect();
    let mut tensors = Vec::with_capacity(names.len());
    for n in names {
        let h = f.tensor_hash(&n)?;
        tensors.push((n, h));
    }
    let leaves: Vec<[u8; 32]> = tensors.iter().map(|(_, h)| *h).collect();
    let weights = crate::trace::weights::weights_root(f, &cfg)?;
    Ok(ModelManifest {
        commitment: ModelCommitment {
            file_blake3,
            tensors_root: merkle::root(&leaves),
            n_tensors: tensors.len() as u32,
            tokenizer_blake3,
            chat_template_blake3,
            exec_root: Some(crate::trace::weights::exec_root(&cfg, weights)),
        },
        tensors,
    })
}

/// BLAKE3 of the tokenizer's canonical description: `TAG || model || pre || tokens || types ||
/// merges || bos || eos || eot || add_bos [|| scores]`, in the attest crate's canonical encoding
/// (absent ids as 0xffffffff; the scores, which decide a SentencePiece-style tokenizer's merges,
/// only when the file has them, so that files without them keep their commitment).
pub fn tokenizer_hash<R: Read + Seek>(f: &GgufFile<R>) -> Result<[u8; 32]> {
    let mut w = Writer::default();
    w.fixed(b"sworn.tokenizer.v1\0");
    w.str(f.meta_str("tokenizer.ggml.model")?.unwrap_or(""));
    w.str(f.meta_str("tokenizer.ggml.pre")?.unwrap_or(""));
    for key in ["tokenizer.ggml.tokens", "tokenizer.ggml.merges"] {
        let list = f.meta_strings(key)?.unwrap_or_default();
        w.u32(list.len() as u32);
        for s in list {
            w.str(s);
        }
        if key == "tokenizer.ggml.tokens" {
            let types = f
                .meta_ints("tokenizer.ggml.token_type")?
                .unwrap_or_default();
            w.u32(types.len() as u32);
            for t in types {
                w.u64(t as u64);
            }
        }
    }
    for key in ["bos_token_id", "eos_token_id", "eot_token_id"] {
        let id = f.meta_usize(&format!("tokenizer.ggml.{key}"))?;
        w.u32(id.map_or(u32::MAX, |i| i.min(u32::MAX as usize) as u32));
    }
    w.u8(f
        .meta_bool("tokenizer.ggml.add_bos_token")?
        .unwrap_or(false) as u8);
    if let Some(scores) = f.meta_f32s("tokenizer.ggml.scores")? {
        w.u32(scores.len() as u32);
        for s in scores {
            w.f32(s);
        }
    }
    Ok(*blake3::hash(&w.buf).as_bytes())
}
