//! LVS-NAT and ICMP-error fixtures: the balancer through BPF test-run, exact frames
//! asserted both ways.
//!
//! The bed is the static network of `bpf_bed::net`: `lb0` the reals' side, `lb1` the
//! clients'. Client packets arrive on `lb1` and leave on `lb0` readdressed to a real (port
//! 8080 or 5353, not the VIP's); the reals' answers arrive on `lb0` and leave on `lb1` from
//! the VIP. Expected frames are built independently by etherparse, checksums computed in
//! full, so a match also proves the program's incremental checksum updates.

#[path = "../src/bpf_bed/mod.rs"]
mod bpf_bed;

use std::{
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use bpf_bed::{
    Bed, XDP_DROP, XDP_PASS, XDP_REDIRECT, after_a_clock_tick, every_real_up,
    frame::{Macs, bytes, ip, ip_packet, tcp as segment, udp},
    net::{CLIENT, CLIENT6, LB0, LB1, REAL6_1 as REAL6, REALS, mac},
    plan,
    table::{self, case},
};
use etherparse::{Icmpv4Type, Icmpv6Type, icmpv4::DestUnreachableHeader};
use lb_common::stats::Event;

const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 50);
/// Answers the client's VIP traffic by DR.
const DR_VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 60);
/// Answers the client's VIP traffic through an IPIP tunnel.
const TUN_VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 70);
/// A router on the client's side that sends ICMP errors about the VIPs' answers.
const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const ROUTER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 0x50);

const CONFIG: &str = "
virtual_server 203.0.113.50 80 {
    lb_algo rr
    lb_kind NAT
    real_server 192.0.2.11 8080 { }
    real_server 192.0.2.12 8080 { }
    real_server 192.0.2.13 8080 { }
}
virtual_server 203.0.113.50 53 {
    lb_algo rr
    lb_kind NAT
    protocol UDP
    real_server 192.0.2.11 5353 { }
}
virtual_server 203.0.113.60 80 {
    lb_algo rr
    lb_kind DR
    real_server 192.0.2.11 80 { }
}
virtual_server 203.0.113.70 80 {
    lb_algo rr
    lb_kind TUN
    real_server 192.0.2.11 80 { }
}
virtual_server 2001:db8:ff::50 80 {
    lb_algo rr
    lb_kind NAT
    real_server 2001:db8:2::11 8080 { }
}
";

/// The bed with its TCP FIN timeout `tcp_fin` (configuration only has whole seconds; the
/// plan takes any duration).
fn with_fin_timeout(tag: &str, tcp_fin: Duration) -> Option<Bed> {
    let mut bed = Bed::empty(tag)?;
    let mut plan = plan(CONFIG, every_real_up);
    plan.timeouts.tcp_fin = tcp_fin;
    bed.apply_plan(&plan);
    Some(bed)
}

/// A TCP segment with `flags` (`"S"`, `"SA"`, `"A"`, `"FA"`) carrying `GET /`.
fn tcp(macs: Macs, src: impl Into<SocketAddr>, dst: impl Into<SocketAddr>, flags: &str) -> Vec<u8> {
    let mut builder = segment(macs, src, dst);
    for flag in flags.chars() {
        builder = match flag {
            'S' => builder.syn(),
            'A' => builder.ack(2000),
            'F' => builder.fin(),
            other => panic!("flag {other}"),
        };
    }
    bytes(|out| builder.write(out, b"GET /").unwrap())
}

/// The router's "fragmentation needed" to `dst` about IPv4 packet `quote`, in a frame
/// `macs`.
fn frag_needed(macs: Macs, dst: Ipv4Addr, quote: &[u8]) -> Vec<u8> {
    let kind = DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 };
    bytes(|out| {
        ip(macs, ROUTER.into(), dst.into())
            .icmpv4(Icmpv4Type::DestinationUnreachable(kind))
            .write(out, quote)
            .unwrap()
    })
}

/// The client's frame to the director.
fn client_to_vip(sport: u16, flags: &str) -> Vec<u8> {
    tcp((mac(CLIENT), mac(LB1)), (CLIENT, sport), (VIP, 80), flags)
}

/// What the director sends `real` for that frame.
fn director_to_real(real: Ipv4Addr, sport: u16, flags: &str) -> Vec<u8> {
    tcp((mac(LB0), mac(real)), (CLIENT, sport), (real, 8080), flags)
}

