//! Reading single values: each function returns what the argument means or says why not.

use std::{net::IpAddr, time::Duration};

use super::model::VrrpVersion;

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

/// A signed integer within `min..=max`.
pub fn signed(text: &str, min: i64, max: i64) -> Result<i64, String> {
    let n: i64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not an integer"))?;
    if !(min..=max).contains(&n) {
        return Err(format!("{n} is outside {min}..={max}"));
    }
    Ok(n)
}

/// keepalived's <BOOL>.
pub fn boolean(text: &str) -> Result<bool, String> {
    match text {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err(format!(
            "'{text}' is not a boolean (expected on, off, true, false, yes or no)"
        )),
    }
}

/// Whole seconds, as keepalived reads GARP delays and script intervals.
pub fn whole_seconds(text: &str) -> Result<Duration, String> {
    integer(text, 0, u64::from(u32::MAX)).map(Duration::from_secs)
}

/// A non-zero count of repetitions.
pub fn repeat(text: &str) -> Result<u32, String> {
    integer(text, 1, u64::from(u32::MAX))
        .map(|n| n as u32)
        .map_err(|_| format!("'{text}' is not a repeat count of at least 1"))
}

/// Any count.
pub fn count(text: &str) -> Result<u32, String> {
    integer(text, 0, u64::from(u32::MAX)).map(|n| n as u32)
}

/// A refresh interval in whole seconds; 0 means never.
pub fn refresh(text: &str) -> Result<Option<Duration>, String> {
    whole_seconds(text).map(|d| (!d.is_zero()).then_some(d))
}

pub fn vrrp_version(text: &str) -> Result<VrrpVersion, String> {
    match text {
        "2" => Ok(VrrpVersion::V2),
        "3" => Ok(VrrpVersion::V3),
        _ => Err(format!("VRRP version '{text}' is neither 2 nor 3")),
    }
}

/// Splits a command line the way keepalived does before running it: words separated by
/// blanks, `"` and `'` quote, backslash escapes one character (with C-style escapes).
pub fn command_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut word = String::new();
        let mut quote = None;
        while let Some(c) = chars.next() {
            match (quote, c) {
                (_, '\\') => word.push(escape(&mut chars).ok_or("'\\' at the end of the command")?),
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, c) if c.is_whitespace() => break,
                (_, c) => word.push(c),
            }
        }
        if quote.is_some() {
            return Err(format!("unterminated quote in '{text}'"));
        }
        words.push(word);
    }
    if words.is_empty() {
        return Err("the command is empty".into());
    }
    Ok(words)
}

/// The character a backslash escape stands for, the backslash already consumed:
/// `\a \b \E \f \n \r \t \v`, octal `\nnn`, hex `\xHH`, control `\cC`, or the character itself.
pub fn escape(chars: &mut std::iter::Peekable<impl Iterator<Item = char>>) -> Option<char> {
    let c = chars.next()?;
    Some(match c {
        'a' => '\u{7}',
        'b' => '\u{8}',
        'E' => '\u{1b}',
        'f' => '\u{c}',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'v' => '\u{b}',
        'x' if chars.peek().is_some_and(char::is_ascii_hexdigit) => {
            let mut n = 0u32;
            while let Some(d) = chars.next_if(char::is_ascii_hexdigit) {
                n = (n << 4 | d.to_digit(16).unwrap_or(0)) & 0xff;
            }
            char::from(n as u8)
        }
        'c' if chars.peek().is_some() => char::from(chars.next().map_or(0, |c| c as u8 & 0x1f)),
        '0'..='7' => {
            let mut n = c.to_digit(8).unwrap_or(0);
            for _ in 0..2 {
                match chars.next_if(|d| ('0'..='7').contains(d)) {
                    Some(d) => n = n * 8 + d.to_digit(8).unwrap_or(0),
                    None => break,
                }
            }
            char::from((n & 0xff) as u8)
        }
        other => other,
    })
}

pub fn ip(text: &str) -> Result<IpAddr, String> {
    text.parse()
        .map_err(|_| format!("'{text}' is not an IP address"))
}

/// `ADDRESS[/PREFIX]`; the prefix defaults to the whole address.
pub fn prefix(text: &str) -> Result<(IpAddr, u8), String> {
    let (addr, len) = match text.split_once('/') {
        Some((addr, len)) => (ip(addr)?, Some(len)),
        None => (ip(text)?, None),
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(len) => integer(len, 0, max)
            .map_err(|_| format!("'{len}' is not a prefix length of 0 to {max}"))?,
        None => max,
    };
    Ok((addr, len as u8))
}

/// keepalived's group range `ADDRESS-LAST` (last byte of IPv4, last hex group of IPv6)
/// or a subnet `ADDRESS/PREFIX`: the first and last address.
pub fn address_range(text: &str) -> Result<(IpAddr, IpAddr), String> {
    if let Some((first, last)) = text.rsplit_once('-') {
        let first = ip(first)?;
        let bad = || format!("'{text}' is not an address range");
        let end = match first {
            IpAddr::V4(a) => {
                let last: u8 = last.parse().map_err(|_| bad())?;
                let mut o = a.octets();
                if last < o[3] {
                    return Err(bad());
                }
                o[3] = last;
                IpAddr::from(o)
            }
            IpAddr::V6(a) => {
                let last = u16::from_str_radix(last, 16).map_err(|_| bad())?;
                let mut s = a.segments();
                if last < s[7] {
                    return Err(bad());
                }
                s[7] = last;
                IpAddr::from(s)
            }
        };
        return Ok((first, end));
    }
    let (addr, len) = prefix(text)?;
    Ok(match addr {
        IpAddr::V4(a) => {
            let host = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            let base = u32::from(a) & !host;
            (
                IpAddr::from(base.to_be_bytes()),
                IpAddr::from((base | host).to_be_bytes()),
            )
        }
        IpAddr::V6(a) => {
            let host = u128::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            let base = u128::from(a) & !host;
            (
                IpAddr::from(base.to_be_bytes()),
                IpAddr::from((base | host).to_be_bytes()),
            )
        }
    })
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
    fn commands_split_like_keepalived() {
        assert_eq!(
            command_words(r#"/bin/sh -c 'echo "a b"' x\ y"#),
            Ok(vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo \"a b\"".into(),
                "x y".into()
            ])
        );
        assert_eq!(command_words(r"a\x41\101\t"), Ok(vec!["aAA\t".into()]));
        assert!(command_words("'open").is_err());
        assert!(command_words("   ").is_err());
    }

    #[test]
    fn integers_check_their_range() {
        assert_eq!(integer("5", 0, 10), Ok(5));
        assert_eq!(integer("11", 0, 10), Err("11 is outside 0..=10".into()));
        assert_eq!(integer("-1", 0, 10), Err("'-1' is not an integer".into()));
    }
}
