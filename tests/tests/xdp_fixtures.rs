//! Data-plane fixtures: the real balancer object run through BPF test-run on crafted frames,
//! asserting the action and the exact bytes it leaves (Katran's fixture style).
//!
//! Each test gets its own namespace holding two dummy interfaces with static neighbours, so
//! the program's `bpf_fib_lookup` sees a predictable world:
//!
//! - `lb0` 192.0.2.2/24: reals 192.0.2.11-13 resolved; 192.0.2.99 never resolved; a gateway
//!   192.0.2.254 leading to 203.0.113.128/25.
//! - `lb1` 198.51.100.2/24: real 198.51.100.21 resolved.
//! - `lb0` also 2001:db8:2::2/64: reals 2001:db8:2::11-12 resolved.
//! - reals 192.0.2.14 and 2001:db8:2::14, resolved, behind routes of MTU 600 and 1400.
//!
//! Frames arrive on `lb0`. Expected frames are built independently with etherparse.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
use xlb::{
    config::{self, RealKey},
    dataplane::{
        Conditions, Plan,
        xdp::{Nodest, TestRunOutcome, XdpDataPlane, decap::Decap},
    },
};
use xlb_testbed::{MacAddr, StaticNet, is_root, note_skip};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;
const XDP_REDIRECT: u32 = 4;

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const CLIENT_MAC: [u8; 6] = [0x02, 0xc1, 0, 0, 0, 0x07];
const LB0: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const LB1: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const REAL1: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
const REAL2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 12);
const REAL3: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 13);
const REMOTE_REAL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 21);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);

const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x51, 0, 0, 0, 0, 7);
const LB0_6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 2);
const REAL6_1: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x11);
const REAL6_2: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x12);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x203, 0, 0, 0, 0, 0x10);

const SMALL_MTU_REAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 14);
const SMALL_MTU_REAL6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x14);

const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const VIP_REMOTE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 20);
const VIP_BEHIND_GATEWAY: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 30);
const VIP_UNRESOLVED: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 40);

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

/// The interfaces above, and the balancer loaded with [`CONFIG`].
struct Bed {
    net: StaticNet,
    dataplane: XdpDataPlane,
    lb0: u32,
}

/// The agent's view as a fixture fixes it: every VIP served, reals healthy as `healthy` says.
struct Health<F>(F);

impl<F: Fn(Ipv4Addr) -> bool> Conditions for Health<F> {
    fn healthy(&self, real: &RealKey) -> bool {
        match real.addr.ip() {
            IpAddr::V4(ip) => (self.0)(ip),
            IpAddr::V6(_) => true,
        }
    }

    fn serves(&self, _: IpAddr) -> bool {
        true
    }
}

impl Bed {
    /// The bed, or `None` (with a note) when not root.
    fn new(tag: &str) -> Option<Self> {
        if !is_root() {
            note_skip("xdp_fixtures", "BPF test-run and namespaces need root");
            return None;
        }
        let net = StaticNet::new(tag).expect("namespace");
        let lb0 = net.add_interface("lb0", LB0, 24).unwrap();
        net.add_interface("lb1", LB1, 24).unwrap();
        for real in [REAL1, REAL2, REAL3, GATEWAY] {
            net.add_neighbour("lb0", real).unwrap();
        }
        net.add_neighbour("lb1", REMOTE_REAL).unwrap();
        net.add_ipv6_address("lb0", LB0_6, 64).unwrap();
        for real in [REAL6_1, REAL6_2, SMALL_MTU_REAL6] {
            net.add_ipv6_neighbour("lb0", real).unwrap();
        }
        net.add_neighbour("lb0", SMALL_MTU_REAL).unwrap();
        for (real, mtu) in [
            (SMALL_MTU_REAL.to_string(), "600"),
            (SMALL_MTU_REAL6.to_string(), "1400"),
        ] {
            net.ns()
                .ip(&["route", "add", &real, "dev", "lb0", "mtu", "lock", mtu])
                .unwrap();
        }
        net.add_route("203.0.113.128/25", IpAddr::V4(GATEWAY))
            .unwrap();
        let (dataplane, _) = XdpDataPlane::load(Some(1024)).expect("load");
        let mut bed = Self {
            net,
            dataplane,
            lb0,
        };
        bed.apply(|_| true);
        Some(bed)
    }

