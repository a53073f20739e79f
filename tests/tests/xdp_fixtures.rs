//! Data-plane fixtures: the real balancer object run through BPF test-run on crafted frames,
//! asserting the action and the exact bytes it leaves (Katran's fixture style).
//!
//! The bed is the static network of `bpf_bed::net`; frames arrive on `lb0`. Expected frames
//! are built independently with etherparse. Cases of one frame each are a table
//! ([`balancer_cases`], [`decap_cases`]); scenarios over several packets are tests of their
//! own.

#[path = "../src/bpf_bed/mod.rs"]
mod bpf_bed;

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use bpf_bed::{
    Bed, XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX, after_a_clock_tick, every_real_up,
    frame::{Macs, bytes, dst_mac, syn, tcp, udp},
    net::{
        CLIENT, GATEWAY, LB0, LB0_6, LB1, REAL1, REAL2, REAL3, REAL6_1, REAL6_2, REMOTE_REAL,
        SMALL_MTU_REAL, VIP, mac,
    },
    plan,
    table::{self, Case, case},
};
use etherparse::{
    Icmpv4Type, Icmpv6Type, IpHeaders, IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header,
    PacketBuilder, icmpv4::DestUnreachableHeader,
};
use lb_common::{
    Addr, Family,
    maps::FlowKey,
    sched::{
        HASH_TABLE_LEN,
        hash::{FLOW_SEED, destination_hash, flow_bucket, hash_addr, source_hash},
        maglev::{MaglevReal, maglev},
    },
    stats::Event,
    tunnel::flow_hash,
};
use xlb::dataplane::xdp::{Nodest, decap::Decap};
use xlb_testbed::{is_root, note_skip};

/// The MAC the client's frames come from: its router's.
const CLIENT_MAC: [u8; 6] = [0x02, 0xc1, 0, 0, 0, 0x07];
/// The IPv6 client, which no route leads to: answers to it go back where it sent from.
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x51, 0, 0, 0, 0, 7);

const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x203, 0, 0, 0, 0, 0x10);
const VIP_REMOTE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 20);
const VIP_BEHIND_GATEWAY: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 30);
const VIP_UNRESOLVED: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 40);
const VIP6_UNRESOLVED: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x203, 0, 0, 0, 0, 0x40);
const VIP_TUN: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 50);
const VIP_TUN_ROUTED: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 51);
const VIP6_TUN: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x203, 0, 0, 0, 0, 0x50);
const VIP_SMALL_MTU: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 52);
const VIP6_SMALL_MTU: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x203, 0, 0, 0, 0, 0x52);
const VIP_LC: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 60);
const VIP_WLC: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 61);
const VIP_PERSIST: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 70);
const VIP_LBLC: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 80);
const VIP_LBLCR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 81);
const VIP_NODEST: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 90);
const VIP_SH: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 120);
const VIP_MH_PORT: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 121);
const VIP_MH: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 122);
const VIP_SH_ZERO: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 123);
const VIP_SH_FALLBACK: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 124);
const VIP_DH: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 125);

const CONFIG: &str = "
virtual_server 203.0.113.10 80 {
    lb_algo rr
    lb_kind DR
    real_server 192.0.2.11 80 { }
    real_server 192.0.2.12 80 { }
    real_server 192.0.2.13 80 { }
}
virtual_server 203.0.113.10 53 {
    lb_algo wrr
    lb_kind DR
    protocol UDP
    real_server 192.0.2.11 53 { weight 3 }
    real_server 192.0.2.12 53 { weight 1 }
    real_server 192.0.2.13 53 { weight 0 }
}
virtual_server 203.0.113.20 80 {
    lb_algo rr
    lb_kind DR
    real_server 198.51.100.21 80 { }
}
virtual_server 203.0.113.30 80 {
    lb_algo rr
    lb_kind DR
    real_server 203.0.113.200 80 { }
}
virtual_server 203.0.113.40 80 {
    lb_algo rr
    lb_kind DR
    real_server 192.0.2.99 80 { }
}
virtual_server 2001:db8:203::10 80 {
    lb_algo rr
    lb_kind DR
    real_server 2001:db8:2::11 80 { }
    real_server 2001:db8:2::12 80 { }
}
virtual_server 203.0.113.50 80 {
    lb_algo rr
    lb_kind TUN
    real_server 192.0.2.11 80 { }
}
virtual_server 203.0.113.51 80 {
    lb_algo rr
    lb_kind TUN
    real_server 203.0.113.200 80 { }
}
virtual_server 2001:db8:203::50 80 {
    lb_algo rr
    lb_kind TUN
    real_server 2001:db8:2::11 80 { }
}
virtual_server 203.0.113.52 80 {
    lb_algo rr
    lb_kind TUN
    real_server 192.0.2.14 80 { }
}
virtual_server 2001:db8:203::52 80 {
    lb_algo rr
    lb_kind TUN
    real_server 2001:db8:2::14 80 { }
}
virtual_server 2001:db8:203::40 80 {
    lb_algo rr
    lb_kind DR
    real_server 2001:db8:2::99 80 { }
}
virtual_server 203.0.113.120 80 {
    lb_algo sh
    lb_kind DR
    real_server 192.0.2.11 80 { }
    real_server 192.0.2.12 80 { }
    real_server 192.0.2.13 80 { }
}
virtual_server 203.0.113.121 80 {
    lb_algo mh
    mh-port
    lb_kind DR
    real_server 192.0.2.11 80 { }
    real_server 192.0.2.12 80 { }
    real_server 192.0.2.13 80 { }
}
virtual_server 203.0.113.122 80 {
    lb_algo mh
    lb_kind DR
    real_server 192.0.2.11 80 { weight 2 }
    real_server 192.0.2.12 80 { }
    real_server 192.0.2.13 80 { }
}
virtual_server 203.0.113.123 80 {
    lb_algo sh
    lb_kind DR
    real_server 192.0.2.11 80 { weight 0 }
    real_server 192.0.2.12 80 { }
}
virtual_server 203.0.113.124 80 {
    lb_algo sh
    sh-fallback
    lb_kind DR
    real_server 192.0.2.11 80 { weight 0 }
    real_server 192.0.2.12 80 { }
}
virtual_server 203.0.113.60 80 {
    lb_algo lc
    lb_kind DR
    real_server 192.0.2.11 80 { }
    real_server 192.0.2.12 80 { }
    real_server 192.0.2.13 80 { }
}
virtual_server 203.0.113.61 80 {
    lb_algo wlc
    lb_kind DR
    real_server 192.0.2.11 80 { weight 3 }
    real_server 192.0.2.12 80 { weight 1 }
}
virtual_server 203.0.113.70 80 {
    lb_algo rr
    lb_kind DR
    persistence_timeout 60
    persistence_granularity 255.255.255.0
    real_server 192.0.2.11 80 { }
    real_server 192.0.2.12 80 { }
    real_server 192.0.2.13 80 { }
}
virtual_server 203.0.113.80 80 {
    lb_algo lblc
    lb_kind DR
    real_server 192.0.2.11 80 { }
    real_server 192.0.2.12 80 { }
}
virtual_server 203.0.113.81 80 {
    lb_algo lblcr
    lb_kind DR
    real_server 192.0.2.11 80 { }
    real_server 192.0.2.12 80 { }
}
virtual_server 203.0.113.90 80 {
    lb_algo rr
    lb_kind DR
    real_server 192.0.2.11 80 { weight 5 }
    real_server 192.0.2.12 80 { }
}
virtual_server 203.0.113.125 80 {
    lb_algo dh
    lb_kind DR
    real_server 192.0.2.11 80 { }
    real_server 192.0.2.12 80 { }
    real_server 192.0.2.13 80 { }
}
";

