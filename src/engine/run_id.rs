//! Run ids sort by start time and are unique enough for one account's incidents:
//! `20261128T100127Z-3f9a2c`.

use time::OffsetDateTime;
use time::macros::format_description;

pub fn new_run_id(now: OffsetDateTime) -> String {
    let stamp = now
        .format(format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .expect("a UTC timestamp formats");
    format!("{stamp}-{:06x}", fastrand::u32(..0x0100_0000))
}

/// RFC 3339, UTC, milliseconds.
pub fn rfc3339(now: OffsetDateTime) -> String {
    now.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    ))
    .expect("a UTC timestamp formats")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_sortable_and_distinct() {
        let now = OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap();
        let a = new_run_id(now);
        let b = new_run_id(now);
        assert_eq!(a.len(), "20261128T100127Z-3f9a2c".len());
        assert!(a.starts_with("2026"), "{a}");
        assert_ne!(a, b);
    }
}