    /// Applies [`CONFIG`] with each real's health as `healthy` says.
    fn apply(&mut self, healthy: impl Fn(Ipv4Addr) -> bool) {
        self.apply_text(CONFIG, healthy);
    }

    /// Applies the configuration `text`.
    fn apply_text(&mut self, text: &str, healthy: impl Fn(Ipv4Addr) -> bool) {
        let config = config::parse_str("fixture.conf", text)
            .expect("config")
            .config;
        self.dataplane
            .apply(&Plan::new(&config, &Health(healthy)))
            .expect("apply");
    }

    fn run(&self, frame: &[u8]) -> TestRunOutcome {
        let lb0 = self.lb0;
        let dataplane = &self.dataplane;
        self.net
            .ns()
            .run(|| dataplane.test_run(frame, Some(lb0), 1))
            .unwrap()
            .expect("test run")
    }

    fn event(&self, event: Event) -> u64 {
        let stats = self.dataplane.stats().expect("stats");
        stats
            .events
            .iter()
            .find(|(e, _)| *e == event)
            .map(|(_, n)| *n)
            .unwrap()
    }
}

fn mac(addr: Ipv4Addr) -> [u8; 6] {
    MacAddr::for_ipv4(addr).0
}

/// A TCP SYN from the client to `dst`, in a frame from `from` to `to`.
fn syn(from: [u8; 6], to: [u8; 6], sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    bytes(|out| {
        PacketBuilder::ethernet2(from, to)
            .ipv4(CLIENT.octets(), dst.octets(), 64)
            .tcp(sport, dport, 1000, 64240)
            .syn()
            .write(out, &[])
            .unwrap()
    })
}

fn udp(from: [u8; 6], to: [u8; 6], sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    bytes(|out| {
        PacketBuilder::ethernet2(from, to)
            .ipv4(CLIENT.octets(), dst.octets(), 64)
            .udp(sport, dport)
            .write(out, b"query")
            .unwrap()
    })
}

/// A client frame to the director's `lb0` MAC.
fn to_director(sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    syn(CLIENT_MAC, mac(LB0), sport, dst, dport)
}

/// Serialises a finished etherparse builder.
fn bytes(write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut frame = Vec::new();
    write(&mut frame);
    frame
}

/// Where a frame was sent: its destination MAC.
fn dst_mac(frame: &[u8]) -> [u8; 6] {
    frame[..6].try_into().unwrap()
}

#[test]
fn vip_hit_rewrites_only_the_macs_and_bounces() {
    let Some(bed) = Bed::new("fx-hit") else {
        return;
    };
    let out = bed.run(&to_director(40000, VIP, 80));
    assert_eq!(out.action, XDP_TX);
    assert_eq!(out.frame, syn(mac(LB0), mac(REAL1), 40000, VIP, 80));
    assert_eq!(bed.event(Event::Tx), 1);
}

#[test]
fn new_flows_take_the_reals_in_turn() {
    let Some(bed) = Bed::new("fx-rr") else { return };
    let reals: Vec<[u8; 6]> = (0..6)
        .map(|i| dst_mac(&bed.run(&to_director(41000 + i, VIP, 80)).frame))
        .collect();
    let expected = [REAL1, REAL2, REAL3, REAL1, REAL2, REAL3].map(mac);
    assert_eq!(reals, expected);
}

