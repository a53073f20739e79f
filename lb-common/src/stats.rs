//! Counters the XDP program keeps and the agent reports.

/// Traffic of one service or one real, per CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "user", derive(serde::Serialize, serde::Deserialize))]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
    /// Flows scheduled (new entries in the flow table).
    pub new_flows: u64,
}

impl Counters {
    /// Sums per-CPU values.
    pub fn sum<'a>(values: impl IntoIterator<Item = &'a Counters>) -> Counters {
        values
            .into_iter()
            .fold(Counters::default(), |acc, c| Counters {
                packets: acc.packets + c.packets,
                bytes: acc.bytes + c.bytes,
                new_flows: acc.new_flows + c.new_flows,
            })
    }
}

/// What happened to a packet that is worth counting: every drop and every pass of traffic
/// the program looked at has a reason here. Indexes the per-CPU `EVENTS` array.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Not addressed to a virtual service: passed to the kernel untouched.
    NotVip = 0,
    /// Headers shorter than they claim: passed to the kernel, which drops what is malformed.
    Truncated = 1,
    /// A later fragment of a datagram whose first fragment the program has not placed (it
    /// was lost, comes later, or is for no VIP): passed to the kernel, which can deliver it
    /// nowhere without the first.
    Fragment = 2,
    /// VIP traffic, but no real may take a new flow: dropped.
    NoReal = 3,
    /// The real's MAC is not known yet: dropped (the client retransmits), and the agent
    /// asked to resolve it.
    NeighMiss = 4,
    /// No route to the real: dropped.
    NoRoute = 5,
    /// The real is reached through a gateway, which direct routing cannot do: dropped.
    NotOnLink = 6,
    /// Sent back out of the interface it came in on.
    Tx = 7,
    /// Sent out of another interface.
    Redirect = 8,
    /// An IPv6 extension header the program does not walk (other than a fragment header):
    /// the ports are not where it looks, so the packet is passed to the kernel.
    ExtensionHeader = 9,
    /// A service whose forwarding method this program does not know: dropped.
    UnknownMethod = 10,
    /// No room in front of the frame for a tunnel header: dropped.
    NoHeadroom = 11,
    /// Too big once tunnelled: the client was answered with ICMP fragmentation needed or
    /// ICMPv6 packet too big, sent back with XDP_TX.
    TooBig = 12,
    /// Too big once tunnelled, and no answer may be sent (IPv4 without Don't Fragment) or
    /// built (IPv4 options, too short to quote): dropped.
    TooBigDropped = 13,
    /// A real's answer to a NAT connection, its source rewritten back to the VIP.
    NatAnswer = 14,
    /// An ICMP error about a virtual service's flow that is not relayed to a real: no real
    /// owns the flow (it is not, or no longer, in the flow table), or the error is too big
    /// to tunnel to a TUN real. Passed to the kernel.
    IcmpUnplaced = 15,
    /// A packet of an established flow whose real was removed, under
    /// `--expire-nodest-conn drop` (IPVS's `expire_nodest_conn` 0): dropped.
    NoDest = 16,
    /// A stage of the balancer the packet needed is not in `STAGES` (the agent fills it
    /// before it attaches the entry program, so only a broken load leaves one out):
    /// dropped.
    NoStage = 17,
    /// A later fragment of a datagram for a NAT service, whose addresses the program
    /// does not translate: dropped.
    FragmentDropped = 18,
}

impl Event {
    pub const COUNT: u32 = 19;

    pub const ALL: [Event; Self::COUNT as usize] = [
        Event::NotVip,
        Event::Truncated,
        Event::Fragment,
        Event::NoReal,
        Event::NeighMiss,
        Event::NoRoute,
        Event::NotOnLink,
        Event::Tx,
        Event::Redirect,
        Event::ExtensionHeader,
        Event::UnknownMethod,
        Event::NoHeadroom,
        Event::TooBig,
        Event::TooBigDropped,
        Event::NatAnswer,
        Event::IcmpUnplaced,
        Event::NoDest,
        Event::NoStage,
        Event::FragmentDropped,
    ];

    /// Name used in `xlb status` and logs.
    pub const fn name(self) -> &'static str {
        match self {
            Event::NotVip => "not_vip",
            Event::Truncated => "truncated",
            Event::Fragment => "fragment",
            Event::NoReal => "no_real",
            Event::NeighMiss => "neigh_miss",
            Event::NoRoute => "no_route",
            Event::NotOnLink => "not_on_link",
            Event::Tx => "tx",
            Event::Redirect => "redirect",
            Event::ExtensionHeader => "extension_header",
            Event::UnknownMethod => "unknown_method",
            Event::NoHeadroom => "no_headroom",
            Event::TooBig => "too_big",
            Event::TooBigDropped => "too_big_dropped",
            Event::NatAnswer => "nat_answer",
            Event::IcmpUnplaced => "icmp_unplaced",
            Event::NoDest => "no_dest",
            Event::NoStage => "no_stage",
            Event::FragmentDropped => "fragment_dropped",
        }
    }
}

map_layout!(Counters = 3 * 8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_event_at_its_index() {
        for (i, event) in Event::ALL.iter().enumerate() {
            assert_eq!(*event as usize, i);
        }
    }

    #[test]
    fn sums_per_cpu_values() {
        let a = Counters {
            packets: 1,
            bytes: 60,
            new_flows: 1,
        };
        let b = Counters {
            packets: 2,
            bytes: 120,
            new_flows: 0,
        };
        assert_eq!(
            Counters::sum([&a, &b]),
            Counters {
                packets: 3,
                bytes: 180,
                new_flows: 1
            }
        );
    }
}
