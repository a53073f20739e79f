//! The VRRP advertisement on the wire: VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798).
//!
//! Decoding checks only what a packet says about itself (its structure and checksum);
//! whether it fits the instance that receives it is [`super::check`]'s job, so the same
//! decoder serves every instance on an interface.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lb_common::inet_csum;

use super::{
    accept::Reject,
    types::{AdvertInterval, Priority, Version, Vrid},
};

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;
/// The TTL / hop limit a VRRP packet is sent with and, on a LAN, must arrive with.
pub const VRRP_TTL: u8 = 255;
pub const MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
pub const MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

const HEADER_LEN: usize = 8;
/// VRRPv2's authentication data, present whatever the auth type.
const V2_AUTH_LEN: usize = 8;
const TYPE_ADVERT: u8 = 1;
const AUTH_NONE: u8 = 0;
const AUTH_PASS: u8 = 1;

/// VRRPv2 authentication. AH is refused when the configuration is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    None,
    /// `auth_type PASS`: the password, zero-padded to eight bytes as keepalived does.
    Pass([u8; V2_AUTH_LEN]),
}

impl Auth {
    /// The password as keepalived keeps it: its first eight bytes, zero-padded.
    pub fn pass(password: &str) -> Self {
        let mut data = [0; V2_AUTH_LEN];
        let bytes = password.as_bytes();
        let n = bytes.len().min(V2_AUTH_LEN);
        data[..n].copy_from_slice(&bytes[..n]);
        Auth::Pass(data)
    }

    const fn type_number(self) -> u8 {
        match self {
            Auth::None => AUTH_NONE,
            Auth::Pass(_) => AUTH_PASS,
        }
    }
}

/// One advertisement, as sent or as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    pub version: Version,
    pub vrid: Vrid,
    pub priority: Priority,
    pub interval: AdvertInterval,
    /// The virtual addresses, all of the family the packet travels in.
    pub addrs: Vec<IpAddr>,
    /// Always [`Auth::None`] for VRRPv3, which has no authentication.
    pub auth: Auth,
}

impl Advert {
    /// The VRRP message, checksum included. `src` and `dst` are the IP addresses it
    /// travels between; VRRPv3 sums them into its checksum.
    ///
    /// # Panics
    /// When the advert cannot be put on the wire: a v2 interval that is not whole
    /// seconds, more than 255 addresses, or addresses of another family than `src`.
    /// The engine builds adverts from a validated configuration, so each is a bug.
    pub fn encode(&self, src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let count = u8::try_from(self.addrs.len()).expect("at most 255 addresses");
        let mut out = Vec::with_capacity(self.len());
        out.push(self.version.number() << 4 | TYPE_ADVERT);
        out.push(self.vrid.get());
        out.push(self.priority.get());
        out.push(count);
        match self.version {
            Version::V2 => {
                out.push(self.auth.type_number());
                out.push(
                    self.interval
                        .whole_seconds()
                        .expect("a VRRPv2 interval is whole seconds"),
                );
            }
            Version::V3 => out.extend_from_slice(&self.interval.centis().to_be_bytes()),
        }
        out.extend_from_slice(&[0, 0]);
        for addr in &self.addrs {
            match (addr, src) {
                (IpAddr::V4(a), IpAddr::V4(_)) => out.extend_from_slice(&a.octets()),
                (IpAddr::V6(a), IpAddr::V6(_)) => out.extend_from_slice(&a.octets()),
                _ => panic!("{addr} does not travel in a packet from {src}"),
            }
        }
        if self.version == Version::V2 {
            match self.auth {
                Auth::None => out.extend_from_slice(&[0; V2_AUTH_LEN]),
                Auth::Pass(data) => out.extend_from_slice(&data),
            }
        }
        let sum = vrrp_checksum(self.version, &out, src, dst);
        out[6..8].copy_from_slice(&sum.to_ne_bytes());
        out
    }

    fn len(&self) -> usize {
        let addr_len = match self.addrs.first() {
            Some(IpAddr::V6(_)) => 16,
            _ => 4,
        };
        let auth = if self.version == Version::V2 {
            V2_AUTH_LEN
        } else {
            0
        };
        HEADER_LEN + addr_len * self.addrs.len() + auth
    }

