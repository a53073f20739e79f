//! Reading single values: each function returns what the argument means or says why not.

use std::{net::IpAddr, time::Duration};

/// Seconds, as keepalived reads them: a non-negative decimal with up to microsecond
/// precision ("1", "0.5").
pub fn seconds(text: &str) -> Result<Duration, String> {
    let bad = || format!("'{text}' is not a number of seconds");
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    if !whole.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    if frac.len() > 6 {
        return Err(format!("'{text}' is more precise than a microsecond"));
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let micros: u32 = format!("{frac:0<6}").parse().map_err(|_| bad())?;
    Ok(Duration::from_secs(secs) + Duration::from_micros(u64::from(micros)))
}

/// An unsigned integer within `min..=max`.
pub fn integer(text: &str, min: u64, max: u64) -> Result<u64, String> {
    let n: u64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not an integer"))?;
    if !(min..=max).contains(&n) {
        return Err(format!("{n} is outside {min}..={max}"));
    }
    Ok(n)
}

pub fn ip(text: &str) -> Result<IpAddr, String> {
    text.parse()
        .map_err(|_| format!("'{text}' is not an IP address"))
}

pub fn port(text: &str) -> Result<u16, String> {
    integer(text, 0, 65535).map(|p| p as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_accept_decimals() {
        assert_eq!(seconds("6"), Ok(Duration::from_secs(6)));
        assert_eq!(seconds("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(seconds(".25"), Ok(Duration::from_millis(250)));
        assert_eq!(seconds("1.000001"), Ok(Duration::from_micros(1_000_001)));
    }

    #[test]
    fn seconds_reject_the_rest() {
        for bad in ["", ".", "-1", "1s", "1.2.3", "x"] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
        assert_eq!(
            seconds("0.0000001"),
            Err("'0.0000001' is more precise than a microsecond".into())
        );
    }

    #[test]
    fn integers_check_their_range() {
        assert_eq!(integer("5", 0, 10), Ok(5));
        assert_eq!(integer("11", 0, 10), Err("11 is outside 0..=10".into()));
        assert_eq!(integer("-1", 0, 10), Err("'-1' is not an integer".into()));
    }
}
