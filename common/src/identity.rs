//! Conventions both sides rely on: how an agent's identity is written into
//! its client certificate, the API paths, and durations in configs and flags.
//!
//! A client certificate issued by the server CA carries the agent id (a
//! UUID) as its subject commonName and the organisation code as its subject
//! organizationName. The server ignores whatever subject the CSR asked for.

use std::time::Duration;

pub const ENROLL_PATH: &str = "/api/v1/enroll";
pub const REPORTS_PATH: &str = "/api/v1/reports";

/// Organisation codes: 1..=32 of `[A-Za-z0-9_-]`, starting alphanumeric.
pub fn is_valid_org_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 32
        && code.as_bytes()[0].is_ascii_alphanumeric()
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Error for a duration that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}: expected a number and a unit, like 30s, 15m, 6h or 7d")]
pub struct BadDuration(pub String);

/// Parses `90s`, `15m`, `6h`, `7d`, `2w` or a sum like `1h30m`. Zero is allowed.
pub fn parse_duration(s: &str) -> Result<Duration, BadDuration> {
    let bad = || BadDuration(s.to_owned());
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut num: Option<u64> = None;
    for c in t.chars() {
        if let Some(d) = c.to_digit(10) {
            let n = num.unwrap_or(0);
            num = Some(
                n.checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(d)))
                    .ok_or_else(bad)?,
            );
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        let n = num.take().ok_or_else(bad)?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if num.is_some() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_garbage_is_refused() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        for bad in ["", "h", "10", "5x", "1h 2m", "99999999999999999999s", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn org_codes() {
        assert!(is_valid_org_code("RX1"));
        assert!(is_valid_org_code("trust-01_a"));
        assert!(!is_valid_org_code(""));
        assert!(!is_valid_org_code("-x"));
        assert!(!is_valid_org_code("a b"));
        assert!(!is_valid_org_code(&"a".repeat(33)));
    }
}