/// The bed with [`CONFIG`] applied, or `None` (with a note) when not root.
fn bed(tag: &str) -> Option<Bed> {
    Bed::new(tag, CONFIG)
}

/// A TCP SYN from the client (IPv4 or IPv6, as `dst` is) to `dst`, in a frame `macs`.
fn client_syn(macs: Macs, sport: u16, dst: impl Into<IpAddr>, dport: u16) -> Vec<u8> {
    let dst = dst.into();
    let src = match dst {
        IpAddr::V4(_) => IpAddr::V4(CLIENT),
        IpAddr::V6(_) => IpAddr::V6(CLIENT6),
    };
    syn(macs, (src, sport), (dst, dport))
}

/// A client frame to the director's `lb0` MAC.
fn to_director(sport: u16, dst: impl Into<IpAddr>, dport: u16) -> Vec<u8> {
    client_syn((CLIENT_MAC, mac(LB0)), sport, dst, dport)
}

/// [`to_director`] once the director sent it on to `real` (DR: only the MACs change).
fn to_real(real: impl Into<IpAddr>, sport: u16, dst: impl Into<IpAddr>, dport: u16) -> Vec<u8> {
    client_syn((mac(LB0), mac(real)), sport, dst, dport)
}

/// `frame` as `edit` leaves it.
fn edited(mut frame: Vec<u8>, edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
    edit(&mut frame);
    frame
}

/// `frame` with its MACs as `(source, destination)`.
fn with_macs(frame: Vec<u8>, (src, dst): ([u8; 6], [u8; 6])) -> Vec<u8> {
    edited(frame, |f| {
        f[..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&src);
    })
}

/// IPv4 `frame` as the first fragment of its datagram: More-fragments set. The header
/// checksum is left as it was, which the balancer neither reads nor changes.
fn first_fragment(frame: Vec<u8>) -> Vec<u8> {
    edited(frame, |f| f[14 + 6] |= 0x20)
}

/// IPv4 `frame` as a later fragment of its datagram, at 16 * 8 bytes: what follows the IP
/// header is no L4 header then.
fn later_fragment(frame: Vec<u8>) -> Vec<u8> {
    edited(frame, |f| f[14 + 7] = 0x10)
}

/// Every frame the balancer forwards on its own, with what it sends.
fn forwarding_cases() -> Vec<Case> {
    let options = [0x94, 0x04, 0x00, 0x00]; // router alert
    vec![
        case(
            "vip_hit_rewrites_only_the_macs_and_bounces",
            to_director(40000, VIP, 80),
        )
        .gives(XDP_TX, to_real(REAL1, 40000, VIP, 80))
        .counts(Event::Tx, 1),
        case(
            "a_real_on_another_interface_is_reached_by_redirect",
            to_director(44000, VIP_REMOTE, 80),
        )
        .gives(
            XDP_REDIRECT,
            client_syn((mac(LB1), mac(REMOTE_REAL)), 44000, VIP_REMOTE, 80),
        )
        .counts(Event::Redirect, 1),
        case(
            "a_real_behind_a_gateway_is_dropped_and_counted",
            to_director(45000, VIP_BEHIND_GATEWAY, 80),
        )
        .ends(XDP_DROP)
        .counts(Event::NotOnLink, 1),
        // Passed, it would reach the director, which holds the VIP and answers a SYN with a
        // RST; dropped, the client retransmits once the agent has the real resolved.
        case(
            "an_unresolved_real_drops_the_packet_for_the_client_to_retry",
            to_director(46000, VIP_UNRESOLVED, 80),
        )
        .ends(XDP_DROP)
        .counts(Event::NeighMiss, 1),
        case(
            "an_unresolved_ipv6_real_drops_the_packet_for_the_client_to_retry",
            to_director(46000, VIP6_UNRESOLVED, 80),
        )
        .ends(XDP_DROP)
        .counts(Event::NeighMiss, 1),
        // Offset 0, more fragments, identification 7: the ports are there.
        case(
            "an_ipv6_first_fragment_is_balanced_like_its_flow",
            syn6_with_extension(44, [0, 0, 1, 0, 0, 0, 7]),
        )
        .gives(
            XDP_TX,
            with_macs(
                syn6_with_extension(44, [0, 0, 1, 0, 0, 0, 7]),
                (mac(LB0), mac(REAL6_1)),
            ),
        )
        .counts(Event::Fragment, 0),
        case(
            "an_ipv4_first_fragment_is_balanced_like_its_flow",
            first_fragment(to_director(52000, VIP, 80)),
        )
        .gives(XDP_TX, first_fragment(to_real(REAL1, 52000, VIP, 80)))
        .counts(Event::Fragment, 0),
        case(
            "a_service_without_a_live_real_drops_and_counts",
            to_director(47000, VIP, 80),
        )
        .then_healthy(|_| false)
        .ends(XDP_DROP)
        .counts(Event::NoReal, 1),
        case(
            "ipv4_options_are_skipped_to_find_the_ports_and_kept",
            syn_with_options((CLIENT_MAC, mac(LB0)), options),
        )
        .gives(XDP_TX, syn_with_options((mac(LB0), mac(REAL1)), options)),
    ]
}

