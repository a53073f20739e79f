//! What the verifier makes of each XDP program (instructions, states, time), then XDP cost
//! per packet, from BPF test-run: the balancer on a VIP hit (established flow and
//! new flow; DR, TUN for IPv4 and NAT) and on a NAT answer, next to a trivial XDP_TX
//! program measured in the same run.
//!
//! `cargo xtask bench` runs this. Test-run reports the kernel's own average time per run,
//! so the numbers exclude the syscall. A new flow needs a new 5-tuple each time, which the
//! kernel's repeat loop cannot give, so every program is also measured one run per call
//! (which adds the test-run timer's own overhead to each) to compare like with like. TUN
//! and NAT are only measured that way: the kernel's repeat loop hands each run the frame as
//! the previous run left it, already encapsulated or readdressed.
//!
//! Then: the cost of a new flow under each scheduler, and how many flows consistent hashing
//! (mh) moves against sh when a real is removed, computed from the tables user space builds.

#[path = "../src/bpf_bed/mod.rs"]
mod bpf_bed;

use std::{
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use bpf_bed::{
    Bed, XDP_REDIRECT, XDP_TX,
    frame::syn,
    net::{CLIENT, LB0, REALS, VIP, mac},
};
use lb_common::{
    Addr,
    sched::{
        HASH_TABLE_LEN,
        hash::source_hash,
        maglev::{MaglevReal, maglev},
        moved_share,
    },
};
use xlb::dataplane::xdp::{OBJECT, baseline::Baseline, decap};
use xlb_testbed::{is_root, verifier_table, verify};

const VIP_TUN: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 11);
const NAT_VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 20);

/// Runs per in-kernel loop, and loops per measurement (the median is reported).
const LOOP: u32 = 1_000_000;
const ROUNDS: usize = 5;
/// Calls of one run each, per measurement.
const CALLS: u16 = 20_000;
/// Room in the balancer's flow table: every flow measured fits.
const FLOWS: u32 = 1 << 20;

/// A TCP SYN from `src` to `dst`, arriving on `lb0`.
fn segment(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16)) -> Vec<u8> {
    syn((mac(src.0), mac(LB0)), src, dst)
}

