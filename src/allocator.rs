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
    keep_pages_small();
    if delay_in_environment() {
        return;
    }
    // SAFETY: sets a number in mimalloc's option table; any thread may do so at any time.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10) };
}

/// No transparent huge pages for this process. mimalloc asks the kernel for 2 MiB pages on its
/// arenas (`MADV_HUGEPAGE`), and such a page is resident whole however little of it is in use:
/// during a 1 GiB upload 18–34 MiB of the server's RSS were huge pages, and its peak was ~100
/// MiB with them and 68–72 MiB without (BENCHMARKS.md). The flag is the process's, so it also
/// covers the arena mimalloc mapped before `main`. A kernel that refuses it changes nothing.
fn keep_pages_small() {
    let _ = rustix::thread::disable_transparent_huge_pages(true);
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
    #[test]
    fn huge_pages_are_turned_off() {
        super::keep_pages_small();
        assert_eq!(
            rustix::thread::transparent_huge_pages_are_disabled().ok(),
            Some(true)
        );
    }

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