/// Frames for no service, or that the balancer does not parse so far, passed untouched.
fn passed_cases() -> Vec<Case> {
    let other6 = Ipv6Addr::new(0x2001, 0xdb8, 0x203, 0, 0, 0, 0, 0x99);
    let icmp = bytes(|out| {
        PacketBuilder::ethernet2(CLIENT_MAC, mac(LB0))
            .ipv4(CLIENT.octets(), VIP.octets(), 64)
            .icmpv4_echo_request(1, 1)
            .write(out, b"ping")
            .unwrap()
    });
    let no_vip = |name, frame| case(name, frame).leaves(XDP_PASS).counts(Event::NotVip, 1);
    vec![
        no_vip(
            "traffic_for_no_service_passes_untouched",
            to_director(49000, Ipv4Addr::new(203, 0, 113, 99), 80),
        ),
        no_vip(
            "a_vip_on_another_port_passes_untouched",
            to_director(49001, VIP, 443),
        ),
        no_vip("other_protocols_to_a_vip_pass_untouched", icmp),
        no_vip(
            "ipv6_traffic_for_no_service_passes_untouched",
            to_director(49000, other6, 80),
        ),
        case("non_ip_frames_pass_untouched_and_uncounted", arp())
            .leaves(XDP_PASS)
            .counts_nothing(),
        // Hop-by-hop options: length 0 (8 bytes), a PadN filling the rest.
        case(
            "ipv6_extension_headers_pass_untouched",
            syn6_with_extension(0, [0, 1, 4, 0, 0, 0, 0]),
        )
        .leaves(XDP_PASS)
        .counts(Event::ExtensionHeader, 1),
        // No first fragment went anywhere: the kernel's, which can deliver it nowhere.
        case(
            "a_later_fragment_without_its_first_passes_untouched",
            later_fragment(to_director(52000, VIP, 80)),
        )
        .leaves(XDP_PASS)
        .counts(Event::Fragment, 1),
    ]
}

/// Frames shorter than their headers say, passed untouched and counted.
fn truncated_cases() -> Vec<Case> {
    let full = to_director(50000, VIP, 80);
    let full6 = to_director(50000, VIP6, 80);
    let truncated = |name, frame: &[u8]| {
        case(name, frame.to_vec())
            .leaves(XDP_PASS)
            .counts(Event::Truncated, 1)
    };
    vec![
        truncated(
            "truncated_headers_pass_untouched_at_every_layer: Ethernet only",
            &full[..14],
        ),
        truncated(
            "truncated_headers_pass_untouched_at_every_layer: IPv4 cut in its fixed header",
            &full[..14 + 10],
        ),
        truncated(
            "truncated_headers_pass_untouched_at_every_layer: ports cut short",
            &full[..14 + 20 + 2],
        ),
        truncated(
            "truncated_ipv6_headers_pass_untouched: IPv6 cut in its fixed header",
            &full6[..14 + 20],
        ),
        truncated(
            "truncated_ipv6_headers_pass_untouched: ports cut short",
            &full6[..14 + 40 + 2],
        ),
        // Version 4, IHL 4 (16 bytes): not a valid header.
        truncated(
            "a_header_length_below_the_minimum_passes_untouched",
            &edited(to_director(50001, VIP, 80), |f| f[14] = 0x44),
        ),
    ]
}

/// Frames for TUN services: tunnelled, or answered when too big for the tunnel.
fn tunnel_cases() -> Vec<Case> {
    let inner = to_director(54000, VIP_TUN, 80);
    let routed = to_director(54001, VIP_TUN_ROUTED, 80);
    let tun_real = Ipv4Addr::new(203, 0, 113, 200);
    let inner6 = to_director(54002, VIP6_TUN, 80);
    let too_big6 = ipv6_too_big_for_the_tunnel();
    vec![
        case(
            "tun_wraps_the_packet_in_ipip_from_the_route_source",
            inner.clone(),
        )
        .gives(XDP_TX, ipip(&inner, (mac(LB0), mac(REAL1)), LB0, REAL1))
        .counts(Event::Tx, 1),
        case("tun_reaches_a_real_behind_a_gateway", routed.clone()).gives(
            XDP_TX,
            ipip(&routed, (mac(LB0), mac(GATEWAY)), LB0, tun_real),
        ),
        case("tun_over_ipv6_wraps_the_packet_in_ip6ip6", inner6.clone()).gives(
            XDP_TX,
            ip6ip6(
                &inner6,
                (mac(LB0), mac(REAL6_1)),
                LB0_6,
                REAL6_1,
                label_of(54002),
            ),
        ),
        case(
            "too_big_for_the_tunnel_without_df_is_dropped_and_counted",
            big_to_director(false, 570),
        )
        .ends(XDP_DROP)
        .counts(Event::TooBigDropped, 1),
        // 40 + 20 + 1350 = 1410 bytes, 1450 tunnelled: over the route's 1400.
        case(
            "too_big_for_the_ipv6_tunnel_is_answered_with_packet_too_big",
            too_big6.clone(),
        )
        .gives(XDP_TX, packet_too_big(&too_big6))
        .counts(Event::TooBig, 1),
    ]
}