    /// Reads a VRRP message that arrived from `src` to `dst`, checking its structure
    /// and checksum.
    pub fn decode(msg: &[u8], src: IpAddr, dst: IpAddr) -> Result<Advert, Reject> {
        if msg.len() < HEADER_LEN {
            return Err(Reject::Length {
                got: msg.len(),
                expected: HEADER_LEN,
            });
        }
        let version = match msg[0] >> 4 {
            2 if src.is_ipv4() => Version::V2,
            3 => Version::V3,
            other => return Err(Reject::Version(other)),
        };
        if msg[0] & 0x0f != TYPE_ADVERT {
            return Err(Reject::Type(msg[0] & 0x0f));
        }
        let vrid = Vrid::new(msg[1]).ok_or(Reject::ZeroVrid)?;
        let count = usize::from(msg[3]);
        let addr_len = if src.is_ipv4() { 4 } else { 16 };
        let auth_len = if version == Version::V2 {
            V2_AUTH_LEN
        } else {
            0
        };
        let expected = HEADER_LEN + count * addr_len + auth_len;
        if msg.len() != expected {
            return Err(Reject::Length {
                got: msg.len(),
                expected,
            });
        }
        if vrrp_checksum(version, msg, src, dst) != 0 {
            return Err(Reject::Checksum);
        }
        let (interval, auth) = match version {
            Version::V2 => {
                let interval = AdvertInterval::from_centis(u16::from(msg[5]) * 100)
                    .ok_or(Reject::ZeroInterval)?;
                let data: [u8; V2_AUTH_LEN] = msg[expected - V2_AUTH_LEN..]
                    .try_into()
                    .expect("length checked above");
                let auth = match msg[4] {
                    AUTH_NONE => Auth::None,
                    AUTH_PASS => Auth::Pass(data),
                    other => return Err(Reject::AuthType(other)),
                };
                (interval, auth)
            }
            Version::V3 => {
                let centis = u16::from_be_bytes([msg[4], msg[5]]) & AdvertInterval::MAX_CENTIS;
                let interval = AdvertInterval::from_centis(centis).ok_or(Reject::ZeroInterval)?;
                (interval, Auth::None)
            }
        };
        let addrs = msg[HEADER_LEN..HEADER_LEN + count * addr_len]
            .chunks_exact(addr_len)
            .map(|a| match <[u8; 4]>::try_from(a) {
                Ok(v4) => IpAddr::from(v4),
                Err(_) => IpAddr::from(<[u8; 16]>::try_from(a).expect("16-byte chunk")),
            })
            .collect();
        Ok(Advert {
            version,
            vrid,
            priority: Priority::new(msg[2]),
            interval,
            addrs,
            auth,
        })
    }
}

/// The checksum field's value for `msg` (computed with the field zeroed; stored with
/// `to_ne_bytes`, as [`inet_csum`] sums words as they lie), or 0 when `msg`'s own checksum
/// is correct. VRRPv3 covers an IPv4/IPv6 pseudo-header, VRRPv2 only the message.
fn vrrp_checksum(version: Version, msg: &[u8], src: IpAddr, dst: IpAddr) -> u16 {
    let mut sum = 0;
    if version == Version::V3 {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                sum = inet_csum::add_bytes(sum, &s.octets());
                sum = inet_csum::add_bytes(sum, &d.octets());
                sum = inet_csum::add_bytes(sum, &[0, IPPROTO_VRRP]);
                sum = inet_csum::add_bytes(sum, &(msg.len() as u16).to_be_bytes());
            }
            (s, d) => {
                sum = inet_csum::add_bytes(sum, &ipv6_octets(s));
                sum = inet_csum::add_bytes(sum, &ipv6_octets(d));
                sum = inet_csum::add_bytes(sum, &(msg.len() as u32).to_be_bytes());
                sum = inet_csum::add_bytes(sum, &[0, 0, 0, IPPROTO_VRRP]);
            }
        }
    }
    inet_csum::finish(inet_csum::add_bytes(sum, msg))
}

fn ipv6_octets(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
    }
}

/// What an IPv4 raw socket hands over: the header's facts and the VRRP message.
#[derive(Debug, PartialEq, Eq)]
pub struct Ipv4Datagram<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub payload: &'a [u8],
}

