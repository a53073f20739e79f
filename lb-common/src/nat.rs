//! How long a NAT connection lives, as IPVS decides it: by protocol, and for TCP by whether
//! the connection is closing.

use crate::maps::NatConn;

const SECOND: u64 = 1_000_000_000;

/// TCP flags byte (offset 13 of the TCP header).
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
}

/// [`NatConn::state`] values.
pub mod state {
    /// Traffic flows; UDP connections stay here.
    pub const OPEN: u8 = 0;
    /// A FIN or RST was seen in either direction: the short timeout applies.
    pub const CLOSING: u8 = 1;
}

/// Idle times after which a connection is forgotten, in nanoseconds (the unit of
/// `bpf_ktime_get_ns`). Value of the one-entry `TIMEOUTS` map.
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

    /// How long `conn`, of IP protocol `proto`, may stay idle.
    pub const fn idle_limit(&self, conn: &NatConn, proto: u8) -> u64 {
        if proto != crate::maps::IPPROTO_TCP {
            self.udp
        } else if conn.state == state::CLOSING {
            self.tcp_fin
        } else {
            self.tcp
        }
    }

    /// Whether `conn` has been idle too long at `now` (same clock as its `last_seen`); an
    /// expired connection is as good as absent.
    pub const fn expired(&self, conn: &NatConn, proto: u8, now: u64) -> bool {
        now.saturating_sub(conn.last_seen) > self.idle_limit(conn, proto)
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

    fn conn(state: u8, last_seen: u64) -> NatConn {
        NatConn {
            state,
            last_seen,
            ..NatConn::default()
        }
    }

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
        let open = conn(state::OPEN, start);
        let closing = conn(state::CLOSING, start);
        assert!(!t.expired(&open, IPPROTO_TCP, start + 900 * SECOND));
        assert!(t.expired(&open, IPPROTO_TCP, start + 900 * SECOND + 1));
        assert!(!t.expired(&closing, IPPROTO_TCP, start + 120 * SECOND));
        assert!(t.expired(&closing, IPPROTO_TCP, start + 120 * SECOND + 1));
        assert!(!t.expired(&open, IPPROTO_UDP, start + 300 * SECOND));
        assert!(t.expired(&open, IPPROTO_UDP, start + 300 * SECOND + 1));
    }

    #[test]
    fn a_clock_behind_the_entry_is_not_expiry() {
        assert!(!Timeouts::IPVS.expired(&conn(state::OPEN, 10), IPPROTO_TCP, 3));
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
