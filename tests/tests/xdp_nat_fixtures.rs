//! LVS-NAT and ICMP-error fixtures: the balancer through BPF test-run, exact frames
//! asserted both ways.
//!
//! The namespace has the director's two sides as interfaces with static neighbours:
//!
//! - `lb0` 192.0.2.2/24, the reals' LAN: reals 192.0.2.11-13 resolved;
//! - `lb1` 198.51.100.2/24, the clients' LAN: the client 198.51.100.7 resolved;
//! - the same in IPv6: 2001:db8:2::2/64 on `lb0` with real 2001:db8:2::11, and
//!   2001:db8:1::2/64 on `lb1` with client 2001:db8:1::7.
//!
//! Client packets arrive on `lb1` and leave on `lb0` readdressed to a real (port 8080 or
//! 5353, not the VIP's); the reals' answers arrive on `lb0` and leave on `lb1` from the VIP.
//! Expected frames are built independently by etherparse, checksums computed in full, so a
//! match also proves the program's incremental checksum updates.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use etherparse::{
    Icmpv4Type, Icmpv6Type, IpHeaders, PacketBuilder, PacketBuilderStep,
    icmpv4::DestUnreachableHeader,
};
use lb_common::stats::Event;
use xlb::{
    config::{self, RealKey},
    dataplane::{
        Conditions, Plan,
        xdp::{TestRunOutcome, XdpDataPlane},
    },
};
use xlb_testbed::{MacAddr, StaticNet, is_root, note_skip};

const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const LB0: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const LB1: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const REALS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(192, 0, 2, 11),
    Ipv4Addr::new(192, 0, 2, 12),
    Ipv4Addr::new(192, 0, 2, 13),
];
const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 50);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 7);
const REAL6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x11);
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

struct Bed {
    net: StaticNet,
    dataplane: XdpDataPlane,
    lb0: u32,
    lb1: u32,
}

struct AllUp;

impl Conditions for AllUp {
    fn healthy(&self, _: &RealKey) -> bool {
        true
    }

    fn serves(&self, _: IpAddr) -> bool {
        true
    }
}

impl Bed {
    fn new(tag: &str) -> Option<Self> {
        Self::with_fin_timeout(tag, None)
    }

    /// The bed, its TCP FIN timeout `tcp_fin` when given (configuration only has whole
    /// seconds; the plan takes any duration).
    fn with_fin_timeout(tag: &str, tcp_fin: Option<Duration>) -> Option<Self> {
        if !is_root() {
            note_skip("xdp_nat_fixtures", "BPF test-run and namespaces need root");
            return None;
        }
        let net = StaticNet::new(tag).expect("namespace");
        let lb0 = net.add_interface("lb0", LB0, 24).unwrap();
        let lb1 = net.add_interface("lb1", LB1, 24).unwrap();
        for real in REALS {
            net.add_neighbour("lb0", real).unwrap();
        }
        net.add_neighbour("lb1", CLIENT).unwrap();
        net.add_ipv6_address("lb0", Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 2), 64)
            .unwrap();
        net.add_ipv6_address("lb1", Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2), 64)
            .unwrap();
        net.add_ipv6_neighbour("lb0", REAL6).unwrap();
        net.add_ipv6_neighbour("lb1", CLIENT6).unwrap();
        let (mut dataplane, _) = XdpDataPlane::load(Some(1024)).expect("load");
        let config = config::parse_str("nat.conf", CONFIG)
            .expect("config")
            .config;
        let mut plan = Plan::new(&config, &AllUp);
        if let Some(tcp_fin) = tcp_fin {
            plan.timeouts.tcp_fin = tcp_fin;
        }
        dataplane.apply(&plan).expect("apply");
        Some(Self {
            net,
            dataplane,
            lb0,
            lb1,
        })
    }

    fn run_on(&self, ingress: u32, frame: &[u8]) -> TestRunOutcome {
        let dataplane = &self.dataplane;
        self.net
            .ns()
            .run(|| dataplane.test_run(frame, Some(ingress), 1))
            .unwrap()
            .expect("test run")
    }

    /// A frame from the client's side.
    fn client_sends(&self, frame: &[u8]) -> TestRunOutcome {
        self.run_on(self.lb1, frame)
    }

    /// A frame from the reals' side.
    fn real_sends(&self, frame: &[u8]) -> TestRunOutcome {
        self.run_on(self.lb0, frame)
    }

    fn event(&self, event: Event) -> u64 {
        let stats = self.dataplane.stats().expect("stats");
        stats.events.iter().find(|(e, _)| *e == event).unwrap().1
    }
}