/// Frames through the balancer, each on a balancer of its own.
#[test]
fn balancer_cases() {
    let cases: Vec<Case> = [
        forwarding_cases(),
        passed_cases(),
        truncated_cases(),
        tunnel_cases(),
    ]
    .into_iter()
    .flatten()
    .collect();
    table::run_balancer("fx-cases", CONFIG, &cases);
}

/// An ARP request from the client for the VIP.
fn arp() -> Vec<u8> {
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&CLIENT_MAC);
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&CLIENT_MAC);
    arp.extend_from_slice(&CLIENT.octets());
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&VIP.octets());
    arp
}

/// A SYN to the IPv6 VIP with an 8-byte extension header of type `next_header` (whose own
/// next header is TCP) between the fixed header and TCP.
fn syn6_with_extension(next_header: u8, extension: [u8; 7]) -> Vec<u8> {
    let plain = to_director(53000, VIP6, 80);
    let (head, tcp) = plain.split_at(14 + 40);
    let mut frame = head.to_vec();
    frame[14 + 6] = next_header;
    let payload_len = u16::from_be_bytes([frame[14 + 4], frame[14 + 5]]) + 8;
    frame[14 + 4..14 + 6].copy_from_slice(&payload_len.to_be_bytes());
    frame.push(6);
    frame.extend_from_slice(&extension);
    frame.extend_from_slice(tcp);
    frame
}

/// A SYN to the VIP whose IPv4 header carries `options`, in a frame `macs`.
fn syn_with_options((from, to): Macs, options: [u8; 4]) -> Vec<u8> {
    let mut ip = Ipv4Header::new(0, 64, IpNumber::TCP, CLIENT.octets(), VIP.octets()).unwrap();
    ip.options = options.into();
    bytes(|out| {
        PacketBuilder::ethernet2(from, to)
            .ip(IpHeaders::Ipv4(ip, Default::default()))
            .tcp(51000, 80, 1000, 64240)
            .syn()
            .write(out, &[])
            .unwrap()
    })
}

/// `inner` (a frame) with its IP packet wrapped in IPIP from `src` to `dst`, in a frame
/// `macs`: what the director sends a TUN real.
fn ipip(inner: &[u8], macs: Macs, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let packet = &inner[14..];
    let mut outer = Ipv4Header::new(
        packet.len() as u16,
        64,
        IpNumber::IPV4,
        src.octets(),
        dst.octets(),
    )
    .unwrap();
    outer.dont_fragment = packet[6] & 0x40 != 0;
    outer.header_checksum = outer.calc_header_checksum();
    tunnel_frame(macs, 0x0800, &outer.to_bytes(), packet)
}

/// A frame `macs` of `ethertype` holding `outer` and then `packet`.
fn tunnel_frame((from, to): Macs, ethertype: u16, outer: &[u8], packet: &[u8]) -> Vec<u8> {
    [&to[..], &from, &ethertype.to_be_bytes(), outer, packet].concat()
}

/// `inner` (a frame) with its IP packet wrapped in IP6IP6 from `src` to `dst` with flow
/// label `label`, in a frame `macs`.
fn ip6ip6(inner: &[u8], macs: Macs, src: Ipv6Addr, dst: Ipv6Addr, label: u32) -> Vec<u8> {
    let packet = &inner[14..];
    let outer = Ipv6Header {
        traffic_class: 0,
        flow_label: Ipv6FlowLabel::try_new(label).unwrap(),
        payload_length: packet.len() as u16,
        next_header: IpNumber::IPV6,
        hop_limit: 64,
        source: src.octets(),
        destination: dst.octets(),
    };
    tunnel_frame(macs, 0x86dd, &outer.to_bytes(), packet)
}

/// The flow label the director gives the IP6IP6 tunnel of the client's flow from `sport`
/// to the IPv6 TUN VIP.
fn label_of(sport: u16) -> u32 {
    let flow = FlowKey {
        src: Addr::from(IpAddr::V6(CLIENT6)),
        dst: Addr::from(IpAddr::V6(VIP6_TUN)),
        sport: sport.to_be(),
        dport: 80u16.to_be(),
        proto: 6,
        family: Family::V6 as u8,
        _pad: [0; 2],
    };
    flow_hash(&flow) & 0xf_ffff
}

/// A TCP segment of `payload` bytes from the client to `VIP_SMALL_MTU`, with Don't
/// Fragment as `df` says.
fn big_to_director(df: bool, payload: usize) -> Vec<u8> {
    let mut ip = Ipv4Header::new(
        0,
        64,
        IpNumber::TCP,
        CLIENT.octets(),
        VIP_SMALL_MTU.octets(),
    )
    .unwrap();
    ip.dont_fragment = df;
    bytes(|out| {
        PacketBuilder::ethernet2(CLIENT_MAC, mac(LB0))
            .ip(IpHeaders::Ipv4(ip, Default::default()))
            .tcp(57000, 80, 1000, 64240)
            .write(out, &vec![0x61; payload])
            .unwrap()
    })
}

/// A TCP segment from the IPv6 client to `VIP6_SMALL_MTU`, too big for the tunnel.
fn ipv6_too_big_for_the_tunnel() -> Vec<u8> {
    bytes(|out| {
        PacketBuilder::ethernet2(CLIENT_MAC, mac(LB0))
            .ipv6(CLIENT6.octets(), VIP6_SMALL_MTU.octets(), 64)
            .tcp(57001, 80, 1000, 64240)
            .write(out, &[0x61; 1350])
            .unwrap()
    })
}

/// The director's ICMPv6 packet too big for `sent`, quoting its start.
fn packet_too_big(sent: &[u8]) -> Vec<u8> {
    bytes(|out| {
        PacketBuilder::ethernet2(mac(LB0), CLIENT_MAC)
            .ipv6(VIP6_SMALL_MTU.octets(), CLIENT6.octets(), 64)
            .icmpv6(Icmpv6Type::PacketTooBig { mtu: 1360 })
            .write(out, &sent[14..14 + 48])
            .unwrap()
    })
}

