//! Addresses as the data plane stores them.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv4 or IPv6 address in network byte order, laid out as the packet carries it.
///
/// IPv4 addresses occupy the first word and leave the rest zero, so one key type serves both
/// families and the XDP program can copy header words without byte swapping.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Addr(pub [u32; 4]);

impl Addr {
    /// The address of an IPv4 header field, copied as it is in the packet.
    pub const fn from_v4_raw(word: u32) -> Self {
        Self([word, 0, 0, 0])
    }

    pub fn to_ip(self, family: Family) -> IpAddr {
        let bytes = self.octets();
        match family {
            Family::V4 => IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])),
            Family::V6 => IpAddr::V6(Ipv6Addr::from(bytes)),
        }
    }

    fn octets(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        let mut i = 0;
        while i < 4 {
            let w = self.0[i].to_ne_bytes();
            out[i * 4] = w[0];
            out[i * 4 + 1] = w[1];
            out[i * 4 + 2] = w[2];
            out[i * 4 + 3] = w[3];
            i += 1;
        }
        out
    }

    fn from_octets(bytes: &[u8]) -> Self {
        let mut words = [0u32; 4];
        for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(4)) {
            *word = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        Self(words)
    }
}

impl From<IpAddr> for Addr {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::from_octets(&v4.octets()),
            IpAddr::V6(v6) => Self::from_octets(&v6.octets()),
        }
    }
}

/// Address family as stored in map keys and values.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4 = 4,
    V6 = 6,
}

impl Family {
    pub const fn of(ip: &IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Self::V4,
            IpAddr::V6(_) => Self::V6,
        }
    }

    /// As people write it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::V4 => "IPv4",
            Self::V6 => "IPv6",
        }
    }

    /// The family byte of a map entry, or `None` for a value no writer produces.
    pub const fn from_raw(raw: u8) -> Option<Self> {
        match raw {
            4 => Some(Self::V4),
            6 => Some(Self::V6),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_round_trips_and_keeps_wire_order() {
        let ip: IpAddr = "203.0.113.10".parse().unwrap();
        let addr = Addr::from(ip);
        assert_eq!(addr.0[0].to_ne_bytes(), [203, 0, 113, 10]);
        assert_eq!(&addr.0[1..], &[0, 0, 0]);
        assert_eq!(addr.to_ip(Family::V4), ip);
    }

    #[test]
    fn v6_round_trips() {
        let ip: IpAddr = "2001:db8::1:2".parse().unwrap();
        assert_eq!(Addr::from(ip).to_ip(Family::V6), ip);
    }

    #[test]
    fn family_bytes() {
        assert_eq!(Family::from_raw(Family::V4 as u8), Some(Family::V4));
        assert_eq!(Family::from_raw(Family::V6 as u8), Some(Family::V6));
        assert_eq!(Family::from_raw(0), None);
    }
}
