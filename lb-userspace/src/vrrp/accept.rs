//! Whether a received advertisement belongs to an instance, with keepalived's checks in
//! keepalived's order, and the counted, rate-limited record of those that do not.

use std::{
    fmt,
    net::IpAddr,
    time::{Duration, Instant},
};

use super::{
    packet::{Advert, Auth, VRRP_TTL},
    types::{AdvertInterval, Version, Vrid},
};

/// Why a packet was not taken as an advertisement for an instance.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    #[error("invalid IPv4 header or total length")]
    IpHeader,
    #[error("vrrp packet length {got} and expect {expected}")]
    Length { got: usize, expected: usize },
    #[error("invalid TTL/HL. Received {0} and expect 255")]
    Ttl(u8),
    #[error("wrong version. Received {0}")]
    Version(u8),
    #[error("Invalid packet type. {0} and expect 1")]
    Type(u8),
    #[error("VRID 0 is not a virtual router")]
    ZeroVrid,
    #[error("no instance for VRID {0} on this interface")]
    UnknownVrid(Vrid),
    #[error("Invalid VRRP checksum")]
    Checksum,
    #[error("advertisement interval of 0")]
    ZeroInterval,
    #[error("Invalid auth type: {0}")]
    AuthType(u8),
    #[error("received a {got} auth, expecting {expected}!")]
    AuthMismatch { got: u8, expected: u8 },
    #[error("received an invalid passwd!")]
    Password,
    #[error("advertisement interval mismatch mine={mine} sec rcv'd={got} sec")]
    Interval { mine: u16, got: u16 },
    #[error("received an unexpected ip number count {got}, expected {expected}!")]
    AddrCount { got: usize, expected: usize },
    #[error("ip address associated with VRID not present in MASTER advert : {0}")]
    AddrList(IpAddr),
    #[error("Expected {expected}icast packet but received {got}icast packet")]
    Cast {
        expected: &'static str,
        got: &'static str,
    },
    #[error("unicast source address {0} not a unicast peer")]
    NotPeer(IpAddr),
}

impl Reject {
    pub fn kind(&self) -> RejectKind {
        match self {
            Reject::IpHeader | Reject::Length { .. } => RejectKind::Length,
            Reject::Ttl(_) => RejectKind::Ttl,
            Reject::Version(_) | Reject::Type(_) => RejectKind::Version,
            Reject::ZeroVrid | Reject::UnknownVrid(_) => RejectKind::Vrid,
            Reject::Checksum => RejectKind::Checksum,
            Reject::ZeroInterval | Reject::Interval { .. } => RejectKind::Interval,
            Reject::AuthType(_) | Reject::AuthMismatch { .. } | Reject::Password => {
                RejectKind::Auth
            }
            Reject::AddrCount { .. } => RejectKind::AddrCount,
            Reject::AddrList(_) | Reject::Cast { .. } | Reject::NotPeer(_) => RejectKind::AddrList,
        }
    }
}

/// The counters rejections are kept under, one per check an operator can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectKind {
    Length,
    Ttl,
    Version,
    Vrid,
    Checksum,
    Interval,
    Auth,
    AddrCount,
    AddrList,
}

impl RejectKind {
    pub const ALL: [RejectKind; 9] = [
        RejectKind::Length,
        RejectKind::Ttl,
        RejectKind::Version,
        RejectKind::Vrid,
        RejectKind::Checksum,
        RejectKind::Interval,
        RejectKind::Auth,
        RejectKind::AddrCount,
        RejectKind::AddrList,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            RejectKind::Length => "packet_len_err",
            RejectKind::Ttl => "ip_ttl_err",
            RejectKind::Version => "version_err",
            RejectKind::Vrid => "vrid_err",
            RejectKind::Checksum => "checksum_err",
            RejectKind::Interval => "advert_interval_err",
            RejectKind::Auth => "auth_err",
            RejectKind::AddrCount => "addr_count_err",
            RejectKind::AddrList => "addr_list_err",
        }
    }
}

/// What an instance accepts: its side of every check.
#[derive(Clone, Debug)]
pub struct Expect {
    pub version: Version,
    pub auth: Auth,
    pub interval: AdvertInterval,
    /// The addresses the instance advertises (not `virtual_ipaddress_excluded`).
    pub vips: Vec<IpAddr>,
    /// Empty for a multicast instance.
    pub unicast_peers: Vec<IpAddr>,
    /// keepalived's `vrrp_check_unicast_src`.
    pub check_unicast_src: bool,
}

/// How a packet arrived, as the socket saw it.
#[derive(Clone, Copy, Debug)]
pub struct Arrival {
    pub src: IpAddr,
    /// The TTL or hop limit, when the kernel said.
    pub ttl: Option<u8>,
    pub multicast: bool,
}