/// A real's answer, as it reaches the director.
fn real_to_client(real: Ipv4Addr, dport: u16, flags: &str) -> Vec<u8> {
    tcp((mac(real), mac(LB0)), (real, 8080), (CLIENT, dport), flags)
}

/// What the director sends the client for that answer.
fn vip_to_client(dport: u16, flags: &str) -> Vec<u8> {
    tcp((mac(LB1), mac(CLIENT)), (VIP, 80), (CLIENT, dport), flags)
}

/// Which real a frame the director sent is addressed to.
fn real_of(frame: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(frame[30], frame[31], frame[32], frame[33])
}

/// Single frames, each on a balancer of its own.
#[test]
fn nat_cases() {
    let unowned = frag_needed(
        (mac(ROUTER), mac(LB1)),
        VIP,
        ip_packet(&vip_to_client(40043, "SA")),
    );
    let cases = [
        case(
            "a_client_packet_is_readdressed_to_the_real_and_its_port",
            client_to_vip(40000, "S"),
        )
        .sent_by_a_client()
        .gives(XDP_REDIRECT, director_to_real(REALS[0], 40000, "S"))
        .counts(Event::Redirect, 1),
        case(
            "an_icmp_error_about_a_flow_no_real_owns_passes_and_is_counted",
            unowned,
        )
        .sent_by_a_client()
        .leaves(XDP_PASS)
        .counts(Event::IcmpUnplaced, 1),
    ];
    table::run_balancer("nat-cases", CONFIG, &cases);
}

#[test]
fn the_real_answer_is_readdressed_from_the_vip_to_the_client() {
    let Some(bed) = Bed::new("nat-back", CONFIG) else {
        return;
    };
    bed.client_sends(&client_to_vip(40001, "S"));
    let out = bed.real_sends(&real_to_client(REALS[0], 40001, "SA"));
    assert_eq!(out.action, XDP_REDIRECT);
    assert_eq!(out.frame, vip_to_client(40001, "SA"));
    assert_eq!(bed.event(Event::NatAnswer), 1);

    let next = bed.client_sends(&client_to_vip(40001, "A"));
    assert_eq!(next.frame, director_to_real(REALS[0], 40001, "A"));
    // Both client packets count, and one new flow: scheduled by the balancer, forwarded by
    // the NAT stage.
    let stats = bed.dataplane.stats().expect("stats");
    let (_, service) = stats
        .services
        .iter()
        .find(|(k, _)| k.addr == SocketAddr::from((VIP, 80)))
        .expect("the NAT service's counters");
    assert_eq!((service.packets, service.new_flows), (2, 1));
}

#[test]
fn traffic_from_a_real_that_answers_no_connection_passes_untouched() {
    let Some(bed) = Bed::new("nat-none", CONFIG) else {
        return;
    };
    bed.client_sends(&client_to_vip(40002, "S"));
    for frame in [
        real_to_client(REALS[0], 40003, "SA"),
        real_to_client(REALS[1], 40002, "SA"),
    ] {
        let out = bed.real_sends(&frame);
        assert_eq!((out.action, &out.frame), (XDP_PASS, &frame));
    }
    assert_eq!(bed.event(Event::NatAnswer), 0);
    assert_eq!(bed.event(Event::NotVip), 2);
}

#[test]
fn udp_is_translated_both_ways_and_a_zero_checksum_stays_zero() {
    let Some(bed) = Bed::new("nat-udp", CONFIG) else {
        return;
    };
    let query = udp((mac(CLIENT), mac(LB1)), (CLIENT, 40010), (VIP, 53));
    let out = bed.client_sends(&query);
    assert_eq!(out.action, XDP_REDIRECT);
    assert_eq!(
        out.frame,
        udp((mac(LB0), mac(REALS[0])), (CLIENT, 40010), (REALS[0], 5353))
    );

    let answer = udp((mac(REALS[0]), mac(LB0)), (REALS[0], 5353), (CLIENT, 40010));
    let out = bed.real_sends(&answer);
    assert_eq!(
        out.frame,
        udp((mac(LB1), mac(CLIENT)), (VIP, 53), (CLIENT, 40010))
    );

    let without_checksum = |mut frame: Vec<u8>| {
        frame[14 + 20 + 6..14 + 20 + 8].fill(0);
        frame
    };
    let out = bed.real_sends(&without_checksum(answer));
    assert_eq!(
        out.frame,
        without_checksum(udp((mac(LB1), mac(CLIENT)), (VIP, 53), (CLIENT, 40010)))
    );
}

