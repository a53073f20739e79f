//! LVS-NAT: client packets are readdressed to the real (address and port), and the real's
//! answers, which route back through the director, are readdressed from the VIP again.
//!
//! Each connection has an entry in `NAT_CONNS` keyed by the real's side of it, so an answer
//! is recognised by its addresses alone. The entry remembers when the connection last
//! carried a packet and whether it is closing; once idle past its timeout it counts as
//! gone, in both directions.

use aya_ebpf::{bindings::xdp_action, helpers::bpf_ktime_get_ns, programs::XdpContext};
use lb_common::{
    Addr, Family,
    conn::{self, Timeouts, state},
    csum::Delta,
    maps::{FlowKey, NatConn, Real},
    stats::Event,
};

use crate::{
    forward,
    headers::{self, EthHdr, IPPROTO_TCP, Ipv4Hdr, Ports, TcpHdr, UdpHdr},
    maps::{self, NAT_CONNS, TIMEOUTS},
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

#[inline(always)]
fn timeouts() -> Timeouts {
    TIMEOUTS.get(0).copied().unwrap_or(Timeouts::IPVS)
}

/// Whether `flow`, pinned to `real`, is a connection that has not expired. One that has is
/// scheduled afresh, as IPVS does with a connection it has forgotten.
#[inline(always)]
pub fn is_live(flow: &FlowKey, real: &Real) -> bool {
    // SAFETY: entries are plain data; a concurrent update can at worst mix two timestamps.
    match unsafe { NAT_CONNS.get(&answer_key(flow, real)) } {
        Some(conn) => {
            // SAFETY: plain helper call.
            let now = unsafe { bpf_ktime_get_ns() };
            !timeouts().expired(conn, flow.proto, now)
        }
        None => false,
    }
}

/// Forwards a client's IPv4 packet of `flow` (its L4 header at `l4`) to `real`.
#[inline(always)]
pub fn forward_v4(
    ctx: &XdpContext,
    eth: *mut EthHdr,
    ip: *mut Ipv4Hdr,
    l4: usize,
    flow: &FlowKey,
    real: &Real,
) -> u32 {
    let Some(l4) = L4::at(ctx, flow.proto, l4) else {
        maps::count(Event::Truncated);
        return xdp_action::XDP_PASS;
    };
    // Unresolved: dropped rather than passed, since the kernel would answer for the VIP
    // itself; the client retries once the agent has resolved the real.
    let Ok(fib) = forward::next_hop_v4(ctx, real.addr.0[0]) else {
        return xdp_action::XDP_DROP;
    };
    let (old, new) = (flow.dst.0[0], real.addr.0[0]);
    // SAFETY: `ip` and `l4` were bounds-checked against this packet.
    unsafe {
        (*ip).dst = new;
        (*ip).check = Delta::new().word32(old, new).apply((*ip).check);
        (*l4.ports).dst = real.port;
        l4.fix(Delta::new().word32(old, new).word16(flow.dport, real.port));
    }
    track(&answer_key(flow, real), flow, l4.flags);
    forward::send(ctx, eth, &fib)
}

/// Records a packet of `flow` in its connection, creating the entry for a new one.
#[inline(always)]
fn track(key: &FlowKey, flow: &FlowKey, flags: u8) {
    // SAFETY: plain helper call.
    let now = unsafe { bpf_ktime_get_ns() };
    if let Some(conn) = NAT_CONNS.get_ptr_mut(key) {
        // SAFETY: a live map value; `is_live` vouched that it belongs to this connection.
        unsafe { touch(conn, flags, now) };
        return;
    }
    let conn = NatConn {
        vip: flow.dst,
        vport: flow.dport,
        state: conn::next_state(state::OPEN, flags),
        _pad: [0; 5],
        last_seen: now,
    };
    // A full LRU evicts its oldest entry; failing otherwise only loses the answers of this
    // connection until its next packet records it again.
    let _ = NAT_CONNS.insert(key, &conn, 0);
}

#[inline(always)]
unsafe fn touch(conn: *mut NatConn, flags: u8, now: u64) {
    // SAFETY: the caller passes a live map value.
    unsafe {
        (*conn).last_seen = now;
        (*conn).state = conn::next_state((*conn).state, flags);
    }
}

/// A real's answer to a NAT connection, readdressed from the VIP and sent to the client;
/// `None` when the IPv4 packet (L4 header at `l4`, ports `ports`) is no such answer.
#[inline(always)]
pub fn answer_v4(
    ctx: &XdpContext,
    eth: *mut EthHdr,
    ip: *mut Ipv4Hdr,
    l4: usize,
    ports: &Ports,
) -> Option<u32> {
    // SAFETY: the caller bounds-checked the header.
    let (src, dst, proto) = unsafe { ((*ip).src, (*ip).dst, (*ip).proto) };
    let key = FlowKey {
        src: Addr::from_v4_raw(src),
        dst: Addr::from_v4_raw(dst),
        sport: ports.src,
        dport: ports.dst,
        proto,
        family: Family::V4 as u8,
        _pad: [0; 2],
    };
    let conn = NAT_CONNS.get_ptr_mut(&key)?;
    // SAFETY: plain helper call.
    let now = unsafe { bpf_ktime_get_ns() };
    // SAFETY: a live map value.
    let (vip, vport) = unsafe {
        if timeouts().expired(&*conn, proto, now) {
            return None;
        }
        ((*conn).vip.0[0], (*conn).vport)
    };
    let Some(l4) = L4::at(ctx, proto, l4) else {
        maps::count(Event::Truncated);
        return Some(xdp_action::XDP_PASS);
    };
    // Unresolved: dropped, since the kernel would forward it with the real's address; the
    // real retransmits once the agent has resolved the client's next hop.
    let Ok(fib) = forward::next_hop_v4(ctx, dst) else {
        return Some(xdp_action::XDP_DROP);
    };
    // SAFETY: as in `forward_v4`; `conn` is a live map value.
    unsafe {
        (*ip).src = vip;
        (*ip).check = Delta::new().word32(src, vip).apply((*ip).check);
        (*l4.ports).src = vport;
        l4.fix(Delta::new().word32(src, vip).word16(ports.src, vport));
        touch(conn, l4.flags, now);
    }
    maps::count(Event::NatAnswer);
    Some(forward::send(ctx, eth, &fib))
}
