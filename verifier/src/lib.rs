//! Offline verification and replay of sworn transcripts.
//!
//! Not implemented yet: this crate is the subject of issue #4. It exists so that the workspace has
//! its final shape; it exports nothing.