#[test]
fn an_established_flow_keeps_its_real_when_that_real_goes_down() {
    let Some(mut bed) = Bed::new("fx-flow") else {
        return;
    };
    let first = bed.run(&to_director(42000, VIP, 80));
    assert_eq!(dst_mac(&first.frame), mac(REAL1));
    bed.run(&to_director(42001, VIP, 80));
    bed.apply(|real| real != REAL1);

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

#[test]
fn wrr_interleaves_three_to_one_and_weight_zero_takes_nothing() {
    let Some(bed) = Bed::new("fx-wrr") else {
        return;
    };
    let reals: Vec<[u8; 6]> = (0..8)
        .map(|i| {
            let out = bed.run(&udp(CLIENT_MAC, mac(LB0), 43000 + i, VIP, 53));
            assert_eq!(out.action, XDP_TX);
            dst_mac(&out.frame)
        })
        .collect();
    let expected = [REAL1, REAL1, REAL1, REAL2, REAL1, REAL1, REAL1, REAL2].map(mac);
    assert_eq!(reals, expected);
}

#[test]
fn a_real_on_another_interface_is_reached_by_redirect() {
    let Some(bed) = Bed::new("fx-redir") else {
        return;
    };
    let out = bed.run(&to_director(44000, VIP_REMOTE, 80));
    assert_eq!(out.action, XDP_REDIRECT);
    assert_eq!(
        out.frame,
        syn(mac(LB1), mac(REMOTE_REAL), 44000, VIP_REMOTE, 80)
    );
    assert_eq!(bed.event(Event::Redirect), 1);
}

#[test]
fn a_real_behind_a_gateway_is_dropped_and_counted() {
    let Some(bed) = Bed::new("fx-gw") else { return };
    assert_eq!(
        bed.run(&to_director(45000, VIP_BEHIND_GATEWAY, 80)).action,
        XDP_DROP
    );
    assert_eq!(bed.event(Event::NotOnLink), 1);
}

#[test]
fn an_unresolved_real_passes_the_packet_untouched() {
    let Some(bed) = Bed::new("fx-neigh") else {
        return;
    };
    let frame = to_director(46000, VIP_UNRESOLVED, 80);
    let out = bed.run(&frame);
    assert_eq!(out.action, XDP_PASS);
    assert_eq!(out.frame, frame);
    assert_eq!(bed.event(Event::NeighMiss), 1);
}

#[test]
fn a_service_without_a_live_real_drops_and_counts() {
    let Some(mut bed) = Bed::new("fx-noreal") else {
        return;
    };
    bed.apply(|_| false);
    assert_eq!(bed.run(&to_director(47000, VIP, 80)).action, XDP_DROP);
    assert_eq!(bed.event(Event::NoReal), 1);
}

#[test]
fn counters_follow_forwarded_traffic() {
    let Some(bed) = Bed::new("fx-count") else {
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

/// Runs `frame` and checks it left untouched with `XDP_PASS`, counted as `event`.
fn assert_passed(bed: &Bed, frame: &[u8], event: Event) {
    let out = bed.run(frame);
    assert_eq!(out.action, XDP_PASS);
    assert_eq!(out.frame, frame);
    assert_eq!(bed.event(event), 1, "{event:?}");
}

#[test]
fn traffic_for_no_service_passes_untouched() {
    let Some(bed) = Bed::new("fx-novip") else {
        return;
    };
    assert_passed(
        &bed,
        &to_director(49000, Ipv4Addr::new(203, 0, 113, 99), 80),
        Event::NotVip,
    );
}

#[test]
fn a_vip_on_another_port_passes_untouched() {
    let Some(bed) = Bed::new("fx-port") else {
        return;
    };
    assert_passed(&bed, &to_director(49001, VIP, 443), Event::NotVip);
}

#[test]
fn other_protocols_to_a_vip_pass_untouched() {
    let Some(bed) = Bed::new("fx-proto") else {
        return;
    };
    let icmp = bytes(|out| {
        PacketBuilder::ethernet2(CLIENT_MAC, mac(LB0))
            .ipv4(CLIENT.octets(), VIP.octets(), 64)
            .icmpv4_echo_request(1, 1)
            .write(out, b"ping")
            .unwrap()
    });
    assert_passed(&bed, &icmp, Event::NotVip);
}

#[test]
fn non_ip_frames_pass_untouched_and_uncounted() {
    let Some(bed) = Bed::new("fx-nonip") else {
        return;
    };
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&CLIENT_MAC);
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&CLIENT_MAC);
    arp.extend_from_slice(&CLIENT.octets());
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&VIP.octets());
    let out = bed.run(&arp);
    assert_eq!((out.action, &out.frame), (XDP_PASS, &arp));
    let stats = bed.dataplane.stats().unwrap();
    assert!(
        stats.events.iter().all(|(_, n)| *n == 0),
        "{:?}",
        stats.events
    );
}

