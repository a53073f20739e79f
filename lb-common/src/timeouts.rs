//! How long a connection lives, as IPVS decides it: by protocol, and for TCP by whether
//! the connection is closing. Flow-table entries and NAT connections both age this way.

const SECOND: u64 = 1_000_000_000;

/// TCP flags byte (offset 13 of the TCP header).
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
}

/// [`crate::maps::NatConn::state`] values.
pub mod state {
    /// Traffic flows; UDP connections stay here.
    pub const OPEN: u8 = 0;
    /// A FIN or RST was seen in either direction: the short timeout applies.
    pub const CLOSING: u8 = 1;
}

/// Idle times after which a connection is forgotten, in nanoseconds of the kernel's coarse
/// monotonic clock (`bpf_ktime_get_coarse_ns`). Value of the one-entry `TIMEOUTS` map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// An open TCP connection (`lvs_timeouts tcp`).
    pub tcp: u64,
    /// A TCP connection after FIN or RST (`lvs_timeouts tcpfin`).
    pub tcp_fin: u64,
    /// A UDP "connection" (`lvs_timeouts udp`).
    pub udp: u64,
}

impl Timeouts {
    /// IPVS's defaults: 15 minutes, 2 minutes, 5 minutes.
    pub const IPVS: Timeouts = Timeouts {
        tcp: 900 * SECOND,
        tcp_fin: 120 * SECOND,
        udp: 300 * SECOND,
    };

    /// How long a connection of IP protocol `proto` may stay idle, `closing` or not.
    pub const fn idle_limit(&self, proto: u8, closing: bool) -> u64 {
        if proto != crate::maps::IPPROTO_TCP {
            self.udp
        } else if closing {
            self.tcp_fin
        } else {
            self.tcp
        }
    }

    /// Whether a connection last seen at `last_seen` has been idle too long at `now` (the
    /// same clock); an expired connection is as good as absent.
    pub const fn expired(&self, proto: u8, closing: bool, last_seen: u64, now: u64) -> bool {
        now.saturating_sub(last_seen) > self.idle_limit(proto, closing)
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self::IPVS
    }
}

/// The state after a packet with TCP `flags`: FIN or RST start the close, and nothing
/// reopens a closing connection (a new SYN after expiry makes a new one).
pub const fn next_state(current: u8, flags: u8) -> u8 {
    if flags & (tcp_flags::FIN | tcp_flags::RST) != 0 {
        state::CLOSING
    } else {
        current
    }
}

map_layout!(Timeouts = 3 * 8);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::{IPPROTO_TCP, IPPROTO_UDP};

    #[test]
    fn ipvs_defaults() {
        let t = Timeouts::default();
        assert_eq!(
            (t.tcp, t.tcp_fin, t.udp),
            (900 * SECOND, 120 * SECOND, 300 * SECOND)
        );
    }

    #[test]
    fn open_tcp_lives_long_closing_tcp_short_udp_its_own() {
        let t = Timeouts::IPVS;
        let start = 5 * SECOND;
        assert!(!t.expired(IPPROTO_TCP, false, start, start + 900 * SECOND));
        assert!(t.expired(IPPROTO_TCP, false, start, start + 900 * SECOND + 1));
        assert!(!t.expired(IPPROTO_TCP, true, start, start + 120 * SECOND));
        assert!(t.expired(IPPROTO_TCP, true, start, start + 120 * SECOND + 1));
        assert!(!t.expired(IPPROTO_UDP, false, start, start + 300 * SECOND));
        assert!(t.expired(IPPROTO_UDP, false, start, start + 300 * SECOND + 1));
    }

    #[test]
    fn a_clock_behind_the_entry_is_not_expiry() {
        assert!(!Timeouts::IPVS.expired(IPPROTO_TCP, false, 10, 3));
    }

    #[test]
    fn fin_or_rst_closes_and_nothing_reopens() {
        use tcp_flags::*;
        assert_eq!(next_state(state::OPEN, SYN), state::OPEN);
        assert_eq!(next_state(state::OPEN, 0x10), state::OPEN);
        assert_eq!(next_state(state::OPEN, FIN | 0x10), state::CLOSING);
        assert_eq!(next_state(state::OPEN, RST), state::CLOSING);
        assert_eq!(next_state(state::CLOSING, 0x10), state::CLOSING);
        assert_eq!(next_state(state::CLOSING, SYN), state::CLOSING);
    }
}
