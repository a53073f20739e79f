//! `xlb realserver`: prepares this host to be an LVS-DR or LVS-TUN real server, and
//! undoes exactly that.
//!
//! Each VIP goes on `lo` as a host address, so the kernel accepts packets for it, and ARP
//! is tuned so the host neither answers for nor announces the VIP on the segment (the
//! director owns it there). For TUN, xlb's decapsulation program unwraps tunnelled packets
//! on the interface. What was changed is remembered in a state file, so `--remove` restores
//! the host as it found it: addresses that were already there and sysctl values are left
//! as they were.

use std::{
    fs,
    net::IpAddr,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::{
    dataplane::xdp::{
        Mode,
        decap::{self, Decap},
    },
    net::{self, HostAddr, Netlink},
    unsupported,
};

/// How the director reaches this real server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RealMode {
    /// Direct routing: packets arrive unchanged, addressed to the VIP.
    Dr,
    /// Tunnelling: packets arrive inside IPIP or IP6IP6, unwrapped by xlb's XDP program.
    Tun,
}

/// What `xlb realserver` was asked to do.
#[derive(Clone, Debug)]
pub struct Options {
    pub vips: Vec<IpAddr>,
    pub mode: RealMode,
    /// The interface the director's packets arrive on.
    pub interface: String,
    /// Where the state file goes.
    pub run_dir: PathBuf,
    pub xdp_mode: Mode,
}

/// Where the BPF file system is mounted; the decapsulation program's link is pinned there.
const BPFFS: &str = "/sys/fs/bpf";

/// ARP settings of an LVS real server, for `all` and the interface: answer ARP only for
/// addresses of the interface asked on (1), and announce only such addresses (2).
const ARP_SYSCTLS: [(&str, &str); 2] = [("arp_ignore", "1"), ("arp_announce", "2")];

/// What `xlb realserver` changed, as `--remove` needs it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    interface: String,
    /// VIPs added to `lo` (not those that were there before).
    added: Vec<IpAddr>,
    /// Sysctl files written, with the values they had.
    sysctls: Vec<(PathBuf, String)>,
    /// The decapsulation program's pinned link (TUN).
    pin: Option<PathBuf>,
}

/// Prepares the host as `options` says; on failure, undoes what it had done. Must be called
/// within a tokio runtime (netlink).
pub async fn add(options: &Options) -> anyhow::Result<()> {
    let path = state_path(&options.run_dir, &options.interface);
    if path.exists() {
        bail!(
            "{} is already set up as a real server ({}): run with --remove first",
            options.interface,
            path.display()
        );
    }
    if options.vips.is_empty() {
        bail!("no --vip given");
    }
    fs::create_dir_all(&options.run_dir)
        .with_context(|| format!("creating run directory {}", options.run_dir.display()))?;
    let mut state = State {
        interface: options.interface.clone(),
        ..State::default()
    };
    if let Err(err) = set_up(options, &mut state).await {
        if let Err(undo) = undo(&state).await {
            warn!("Cannot undo a partial real-server setup: {undo:#}");
        }
        return Err(err);
    }
    fs::write(&path, serde_json::to_string_pretty(&state)?)
        .with_context(|| format!("writing {}", path.display()))?;
    info!(
        "{} is a {:?} real server for {:?}",
        options.interface, options.mode, options.vips
    );
    Ok(())
}

/// Undoes what [`add`] did on `interface`. Must be called within a tokio runtime.
pub async fn remove(run_dir: &Path, interface: &str) -> anyhow::Result<()> {
    let path = state_path(run_dir, interface);
    let text = fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (was {interface} set up with xlb realserver?)",
            path.display()
        )
    })?;
    let state: State =
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
    undo(&state).await?;
    fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    info!("{interface} is no longer a real server");
    Ok(())
}

fn state_path(run_dir: &Path, interface: &str) -> PathBuf {
    run_dir.join(format!("realserver-{interface}.json"))
}