fn mac6(addr: Ipv6Addr) -> [u8; 6] {
    MacAddr::for_ipv6(addr).0
}

/// A TCP SYN from the IPv6 client to `dst`, in a frame from `from` to `to`.
fn syn6(from: [u8; 6], to: [u8; 6], sport: u16, dst: Ipv6Addr, dport: u16) -> Vec<u8> {
    bytes(|out| {
        PacketBuilder::ethernet2(from, to)
            .ipv6(CLIENT6.octets(), dst.octets(), 64)
            .tcp(sport, dport, 1000, 64240)
            .syn()
            .write(out, &[])
            .unwrap()
    })
}

fn to_director6(sport: u16, dst: Ipv6Addr, dport: u16) -> Vec<u8> {
    syn6(CLIENT_MAC, mac(LB0), sport, dst, dport)
}

#[test]
fn ipv6_vip_hit_rewrites_only_the_macs_and_bounces() {
    let Some(bed) = Bed::new("fx-hit6") else {
        return;
    };
    let out = bed.run(&to_director6(40000, VIP6, 80));
    assert_eq!(out.action, XDP_TX);
    assert_eq!(out.frame, syn6(mac(LB0), mac6(REAL6_1), 40000, VIP6, 80));
    let next = bed.run(&to_director6(40001, VIP6, 80));
    assert_eq!(next.frame, syn6(mac(LB0), mac6(REAL6_2), 40001, VIP6, 80));
    assert_eq!(bed.event(Event::Tx), 2);
}

#[test]
fn an_unresolved_ipv6_real_passes_the_packet_untouched() {
    let Some(bed) = Bed::new("fx-neigh6") else {
        return;
    };
    let vip = Ipv6Addr::new(0x2001, 0xdb8, 0x203, 0, 0, 0, 0, 0x40);
    assert_passed(&bed, &to_director6(46000, vip, 80), Event::NeighMiss);
}

#[test]
fn ipv6_traffic_for_no_service_passes_untouched() {
    let Some(bed) = Bed::new("fx-novip6") else {
        return;
    };
    let other = Ipv6Addr::new(0x2001, 0xdb8, 0x203, 0, 0, 0, 0, 0x99);
    assert_passed(&bed, &to_director6(49000, other, 80), Event::NotVip);
}

#[test]
fn truncated_ipv6_headers_pass_untouched() {
    let Some(bed) = Bed::new("fx-trunc6") else {
        return;
    };
    let full = to_director6(50000, VIP6, 80);
    // IPv6 cut in its fixed header; ports cut short.
    let cuts = [14 + 20, 14 + 40 + 2];
    for (i, len) in cuts.into_iter().enumerate() {
        let frame = &full[..len];
        let out = bed.run(frame);
        assert_eq!(
            (out.action, out.frame.as_slice()),
            (XDP_PASS, frame),
            "cut at {len}"
        );
        assert_eq!(bed.event(Event::Truncated), i as u64 + 1);
    }
}