impl<'a> Ipv4Datagram<'a> {
    /// Splits what an IPv4 raw socket received into header facts and payload, refusing
    /// a packet whose header lengths do not match what arrived.
    pub fn parse(buf: &'a [u8]) -> Result<Self, Reject> {
        let bad = Reject::IpHeader;
        if buf.len() < 20 || buf[0] >> 4 != 4 {
            return Err(bad);
        }
        let ihl = usize::from(buf[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        if ihl < 20 || total != buf.len() || ihl > total {
            return Err(bad);
        }
        if buf[9] != IPPROTO_VRRP {
            return Err(bad);
        }
        Ok(Self {
            src: Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]),
            dst: Ipv4Addr::new(buf[16], buf[17], buf[18], buf[19]),
            ttl: buf[8],
            payload: &buf[ihl..],
        })
    }

    /// A whole IPv4 packet carrying `payload` as VRRP, TTL 255, TOS "internetwork
    /// control" as keepalived sends. The kernel fills in the identification and the
    /// header checksum.
    pub fn build(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
        let total = u16::try_from(20 + payload.len()).expect("a VRRP packet is small");
        let mut out = Vec::with_capacity(usize::from(total));
        out.extend_from_slice(&[0x45, 0xc0]);
        out.extend_from_slice(&total.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0, VRRP_TTL, IPPROTO_VRRP, 0, 0]);
        out.extend_from_slice(&src.octets());
        out.extend_from_slice(&dst.octets());
        out.extend_from_slice(payload);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn advert(version: Version, addrs: &[&str]) -> Advert {
        Advert {
            version,
            vrid: Vrid::new(51).unwrap(),
            priority: Priority::new(150),
            interval: AdvertInterval::from_centis(100).unwrap(),
            addrs: addrs.iter().map(|a| ip(a)).collect(),
            auth: Auth::None,
        }
    }

    const SRC4: &str = "192.0.2.1";
    const DST4: &str = "224.0.0.18";
    const SRC6: &str = "fe80::1";
    const DST6: &str = "ff02::12";

    #[test]
    fn v2_round_trips_with_password() {
        let mut a = advert(Version::V2, &["203.0.113.10", "203.0.113.11"]);
        a.auth = Auth::pass("secret-too-long");
        let bytes = a.encode(ip(SRC4), ip(DST4));
        assert_eq!(bytes.len(), 8 + 8 + 8);
        assert_eq!(&bytes[..6], &[0x21, 51, 150, 2, 1, 1]);
        assert_eq!(&bytes[16..], b"secret-t");
        assert_eq!(Advert::decode(&bytes, ip(SRC4), ip(DST4)), Ok(a));
    }

    #[test]
    fn v3_round_trips_over_ipv4_and_ipv6() {
        let mut a = advert(Version::V3, &["203.0.113.10"]);
        a.interval = AdvertInterval::from_centis(10).unwrap();
        let bytes = a.encode(ip(SRC4), ip(DST4));
        assert_eq!(&bytes[..6], &[0x31, 51, 150, 1, 0, 10]);
        assert_eq!(Advert::decode(&bytes, ip(SRC4), ip(DST4)), Ok(a));

        let a = advert(Version::V3, &["2001:db8::10", "2001:db8::11"]);
        let bytes = a.encode(ip(SRC6), ip(DST6));
        assert_eq!(bytes.len(), 8 + 32);
        assert_eq!(Advert::decode(&bytes, ip(SRC6), ip(DST6)), Ok(a));
    }

    /// A VRRPv3 advert captured from keepalived 2.2.7 (vrid 51, priority 100, 1 s,
    /// 203.0.113.10, sent from 192.0.2.2 to 224.0.0.18): our checksum must agree.
    #[test]
    fn v3_checksum_matches_a_known_packet() {
        let a = Advert {
            priority: Priority::new(100),
            ..advert(Version::V3, &["203.0.113.10"])
        };
        let bytes = a.encode(ip("192.0.2.2"), ip(DST4));
        let pseudo = inet_csum::add_bytes(0, &[192, 0, 2, 2, 224, 0, 0, 18, 0, 112, 0, 12]);
        assert_eq!(inet_csum::finish(inet_csum::add_bytes(pseudo, &bytes)), 0);
        assert_eq!(
            bytes,
            [0x31, 51, 100, 1, 0, 100, 0x8b, 0xca, 203, 0, 113, 10]
        );
    }

