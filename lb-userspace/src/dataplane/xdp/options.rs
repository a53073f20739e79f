//! How `xlb run` is told to run the XDP data plane.

use aya::programs::XdpMode;

/// How the program is attached (`--xdp-mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Native when the driver supports it, generic otherwise: the kernel decides.
    #[default]
    Auto,
    /// In the driver; fails where the driver has no XDP support.
    Native,
    /// Generic (skb) XDP: works everywhere, slower.
    Skb,
}

impl From<Mode> for XdpMode {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Auto => XdpMode::Default,
            Mode::Native => XdpMode::Driver,
            Mode::Skb => XdpMode::Skb,
        }
    }
}

/// What happens to packets of a flow whose real was removed from its service: IPVS's
/// `expire_nodest_conn` (`--expire-nodest-conn`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Nodest {
    /// Scheduled again, as a new flow (`expire_nodest_conn` 1).
    #[default]
    Reschedule,
    /// Dropped and counted as `no_dest` (`expire_nodest_conn` 0, IPVS's default), until the
    /// flow table forgets the flow.
    Drop,
}