/// A SYN to the IPv6 VIP with an 8-byte extension header of type `next_header` (whose own
/// next header is TCP) between the fixed header and TCP.
fn syn6_with_extension(next_header: u8, extension: [u8; 7]) -> Vec<u8> {
    let plain = to_director6(53000, VIP6, 80);
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

#[test]
fn ipv6_fragments_pass_untouched() {
    let Some(bed) = Bed::new("fx-frag6") else {
        return;
    };
    // Offset 0, more fragments, identification 7.
    let fragment = syn6_with_extension(44, [0, 0, 1, 0, 0, 0, 7]);
    assert_passed(&bed, &fragment, Event::Fragment);
}

#[test]
fn ipv6_extension_headers_pass_untouched() {
    let Some(bed) = Bed::new("fx-ext6") else {
        return;
    };
    // Hop-by-hop options: length 0 (8 bytes), a PadN filling the rest.
    let hop_by_hop = syn6_with_extension(0, [0, 1, 4, 0, 0, 0, 0]);
    assert_passed(&bed, &hop_by_hop, Event::ExtensionHeader);
}

#[test]
fn truncated_headers_pass_untouched_at_every_layer() {
    let Some(bed) = Bed::new("fx-trunc") else {
        return;
    };
    let full = to_director(50000, VIP, 80);
    // Ethernet only; IPv4 cut in its fixed header; ports cut short.
    let cuts = [14, 14 + 10, 14 + 20 + 2];
    for (i, len) in cuts.into_iter().enumerate() {
        let frame = &full[..len];
        let out = bed.run(frame);
        assert_eq!(
            (out.action, out.frame.as_slice()),
            (XDP_PASS, frame),
            "cut at {len}"
        );
        assert_eq!(bed.event(Event::Truncated), i as u64 + 1);
    }
}

#[test]
fn a_header_length_below_the_minimum_passes_untouched() {
    let Some(bed) = Bed::new("fx-ihl") else {
        return;
    };
    let mut frame = to_director(50001, VIP, 80);
    frame[14] = 0x44; // version 4, IHL 4 (16 bytes): not a valid header
    assert_passed(&bed, &frame, Event::Truncated);
}

/// A SYN to the VIP whose IPv4 header carries `options`.
fn syn_with_options(from: [u8; 6], to: [u8; 6], options: [u8; 4]) -> Vec<u8> {
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

#[test]
fn ipv4_options_are_skipped_to_find_the_ports_and_kept() {
    let Some(bed) = Bed::new("fx-opts") else {
        return;
    };
    let options = [0x94, 0x04, 0x00, 0x00]; // router alert
    let out = bed.run(&syn_with_options(CLIENT_MAC, mac(LB0), options));
    assert_eq!(out.action, XDP_TX);
    assert_eq!(out.frame, syn_with_options(mac(LB0), mac(REAL1), options));
}

#[test]
fn fragments_pass_untouched() {
    let Some(bed) = Bed::new("fx-frag") else {
        return;
    };
    let first = {
        let mut frame = to_director(52000, VIP, 80);
        frame[14 + 6] |= 0x20; // more fragments
        frame
    };
    let later = {
        let mut frame = to_director(52000, VIP, 80);
        frame[14 + 7] = 0x10; // offset 16 * 8 bytes
        frame
    };
    for (i, frame) in [first, later].iter().enumerate() {
        let out = bed.run(frame);
        assert_eq!((out.action, &out.frame), (XDP_PASS, frame));
        assert_eq!(bed.event(Event::Fragment), i as u64 + 1);
    }
}

const VIP_TUN: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 50);
const VIP_TUN_ROUTED: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 51);
const VIP6_TUN: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x203, 0, 0, 0, 0, 0x50);

/// `inner` (a frame) with its IP packet wrapped in IPIP from `src` to `dst`, in a frame
/// from `from` to `to`: what the director sends a TUN real.
fn ipip(inner: &[u8], from: [u8; 6], to: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
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
    tunnel_frame(from, to, 0x0800, &outer.to_bytes(), packet)
}

/// A frame from `from` to `to` of `ethertype` holding `outer` and then `packet`.
fn tunnel_frame(
    from: [u8; 6],
    to: [u8; 6],
    ethertype: u16,
    outer: &[u8],
    packet: &[u8],
) -> Vec<u8> {
    [&to[..], &from, &ethertype.to_be_bytes(), outer, packet].concat()
}

#[test]
fn tun_wraps_the_packet_in_ipip_from_the_route_source() {
    let Some(bed) = Bed::new("fx-tun") else {
        return;
    };
    let inner = to_director(54000, VIP_TUN, 80);
    let out = bed.run(&inner);
    assert_eq!(out.action, XDP_TX);
    assert_eq!(out.frame, ipip(&inner, mac(LB0), mac(REAL1), LB0, REAL1));
    assert_eq!(bed.event(Event::Tx), 1);
}