/// The decapsulation program of a TUN real serving `VIP_TUN` and `VIP6_TUN`.
fn decap() -> Decap {
    let (mut decap, _) = Decap::load().expect("load");
    decap.add_vip(IpAddr::V4(VIP_TUN)).unwrap();
    decap.add_vip(IpAddr::V6(VIP6_TUN)).unwrap();
    decap
}

/// Frames through a TUN real's decapsulation program, a fresh one each.
#[test]
fn decap_cases() {
    if !is_root() {
        note_skip("xdp_fixtures", "BPF test-run needs root");
        return;
    }
    let sent = to_director(56000, VIP_TUN, 80);
    let sent6 = to_director(56001, VIP6_TUN, 80);
    let plain = to_director(56003, VIP_TUN, 80);
    let tunnelled = ipip(&plain, (mac(LB0), mac(REAL1)), LB0, REAL1);
    let untouched = |name, frame| case(name, frame).leaves(XDP_PASS);
    let cases = [
        case(
            "decap_strips_ipip_for_a_vip_and_passes_the_client_packet",
            ipip(&sent, (mac(LB0), mac(REAL1)), LB0, REAL1),
        )
        .gives(XDP_PASS, to_real(REAL1, 56000, VIP_TUN, 80)),
        case(
            "decap_strips_ip6ip6_for_a_vip",
            ip6ip6(&sent6, (mac(LB0), mac(REAL6_1)), LB0_6, REAL6_1, 0x12345),
        )
        .gives(XDP_PASS, to_real(REAL6_1, 56001, VIP6_TUN, 80)),
        untouched(
            "decap_leaves_everything_else_untouched: another VIP's",
            ipip(
                &to_director(56002, VIP, 80),
                (mac(LB0), mac(REAL1)),
                LB0,
                REAL1,
            ),
        ),
        untouched(
            "decap_leaves_everything_else_untouched: not tunnelled",
            plain.clone(),
        ),
        untouched(
            "decap_leaves_everything_else_untouched: truncated",
            tunnelled[..14 + 20 + 10].to_vec(),
        ),
        untouched(
            "decap_leaves_everything_else_untouched: a fragment",
            edited(tunnelled.clone(), |f| f[14 + 6] |= 0x20), // more fragments
        ),
    ];
    table::check(&cases, |case| {
        (decap().test_run(&case.frame).expect("test run"), Vec::new())
    });
}

/// A SYN from `client` (which sits behind the client's router MAC) to `dst` port 80.
fn syn_from(client: Ipv4Addr, sport: u16, dst: Ipv4Addr) -> Vec<u8> {
    syn((CLIENT_MAC, mac(LB0)), (client, sport), (dst, 80))
}

/// The client's FIN closing its connection from `sport` to `dst` port 80.
fn fin_from(client: Ipv4Addr, sport: u16, dst: Ipv4Addr) -> Vec<u8> {
    let fin = tcp((CLIENT_MAC, mac(LB0)), (client, sport), (dst, 80));
    bytes(|out| fin.fin().ack(1).write(out, &[]).unwrap())
}

#[test]
fn new_flows_take_the_reals_in_turn() {
    let Some(bed) = bed("fx-rr") else { return };
    let reals: Vec<[u8; 6]> = (0..6)
        .map(|i| dst_mac(&bed.run(&to_director(41000 + i, VIP, 80)).frame))
        .collect();
    let expected = [REAL1, REAL2, REAL3, REAL1, REAL2, REAL3].map(mac);
    assert_eq!(reals, expected);
}

/// [`CONFIG`] with `inhibit_on_failure` on the 203.0.113.10:80 service.
fn config_inhibited() -> String {
    CONFIG.replacen(
        "    lb_algo rr\n",
        "    lb_algo rr\n    inhibit_on_failure\n",
        1,
    )
}

#[test]
fn an_inhibited_real_that_goes_down_keeps_its_established_flows() {
    let Some(mut bed) = Bed::new("fx-flow", &config_inhibited()) else {
        return;
    };
    let first = bed.run(&to_director(42000, VIP, 80));
    assert_eq!(dst_mac(&first.frame), mac(REAL1));
    bed.run(&to_director(42001, VIP, 80));
    bed.apply(&config_inhibited(), |real| real != REAL1);

    let again = bed.run(&to_director(42000, VIP, 80));
    assert_eq!(again.action, XDP_TX);
    assert_eq!(dst_mac(&again.frame), mac(REAL1), "established flow moved");
    let fresh: Vec<[u8; 6]> = (0..4)
        .map(|i| dst_mac(&bed.run(&to_director(42100 + i, VIP, 80)).frame))
        .collect();
    assert!(
        !fresh.contains(&mac(REAL1)),
        "a real that is down took a new flow: {fresh:?}"
    );
}

/// As keepalived takes a failed real out of IPVS: its flows go to the reals left.
#[test]
fn a_real_that_goes_down_leaves_the_service_and_its_flows_move() {
    let Some(mut bed) = bed("fx-flow-out") else {
        return;
    };
    let first = bed.run(&to_director(42200, VIP, 80));
    assert_eq!(dst_mac(&first.frame), mac(REAL1));
    bed.apply(CONFIG, |real| real != REAL1);

    let again = bed.run(&to_director(42200, VIP, 80));
    assert_eq!(again.action, XDP_TX);
    assert_ne!(
        dst_mac(&again.frame),
        mac(REAL1),
        "a flow stayed with a real that left"
    );
}

#[test]
fn a_flow_idle_past_its_timeout_is_scheduled_afresh() {
    let Some(mut bed) = Bed::empty("fx-idle") else {
        return;
    };
    let mut idle = plan(CONFIG, every_real_up);
    idle.timeouts.tcp = Duration::from_nanos(1);
    bed.apply_plan(&idle);
    let first = bed.run(&to_director(42300, VIP, 80));
    assert_eq!(dst_mac(&first.frame), mac(REAL1));
    after_a_clock_tick();
    let ack = edited(to_director(42300, VIP, 80), |f| f[14 + 20 + 13] = 0x10);
    assert_eq!(
        dst_mac(&bed.run(&ack).frame),
        mac(REAL2),
        "an expired flow kept its real"
    );
}

