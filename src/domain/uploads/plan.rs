//! How a file is cut into chunks: sizes within bounds, counts in checked arithmetic.

use super::*;

pub const DEFAULT_CHUNK_SIZE: i64 = 16 * 1024 * 1024;

pub const MIN_CHUNK_SIZE: i64 = 64 * 1024;

/// 1 GiB: 10,000 chunks of it hold the default 5 TiB limit (S3 allows parts up to 5 GiB).
pub const MAX_CHUNK_SIZE: i64 = 1024 * 1024 * 1024;

/// Keeps the received-chunk list of one session small enough to answer in one response.
pub const MAX_CHUNKS: i64 = 10_000;

/// The chunk size for a file: the one asked for (within bounds), else the default grown to
/// keep the chunk count at most [`MAX_CHUNKS`]. Every step is checked arithmetic: sizes come
/// from clients, and a wrapped count once let an upload of no bytes claim 8 EiB.
pub fn plan_chunks(total: i64, asked: Option<i64>, max_total: u64) -> Result<(i64, i64), AppError> {
    check_total(total, max_total)?;
    let size = match asked {
        Some(size) => check_chunk_size(size)?,
        None => {
            let needed = ceil_div(total, MAX_CHUNKS);
            let mib = 1024 * 1024;
            let size = ceil_div(needed, mib)
                .checked_mul(mib)
                .map_or(i64::MAX, |rounded| rounded.max(DEFAULT_CHUNK_SIZE));
            if size > MAX_CHUNK_SIZE {
                return Err(AppError::bad_input(
                    "totalSizeBytes",
                    format!(
                        "at most {} bytes fit in one upload",
                        MAX_CHUNK_SIZE * MAX_CHUNKS
                    ),
                ));
            }
            size
        }
    };
    let count = ceil_div(total, size);
    if count > MAX_CHUNKS {
        return Err(AppError::bad_input(
            if asked.is_some() {
                "chunkSizeBytes"
            } else {
                "totalSizeBytes"
            },
            format!(
                "a file of {total} bytes needs {count} chunks of {size} bytes; at most {MAX_CHUNKS} are allowed"
            ),
        ));
    }
    Ok((size, count))
}

/// An announced file size: not negative and within the instance's `--max-artifact-bytes`.
pub fn check_total(total: i64, max_total: u64) -> Result<(), AppError> {
    if total < 0 {
        return Err(AppError::bad_input(
            "totalSizeBytes",
            "must not be negative",
        ));
    }
    if total.unsigned_abs() > max_total {
        return Err(AppError::bad_input(
            "totalSizeBytes",
            format!("is larger than this registry's limit of {max_total} bytes per artifact"),
        ));
    }
    Ok(())
}

pub(super) fn check_chunk_size(size: i64) -> Result<i64, AppError> {
    if (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&size) {
        Ok(size)
    } else {
        Err(AppError::bad_input(
            "chunkSizeBytes",
            format!("must be between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE} bytes"),
        ))
    }
}

/// `a / b` rounded up, for `a >= 0` and `b > 0`; cannot overflow.
pub(super) fn ceil_div(a: i64, b: i64) -> i64 {
    a / b + i64::from(a % b != 0)
}

/// The exact length chunk `index` must have.
pub fn chunk_length(session: &UploadSession, index: i64) -> Result<i64, AppError> {
    if index < 0 || index >= session.chunk_count {
        return Err(AppError::bad_input(
            "index",
            format!(
                "chunk index {index} is out of range: this upload has chunks 0 to {}",
                session.chunk_count - 1
            ),
        ));
    }
    let size = session.chunk_size_bytes.0;
    Ok((session.total_size_bytes.0 - index * size).min(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: i64 = 1024 * 1024;

    const TIB: u64 = 1024 * 1024 * 1024 * 1024;

    #[test]
    fn chunk_plans() {
        let max = 5 * TIB;
        assert_eq!(plan_chunks(100 * MIB, None, max).unwrap(), (16 * MIB, 7));
        assert_eq!(plan_chunks(0, None, max).unwrap(), (16 * MIB, 0));
        // 1 TiB needs bigger chunks than the default to stay within 10,000.
        let (size, count) = plan_chunks(1024 * 1024 * MIB, None, max).unwrap();
        assert!(count <= MAX_CHUNKS && size > 16 * MIB, "{size} {count}");
        // The default limit itself fits.
        let (size, count) = plan_chunks(5 * 1024 * 1024 * MIB, None, max).unwrap();
        assert!(
            count <= MAX_CHUNKS && size <= MAX_CHUNK_SIZE,
            "{size} {count}"
        );
        assert_eq!(plan_chunks(10 * MIB, Some(MIB), max).unwrap(), (MIB, 10));
        assert_eq!(
            plan_chunks(10, Some(1), max).unwrap_err().field(),
            Some("chunkSizeBytes")
        );
        assert!(plan_chunks(-1, None, max).is_err());
        assert!(plan_chunks(20_000 * MIB, Some(MIB), max).is_err());
        let over = plan_chunks(6 * 1024 * 1024 * MIB, None, max).unwrap_err();
        assert_eq!(over.field(), Some("totalSizeBytes"), "over 5 TiB");
        // The case that once wrapped: i64::MAX bytes in 512 MiB chunks.
        assert!(plan_chunks(i64::MAX, Some(512 * MIB), u64::MAX).is_err());
        assert!(plan_chunks(i64::MAX, None, u64::MAX).is_err());
    }

    proptest::proptest! {
        /// Over the whole `i64` range: a plan is refused, or its chunks cover exactly the file,
        /// within the limits, without one arithmetic step wrapping.
        #[test]
        fn every_plan_covers_the_file_exactly(
            total in proptest::prelude::any::<i64>(),
            asked in proptest::option::of(proptest::prelude::any::<i64>()),
            max in proptest::prelude::any::<u64>(),
        ) {
            if let Ok((size, count)) = plan_chunks(total, asked, max) {
                proptest::prop_assert!(total >= 0 && total as u64 <= max);
                proptest::prop_assert!((MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&size));
                proptest::prop_assert!((0..=MAX_CHUNKS).contains(&count));
                let covered = i128::from(size) * i128::from(count);
                proptest::prop_assert!(covered >= i128::from(total));
                proptest::prop_assert!(covered - i128::from(size) < i128::from(total.max(1)));
            }
        }
    }
}