#[test]
fn tun_reaches_a_real_behind_a_gateway() {
    let Some(bed) = Bed::new("fx-tun-gw") else {
        return;
    };
    let inner = to_director(54001, VIP_TUN_ROUTED, 80);
    let out = bed.run(&inner);
    assert_eq!(out.action, XDP_TX);
    let real = Ipv4Addr::new(203, 0, 113, 200);
    assert_eq!(out.frame, ipip(&inner, mac(LB0), mac(GATEWAY), LB0, real));
}

#[test]
fn tun_sources_vary_per_flow_within_the_configured_prefix() {
    let Some(mut bed) = Bed::new("fx-tun-src") else {
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

/// `inner` (a frame) with its IP packet wrapped in IP6IP6 from `src` to `dst` with flow
/// label `label`, in a frame from `from` to `to`.
fn ip6ip6(
    inner: &[u8],
    from: [u8; 6],
    to: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    label: u32,
) -> Vec<u8> {
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
    tunnel_frame(from, to, 0x86dd, &outer.to_bytes(), packet)
}

#[test]
fn tun_over_ipv6_wraps_the_packet_in_ip6ip6() {
    let Some(bed) = Bed::new("fx-tun6") else {
        return;
    };
    let inner = to_director6(54002, VIP6_TUN, 80);
    let out = bed.run(&inner);
    assert_eq!(out.action, XDP_TX);
    let flow = FlowKey {
        src: Addr::from(IpAddr::V6(CLIENT6)),
        dst: Addr::from(IpAddr::V6(VIP6_TUN)),
        sport: 54002u16.to_be(),
        dport: 80u16.to_be(),
        proto: 6,
        family: Family::V6 as u8,
        _pad: [0; 2],
    };
    let label = flow_hash(&flow) & 0xf_ffff;
    let expected = ip6ip6(&inner, mac(LB0), mac6(REAL6_1), LB0_6, REAL6_1, label);
    assert_eq!(out.frame, expected);
}

/// The decapsulation program of a TUN real serving `VIP_TUN` and `VIP6_TUN`, or `None`
/// (with a note) when not root.
fn decap() -> Option<Decap> {
    if !is_root() {
        note_skip("xdp_fixtures", "BPF test-run needs root");
        return None;
    }
    let (mut decap, _) = Decap::load().expect("load");
    decap.add_vip(IpAddr::V4(VIP_TUN)).unwrap();
    decap.add_vip(IpAddr::V6(VIP6_TUN)).unwrap();
    Some(decap)
}

#[test]
fn decap_strips_ipip_for_a_vip_and_passes_the_client_packet() {
    let Some(decap) = decap() else { return };
    let sent = to_director(56000, VIP_TUN, 80);
    let tunnelled = ipip(&sent, mac(LB0), mac(REAL1), LB0, REAL1);
    let out = decap.test_run(&tunnelled).unwrap();
    assert_eq!(out.action, XDP_PASS);
    assert_eq!(out.frame, syn(mac(LB0), mac(REAL1), 56000, VIP_TUN, 80));
}

#[test]
fn decap_strips_ip6ip6_for_a_vip() {
    let Some(decap) = decap() else { return };
    let sent = to_director6(56001, VIP6_TUN, 80);
    let tunnelled = ip6ip6(&sent, mac(LB0), mac6(REAL6_1), LB0_6, REAL6_1, 0x12345);
    let out = decap.test_run(&tunnelled).unwrap();
    assert_eq!(out.action, XDP_PASS);
    assert_eq!(
        out.frame,
        syn6(mac(LB0), mac6(REAL6_1), 56001, VIP6_TUN, 80)
    );
}

#[test]
fn decap_leaves_everything_else_untouched() {
    let Some(decap) = decap() else { return };
    let other_vip = ipip(
        &to_director(56002, VIP, 80),
        mac(LB0),
        mac(REAL1),
        LB0,
        REAL1,
    );
    let plain = to_director(56003, VIP_TUN, 80);
    let truncated = {
        let full = ipip(&plain, mac(LB0), mac(REAL1), LB0, REAL1);
        full[..14 + 20 + 10].to_vec()
    };
    let fragment = {
        let mut frame = ipip(&plain, mac(LB0), mac(REAL1), LB0, REAL1);
        frame[14 + 6] |= 0x20; // more fragments
        frame
    };
    for frame in [other_vip, plain, truncated, fragment] {
        let out = decap.test_run(&frame).unwrap();
        assert_eq!((out.action, &out.frame), (XDP_PASS, &frame));
    }
}

const VIP_SH: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 120);
const VIP_MH_PORT: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 121);
const VIP_MH: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 122);
const VIP_SH_ZERO: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 123);
const VIP_SH_FALLBACK: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 124);
const VIP_DH: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 125);

