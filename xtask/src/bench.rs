//! `cargo xtask bench`: the XDP program's cost per packet, from BPF test-run.

/// Will print ns/packet for a VIP hit on an established flow and on a new flow, next to a
/// trivial XDP_TX program measured in the same run, and their ratio.
pub fn run() -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