#[test]
fn after_a_fin_the_connection_expires_on_the_short_timeout_only() {
    // A timeout of one nanosecond: past once the clock ticks.
    const TCP_FIN: Duration = Duration::from_nanos(1);
    let Some(bed) = with_fin_timeout("nat-fin", TCP_FIN) else {
        return;
    };
    let closing = 40020;
    let open = 40021;
    assert_eq!(
        real_of(&bed.client_sends(&client_to_vip(closing, "S")).frame),
        REALS[0]
    );
    assert_eq!(
        real_of(&bed.client_sends(&client_to_vip(open, "S")).frame),
        REALS[1]
    );
    assert_eq!(
        bed.client_sends(&client_to_vip(closing, "FA")).frame,
        director_to_real(REALS[0], closing, "FA"),
        "the FIN itself belongs to the open connection"
    );
    bed.client_sends(&client_to_vip(open, "A"));
    after_a_clock_tick();

    let stale_answer = real_to_client(REALS[0], closing, "A");
    let out = bed.real_sends(&stale_answer);
    assert_eq!(
        (out.action, &out.frame),
        (XDP_PASS, &stale_answer),
        "an expired connection's answer was translated"
    );
    assert_eq!(
        bed.client_sends(&client_to_vip(open, "A")).frame,
        director_to_real(REALS[1], open, "A"),
        "an open connection expired on the FIN timeout"
    );
    assert_eq!(
        bed.client_sends(&client_to_vip(closing, "S")).frame,
        director_to_real(REALS[2], closing, "S"),
        "a reused port after expiry is a new connection, scheduled afresh"
    );
}

#[test]
fn ipv6_is_translated_both_ways() {
    let Some(bed) = Bed::new("nat-v6", CONFIG) else {
        return;
    };
    let syn = tcp((mac(CLIENT6), mac(LB1)), (CLIENT6, 40030), (VIP6, 80), "S");
    let out = bed.client_sends(&syn);
    assert_eq!(out.action, XDP_REDIRECT);
    assert_eq!(
        out.frame,
        tcp((mac(LB0), mac(REAL6)), (CLIENT6, 40030), (REAL6, 8080), "S")
    );

    let answer = tcp(
        (mac(REAL6), mac(LB0)),
        (REAL6, 8080),
        (CLIENT6, 40030),
        "SA",
    );
    let out = bed.real_sends(&answer);
    assert_eq!(out.action, XDP_REDIRECT);
    assert_eq!(
        out.frame,
        tcp((mac(LB1), mac(CLIENT6)), (VIP6, 80), (CLIENT6, 40030), "SA")
    );
    assert_eq!(bed.event(Event::NatAnswer), 1);
}

#[test]
fn a_fragmentation_needed_about_a_dr_flow_goes_to_its_real() {
    let Some(bed) = Bed::new("icmp-dr", CONFIG) else {
        return;
    };
    let syn = tcp((mac(CLIENT), mac(LB1)), (CLIENT, 40040), (DR_VIP, 80), "S");
    assert_eq!(
        real_of(&bed.client_sends(&syn).frame),
        DR_VIP,
        "DR keeps the VIP"
    );
    let answer = tcp(
        (mac(REALS[0]), mac(LB0)),
        (DR_VIP, 80),
        (CLIENT, 40040),
        "SA",
    );
    let error = frag_needed((mac(ROUTER), mac(LB1)), DR_VIP, ip_packet(&answer));
    let out = bed.client_sends(&error);
    assert_eq!(out.action, XDP_REDIRECT);
    assert_eq!(
        out.frame,
        frag_needed((mac(LB0), mac(REALS[0])), DR_VIP, ip_packet(&answer))
    );
}

