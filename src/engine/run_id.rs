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

/// Whether `id` has the shape of a run id: a journal's file name and evidence folder are built
/// from it, so one read from a journal or a claim is checked before it names a path.
pub fn is_valid(id: &str) -> bool {
    let bytes = id.as_bytes();
    bytes.len() == 23
        && bytes[..8].iter().all(u8::is_ascii_digit)
        && bytes[8] == b'T'
        && bytes[9..15].iter().all(u8::is_ascii_digit)
        && bytes[15] == b'Z'
        && bytes[16] == b'-'
        && bytes[17..]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
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
        assert!(is_valid(&a));
        for bad in [
            "../../etc",
            "20261128T100127Z-3f9a2",
            "20261128T100127Z-3F9A2C",
            "/tmp/x",
            "",
        ] {
            assert!(!is_valid(bad), "{bad}");
        }
    }
}