/// A SYN from `client` (which sits behind the client's router MAC) to `dst` port 80.
fn syn_from(client: Ipv4Addr, sport: u16, dst: Ipv4Addr) -> Vec<u8> {
    segment_from(client, sport, dst, false)
}

/// The client's FIN closing its connection from `sport` to `dst` port 80.
fn fin_from(client: Ipv4Addr, sport: u16, dst: Ipv4Addr) -> Vec<u8> {
    segment_from(client, sport, dst, true)
}

fn segment_from(client: Ipv4Addr, sport: u16, dst: Ipv4Addr, closing: bool) -> Vec<u8> {
    bytes(|out| {
        let tcp = PacketBuilder::ethernet2(CLIENT_MAC, mac(LB0))
            .ipv4(client.octets(), dst.octets(), 64)
            .tcp(sport, 80, 1000, 64240);
        let tcp = if closing { tcp.fin().ack(1) } else { tcp.syn() };
        tcp.write(out, &[]).unwrap()
    })
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
    let Some(bed) = Bed::new("fx-sh") else { return };
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
    let Some(bed) = Bed::new("fx-mh") else { return };
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
    let Some(mut bed) = Bed::new("fx-mh-down") else {
        return;
    };
    let reals = [REAL1, REAL2, REAL3];
    let before = maglev_table(&[(REAL1, 2), (REAL2, 1), (REAL3, 1)]);
    bed.apply(|real| real != REAL3);
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
    let Some(bed) = Bed::new("fx-sh-zero") else {
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
    let Some(bed) = Bed::new("fx-dh") else { return };
    let table = hash_table(|t| {
        destination_hash(&[1, 1, 1], t).unwrap();
    });
    let expected = predicted(&table, &[REAL1, REAL2, REAL3], VIP_DH, 0);
    for i in 1..=6 {
        let out = bed.run(&syn_from(client(i), 57000 + u16::from(i), VIP_DH));
        assert_eq!(dst_mac(&out.frame), mac(expected), "client {i}");
    }
}

const VIP_SMALL_MTU: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 52);
const VIP6_SMALL_MTU: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x203, 0, 0, 0, 0, 0x52);

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

#[test]
fn too_big_for_the_tunnel_with_df_is_answered_with_fragmentation_needed() {
    let Some(bed) = Bed::new("fx-mtu") else {
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

#[test]
fn too_big_for_the_tunnel_without_df_is_dropped_and_counted() {
    let Some(bed) = Bed::new("fx-mtu-nodf") else {
        return;
    };
    assert_eq!(bed.run(&big_to_director(false, 570)).action, XDP_DROP);
    assert_eq!(bed.event(Event::TooBigDropped), 1);
}

#[test]
fn too_big_for_the_ipv6_tunnel_is_answered_with_packet_too_big() {
    let Some(bed) = Bed::new("fx-mtu6") else {
        return;
    };
    // 40 + 20 + 1350 = 1410 bytes, 1450 tunnelled: over the route's 1400.
    let sent = bytes(|out| {
        PacketBuilder::ethernet2(CLIENT_MAC, mac(LB0))
            .ipv6(CLIENT6.octets(), VIP6_SMALL_MTU.octets(), 64)
            .tcp(57001, 80, 1000, 64240)
            .write(out, &[0x61; 1350])
            .unwrap()
    });
    let out = bed.run(&sent);
    assert_eq!(out.action, XDP_TX);
    let expected = bytes(|out| {
        PacketBuilder::ethernet2(mac(LB0), CLIENT_MAC)
            .ipv6(VIP6_SMALL_MTU.octets(), CLIENT6.octets(), 64)
            .icmpv6(Icmpv6Type::PacketTooBig { mtu: 1360 })
            .write(out, &sent[14..14 + 48])
            .unwrap()
    });
    assert_eq!(out.frame, expected);
    assert_eq!(bed.event(Event::TooBig), 1);
}

const VIP_LC: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 60);
const VIP_WLC: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 61);