fn syn_to(vip: Ipv4Addr, sport: u16) -> Vec<u8> {
    segment((CLIENT, sport), (vip, 80))
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ns(d: Duration) -> f64 {
    d.as_nanos() as f64
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    if !is_root() {
        println!("bench xdp: SKIPPED (needs root for BPF test-run and namespaces)");
        return Ok(());
    }
    let mut verdicts = verify(OBJECT)?;
    verdicts.extend(verify(decap::OBJECT)?);
    println!("{}", verifier_table(&verdicts));
    let mut bed = Bed::load("bench-xdp", FLOWS)?;
    bed.apply(
        &format!("{}{}", services(), scheduler_services()),
        bpf_bed::every_real_up,
    );
    let baseline = Baseline::load()?;
    check_the_frames(&bed)?;
    per_packet(&bed, &baseline)?;
    println!();
    per_scheduler(&bed, &baseline)?;
    println!();
    moved_shares();
    Ok(())
}

/// The frames of the established flows measured: to the DR VIP and to the NAT VIP.
fn established() -> Vec<u8> {
    syn_to(VIP, 1)
}

fn nat_established() -> Vec<u8> {
    syn_to(NAT_VIP, 1)
}

/// The established NAT flow's answers: rr gives it the first real.
fn nat_answer() -> Vec<u8> {
    segment((REALS[0], 8080), (CLIENT, 1))
}

/// Makes sure each frame measured takes the path it is measured for, and pins the
/// established flows.
fn check_the_frames(bed: &Bed) -> anyhow::Result<()> {
    // XDP_TX for the VIP hits, XDP_REDIRECT (to lb1) for the answer.
    for (what, frame, action) in [
        ("the VIP hit", established(), XDP_TX),
        ("the NAT VIP hit", nat_established(), XDP_TX),
        ("the NAT answer", nat_answer(), XDP_REDIRECT),
    ] {
        let outcome = bed.try_run(bed.lb0, &frame, 1)?;
        anyhow::ensure!(
            outcome.action == action,
            "{what} was not action {action}: {}",
            outcome.action
        );
    }
    let tunnelled = bed.try_run(bed.lb0, &syn_to(VIP_TUN, 1), 1)?;
    anyhow::ensure!(
        tunnelled.action == XDP_TX && tunnelled.frame.len() == established().len() + 20,
        "the TUN hit was not encapsulated and sent: {}",
        tunnelled.action
    );
    Ok(())
}

/// The average time of one run per call over [`CALLS`] calls, each on `frames(i)`, by
/// the balancer or else the baseline.
fn per_call(
    bed: &Bed,
    baseline: &Baseline,
    frames: &(dyn Fn(u16) -> Vec<u8> + Sync),
    balancer: bool,
) -> anyhow::Result<Duration> {
    let (dataplane, lb0) = (&bed.dataplane, bed.lb0);
    bed.ns().run(|| {
        let mut total = Duration::ZERO;
        for i in 0..CALLS {
            let frame = frames(i);
            total += if balancer {
                dataplane.test_run(&frame, Some(lb0), 1)?.duration
            } else {
                baseline.test_run(&frame, 1)?.duration
            };
        }
        Ok(total / u32::from(CALLS))
    })?
}

/// XDP cost per packet, the balancer's next to the baseline's.
fn per_packet(bed: &Bed, baseline: &Baseline) -> anyhow::Result<()> {
    let established = established();
    let nat_established = nat_established();
    let nat_answer = nat_answer();
    let looped = |run: &dyn Fn() -> anyhow::Result<Duration>| -> anyhow::Result<Duration> {
        Ok(median(
            (0..ROUNDS).map(|_| run()).collect::<anyhow::Result<_>>()?,
        ))
    };
    let tx_loop = looped(&|| Ok(baseline.test_run(&established, LOOP)?.duration))?;
    let hit_loop = looped(&|| Ok(bed.try_run(bed.lb0, &established, LOOP)?.duration))?;

    let per_call = |frames: &(dyn Fn(u16) -> Vec<u8> + Sync), balancer| {
        per_call(bed, baseline, frames, balancer)
    };
    let tx_call = per_call(&|_| established.clone(), false)?;
    let hit_call = per_call(&|_| established.clone(), true)?;
    // Source ports from 2 up: each call is a flow the table has never seen.
    let new_call = per_call(&|i| syn_to(VIP, i + 2), true)?;
    let tunnelled = syn_to(VIP_TUN, 1);
    let tun_call = per_call(&|_| tunnelled.clone(), true)?;
    let tun_new_call = per_call(&|i| syn_to(VIP_TUN, i + 2), true)?;
    let nat_hit_call = per_call(&|_| nat_established.clone(), true)?;
    let nat_new_call = per_call(&|i| syn_to(NAT_VIP, i + 2), true)?;
    let nat_answer_call = per_call(&|_| nat_answer.clone(), true)?;
    println!("XDP cost per packet (BPF test-run, kernel-measured ns)");
    println!("                                  {LOOP} runs per call   1 run per call");
    println!(
        "trivial XDP_TX (baseline)          {:>10.1}   {:>14.1}",
        ns(tx_loop),
        ns(tx_call)
    );
    println!(
        "xlb, VIP hit, established flow     {:>10.1}   {:>14.1}",
        ns(hit_loop),
        ns(hit_call)
    );
    println!(
        "xlb, VIP hit, new flow             {:>10}   {:>14.1}",
        "-",
        ns(new_call)
    );
    for (what, cost) in [
        ("xlb NAT, established flow       ", nat_hit_call),
        ("xlb NAT, new flow               ", nat_new_call),
        ("xlb NAT, real's answer to client", nat_answer_call),
    ] {
        println!("{what}   {:>10}   {:>14.1}", "-", ns(cost));
    }
    println!(
        "xlb TUN (IPIP), established flow   {:>10}   {:>14.1}",
        "-",
        ns(tun_call)
    );
    println!(
        "xlb TUN (IPIP), new flow           {:>10}   {:>14.1}",
        "-",
        ns(tun_new_call)
    );
    println!(
        "ratio to baseline: established {:.2}x (loop), {:.2}x (per call); new flow {:.2}x (per call)",
        ns(hit_loop) / ns(tx_loop),
        ns(hit_call) / ns(tx_call),
        ns(new_call) / ns(tx_call),
    );
    println!(
        "TUN ratio to baseline (per call): established {:.2}x, new flow {:.2}x",
        ns(tun_call) / ns(tx_call),
        ns(tun_new_call) / ns(tx_call),
    );

    Ok(())
}

/// The cost of a new flow under each scheduler.
fn per_scheduler(bed: &Bed, baseline: &Baseline) -> anyhow::Result<()> {
    println!("New flow per scheduler (1 run per call, kernel-measured ns)");
    for (i, (name, _)) in SCHEDULERS.iter().enumerate() {
        let vip = scheduler_vip(i);
        let frame = segment((CLIENT, 1), (vip, 80));
        let outcome = bed.try_run(bed.lb0, &frame, 1)?;
        anyhow::ensure!(
            outcome.action == XDP_TX,
            "{name}: not XDP_TX: {}",
            outcome.action
        );
        let cost = per_call(bed, baseline, &|i| syn_to(vip, i + 2), true)?;
        let last = bed.try_run(bed.lb0, &syn_to(vip, CALLS + 2), 1)?;
        anyhow::ensure!(
            last.action == XDP_TX,
            "{name}: stopped forwarding: {}",
            last.action
        );
        println!("{name:<34} {:>14.1}", ns(cost));
    }
    Ok(())
}

/// How many flows consistent hashing (mh) moves against sh when a real is removed.
fn moved_shares() {
    println!("Share of flows that move when 1 of N equal reals is removed");
    println!("    N     mh (Maglev)     sh    (the removed real's own share: 1/N)");
    for n in [5, 10, 50] {
        println!(
            "{n:>5}  {:>13.1}%  {:>6.1}%    {:.1}%",
            100.0 * moved_when_one_goes(n, maglev_identities),
            100.0 * moved_when_one_goes(n, sh_identities),
            100.0 / n as f64
        );
    }
}

/// Schedulers measured on new flows, each with a service of the three reals. Their
/// weights exceed the flows measured, so that ovf never runs out of room and drops.
const SCHEDULERS: [(&str, &str); 15] = [
    ("rr", "lb_algo rr"),
    ("wrr", "lb_algo wrr"),
    ("sh", "lb_algo sh"),
    ("sh, sh-fallback", "lb_algo sh\n    sh-fallback"),
    ("dh", "lb_algo dh"),
    ("mh", "lb_algo mh"),
    ("lc", "lb_algo lc"),
    ("wlc", "lb_algo wlc"),
    ("sed", "lb_algo sed"),
    ("nq", "lb_algo nq"),
    ("fo", "lb_algo fo"),
    ("ovf", "lb_algo ovf"),
    ("lblc", "lb_algo lblc"),
    ("lblcr", "lb_algo lblcr"),
    (
        "rr, persistence_timeout 300",
        "lb_algo rr\n    persistence_timeout 300",
    ),
];

fn scheduler_vip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(203, 0, 113, 100 + i as u8)
}

