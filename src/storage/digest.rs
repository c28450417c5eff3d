//! SHA-256 of streamed bytes, and digests as clients write them.

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::error::AppError;

/// SHA-256 on a thread of its own, fed through a short queue: hashing (the slowest step on a
/// machine without SHA instructions) overlaps with reading and writing instead of adding to them.
pub struct BackgroundHasher {
    frames: tokio::sync::mpsc::Sender<Bytes>,
    state: tokio::task::JoinHandle<Sha256>,
}

impl BackgroundHasher {
    pub fn start() -> BackgroundHasher {
        BackgroundHasher::resume(Sha256::new())
    }

    /// Continues from a state that already hashed a prefix of the bytes.
    pub fn resume(mut hasher: Sha256) -> BackgroundHasher {
        // Four frames of up to 4 MiB in flight bound the memory this adds.
        let (frames, mut queue) = tokio::sync::mpsc::channel::<Bytes>(4);
        let state = tokio::task::spawn_blocking(move || {
            while let Some(frame) = queue.blocking_recv() {
                hasher.update(&frame);
            }
            hasher
        });
        BackgroundHasher { frames, state }
    }

    pub async fn update(&self, frame: Bytes) -> Result<(), AppError> {
        self.frames
            .send(frame)
            .await
            .map_err(|_| AppError::internal("the hashing thread stopped"))
    }

    pub async fn finish(self) -> Result<String, AppError> {
        self.finish_state().await.map(hex_digest)
    }

    /// The state after every frame sent, to continue later.
    pub async fn finish_state(self) -> Result<Sha256, AppError> {
        drop(self.frames);
        self.state.await.map_err(AppError::internal)
    }
}

/// Lowercase hex SHA-256.
pub fn hex_digest(hasher: Sha256) -> String {
    hex::encode(hasher.finalize())
}

/// A digest as clients send it: 64 hex characters, any case.
pub fn parse_sha256(field: &str, value: &str) -> Result<String, AppError> {
    let value = value.trim().to_ascii_lowercase();
    let value = value.strip_prefix("sha256:").unwrap_or(&value).to_owned();
    if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value)
    } else {
        Err(AppError::bad_input(
            field,
            "a SHA-256 is 64 hexadecimal characters",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_normalized() {
        let d = "AB".repeat(32);
        assert_eq!(parse_sha256("sha256", &d).unwrap(), "ab".repeat(32));
        assert!(parse_sha256("sha256", "abc").is_err());
        assert!(parse_sha256("sha256", &"zz".repeat(32)).is_err());
    }
}
