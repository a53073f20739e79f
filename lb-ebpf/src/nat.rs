//! LVS-NAT: client packets are readdressed to the real (address and port), and the real's
//! answers, which route back through the director, are readdressed from the VIP again.
//!
//! Each connection has an entry in `NAT_CONNS` keyed by the real's side of it, so an answer
//! is recognised by its addresses alone. The entry remembers when the connection last
//! carried a packet and whether it is closing; once idle past its timeout it counts as
//! gone, in both directions.

use aya_ebpf::programs::XdpContext;
use lb_common::{
    Addr, Family,
    conn_count::Segment,
    inet_csum::Delta,
    maps::{FlowKey, NatConn, Real},
    stats::Event,
    timeouts::{next_state, state},
};

use crate::{
    clock, conn_count, forward,
    headers::{self, EthHdr, IPPROTO_TCP, IcmpHdr, Ipv4Hdr, Ipv6Hdr, Ports, TcpHdr, UdpHdr},
    hop::{self, Hop},
    maps::pass,
    maps::{self, NAT_CONNS},
    packet::{self, Packet},
    relay::Error,
};

/// The L4 header of a packet being rewritten.
struct L4 {
    ports: *mut Ports,
    check: *mut u16,
    /// TCP flags; none for UDP.
    flags: u8,
    udp: bool,
}

impl L4 {
    /// The TCP or UDP header at `offset`, or `None` when the packet ends inside it.
    #[inline(always)]
    fn at(ctx: &XdpContext, proto: u8, offset: usize) -> Option<Self> {
        if proto == IPPROTO_TCP {
            let tcp = headers::at::<TcpHdr>(ctx, offset)?;
            // SAFETY: bounds checked by `at`.
            unsafe {
                Some(Self {
                    ports: &raw mut (*tcp).ports,
                    check: &raw mut (*tcp).check,
                    flags: (*tcp).flags,
                    udp: false,
                })
            }
        } else {
            let udp = headers::at::<UdpHdr>(ctx, offset)?;
            // SAFETY: as above.
            unsafe {
                Some(Self {
                    ports: &raw mut (*udp).ports,
                    check: &raw mut (*udp).check,
                    flags: 0,
                    udp: true,
                })
            }
        }
    }

    /// Folds `delta` into the L4 checksum.
    #[inline(always)]
    unsafe fn fix(&self, delta: Delta) {
        // SAFETY: the caller passes an `L4` made by `at` for the current packet.
        unsafe {
            *self.check = if self.udp {
                delta.apply_udp(*self.check)
            } else {
                delta.apply(*self.check)
            };
        }
    }
}

/// `NAT_CONNS` key of `flow` once it is pinned to `real`: the addresses of the real's answers.
#[inline(always)]
fn answer_key(flow: &FlowKey, real: &Real) -> FlowKey {
    FlowKey {
        src: real.addr,
        dst: flow.src,
        sport: real.port,
        dport: flow.sport,
        proto: flow.proto,
        family: flow.family,
        _pad: [0; 2],
    }
}

/// Whether `conn` has been idle past its timeout at `now`.
#[inline(always)]
fn expired(conn: &NatConn, proto: u8, now: u64) -> bool {
    maps::timeouts().expired(proto, conn.state == state::CLOSING, conn.last_seen, now)
}

/// Whether `flow`, pinned to `real`, is a connection that has not expired. One that has is
/// scheduled afresh, as IPVS does with a connection it has forgotten.
#[inline(never)]
pub fn is_live(flow: &FlowKey, real: &Real) -> bool {
    // SAFETY: entries are plain data; a concurrent update can at worst mix two timestamps.
    match unsafe { NAT_CONNS.get(&answer_key(flow, real)) } {
        Some(conn) => {
            let now = clock::now();
            !expired(conn, flow.proto, now)
        }
        None => false,
    }
}

/// Which address of the IP header a rewrite changes.
enum Side {
    Src,
    Dst,
}