#[test]
fn a_fragmentation_needed_about_a_tun_flow_is_tunnelled_to_its_real() {
    let Some(bed) = Bed::new("icmp-tun", CONFIG) else {
        return;
    };
    bed.client_sends(&tcp(
        (mac(CLIENT), mac(LB1)),
        (CLIENT, 40044),
        (TUN_VIP, 80),
        "S",
    ));
    let answer = tcp(
        (mac(REALS[0]), mac(LB0)),
        (TUN_VIP, 80),
        (CLIENT, 40044),
        "SA",
    );
    let error = frag_needed((mac(ROUTER), mac(LB1)), TUN_VIP, ip_packet(&answer));
    let out = bed.client_sends(&error);
    assert_eq!(out.action, XDP_REDIRECT);
    let outer = ip_packet(&out.frame);
    assert_eq!(out.frame[..6], mac(REALS[0]));
    assert_eq!(
        (outer[9], &outer[16..20]),
        (4, &REALS[0].octets()[..]),
        "IPIP to the real"
    );
    assert_eq!(
        &outer[20..],
        ip_packet(&error),
        "the error, unchanged inside"
    );
}

#[test]
fn a_fragmentation_needed_about_a_nat_flow_is_translated_for_its_real() {
    let Some(bed) = Bed::new("icmp-nat", CONFIG) else {
        return;
    };
    bed.client_sends(&client_to_vip(40041, "S"));
    let quote = vip_to_client(40041, "SA");
    let translated = real_to_client(REALS[0], 40041, "SA");
    // A full quote, and one cut after the ports as the minimum RFC 792 asks for, which
    // leaves the TCP checksum out.
    for len in [ip_packet(&quote).len(), 20 + 8] {
        let error = frag_needed((mac(ROUTER), mac(LB1)), VIP, &ip_packet(&quote)[..len]);
        let out = bed.client_sends(&error);
        assert_eq!(out.action, XDP_REDIRECT, "quote of {len}");
        assert_eq!(
            out.frame,
            frag_needed(
                (mac(LB0), mac(REALS[0])),
                REALS[0],
                &ip_packet(&translated)[..len]
            ),
            "quote of {len}"
        );
    }
}

#[test]
fn a_packet_too_big_about_an_ipv6_nat_flow_is_translated_for_its_real() {
    let Some(bed) = Bed::new("icmp-nat6", CONFIG) else {
        return;
    };
    bed.client_sends(&tcp(
        (mac(CLIENT6), mac(LB1)),
        (CLIENT6, 40042),
        (VIP6, 80),
        "S",
    ));
    let too_big = |(from, to): ([u8; 6], [u8; 6]), dst: Ipv6Addr, quote: &[u8]| {
        let mut frame = Vec::new();
        ip((from, to), ROUTER6.into(), dst.into())
            .icmpv6(Icmpv6Type::PacketTooBig { mtu: 1280 })
            .write(&mut frame, quote)
            .unwrap();
        frame
    };
    let quote = tcp((mac(LB1), mac(CLIENT6)), (VIP6, 80), (CLIENT6, 40042), "SA");
    let out = bed.client_sends(&too_big((mac(ROUTER6), mac(LB1)), VIP6, ip_packet(&quote)));
    assert_eq!(out.action, XDP_REDIRECT);
    let translated = tcp(
        (mac(REAL6), mac(LB0)),
        (REAL6, 8080),
        (CLIENT6, 40042),
        "SA",
    );
    assert_eq!(
        out.frame,
        too_big((mac(LB0), mac(REAL6)), REAL6, ip_packet(&translated))
    );
}

/// A first fragment carries the ports, and is translated as any packet of its connection;
/// the later ones carry none to translate, and are dropped, counted, rather than passed to
/// the director, which holds the VIP.
#[test]
fn later_fragments_of_a_nat_datagram_are_dropped() {
    let Some(bed) = Bed::new("nat-frag", CONFIG) else {
        return;
    };
    let fragment = |frame: Vec<u8>, frag_off: [u8; 2]| {
        let mut frame = frame;
        frame[14 + 4..14 + 6].copy_from_slice(&[0, 7]);
        frame[14 + 6..14 + 8].copy_from_slice(&frag_off);
        frame
    };
    let first = fragment(client_to_vip(40100, "S"), [0x20, 0]);
    let out = bed.client_sends(&first);
    assert_eq!(
        real_of(&out.frame),
        REALS[0],
        "the first fragment was not translated"
    );
    let later = fragment(client_to_vip(40100, "S"), [0, 0x10]);
    assert_eq!(bed.client_sends(&later).action, XDP_DROP);
    assert_eq!(bed.event(Event::FragmentDropped), 1);
}