#[test]
fn a_closed_connection_opened_again_on_its_tuple_is_scheduled_afresh() {
    let Some(bed) = bed("fx-reuse") else {
        return;
    };
    let syn = to_director(42400, VIP, 80);
    assert_eq!(dst_mac(&bed.run(&syn).frame), mac(REAL1));
    let fin = fin_from(CLIENT, 42400, VIP);
    assert_eq!(
        dst_mac(&bed.run(&fin).frame),
        mac(REAL1),
        "the FIN is the connection's"
    );
    assert_eq!(
        dst_mac(&bed.run(&syn).frame),
        mac(REAL2),
        "a new connection on a closed one's tuple went to the old real"
    );
}

/// `frame` (IPv4) with identification `id`.
fn with_id(frame: Vec<u8>, id: u16) -> Vec<u8> {
    edited(frame, |f| {
        f[14 + 4..14 + 6].copy_from_slice(&id.to_be_bytes())
    })
}

#[test]
fn later_fragments_follow_their_first_to_its_real() {
    let Some(bed) = bed("fx-frag") else {
        return;
    };
    for (sport, id, real) in [(42500, 7, REAL1), (42501, 8, REAL2)] {
        let first = with_id(first_fragment(to_director(sport, VIP, 80)), id);
        assert_eq!(dst_mac(&bed.run(&first).frame), mac(real));
    }
    for (sport, id, real) in [(42501, 8, REAL2), (42500, 7, REAL1)] {
        let later = with_id(later_fragment(to_director(sport, VIP, 80)), id);
        let out = bed.run(&later);
        assert_eq!(out.action, XDP_TX, "datagram {id}");
        assert_eq!(
            out.frame,
            with_macs(later, (mac(LB0), mac(real))),
            "datagram {id}"
        );
    }
    let first6 = syn6_with_extension(44, [0, 0, 1, 0, 0, 0, 9]);
    assert_eq!(dst_mac(&bed.run(&first6).frame), mac(REAL6_1));
    // Offset 16 * 8 bytes, more to come, the same identification.
    let later6 = syn6_with_extension(44, [0, 0, 0x81, 0, 0, 0, 9]);
    assert_eq!(
        bed.run(&later6).frame,
        with_macs(later6, (mac(LB0), mac(REAL6_1)))
    );
    assert_eq!(bed.event(Event::Fragment), 0);
}

#[test]
fn wrr_interleaves_three_to_one_and_weight_zero_takes_nothing() {
    let Some(bed) = bed("fx-wrr") else {
        return;
    };
    let reals: Vec<[u8; 6]> = (0..8)
        .map(|i| {
            let out = bed.run(&udp((CLIENT_MAC, mac(LB0)), (CLIENT, 43000 + i), (VIP, 53)));
            assert_eq!(out.action, XDP_TX);
            dst_mac(&out.frame)
        })
        .collect();
    let expected = [REAL1, REAL1, REAL1, REAL2, REAL1, REAL1, REAL1, REAL2].map(mac);
    assert_eq!(reals, expected);
}

#[test]
fn counters_follow_forwarded_traffic() {
    let Some(bed) = bed("fx-count") else {
        return;
    };
    let frame = to_director(48000, VIP, 80);
    bed.run(&frame);
    bed.run(&frame);
    let stats = bed.dataplane.stats().unwrap();
    let (_, service) = stats
        .services
        .iter()
        .find(|(k, _)| k.addr.port() == 80 && k.addr.ip() == VIP)
        .unwrap();
    assert_eq!(
        (service.packets, service.bytes, service.new_flows),
        (2, 2 * frame.len() as u64, 1)
    );
    let (_, real) = stats
        .reals
        .iter()
        .find(|(real, _)| real.service.addr.port() == 80 && real.addr.ip() == REAL1)
        .unwrap();
    assert_eq!((real.packets, real.new_flows), (2, 1));
}

#[test]
fn ipv6_vip_hit_rewrites_only_the_macs_and_bounces() {
    let Some(bed) = bed("fx-hit6") else {
        return;
    };
    let out = bed.run(&to_director(40000, VIP6, 80));
    assert_eq!(out.action, XDP_TX);
    assert_eq!(out.frame, to_real(REAL6_1, 40000, VIP6, 80));
    let next = bed.run(&to_director(40001, VIP6, 80));
    assert_eq!(next.frame, to_real(REAL6_2, 40001, VIP6, 80));
    assert_eq!(bed.event(Event::Tx), 2);
}

#[test]
fn tun_sources_vary_per_flow_within_the_configured_prefix() {
    let Some(mut bed) = bed("fx-tun-src") else {
        return;
    };
    bed.dataplane
        .set_tunnel_source(&"192.0.2.64/26".parse().unwrap())
        .unwrap();
    let sources: Vec<Ipv4Addr> = (0..16)
        .map(|i| {
            let out = bed.run(&to_director(55000 + i, VIP_TUN, 80));
            assert_eq!(out.action, XDP_TX);
            Ipv4Addr::from(<[u8; 4]>::try_from(&out.frame[14 + 12..14 + 16]).unwrap())
        })
        .collect();
    for source in &sources {
        assert_eq!(source.octets()[..3], [192, 0, 2], "{source}");
        assert_eq!(source.octets()[3] & 0xc0, 64, "{source}");
    }
    let distinct: std::collections::BTreeSet<_> = sources.iter().collect();
    assert!(distinct.len() > 8, "{sources:?}");
    let again = bed.run(&to_director(55000, VIP_TUN, 80));
    assert_eq!(&again.frame[14 + 12..14 + 16], &sources[0].octets());
}

/// The entry of `table` (positions in `reals`) that a flow hashing `addr` and `port`
/// (network order) lands on first, as lb-common tells user space the kernel hashes.
fn predicted(table: &[u32], reals: &[Ipv4Addr], addr: Ipv4Addr, port: u16) -> Ipv4Addr {
    let hash = hash_addr(FLOW_SEED, &Addr::from(IpAddr::V4(addr)), port);
    let len = (table.len() as u32).try_into().unwrap();
    reals[table[flow_bucket(hash, 0, len) as usize] as usize]
}