impl Expect {
    /// Checks a decoded advert against this instance, in the order keepalived does.
    pub fn check(&self, advert: &Advert, arrival: &Arrival) -> Result<(), Reject> {
        let multicast_instance = self.unicast_peers.is_empty();
        if let Some(ttl) = arrival.ttl.filter(|&t| multicast_instance && t != VRRP_TTL) {
            return Err(Reject::Ttl(ttl));
        }
        if advert.version != self.version {
            return Err(Reject::Version(advert.version.number()));
        }
        if self.version == Version::V2 {
            self.check_v2(advert)?;
        }
        if advert.addrs.len() != self.vips.len() {
            return Err(Reject::AddrCount {
                got: advert.addrs.len(),
                expected: self.vips.len(),
            });
        }
        if arrival.multicast != multicast_instance {
            let name = |m| if m { "mult" } else { "un" };
            return Err(Reject::Cast {
                expected: name(multicast_instance),
                got: name(arrival.multicast),
            });
        }
        if let Some(missing) = self.vips.iter().find(|v| !advert.addrs.contains(v)) {
            return Err(Reject::AddrList(*missing));
        }
        if self.check_unicast_src
            && !multicast_instance
            && !self.unicast_peers.contains(&arrival.src)
        {
            return Err(Reject::NotPeer(arrival.src));
        }
        Ok(())
    }

    fn check_v2(&self, advert: &Advert) -> Result<(), Reject> {
        let type_of = |a: &Auth| match a {
            Auth::None => 0,
            Auth::Pass(_) => 1,
        };
        match (&self.auth, &advert.auth) {
            (Auth::Pass(mine), Auth::Pass(got)) if !constant_time_eq(mine, got) => {
                return Err(Reject::Password);
            }
            (mine, got) if type_of(mine) != type_of(got) => {
                return Err(Reject::AuthMismatch {
                    got: type_of(got),
                    expected: type_of(mine),
                });
            }
            _ => {}
        }
        if advert.interval != self.interval {
            let secs = |i: AdvertInterval| i.centis() / 100;
            return Err(Reject::Interval {
                mine: secs(self.interval),
                got: secs(advert.interval),
            });
        }
        Ok(())
    }
}

