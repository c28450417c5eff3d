//! How the server's allocator (mimalloc, declared by the binary) is tuned.

/// mimalloc's `purge_delay` option: its number in `mi_option_t`, for which the crate names no
/// constant.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the system after 10 ms instead of mimalloc's default second (10 ms
/// was mimalloc 2's default): an upload streams gigabytes through short-lived buffers on
/// several threads, and with the full second the server's peak RSS was ~133 MiB at 1 GiB, with
/// 10 ms 98–110 MiB from 1 to 8 GiB. Purging at once (0) kept it under 100 MiB but cost the
/// model list on PostgreSQL a quarter of its rate (BENCHMARKS.md). Called first thing by the
/// binary and the in-process benchmarks. The delay set in the environment still wins.
pub fn configure() {
    if delay_in_environment() {
        return;
    }
    // SAFETY: sets a number in mimalloc's option table; any thread may do so at any time.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10) };
}

/// The names mimalloc reads the delay from (any case; the second is its older name).
fn delay_in_environment() -> bool {
    std::env::vars_os().any(|(name, _)| {
        name.to_str().is_some_and(|name| {
            name.eq_ignore_ascii_case("MIMALLOC_PURGE_DELAY")
                || name.eq_ignore_ascii_case("MIMALLOC_RESET_DELAY")
        })
    })
}

#[cfg(test)]
mod tests {
    /// The option number is mimalloc's enum order: a new mimalloc that moved it would set
    /// some other option.
    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        if super::delay_in_environment() {
            return; // then mimalloc's default is not what it reads
        }
        // SAFETY: reads a number from mimalloc's option table.
        let delay = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(delay, 1000, "mimalloc's default purge delay is 1000 ms");
    }
}