/// Rewrites the `side` address of the IP header at offset `at` from `old` to `new` (of
/// family byte `family`), and the IPv4 header checksum with it. Returns how that checksum
/// field changed (nothing for IPv6), or `None` when the header is cut short.
#[inline(always)]
fn readdress(
    ctx: &XdpContext,
    family: u8,
    at: usize,
    side: Side,
    old: &Addr,
    new: &Addr,
) -> Option<Delta> {
    if family == Family::V6 as u8 {
        let ip = headers::at::<Ipv6Hdr>(ctx, at)?;
        // SAFETY: bounds checked by `at`.
        unsafe {
            match side {
                Side::Src => (*ip).src = new.0,
                Side::Dst => (*ip).dst = new.0,
            }
        }
        Some(Delta::new())
    } else {
        let ip = headers::at::<Ipv4Hdr>(ctx, at)?;
        // SAFETY: bounds checked by `at`.
        unsafe {
            match side {
                Side::Src => (*ip).src = new.0[0],
                Side::Dst => (*ip).dst = new.0[0],
            }
            let check = (*ip).check;
            (*ip).check = Delta::new().word32(old.0[0], new.0[0]).apply(check);
            Some(Delta::new().word16(check, (*ip).check))
        }
    }
}

/// The change readdressing makes to a checksum whose pseudo-header holds the address.
#[inline(always)]
fn addr_delta(family: u8, (old, new): (&Addr, &Addr)) -> Delta {
    let family = Family::from_raw(family).unwrap_or(Family::V4);
    Delta::new().addr(old, new, family)
}

/// The change readdressing makes to the L4 checksum, together with the port change.
#[inline(always)]
fn l4_delta(family: u8, addresses: (&Addr, &Addr), (old_port, new_port): (u16, u16)) -> Delta {
    addr_delta(family, addresses).word16(old_port, new_port)
}

/// Forwards a client's packet to `real`, readdressed to the real's address and port.
#[inline(never)]
pub fn forward(ctx: &XdpContext, packet: &Packet, real: &Real, hop: &Hop) -> u32 {
    let flow = &packet.flow;
    let Some(l4) = L4::at(ctx, flow.proto, packet.l4) else {
        return pass(Event::Truncated);
    };
    if readdress(
        ctx,
        flow.family,
        EthHdr::LEN,
        Side::Dst,
        &flow.dst,
        &real.addr,
    )
    .is_none()
    {
        return pass(Event::Truncated);
    }
    // SAFETY: `l4` was bounds-checked against this packet.
    unsafe {
        (*l4.ports).dst = real.port;
        l4.fix(l4_delta(
            flow.family,
            (&flow.dst, &real.addr),
            (flow.dport, real.port),
        ));
    }
    hop::send(ctx, packet.eth, hop)
}

/// Records a client's `packet`, forwarded to `real`, in its connection, creating the entry
/// for a new one. Out of line, after [`forward`] rather than within it, so that its entry
/// and key do not add to the stack of the forwarding path.
#[inline(never)]
pub fn track(ctx: &XdpContext, packet: &Packet, real: &Real) {
    let flags = match conn_count::segment(ctx, packet.flow.proto, packet.l4) {
        Segment::Tcp(flags) => flags,
        Segment::Datagram => 0,
    };
    let flow = &packet.flow;
    let key = answer_key(flow, real);
    let now = clock::now();
    if let Some(conn) = NAT_CONNS.get_ptr_mut(&key) {
        // SAFETY: a live map value; `is_live` vouched that it belongs to this connection.
        unsafe { touch(conn, flags, now) };
        return;
    }
    let conn = NatConn {
        vip: flow.dst,
        vport: flow.dport,
        state: next_state(state::OPEN, flags),
        _pad: [0; 5],
        last_seen: now,
    };
    // A full LRU evicts its oldest entry; failing otherwise only loses the answers of this
    // connection until its next packet records it again.
    let _ = NAT_CONNS.insert(&key, &conn, 0);
}

#[inline(always)]
unsafe fn touch(conn: *mut NatConn, flags: u8, now: u64) {
    // SAFETY: the caller passes a live map value.
    unsafe {
        (*conn).last_seen = now;
        (*conn).state = next_state((*conn).state, flags);
    }
}