/// The test bed's MAC for a host with address `addr`; the director's interfaces have the
/// MACs of their IPv4 addresses.
fn mac(addr: impl Into<IpAddr>) -> [u8; 6] {
    match addr.into() {
        IpAddr::V4(v4) => MacAddr::for_ipv4(v4).0,
        IpAddr::V6(v6) => MacAddr::for_ipv6(v6).0,
    }
}

/// A frame from `from` to `to` carrying an IP packet from `src` to `dst`.
fn ip(from: [u8; 6], to: [u8; 6], src: IpAddr, dst: IpAddr) -> PacketBuilderStep<IpHeaders> {
    let eth = PacketBuilder::ethernet2(from, to);
    match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => eth.ipv4(src.octets(), dst.octets(), 64),
        (IpAddr::V6(src), IpAddr::V6(dst)) => eth.ipv6(src.octets(), dst.octets(), 64),
        _ => panic!("{src} and {dst} are of different families"),
    }
}

/// A TCP segment with `flags` (`"S"`, `"SA"`, `"A"`, `"FA"`) in a frame from `from` to `to`.
fn tcp(
    (from, to): ([u8; 6], [u8; 6]),
    src: impl Into<SocketAddr>,
    dst: impl Into<SocketAddr>,
    flags: &str,
) -> Vec<u8> {
    let (src, dst) = (src.into(), dst.into());
    let mut builder = ip(from, to, src.ip(), dst.ip()).tcp(src.port(), dst.port(), 1000, 64240);
    for flag in flags.chars() {
        builder = match flag {
            'S' => builder.syn(),
            'A' => builder.ack(2000),
            'F' => builder.fin(),
            other => panic!("flag {other}"),
        };
    }
    let mut frame = Vec::new();
    builder.write(&mut frame, b"GET /").unwrap();
    frame
}

fn udp(
    (from, to): ([u8; 6], [u8; 6]),
    src: impl Into<SocketAddr>,
    dst: impl Into<SocketAddr>,
) -> Vec<u8> {
    let (src, dst) = (src.into(), dst.into());
    let mut frame = Vec::new();
    ip(from, to, src.ip(), dst.ip())
        .udp(src.port(), dst.port())
        .write(&mut frame, b"query")
        .unwrap();
    frame
}

/// The router's "fragmentation needed" to `dst` about IPv4 packet `quote`, in a frame from
/// `from` to `to`.
fn frag_needed((from, to): ([u8; 6], [u8; 6]), dst: Ipv4Addr, quote: &[u8]) -> Vec<u8> {
    let kind = DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 };
    let mut frame = Vec::new();
    ip(from, to, ROUTER.into(), dst.into())
        .icmpv4(Icmpv4Type::DestinationUnreachable(kind))
        .write(&mut frame, quote)
        .unwrap();
    frame
}

/// The IP packet in a frame.
fn ip_packet(frame: &[u8]) -> &[u8] {
    &frame[14..]
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

#[test]
fn a_client_packet_is_readdressed_to_the_real_and_its_port() {
    let Some(bed) = Bed::new("nat-fwd") else {
        return;
    };
    let out = bed.client_sends(&client_to_vip(40000, "S"));
    assert_eq!(out.action, XDP_REDIRECT);
    assert_eq!(out.frame, director_to_real(REALS[0], 40000, "S"));
    assert_eq!(bed.event(Event::Redirect), 1);
}

#[test]
fn the_real_answer_is_readdressed_from_the_vip_to_the_client() {
    let Some(bed) = Bed::new("nat-back") else {
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
    let Some(bed) = Bed::new("nat-none") else {
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
    let Some(bed) = Bed::new("nat-udp") else {
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
    // Any later packet is past a timeout of one nanosecond: no waiting for the clock.
    const TCP_FIN: Duration = Duration::from_nanos(1);
    let Some(bed) = Bed::with_fin_timeout("nat-fin", Some(TCP_FIN)) else {
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
    let Some(bed) = Bed::new("nat-v6") else {
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
    let Some(bed) = Bed::new("icmp-dr") else {
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
    let Some(bed) = Bed::new("icmp-tun") else {
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
    let Some(bed) = Bed::new("icmp-nat") else {
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
    let Some(bed) = Bed::new("icmp-nat6") else {
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
        ip(from, to, ROUTER6.into(), dst.into())
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

#[test]
fn an_icmp_error_about_a_flow_no_real_owns_passes_and_is_counted() {
    let Some(bed) = Bed::new("icmp-none") else {
        return;
    };
    let quote = vip_to_client(40043, "SA");
    let error = frag_needed((mac(ROUTER), mac(LB1)), VIP, ip_packet(&quote));
    let out = bed.client_sends(&error);
    assert_eq!((out.action, &out.frame), (XDP_PASS, &error));
    assert_eq!(bed.event(Event::IcmpUnplaced), 1);
}