    #[test]
    fn v3_checksum_covers_the_pseudo_header() {
        let a = advert(Version::V3, &["203.0.113.10"]);
        let bytes = a.encode(ip(SRC4), ip(DST4));
        assert_eq!(
            Advert::decode(&bytes, ip("192.0.2.9"), ip(DST4)),
            Err(Reject::Checksum)
        );
        let bytes = advert(Version::V3, &["2001:db8::10"]).encode(ip(SRC6), ip(DST6));
        assert_eq!(
            Advert::decode(&bytes, ip("fe80::2"), ip(DST6)),
            Err(Reject::Checksum)
        );
    }

    #[test]
    fn every_malformed_field_is_refused() {
        let good = advert(Version::V2, &["203.0.113.10"]).encode(ip(SRC4), ip(DST4));
        let decode = |b: &[u8]| Advert::decode(b, ip(SRC4), ip(DST4));
        // Re-checksums a mutated v2 message so that only the mutation is wrong.
        let fix = |mut b: Vec<u8>| {
            b[6] = 0;
            b[7] = 0;
            let sum = vrrp_checksum(Version::V2, &b, ip(SRC4), ip(DST4));
            b[6..8].copy_from_slice(&sum.to_ne_bytes());
            b
        };
        assert_eq!(
            decode(&good[..5]),
            Err(Reject::Length {
                got: 5,
                expected: 8
            })
        );
        let mut b = good.clone();
        b[0] = 0x41;
        assert_eq!(decode(&fix(b)), Err(Reject::Version(4)));
        let mut b = good.clone();
        b[0] = 0x22;
        assert_eq!(decode(&fix(b)), Err(Reject::Type(2)));
        let mut b = good.clone();
        b[1] = 0;
        assert_eq!(decode(&fix(b)), Err(Reject::ZeroVrid));
        let mut b = good.clone();
        b[3] = 2;
        assert_eq!(
            decode(&fix(b)),
            Err(Reject::Length {
                got: 20,
                expected: 24
            })
        );
        assert_eq!(
            decode(&good[..good.len() - 1]),
            Err(Reject::Length {
                got: 19,
                expected: 20
            })
        );
        let mut b = good.clone();
        b[2] ^= 1;
        assert_eq!(decode(&b), Err(Reject::Checksum));
        let mut b = good.clone();
        b[4] = 2;
        assert_eq!(decode(&fix(b)), Err(Reject::AuthType(2)));
        let mut b = good.clone();
        b[5] = 0;
        assert_eq!(decode(&fix(b)), Err(Reject::ZeroInterval));
        assert!(decode(&good).is_ok());
    }

    #[test]
    fn v2_does_not_travel_over_ipv6() {
        let bytes = advert(Version::V3, &["2001:db8::10"]).encode(ip(SRC6), ip(DST6));
        let mut b = bytes.clone();
        b[0] = 0x21;
        assert_eq!(
            Advert::decode(&b, ip(SRC6), ip(DST6)),
            Err(Reject::Version(2))
        );
    }

    #[test]
    fn ipv4_datagrams_round_trip_and_lengths_must_agree() {
        let payload = advert(Version::V3, &["203.0.113.10"]).encode(ip(SRC4), ip(DST4));
        let pkt = Ipv4Datagram::build(SRC4.parse().unwrap(), DST4.parse().unwrap(), &payload);
        let d = Ipv4Datagram::parse(&pkt).unwrap();
        assert_eq!((d.ttl, d.payload), (255, payload.as_slice()));
        assert_eq!(d.src.to_string(), SRC4);
        assert_eq!(
            Ipv4Datagram::parse(&pkt[..pkt.len() - 1]),
            Err(Reject::IpHeader)
        );
        let mut other = pkt.clone();
        other[9] = 6;
        assert_eq!(Ipv4Datagram::parse(&other), Err(Reject::IpHeader));
        assert_eq!(Ipv4Datagram::parse(&pkt[..10]), Err(Reject::IpHeader));
    }
}
