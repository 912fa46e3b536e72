//! Step timeouts: `30s`, `10m`, `2h`, `1h30m`, `500ms`.

use std::time::Duration;

/// The longest timeout a step may have; a containment step that needs more is a mistake.
pub const MAX: Duration = Duration::from_secs(24 * 3600);

pub fn parse(text: &str) -> Result<Duration, String> {
    let help = "use a number and a unit (ms, s, m, h), e.g. 30s, 10m, 2h or 1h30m";
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(format!("empty duration; {help}"));
    }
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("invalid duration `{text}`; {help}"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration `{text}`; {help}"))?;
        rest = &rest[digits..];
        let unit_len = rest.chars().take_while(char::is_ascii_alphabetic).count();
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.saturating_mul(60)),
            "h" => Duration::from_secs(number.saturating_mul(3600)),
            _ => return Err(format!("invalid duration `{text}`; {help}")),
        };
        rest = &rest[unit_len..];
        total = total.saturating_add(part);
    }
    if total.is_zero() {
        return Err(format!(
            "duration `{text}` is zero; a step needs time to run"
        ));
    }
    if total > MAX {
        return Err(format!("duration `{text}` is longer than the 24h maximum"));
    }
    Ok(total)
}

/// The shortest faithful spelling, for plans and journals.
pub fn format(duration: Duration) -> String {
    let ms = duration.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let secs = duration.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out += &format!("{h}h");
    }
    if m > 0 {
        out += &format!("{m}m");
    }
    if s > 0 || out.is_empty() {
        out += &format!("{s}s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn rejects_nonsense() {
        for bad in ["", "5", "m", "5x", "5 m", "-5s", "0s", "25h", "1.5h"] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn formats_back() {
        for text in ["30s", "10m", "2h", "1h30m", "500ms"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
