//! Connection states as the least-connection schedulers count them.
//!
//! A director in DR mode sees only what clients send, so a connection is judged by the
//! client's TCP flags: open until the client sends FIN or RST, then closing. IPVS counts a
//! real's established connections as active and the rest (opening, closing, UDP) as
//! inactive, which lc weighs at 1/256 of an active one; here a connection counts as active
//! from its first packet (a half-open one too), and as inactive for a while after it
//! closes, or after it starts when it has no states (UDP): the XDP program cannot see a
//! flow expire, so inactive counts age out by time windows instead, as IPVS's inactive
//! connections do by their timeouts.

/// TCP header flags the tracker reads.
pub mod tcp {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;
}

/// What a flow's packet tells the tracker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    /// A TCP segment with these flags.
    Tcp(u8),
    /// A protocol without connection states.
    Datagram,
}

/// A flow's state, stored in its flow-table entry.
#[repr(u8)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConnState {
    /// Its service does not count connections.
    #[default]
    Untracked = 0,
    /// Counted as active.
    Open = 1,
    /// Counted as inactive: a closed TCP connection or a UDP flow.
    Inactive = 2,
}

/// A change of a real's counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    /// One more active connection.
    Opened,
    /// One active connection fewer, one more inactive.
    Closed,
    /// One more inactive connection.
    Inactive,
}

impl ConnState {
    pub const fn from_u8(value: u8) -> Self {
        match value {
            1 => ConnState::Open,
            2 => ConnState::Inactive,
            _ => ConnState::Untracked,
        }
    }

    /// The state of a flow that starts with `segment`, and how its real's counts change.
    pub const fn start(segment: Segment) -> (ConnState, Count) {
        match segment {
            Segment::Tcp(flags) if flags & (tcp::FIN | tcp::RST) == 0 => {
                (ConnState::Open, Count::Opened)
            }
            _ => (ConnState::Inactive, Count::Inactive),
        }
    }

    /// The state after `segment`, and the change of counts, if any.
    pub const fn next(self, segment: Segment) -> Option<(ConnState, Count)> {
        match (self, segment) {
            (ConnState::Open, Segment::Tcp(flags)) if flags & (tcp::FIN | tcp::RST) != 0 => {
                Some((ConnState::Inactive, Count::Closed))
            }
            // A new connection on the tuple of a closed one.
            (ConnState::Inactive, Segment::Tcp(flags))
                if flags & (tcp::SYN | tcp::ACK | tcp::FIN | tcp::RST) == tcp::SYN =>
            {
                Some((ConnState::Open, Count::Opened))
            }
            _ => None,
        }
    }
}

/// Seconds an inactive connection counts for at least (and at most twice that).
pub const INACTIVE_WINDOW_SECS: u64 = 60;

/// The window an instant (ns of the kernel's monotonic clock) falls in.
pub const fn window(now_ns: u64) -> u32 {
    (now_ns / (INACTIVE_WINDOW_SECS * 1_000_000_000)) as u32
}

/// A real's connection counts: `CONNS`, indexed like `REALS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RealConns {
    /// Changed with atomic adds only; a closing connection subtracts with a wrapping add,
    /// so a transient underflow reads as a huge number and [`RealConns::active`] clamps it.
    pub active: u32,
    /// Inactive connections that started in window `window`, and in the one before.
    pub inactive: u32,
    pub inactive_before: u32,
    pub window: u32,
}

impl RealConns {
    /// Active connections, never negative.
    pub const fn active(&self) -> u32 {
        if (self.active as i32) < 0 {
            0
        } else {
            self.active
        }
    }

    /// Inactive connections that count in window `now`.
    pub const fn inactive(&self, now: u32) -> u32 {
        if now == self.window {
            self.inactive.saturating_add(self.inactive_before)
        } else if now == self.window.wrapping_add(1) {
            self.inactive
        } else {
            0
        }
    }

    /// Counts one more inactive connection in window `now`, first moving the windows on.
    pub fn add_inactive(&mut self, now: u32) {
        if now != self.window {
            self.inactive_before = if now == self.window.wrapping_add(1) {
                self.inactive
            } else {
                0
            };
            self.inactive = 0;
            self.window = now;
        }
        self.inactive = self.inactive.saturating_add(1);
    }
}

map_layout!(RealConns = 16);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_opens_active_and_closes_inactive() {
        let (open, count) = ConnState::start(Segment::Tcp(tcp::SYN));
        assert_eq!((open, count), (ConnState::Open, Count::Opened));
        assert_eq!(open.next(Segment::Tcp(tcp::ACK)), None);
        assert_eq!(
            open.next(Segment::Tcp(tcp::FIN | tcp::ACK)),
            Some((ConnState::Inactive, Count::Closed))
        );
        assert_eq!(
            open.next(Segment::Tcp(tcp::RST)),
            Some((ConnState::Inactive, Count::Closed))
        );
    }

    #[test]
    fn a_closed_tuple_reopens_only_on_a_bare_syn() {
        let closed = ConnState::Inactive;
        assert_eq!(closed.next(Segment::Tcp(tcp::ACK)), None);
        assert_eq!(closed.next(Segment::Tcp(tcp::FIN | tcp::ACK)), None);
        assert_eq!(
            closed.next(Segment::Tcp(tcp::SYN)),
            Some((ConnState::Open, Count::Opened))
        );
    }

    #[test]
    fn datagrams_and_stray_closes_are_inactive_and_stay_so() {
        for first in [Segment::Datagram, Segment::Tcp(tcp::RST)] {
            let (state, count) = ConnState::start(first);
            assert_eq!((state, count), (ConnState::Inactive, Count::Inactive));
            assert_eq!(state.next(Segment::Datagram), None);
        }
    }

    #[test]
    fn untracked_flows_stay_untracked() {
        assert_eq!(ConnState::Untracked.next(Segment::Tcp(tcp::FIN)), None);
        assert_eq!(ConnState::from_u8(ConnState::Open as u8), ConnState::Open);
        assert_eq!(ConnState::from_u8(9), ConnState::Untracked);
    }

    #[test]
    fn inactive_counts_age_out_over_two_windows() {
        let mut conns = RealConns::default();
        conns.add_inactive(10);
        conns.add_inactive(10);
        assert_eq!(conns.inactive(10), 2);
        conns.add_inactive(11);
        assert_eq!(conns.inactive(11), 3);
        assert_eq!(conns.inactive(12), 1);
        assert_eq!(conns.inactive(13), 0);
        conns.add_inactive(20);
        assert_eq!(
            conns.inactive(20),
            1,
            "old windows are dropped, not carried"
        );
    }

    #[test]
    fn an_underflowed_active_count_reads_as_zero() {
        let conns = RealConns {
            active: 0u32.wrapping_sub(1),
            ..RealConns::default()
        };
        assert_eq!(conns.active(), 0);
    }

    #[test]
    fn windows_are_a_minute() {
        assert_eq!(window(59_999_999_999), 0);
        assert_eq!(window(60_000_000_000), 1);
    }
}