fn hash_table(build: impl FnOnce(&mut [u32])) -> Vec<u32> {
    let mut table = vec![0u32; HASH_TABLE_LEN];
    build(&mut table);
    table
}

fn maglev_table(reals: &[(Ipv4Addr, u32)]) -> Vec<u32> {
    let reals: Vec<MaglevReal> = reals
        .iter()
        .map(|(ip, weight)| MaglevReal {
            addr: Addr::from(IpAddr::V4(*ip)),
            port: 80u16.to_be(),
            weight: *weight,
        })
        .collect();
    hash_table(|t| {
        maglev(&reals, t).unwrap();
    })
}

fn client(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, i)
}

#[test]
fn sh_sends_every_flow_of_a_client_to_its_hashed_real() {
    let Some(bed) = bed("fx-sh") else { return };
    let reals = [REAL1, REAL2, REAL3];
    let table = hash_table(|t| {
        source_hash(&[1, 1, 1], t).unwrap();
    });
    let mut seen = Vec::new();
    for i in 1..=12 {
        let expected = predicted(&table, &reals, client(i), 0);
        seen.push(expected);
        for sport in [53000, 53001, 53002] {
            let out = bed.run(&syn_from(client(i), sport, VIP_SH));
            assert_eq!(out.action, XDP_TX);
            assert_eq!(dst_mac(&out.frame), mac(expected), "client {i}");
        }
    }
    seen.sort();
    seen.dedup();
    assert!(seen.len() > 1, "twelve clients all hashed to {seen:?}");
}

#[test]
fn mh_follows_its_maglev_table_and_mh_port_hashes_ports_too() {
    let Some(bed) = bed("fx-mh") else { return };
    let reals = [REAL1, REAL2, REAL3];
    let weighted = maglev_table(&[(REAL1, 2), (REAL2, 1), (REAL3, 1)]);
    for i in 1..=8 {
        let out = bed.run(&syn_from(client(i), 54000, VIP_MH));
        assert_eq!(
            dst_mac(&out.frame),
            mac(predicted(&weighted, &reals, client(i), 0))
        );
    }
    let even = maglev_table(&[(REAL1, 1), (REAL2, 1), (REAL3, 1)]);
    let mut seen = Vec::new();
    for sport in 54100..54112u16 {
        let out = bed.run(&syn_from(CLIENT, sport, VIP_MH_PORT));
        let expected = predicted(&even, &reals, CLIENT, sport.to_be());
        assert_eq!(dst_mac(&out.frame), mac(expected), "port {sport}");
        seen.push(expected);
    }
    seen.sort();
    seen.dedup();
    assert!(seen.len() > 1, "one client's ports all hashed to {seen:?}");
}

#[test]
fn mh_leaves_clients_of_the_other_reals_in_place_when_one_goes_down() {
    let Some(mut bed) = bed("fx-mh-down") else {
        return;
    };
    let reals = [REAL1, REAL2, REAL3];
    let before = maglev_table(&[(REAL1, 2), (REAL2, 1), (REAL3, 1)]);
    bed.apply(CONFIG, |real| real != REAL3);
    for i in 1..=16 {
        let was = predicted(&before, &reals, client(i), 0);
        let out = bed.run(&syn_from(client(i), 55000, VIP_MH));
        assert_eq!(out.action, XDP_TX);
        if was == REAL3 {
            assert_ne!(dst_mac(&out.frame), mac(REAL3), "client {i}");
        } else {
            assert_eq!(dst_mac(&out.frame), mac(was), "client {i} moved");
        }
    }
}

/// A client whose hash lands on the weight-0 real of the 203.0.113.123/64 services.
fn client_of_the_quiesced_real() -> Ipv4Addr {
    let table = hash_table(|t| {
        source_hash(&[0, 1], t).unwrap();
    });
    (1..=254)
        .map(client)
        .find(|c| predicted(&table, &[REAL1, REAL2], *c, 0) == REAL1)
        .expect("half the clients hash to the first real")
}

#[test]
fn sh_refuses_a_client_whose_real_has_weight_zero_unless_it_falls_back() {
    let Some(bed) = bed("fx-sh-zero") else {
        return;
    };
    let quiesced = client_of_the_quiesced_real();
    assert_eq!(
        bed.run(&syn_from(quiesced, 56000, VIP_SH_ZERO)).action,
        XDP_DROP
    );
    assert_eq!(bed.event(Event::NoReal), 1);
    let out = bed.run(&syn_from(quiesced, 56000, VIP_SH_FALLBACK));
    assert_eq!(out.action, XDP_TX);
    assert_eq!(dst_mac(&out.frame), mac(REAL2));
}

#[test]
fn dh_sends_every_client_of_a_destination_to_one_real() {
    let Some(bed) = bed("fx-dh") else { return };
    let table = hash_table(|t| {
        destination_hash(&[1, 1, 1], t).unwrap();
    });
    let expected = predicted(&table, &[REAL1, REAL2, REAL3], VIP_DH, 0);
    for i in 1..=6 {
        let out = bed.run(&syn_from(client(i), 57000 + u16::from(i), VIP_DH));
        assert_eq!(dst_mac(&out.frame), mac(expected), "client {i}");
    }
}

#[test]
fn too_big_for_the_tunnel_with_df_is_answered_with_fragmentation_needed() {
    let Some(bed) = bed("fx-mtu") else {
        return;
    };
    // 20 + 20 + 570 = 610 bytes, 630 tunnelled: over the route's 600.
    let sent = big_to_director(true, 570);
    let out = bed.run(&sent);
    assert_eq!(out.action, XDP_TX);
    let mut ip = Ipv4Header::new(
        0,
        64,
        IpNumber::ICMP,
        VIP_SMALL_MTU.octets(),
        CLIENT.octets(),
    )
    .unwrap();
    ip.dont_fragment = false;
    let quote = &sent[14..14 + 28];
    let expected = bytes(|out| {
        PacketBuilder::ethernet2(mac(LB0), CLIENT_MAC)
            .ip(IpHeaders::Ipv4(ip, Default::default()))
            .icmpv4(Icmpv4Type::DestinationUnreachable(
                DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 580 },
            ))
            .write(out, quote)
            .unwrap()
    });
    assert_eq!(out.frame, expected);
    assert_eq!(bed.event(Event::TooBig), 1);

    // 20 + 20 + 540 = 580 bytes, 600 tunnelled: goes through.
    let fits = bed.run(&big_to_director(true, 540));
    assert_eq!(fits.action, XDP_TX);
    assert_eq!(dst_mac(&fits.frame), mac(SMALL_MTU_REAL));
}

