//! Reading a received frame as far as balancing needs: which connection it belongs to.
//!
//! Every program of the balancer starts here. The frame does not change between the entry
//! and the stage it hands it to, so a stage parses it again rather than receiving the
//! parse: a few bounds checks cost less than carrying pointers the verifier cannot follow
//! across a tail call.

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use lb_common::{
    Addr, Family,
    maps::{FlowKey, FragmentKey},
    stats::Event,
    too_big::{IPPROTO_ICMP, IPPROTO_ICMPV6},
};

use crate::{
    headers::{
        self, ETH_P_IP, ETH_P_IPV6, EthHdr, IPPROTO_FRAGMENT, IPPROTO_TCP, IPPROTO_UDP, Ipv4Hdr,
        Ipv6FragHdr, Ipv6Hdr, Ports,
    },
    maps,
};

/// A TCP or UDP packet, as far as the balancer parsed it.
pub struct Packet {
    pub eth: *mut EthHdr,
    /// Offset of the TCP or UDP header from the start of the frame.
    pub l4: usize,
    /// The connection, in either family, as this packet carries it.
    pub flow: FlowKey,
    /// For the first fragment of a datagram, its IP identification: the later fragments,
    /// without ports, are placed by it (see [`datagram`]).
    pub fragment_id: Option<u32>,
}

/// What a frame is when it is no TCP or UDP packet the balancer can place.
pub enum NoFlow {
    /// Not IP at all (ARP, say): the kernel's, and not worth counting.
    NotIp,
    /// ICMP or ICMPv6, which may be an error about a flow.
    Icmp,
    /// A later fragment of this datagram.
    Fragment(FragmentKey),
    /// Anything else: the kernel's, for this reason.
    Pass(Event),
}

/// What the IP header of either family says, for reading the transport header after it.
struct Network {
    family: Family,
    proto: u8,
    src: Addr,
    dst: Addr,
    /// Offset of the transport header from the start of the frame.
    l4: usize,
    fragment_id: Option<u32>,
}

/// The frame's connection, or what the frame is instead.
#[inline(always)]
pub fn parse(ctx: &XdpContext) -> Result<Packet, NoFlow> {
    let eth = headers::at::<EthHdr>(ctx, 0).ok_or(NoFlow::Pass(Event::Truncated))?;
    // SAFETY: `at` checked that the header lies inside the packet.
    // Each family reads its transport header on its own path: with the two joined first,
    // the verifier walked 84k instructions of xlb_locality rather than 67k.
    match u16::from_be(unsafe { (*eth).proto }) {
        ETH_P_IP => transport(ctx, eth, ipv4(ctx)?),
        ETH_P_IPV6 => transport(ctx, eth, ipv6(ctx)?),
        _ => Err(NoFlow::NotIp),
    }
}

/// The packet, once its transport header is read after `network`.
#[inline(always)]
fn transport(ctx: &XdpContext, eth: *mut EthHdr, network: Network) -> Result<Packet, NoFlow> {
    Ok(Packet {
        eth,
        l4: network.l4,
        flow: flow_key(ctx, &network)?,
        fragment_id: network.fragment_id,
    })
}

/// The frame's connection, in a stage the entry handed the packet to. The entry parsed the
/// same frame, so what else it could be only needs the entry's verdict.
#[inline(always)]
pub fn reparse(ctx: &XdpContext) -> Result<Packet, u32> {
    parse(ctx).map_err(|no_flow| match no_flow {
        NoFlow::NotIp => xdp_action::XDP_PASS,
        NoFlow::Icmp => maps::pass(Event::NotVip),
        NoFlow::Fragment(_) => maps::pass(Event::Fragment),
        NoFlow::Pass(event) => maps::pass(event),
    })
}

