//! How the server's allocator (mimalloc, declared by the binary) is tuned.

/// mimalloc's `purge_delay` option: its number in `mi_option_t`, for which the crate names no
/// constant.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the system after 10 ms instead of mimalloc's default second (10 ms
/// was mimalloc 2's default): an upload streams gigabytes through short-lived buffers on
/// several threads, and with the full second the server's peak RSS rose from ~80 to ~130 MiB at
/// 1 GiB. Purging at once (0) kept it lower still but cost the model list on PostgreSQL a
/// fifth of its rate (BENCHMARKS.md). Called first thing by the binary and the in-process
/// benchmarks. `MIMALLOC_PURGE_DELAY` in the environment (milliseconds) still wins.
pub fn configure() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: sets a number in mimalloc's option table; any thread may do so at any time.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10) };
}

#[cfg(test)]
mod tests {
    /// The option number is mimalloc's enum order: a new mimalloc that moved it would set
    /// some other option.
    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        // SAFETY: reads a number from mimalloc's option table.
        let delay = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(delay, 1000, "mimalloc's default purge delay is 1000 ms");
    }
}
