//! Wire headers, as far as the balancer reads or writes them, and bounds-checked access.

use aya_ebpf::programs::XdpContext;

pub use lb_common::maps::{IPPROTO_TCP, IPPROTO_UDP};

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const IPPROTO_FRAGMENT: u8 = 44;
pub const IPPROTO_IPIP: u8 = 4;
pub const IPPROTO_IPV6: u8 = 41;

#[repr(C)]
pub struct EthHdr {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    /// Network byte order.
    pub proto: u16,
}

impl EthHdr {
    pub const LEN: usize = 14;
}

#[repr(C)]
pub struct Ipv4Hdr {
    pub version_ihl: u8,
    pub tos: u8,
    pub tot_len: u16,
    pub id: u16,
    pub frag_off: u16,
    pub ttl: u8,
    pub proto: u8,
    pub check: u16,
    pub src: u32,
    pub dst: u32,
}

impl Ipv4Hdr {
    pub const MIN_LEN: usize = 20;

    /// Header length in bytes, options included, as the IHL field claims it.
    pub fn header_len(&self) -> usize {
        usize::from(self.version_ihl & 0x0f) * 4
    }

    /// Don't Fragment, as it sits in `frag_off` (network byte order).
    pub const DF: u16 = 0x4000u16.to_be();

    /// More-fragments set or a non-zero offset: the L4 header is absent or incomplete.
    pub fn is_fragment(&self) -> bool {
        u16::from_be(self.frag_off) & 0x3fff != 0
    }

    /// A fragment other than the first, which carries no L4 header.
    pub fn is_later_fragment(&self) -> bool {
        u16::from_be(self.frag_off) & 0x1fff != 0
    }
}

#[repr(C)]
pub struct Ipv6Hdr {
    pub version_class_flow: u32,
    pub payload_len: u16,
    pub next_header: u8,
    pub hop_limit: u8,
    pub src: [u32; 4],
    pub dst: [u32; 4],
}

impl Ipv6Hdr {
    pub const LEN: usize = 40;
}

/// Whether IPv6 `next_header` is an extension header (RFC 8200 and the IANA list of IPv6
/// extension header types) rather than the upper-layer protocol.
pub const fn is_ipv6_extension(next_header: u8) -> bool {
    matches!(
        next_header,
        0 | 43 | 44 | 51 | 60 | 135 | 139 | 140 | 253 | 254
    )
}

/// IPv6's fragment header (RFC 8200, section 4.5).
#[repr(C)]
pub struct Ipv6FragHdr {
    pub next_header: u8,
    pub reserved: u8,
    /// Offset in 8-byte units, then two reserved bits and More-fragments; network order.
    pub offset_more: u16,
    pub id: u32,
}

impl Ipv6FragHdr {
    pub const LEN: usize = 8;

    /// A fragment other than the first, which carries no L4 header.
    pub fn is_later_fragment(&self) -> bool {
        u16::from_be(self.offset_more) & 0xfff8 != 0
    }
}

/// The first four bytes of TCP and UDP headers.
#[repr(C)]
pub struct Ports {
    /// Network byte order.
    pub src: u16,
    /// Network byte order.
    pub dst: u16,
}

#[repr(C)]
pub struct TcpHdr {
    pub ports: Ports,
    pub seq: u32,
    pub ack: u32,
    pub data_offset: u8,
    /// [`lb_common::timeouts::tcp_flags`].
    pub flags: u8,
    pub window: u16,
    pub check: u16,
    pub urgent: u16,
}

#[repr(C)]
pub struct UdpHdr {
    pub ports: Ports,
    pub len: u16,
    /// Zero over IPv4 when the sender computed none.
    pub check: u16,
}

/// The fixed part of ICMP and ICMPv6 messages; an error's quote of the offending packet
/// follows it.
#[repr(C)]
pub struct IcmpHdr {
    pub kind: u8,
    pub code: u8,
    pub check: u16,
    /// Type-specific: unused, or the MTU of fragmentation needed and packet too big.
    pub rest: u32,
}

impl IcmpHdr {
    pub const LEN: usize = 8;
}

/// A `T` at `offset` bytes into the packet, or `None` when the packet ends before it does.
#[inline(always)]
pub fn at<T>(ctx: &XdpContext, offset: usize) -> Option<*mut T> {
    let start = ctx.data();
    if start + offset + size_of::<T>() > ctx.data_end() {
        return None;
    }
    Some((start + offset) as *mut T)
}