/// The reals new connections from consecutive ports starting at `first` go to.
fn reals_of_new_connections(bed: &Bed, first: u16, count: u16, vip: Ipv4Addr) -> Vec<[u8; 6]> {
    (first..first + count)
        .map(|sport| dst_mac(&bed.run(&syn_from(CLIENT, sport, vip)).frame))
        .collect()
}

#[test]
fn lc_sends_new_connections_to_the_real_with_fewest() {
    let Some(bed) = Bed::new("fx-lc") else { return };
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
    let Some(bed) = Bed::new("fx-wlc") else {
        return;
    };
    // Active counts (R1/3 against R2/1): 0-0, 1-0, 1-1, 2-1, 3-1 (a tie: R1), 4-1.
    assert_eq!(
        reals_of_new_connections(&bed, 59000, 6, VIP_WLC),
        [REAL1, REAL2, REAL1, REAL1, REAL1, REAL2].map(mac)
    );
}

const VIP_PERSIST: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 70);

#[test]
fn persistence_keeps_a_client_network_on_its_first_real() {
    let Some(mut bed) = Bed::new("fx-persist") else {
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
    bed.apply(|real| real != REAL1);
    let moved = real_of(&bed, client(7), 61200);
    assert_ne!(moved, mac(REAL1));
    assert_eq!(real_of(&bed, client(8), 61201), moved, "a new template");
}

const VIP_LBLC: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 80);
const VIP_LBLCR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 81);

#[test]
fn lblc_keeps_a_destination_on_its_real_until_overloaded_then_moves_it() {
    let Some(bed) = Bed::new("fx-lblc") else {
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
    let Some(bed) = Bed::new("fx-lblcr") else {
        return;
    };
    // As lblc until the first overload, which adds REAL2 to the set instead of replacing
    // REAL1; from then on the set's least loaded member (the first of equals) serves.
    assert_eq!(
        reals_of_new_connections(&bed, 63000, 5, VIP_LBLCR),
        [REAL1, REAL1, REAL2, REAL2, REAL1].map(mac)
    );
}

const VIP_NODEST: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 90);

/// Takes REAL1 out of the 203.0.113.90 service's configuration.
fn remove_the_first_nodest_real(bed: &mut Bed) {
    let without = CONFIG.replace("real_server 192.0.2.11 80 { weight 5 }", "");
    bed.apply_text(&without, |_| true);
}

#[test]
fn a_flow_whose_real_is_removed_is_rescheduled_by_default() {
    let Some(mut bed) = Bed::new("fx-nodest-re") else {
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
    let Some(mut bed) = Bed::new("fx-nodest-drop") else {
        return;
    };
    bed.dataplane.set_nodest(Nodest::Drop);
    bed.apply(|_| true);
    let flow = syn_from(CLIENT, 64100, VIP_NODEST);
    assert_eq!(dst_mac(&bed.run(&flow).frame), mac(REAL1));
    remove_the_first_nodest_real(&mut bed);
    assert_eq!(bed.run(&flow).action, XDP_DROP);
    assert_eq!(bed.event(Event::NoDest), 1);
    let fresh = bed.run(&syn_from(CLIENT, 64101, VIP_NODEST));
    assert_eq!(dst_mac(&fresh.frame), mac(REAL2), "new flows still go");
}
