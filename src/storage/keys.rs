//! Object keys: one function per kind of object, built from ids and hex digests only.

use crate::values::Id;

/// Where a blob's bytes live: sharded by the first byte so no folder grows without bound.
pub fn blob_key(sha256: &str) -> String {
    format!("blobs/sha256/{}/{}", &sha256[..2], sha256)
}

pub fn upload_prefix(session: Id) -> String {
    format!("uploads/{session}/")
}

/// One stored generation of a chunk: immutable, so what was hashed is what gets assembled.
pub fn chunk_key(session: Id, index: i64, generation: Id) -> String {
    format!("uploads/{session}/chunks/{index:06}-{generation}")
}

/// A chunked session's staging file on a local store: every chunk's first attempt is written
/// at the chunk's offset, so the finished file is the blob without a copy.
pub fn staged_key(session: Id) -> String {
    format!("uploads/{session}/data")
}

pub fn direct_key(session: Id) -> String {
    format!("uploads/{session}/direct")
}
