//! `--tunnel-source`: where the outer headers of LVS-TUN packets come from.

use std::{fmt, net::IpAddr, str::FromStr};

use lb_common::{Addr, Family, tunnel::TunnelSource};

/// `ADDR[/PREFIX]`: outer sources for one family. With a prefix shorter than the address,
/// the host bits vary per client connection, so the reals' receive-side scaling spreads
/// tunnelled connections over their queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunnelPrefix {
    addr: IpAddr,
    prefix_len: u8,
}

impl TunnelPrefix {
    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }

    /// As the program reads it.
    pub(super) fn entry(&self) -> TunnelSource {
        TunnelSource::new(Addr::from(self.addr), self.prefix_len, bits(self.addr))
    }
}

fn bits(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

impl FromStr for TunnelPrefix {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{addr}' is not an IP address"))?;
        let max = bits(addr);
        let prefix_len = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{p}' is not a prefix length of 0 to {max}"))?,
        };
        Ok(Self { addr, prefix_len })
    }
}

impl fmt::Display for TunnelPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_with_and_without_prefix() {
        let p: TunnelPrefix = "192.0.2.64/26".parse().unwrap();
        assert_eq!(
            (p.to_string(), p.family()),
            ("192.0.2.64/26".into(), Family::V4)
        );
        let host: TunnelPrefix = "2001:db8::2".parse().unwrap();
        assert_eq!(host.to_string(), "2001:db8::2/128");
    }

    #[test]
    fn rejects_what_is_not_a_prefix() {
        assert!("192.0.2.1/33".parse::<TunnelPrefix>().is_err());
        assert!("2001:db8::/129".parse::<TunnelPrefix>().is_err());
        assert!("director/24".parse::<TunnelPrefix>().is_err());
        assert!("192.0.2.1/x".parse::<TunnelPrefix>().is_err());
    }
}
