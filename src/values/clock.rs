//! The server's "now" for rules that depend on elapsed time (device health, the telemetry
//! retention and the future-timestamp limit): the system clock, plus an offset a test can move
//! forward instead of sleeping through a threshold.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use super::Timestamp;

#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> Timestamp {
        let offset = chrono::Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed));
        Timestamp(Timestamp::now().0 + offset)
    }

    /// Moves this clock (and every `App` sharing it) forward.
    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}
