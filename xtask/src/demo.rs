//! `cargo xtask demo`: xlb balancing real HTTP traffic in XDP, end to end, in namespaces.

/// Will build a `DrTopology`, run `xlb run` on its director with an embedded demo config,
/// send traffic from the client, print which real served each request and the per-real
/// counters from the BPF maps, and succeed only if the traffic went through XDP.
pub fn run() -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
