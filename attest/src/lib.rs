//! Transcript format, canonical encoding, commitments and signatures.
//!
//! Not implemented yet: this crate is the subject of issue #4. It exists so that the workspace has
//! its final shape; it exports nothing.