fn scheduler_services() -> String {
    SCHEDULERS
        .iter()
        .enumerate()
        .map(|(i, (_, settings))| {
            let settings = format!("{settings}\n    lb_kind DR");
            virtual_server(
                scheduler_vip(i),
                &settings,
                80,
                [30000, 20000, 10000].map(Some),
            )
        })
        .collect()
}

/// The services of the cost per packet, round robin over the three reals: DR, TUN (IPIP)
/// and NAT (to port 8080).
fn services() -> String {
    [
        (VIP, "DR", 80),
        (VIP_TUN, "TUN", 80),
        (NAT_VIP, "NAT", 8080),
    ]
    .into_iter()
    .map(|(vip, kind, port)| {
        let settings = format!("lb_algo rr\n    lb_kind {kind}");
        virtual_server(vip, &settings, port, [None; 3])
    })
    .collect()
}

/// The virtual server `vip` port 80 with `settings` (lines of keepalived.conf), over the
/// three reals on `real_port` with the `weights` given (keepalived's default otherwise).
fn virtual_server(
    vip: Ipv4Addr,
    settings: &str,
    real_port: u16,
    weights: [Option<u32>; 3],
) -> String {
    let reals: String = REALS
        .iter()
        .zip(weights)
        .map(|(real, weight)| {
            let weight = weight.map_or_else(String::new, |w| format!("weight {w} "));
            format!("    real_server {real} {real_port} {{ {weight}}}\n")
        })
        .collect();
    format!("virtual_server {vip} 80 {{\n    {settings}\n{reals}}}\n")
}

/// The share of a table's buckets (so of clients) whose real changes when the middle one
/// of `n` equal reals is removed; tables hold real identities.
fn moved_when_one_goes(n: u32, table: fn(&[u32]) -> Vec<u32>) -> f64 {
    let all: Vec<u32> = (1..=n).collect();
    let fewer: Vec<u32> = all.iter().copied().filter(|id| *id != n / 2 + 1).collect();
    moved_share(&table(&all), &table(&fewer))
}

fn maglev_identities(ids: &[u32]) -> Vec<u32> {
    let reals: Vec<MaglevReal> = ids
        .iter()
        .map(|id| MaglevReal {
            addr: Addr::from(IpAddr::V4(Ipv4Addr::from(0xc000_0200 + id))),
            port: 80u16.to_be(),
            weight: 1,
        })
        .collect();
    let mut table = vec![0u32; HASH_TABLE_LEN];
    maglev(&reals, &mut table).expect("a Maglev table");
    table.iter().map(|p| ids[*p as usize]).collect()
}

fn sh_identities(ids: &[u32]) -> Vec<u32> {
    let mut table = vec![0u32; HASH_TABLE_LEN];
    source_hash(&vec![1; ids.len()], &mut table).expect("an sh table");
    table.iter().map(|p| ids[*p as usize]).collect()
}