/// The reals new connections from consecutive ports starting at `first` go to.
fn reals_of_new_connections(bed: &Bed, first: u16, count: u16, vip: Ipv4Addr) -> Vec<[u8; 6]> {
    (first..first + count)
        .map(|sport| dst_mac(&bed.run(&syn_from(CLIENT, sport, vip)).frame))
        .collect()
}

#[test]
fn lc_sends_new_connections_to_the_real_with_fewest() {
    let Some(bed) = bed("fx-lc") else { return };
    assert_eq!(
        reals_of_new_connections(&bed, 58000, 3, VIP_LC),
        [REAL1, REAL2, REAL3].map(mac)
    );
    // The connection on REAL2 closes: a closed connection weighs 1/256 of an open one.
    bed.run(&fin_from(CLIENT, 58001, VIP_LC));
    assert_eq!(
        reals_of_new_connections(&bed, 58100, 2, VIP_LC),
        [REAL2, REAL1].map(mac)
    );
}

#[test]
fn wlc_weighs_connections_by_weight_and_keeps_the_first_of_equals() {
    let Some(bed) = bed("fx-wlc") else {
        return;
    };
    // Active counts (R1/3 against R2/1): 0-0, 1-0, 1-1, 2-1, 3-1 (a tie: R1), 4-1.
    assert_eq!(
        reals_of_new_connections(&bed, 59000, 6, VIP_WLC),
        [REAL1, REAL2, REAL1, REAL1, REAL1, REAL2].map(mac)
    );
}

#[test]
fn persistence_keeps_a_client_network_on_its_first_real() {
    let Some(mut bed) = bed("fx-persist") else {
        return;
    };
    let real_of = |bed: &Bed, client: Ipv4Addr, sport: u16| {
        let out = bed.run(&syn_from(client, sport, VIP_PERSIST));
        assert_eq!(out.action, XDP_TX);
        dst_mac(&out.frame)
    };
    assert_eq!(real_of(&bed, client(7), 61000), mac(REAL1));
    for sport in 61001..61005 {
        assert_eq!(real_of(&bed, client(7), sport), mac(REAL1), "port {sport}");
        assert_eq!(real_of(&bed, client(8), sport), mac(REAL1), "same /24");
    }
    let elsewhere = Ipv4Addr::new(198, 51, 101, 7);
    assert_eq!(real_of(&bed, elsewhere, 61100), mac(REAL2), "another /24");
    assert_eq!(real_of(&bed, elsewhere, 61101), mac(REAL2));

    // A real that goes down loses its persistent clients to the scheduler.
    bed.apply(CONFIG, |real| real != REAL1);
    let moved = real_of(&bed, client(7), 61200);
    assert_ne!(moved, mac(REAL1));
    assert_eq!(real_of(&bed, client(8), 61201), moved, "a new template");
}

#[test]
fn lblc_keeps_a_destination_on_its_real_until_overloaded_then_moves_it() {
    let Some(bed) = bed("fx-lblc") else {
        return;
    };
    // Weights 1: a real is overloaded past one active connection while the other has
    // none; the destination then moves to wlc's pick, and stays there.
    assert_eq!(
        reals_of_new_connections(&bed, 62000, 5, VIP_LBLC),
        [REAL1, REAL1, REAL2, REAL2, REAL2].map(mac)
    );
}

#[test]
fn lblcr_grows_a_destination_s_set_and_picks_the_least_loaded_member() {
    let Some(bed) = bed("fx-lblcr") else {
        return;
    };
    // As lblc until the first overload, which adds REAL2 to the set instead of replacing
    // REAL1; from then on the set's least loaded member (the first of equals) serves.
    assert_eq!(
        reals_of_new_connections(&bed, 63000, 5, VIP_LBLCR),
        [REAL1, REAL1, REAL2, REAL2, REAL1].map(mac)
    );
}

/// Takes REAL1 out of the 203.0.113.90 service's configuration.
fn remove_the_first_nodest_real(bed: &mut Bed) {
    let without = CONFIG.replace("real_server 192.0.2.11 80 { weight 5 }", "");
    bed.apply(&without, every_real_up);
}

#[test]
fn a_flow_whose_real_is_removed_is_rescheduled_by_default() {
    let Some(mut bed) = bed("fx-nodest-re") else {
        return;
    };
    let flow = syn_from(CLIENT, 64000, VIP_NODEST);
    assert_eq!(dst_mac(&bed.run(&flow).frame), mac(REAL1));
    remove_the_first_nodest_real(&mut bed);
    let out = bed.run(&flow);
    assert_eq!(out.action, XDP_TX);
    assert_eq!(dst_mac(&out.frame), mac(REAL2));
}

#[test]
fn a_flow_whose_real_is_removed_is_dropped_when_told_so() {
    let Some(mut bed) = bed("fx-nodest-drop") else {
        return;
    };
    bed.dataplane.set_nodest(Nodest::Drop);
    bed.apply(CONFIG, every_real_up);
    let flow = syn_from(CLIENT, 64100, VIP_NODEST);
    assert_eq!(dst_mac(&bed.run(&flow).frame), mac(REAL1));
    remove_the_first_nodest_real(&mut bed);
    assert_eq!(bed.run(&flow).action, XDP_DROP);
    assert_eq!(bed.event(Event::NoDest), 1);
    let fresh = bed.run(&syn_from(CLIENT, 64101, VIP_NODEST));
    assert_eq!(dst_mac(&fresh.frame), mac(REAL2), "new flows still go");
}