#[inline(always)]
fn ipv4(ctx: &XdpContext) -> Result<Network, NoFlow> {
    let ip = headers::at::<Ipv4Hdr>(ctx, EthHdr::LEN).ok_or(NoFlow::Pass(Event::Truncated))?;
    // SAFETY: bounds checked by `at`; the header is only read here.
    let ip = unsafe { &*ip };
    let header_len = ip.header_len();
    if header_len < Ipv4Hdr::MIN_LEN {
        return Err(NoFlow::Pass(Event::Truncated));
    }
    let (src, dst) = (Addr::from_v4_raw(ip.src), Addr::from_v4_raw(ip.dst));
    let fragment_id = ip.is_fragment().then_some(u32::from(ip.id));
    if ip.is_later_fragment() {
        let id = u32::from(ip.id);
        return Err(NoFlow::Fragment(key(src, dst, ip.proto, Family::V4, id)));
    }
    if ip.proto == IPPROTO_ICMP {
        return Err(NoFlow::Icmp);
    }
    Ok(Network {
        family: Family::V4,
        proto: ip.proto,
        src,
        dst,
        l4: EthHdr::LEN + header_len,
        fragment_id,
    })
}

/// Only the fixed header and a fragment header are read: a packet whose ports lie behind
/// other extension headers is left to the kernel, counted, rather than walked with a
/// bounded loop on every packet.
#[inline(always)]
fn ipv6(ctx: &XdpContext) -> Result<Network, NoFlow> {
    let ip = headers::at::<Ipv6Hdr>(ctx, EthHdr::LEN).ok_or(NoFlow::Pass(Event::Truncated))?;
    // SAFETY: bounds checked by `at`; the header is only read here.
    let ip = unsafe { &*ip };
    let (src, dst) = (Addr(ip.src), Addr(ip.dst));
    let mut proto = ip.next_header;
    let mut l4 = EthHdr::LEN + Ipv6Hdr::LEN;
    let mut fragment_id = None;
    if proto == IPPROTO_FRAGMENT {
        let frag = headers::at::<Ipv6FragHdr>(ctx, l4).ok_or(NoFlow::Pass(Event::Truncated))?;
        // SAFETY: bounds checked by `at`; the header is only read here.
        let frag = unsafe { &*frag };
        if frag.is_later_fragment() {
            let key = key(src, dst, frag.next_header, Family::V6, frag.id);
            return Err(NoFlow::Fragment(key));
        }
        proto = frag.next_header;
        l4 += Ipv6FragHdr::LEN;
        fragment_id = Some(frag.id);
    }
    match proto {
        IPPROTO_ICMPV6 => return Err(NoFlow::Icmp),
        next if headers::is_ipv6_extension(next) => {
            return Err(NoFlow::Pass(Event::ExtensionHeader));
        }
        _ => {}
    }
    Ok(Network {
        family: Family::V6,
        proto,
        src,
        dst,
        l4,
        fragment_id,
    })
}

/// The datagram of IP identification `id` of `packet`'s flow, when the packet is its first
/// fragment.
#[inline(always)]
pub fn datagram(packet: &Packet) -> Option<FragmentKey> {
    let flow = &packet.flow;
    let family = Family::from_raw(flow.family)?;
    Some(key(
        flow.src,
        flow.dst,
        flow.proto,
        family,
        packet.fragment_id?,
    ))
}

#[inline(always)]
fn key(src: Addr, dst: Addr, proto: u8, family: Family, id: u32) -> FragmentKey {
    FragmentKey {
        src,
        dst,
        id,
        proto,
        family: family as u8,
        _pad: [0; 2],
    }
}

/// The connection a TCP or UDP packet belongs to; any other protocol is not for a VIP.
#[inline(always)]
fn flow_key(ctx: &XdpContext, network: &Network) -> Result<FlowKey, NoFlow> {
    let proto = network.proto;
    if proto != IPPROTO_TCP && proto != IPPROTO_UDP {
        return Err(NoFlow::Pass(Event::NotVip));
    }
    let ports = headers::at::<Ports>(ctx, network.l4).ok_or(NoFlow::Pass(Event::Truncated))?;
    // SAFETY: bounds checked by `at`.
    let ports = unsafe { &*ports };
    Ok(FlowKey {
        src: network.src,
        dst: network.dst,
        sport: ports.src,
        dport: ports.dst,
        proto,
        family: network.family as u8,
        _pad: [0; 2],
    })
}