async fn set_up(options: &Options, state: &mut State) -> anyhow::Result<()> {
    unsupported::interface_exists(&options.interface)?;
    for scope in ["all", options.interface.as_str()] {
        for (name, value) in ARP_SYSCTLS {
            let path = PathBuf::from(format!("/proc/sys/net/ipv4/conf/{scope}/{name}"));
            let previous = read_sysctl(&path)?;
            fs::write(&path, value).with_context(|| format!("writing {}", path.display()))?;
            state.sysctls.push((path, previous));
        }
    }
    let lo = net::index("lo")?;
    let netlink = Netlink::open()?;
    let present = netlink.addresses(lo).await?;
    for vip in &options.vips {
        if present.contains(vip) {
            continue;
        }
        netlink.add_addr(&host_addr(*vip, lo)).await?;
        state.added.push(*vip);
    }
    if options.mode == RealMode::Tun {
        let pin = pin_path(&options.interface)?;
        let (mut decap, _) = Decap::load()
            .map_err(|err| unsupported::load_failed(err, "loading the decapsulation program"))?;
        for vip in &options.vips {
            decap.add_vip(*vip)?;
        }
        decap
            .attach_pinned(&options.interface, options.xdp_mode, &pin)
            .map_err(unsupported::attach_failed)?;
        state.pin = Some(pin);
    }
    Ok(())
}

/// Undoes `state` in reverse order, going on past failures and reporting the first.
async fn undo(state: &State) -> anyhow::Result<()> {
    let mut first: Option<anyhow::Error> = None;
    let mut note = |result: anyhow::Result<()>| {
        if let Err(err) = result {
            warn!("{err:#}");
            first.get_or_insert(err);
        }
    };
    if let Some(pin) = &state.pin {
        note(decap::detach_pinned(pin).map_err(Into::into));
    }
    if !state.added.is_empty() {
        note(remove_vips(&state.added).await);
    }
    for (path, previous) in state.sysctls.iter().rev() {
        note(fs::write(path, previous).with_context(|| format!("restoring {}", path.display())));
    }
    first.map_or(Ok(()), Err)
}

fn read_sysctl(path: &Path) -> anyhow::Result<String> {
    Ok(fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))?
        .trim()
        .to_string())
}

/// Removes the VIPs `xlb realserver` added to `lo`.
async fn remove_vips(added: &[IpAddr]) -> anyhow::Result<()> {
    let lo = net::index("lo")?;
    let netlink = Netlink::open()?;
    for vip in added {
        netlink.del_addr(&host_addr(*vip, lo)).await?;
    }
    Ok(())
}

/// The VIP as a host address on `lo`.
fn host_addr(vip: IpAddr, lo: u32) -> HostAddr {
    HostAddr {
        addr: vip,
        prefix_len: if vip.is_ipv4() { 32 } else { 128 },
        ifindex: lo,
        label: None,
        scope: 0,
        broadcast: None,
        nodad: vip.is_ipv6(),
    }
}

/// Where the link of `interface`'s decapsulation program is pinned: the BPF file system is
/// shared by all network namespaces, so the name says which namespace's interface it is.
fn pin_path(interface: &str) -> anyhow::Result<PathBuf> {
    let netns = fs::metadata("/proc/self/ns/net")
        .context("finding this network namespace")?
        .ino();
    Ok(Path::new(BPFFS).join(format!("xlb-decap-{netns}-{interface}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips() {
        let state = State {
            interface: "eth0".into(),
            added: vec!["203.0.113.10".parse().unwrap()],
            sysctls: vec![("/proc/sys/net/ipv4/conf/all/arp_ignore".into(), "0".into())],
            pin: Some("/sys/fs/bpf/xlb-decap-1-eth0".into()),
        };
        let text = serde_json::to_string(&state).unwrap();
        let back: State = serde_json::from_str(&text).unwrap();
        assert_eq!(back.added, state.added);
        assert_eq!(back.sysctls, state.sysctls);
        assert_eq!(back.pin, state.pin);
    }

    #[test]
    fn vips_are_host_addresses() {
        let v4 = host_addr("203.0.113.10".parse().unwrap(), 1);
        let v6 = host_addr("2001:db8::10".parse().unwrap(), 1);
        assert_eq!((v4.prefix_len, v4.nodad), (32, false));
        assert_eq!((v6.prefix_len, v6.nodad), (128, true));
    }
}