/// The stage: a packet for no VIP that is a NAT real's answer goes to its client; any
/// other is the kernel's.
#[inline(always)]
pub fn stage(ctx: &XdpContext) -> u32 {
    match packet::reparse(ctx) {
        Ok(packet) => answer(ctx, &packet).unwrap_or_else(|| pass(Event::NotVip)),
        Err(verdict) => verdict,
    }
}

/// A real's answer to a NAT connection, readdressed from the VIP and sent to the client;
/// `None` when the packet is no such answer. Its [`Packet::flow`] is the real's side of the
/// connection, which is how `NAT_CONNS` is keyed.
#[inline(always)]
fn answer(ctx: &XdpContext, packet: &Packet) -> Option<u32> {
    let key = &packet.flow;
    let conn = NAT_CONNS.get_ptr_mut(key)?;
    let now = clock::now();
    // SAFETY: a live map value.
    let (vip, vport) = unsafe {
        if expired(&*conn, key.proto, now) {
            return None;
        }
        ((*conn).vip, (*conn).vport)
    };
    let Some(l4) = L4::at(ctx, key.proto, packet.l4) else {
        return Some(pass(Event::Truncated));
    };
    let hop = match forward::next_hop(ctx, &key.dst, key.family, 0) {
        Ok(hop) => hop,
        Err(no_hop) => return Some(no_hop.verdict()),
    };
    if readdress(ctx, key.family, EthHdr::LEN, Side::Src, &key.src, &vip).is_none() {
        return Some(pass(Event::Truncated));
    }
    // SAFETY: `l4` was bounds-checked against this packet; `conn` is a live map value.
    unsafe {
        (*l4.ports).src = vport;
        l4.fix(l4_delta(key.family, (&key.src, &vip), (key.sport, vport)));
        touch(conn, l4.flags, now);
    }
    maps::count(Event::NatAnswer);
    Some(forward::send(ctx, packet.eth, &hop))
}

/// Sends an ICMP `error` about `packet`'s flow (client → VIP, pinned to `real`) on to the
/// real, as if the error were about the real's own answer: the outer destination and the
/// quoted source become the real's, and every checksum that covers them follows.
#[inline(never)]
pub fn error_to_real(
    ctx: &XdpContext,
    packet: &Packet,
    real: &Real,
    hop: &Hop,
    error: &Error,
) -> u32 {
    let Error { icmp, quote } = *error;
    let flow = &packet.flow;
    let Some(icmp) = headers::at::<IcmpHdr>(ctx, icmp) else {
        return pass(Event::Truncated);
    };
    let addresses = (&flow.dst, &real.addr);
    if readdress(
        ctx,
        flow.family,
        EthHdr::LEN,
        Side::Dst,
        addresses.0,
        addresses.1,
    )
    .is_none()
    {
        return pass(Event::Truncated);
    }
    let Some(quoted_header) =
        readdress(ctx, flow.family, quote, Side::Src, addresses.0, addresses.1)
    else {
        return pass(Event::Truncated);
    };
    let Some(ports) = headers::at::<Ports>(ctx, packet.l4) else {
        return pass(Event::Truncated);
    };
    let quoted = l4_delta(flow.family, addresses, (flow.dport, real.port));
    // The ICMP checksum covers the quote: its address and port, and the checksums quoted
    // with them; ICMPv6's covers the outer destination too, in its pseudo-header.
    let mut message = quoted.plus(quoted_header);
    if flow.family == Family::V6 as u8 {
        message = message.plus(addr_delta(flow.family, addresses));
    }
    // SAFETY: bounds checked by `at`.
    unsafe { (*ports).src = real.port };
    // The quote may stop before the L4 checksum; it is fixed when it is there.
    let udp = flow.proto != IPPROTO_TCP;
    let check_at = packet.l4 + if udp { 6 } else { 16 };
    if let Some(check) = headers::at::<u16>(ctx, check_at) {
        // SAFETY: bounds checked by `at`.
        unsafe {
            let old = *check;
            *check = if udp {
                quoted.apply_udp(old)
            } else {
                quoted.apply(old)
            };
            message = message.word16(old, *check);
        }
    }
    // SAFETY: bounds checked by `at`.
    unsafe { (*icmp).check = message.apply((*icmp).check) };
    hop::send(ctx, packet.eth, hop)
}
