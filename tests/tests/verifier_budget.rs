//! Every XDP program xlb loads stays well inside what the kernel's verifier allows: at most
//! a fifth of its million processed instructions. A program near the limit loads on one
//! kernel and not on the next, so the budget is checked on every kernel the suite runs on
//! (`cargo xtask test` runs this file under Debian 12's kernel too).

use xlb::dataplane::xdp::{OBJECT, XdpDataPlane, decap};
use xlb_testbed::{require_root, verifier_table, verify};

/// Instructions the verifier may process for one program: a fifth of its limit.
const BUDGET: u64 = 200_000;

#[test]
fn every_program_verifies_within_the_budget() {
    require_root!();
    let mut verdicts = verify(OBJECT).expect("the balancer's object");
    verdicts.extend(verify(decap::OBJECT).expect("the decapsulation object"));
    println!(
        "budget: {BUDGET} processed instructions per program\n{}",
        verifier_table(&verdicts)
    );
    let refused: Vec<_> = verdicts.iter().filter(|v| v.refused.is_some()).collect();
    assert!(refused.is_empty(), "refused: {refused:#?}");
    let over: Vec<_> = verdicts
        .iter()
        .filter(|v| v.instructions > BUDGET)
        .collect();
    assert!(over.is_empty(), "over the budget of {BUDGET}: {over:#?}");
}

/// The measurement above measures what xlb loads: the agent's own load reports the same
/// count for every program of the balancer, and loads them all.
#[test]
fn the_agent_loads_every_program_that_was_measured() {
    require_root!();
    let measured = verify(OBJECT).expect("the balancer's object");
    let (_dataplane, report) = XdpDataPlane::load(Some(1024)).expect("load");
    let mut loaded: Vec<(String, u64)> = report
        .programs
        .iter()
        .map(|p| {
            (
                p.program.clone(),
                u64::from(p.instructions.expect("kernel 5.16+")),
            )
        })
        .collect();
    loaded.sort();
    let measured: Vec<(String, u64)> = measured
        .into_iter()
        .map(|v| (v.program, v.instructions))
        .collect();
    assert_eq!(loaded, measured);
}