/// Compares passwords without leaking through timing how much of one matched.
fn constant_time_eq(a: &[u8; 8], b: &[u8; 8]) -> bool {
    a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Per-reason counts of rejected packets, and a log that says each reason at most once
/// per period so a flood of bad packets cannot flood the log.
#[derive(Debug)]
pub struct Rejections {
    counts: [u64; RejectKind::ALL.len()],
    last_logged: [Option<Instant>; RejectKind::ALL.len()],
    suppressed: [u64; RejectKind::ALL.len()],
    period: Duration,
}

impl Rejections {
    pub fn new(period: Duration) -> Self {
        Self {
            counts: [0; RejectKind::ALL.len()],
            last_logged: [None; RejectKind::ALL.len()],
            suppressed: [0; RejectKind::ALL.len()],
            period,
        }
    }

    /// Counts `reject`; returns the line to log, if this reason may log now.
    pub fn record(&mut self, reject: &Reject, now: Instant) -> Option<RejectLog> {
        let i = Self::index(reject.kind());
        self.counts[i] += 1;
        match self.last_logged[i] {
            Some(at) if now.saturating_duration_since(at) < self.period => {
                self.suppressed[i] += 1;
                None
            }
            _ => {
                self.last_logged[i] = Some(now);
                let suppressed = std::mem::take(&mut self.suppressed[i]);
                Some(RejectLog {
                    reject: reject.clone(),
                    suppressed,
                })
            }
        }
    }

    pub fn count(&self, kind: RejectKind) -> u64 {
        self.counts[Self::index(kind)]
    }

    fn index(kind: RejectKind) -> usize {
        RejectKind::ALL
            .iter()
            .position(|k| *k == kind)
            .expect("ALL lists every kind")
    }
}

/// A rejection to log, with how many like it went unlogged since the last one.
#[derive(Debug, PartialEq, Eq)]
pub struct RejectLog {
    pub reject: Reject,
    pub suppressed: u64,
}

impl fmt::Display for RejectLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.reject)?;
        if self.suppressed > 0 {
            write!(f, " ({} similar suppressed)", self.suppressed)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::types::Priority;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn expect(version: Version) -> Expect {
        Expect {
            version,
            auth: Auth::None,
            interval: AdvertInterval::from_centis(100).unwrap(),
            vips: vec![ip("203.0.113.10"), ip("203.0.113.11")],
            unicast_peers: vec![],
            check_unicast_src: false,
        }
    }

    fn advert(version: Version) -> Advert {
        Advert {
            version,
            vrid: Vrid::new(1).unwrap(),
            priority: Priority::new(100),
            interval: AdvertInterval::from_centis(100).unwrap(),
            addrs: vec![ip("203.0.113.11"), ip("203.0.113.10")],
            auth: Auth::None,
        }
    }

    const ON_LAN: Arrival = Arrival {
        src: IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2)),
        ttl: Some(255),
        multicast: true,
    };

    #[test]
    fn a_matching_advert_passes_whatever_the_address_order() {
        assert_eq!(
            expect(Version::V2).check(&advert(Version::V2), &ON_LAN),
            Ok(())
        );
    }

    #[test]
    fn ttl_must_be_255_on_multicast_only() {
        let routed = Arrival {
            ttl: Some(254),
            ..ON_LAN
        };
        let e = expect(Version::V3);
        assert_eq!(
            e.check(&advert(Version::V3), &routed),
            Err(Reject::Ttl(254))
        );
        let unicast = Expect {
            unicast_peers: vec![ip("192.0.2.2")],
            ..e
        };
        let routed = Arrival {
            multicast: false,
            ..routed
        };
        assert_eq!(unicast.check(&advert(Version::V3), &routed), Ok(()));
    }

    #[test]
    fn version_auth_interval_and_addresses_must_match() {
        let e = expect(Version::V2);
        assert_eq!(
            e.check(&advert(Version::V3), &ON_LAN),
            Err(Reject::Version(3))
        );

        let mut a = advert(Version::V2);
        a.auth = Auth::pass("x");
        assert_eq!(
            e.check(&a, &ON_LAN),
            Err(Reject::AuthMismatch {
                got: 1,
                expected: 0
            })
        );
        let with_pass = Expect {
            auth: Auth::pass("y"),
            ..expect(Version::V2)
        };
        assert_eq!(with_pass.check(&a, &ON_LAN), Err(Reject::Password));

        let mut a = advert(Version::V2);
        a.interval = AdvertInterval::from_centis(200).unwrap();
        assert_eq!(
            e.check(&a, &ON_LAN),
            Err(Reject::Interval { mine: 1, got: 2 })
        );
        // VRRPv3 learns the master's interval instead of refusing it.
        let mut a = advert(Version::V3);
        a.interval = AdvertInterval::from_centis(200).unwrap();
        assert_eq!(expect(Version::V3).check(&a, &ON_LAN), Ok(()));

        let mut a = advert(Version::V2);
        a.addrs.pop();
        assert_eq!(
            e.check(&a, &ON_LAN),
            Err(Reject::AddrCount {
                got: 1,
                expected: 2
            })
        );
        let mut a = advert(Version::V2);
        a.addrs[0] = ip("203.0.113.99");
        assert_eq!(
            e.check(&a, &ON_LAN),
            Err(Reject::AddrList(ip("203.0.113.11")))
        );
    }

    #[test]
    fn cast_and_unicast_source_must_match() {
        let unicast = Expect {
            unicast_peers: vec![ip("192.0.2.3")],
            check_unicast_src: true,
            ..expect(Version::V3)
        };
        assert_eq!(
            unicast.check(&advert(Version::V3), &ON_LAN),
            Err(Reject::Cast {
                expected: "un",
                got: "mult"
            })
        );
        let from_stranger = Arrival {
            multicast: false,
            ..ON_LAN
        };
        assert_eq!(
            unicast.check(&advert(Version::V3), &from_stranger),
            Err(Reject::NotPeer(ip("192.0.2.2")))
        );
    }

    #[test]
    fn rejections_are_counted_always_and_logged_once_per_period() {
        let t0 = Instant::now();
        let mut r = Rejections::new(Duration::from_secs(10));
        assert!(r.record(&Reject::Checksum, t0).is_some());
        assert!(
            r.record(&Reject::Checksum, t0 + Duration::from_secs(1))
                .is_none()
        );
        assert!(
            r.record(&Reject::Ttl(1), t0 + Duration::from_secs(1))
                .is_some()
        );
        let log = r
            .record(&Reject::Checksum, t0 + Duration::from_secs(11))
            .unwrap();
        assert_eq!(log.suppressed, 1);
        assert_eq!(
            log.to_string(),
            "Invalid VRRP checksum (1 similar suppressed)"
        );
        assert_eq!(r.count(RejectKind::Checksum), 3);
        assert_eq!(r.count(RejectKind::Ttl), 1);
        assert_eq!(r.count(RejectKind::Auth), 0);
    }
}
