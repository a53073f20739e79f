//! Per-interface forwarding, which `bpf_fib_lookup` insists on, per address family.

use std::{fs, io, path::PathBuf};

use lb_common::Family;
use tracing::{info, warn};

/// Forwarding switched on by xlb; switched back off when dropped.
#[derive(Debug)]
pub struct Forwarding {
    path: PathBuf,
    interface: String,
    family: &'static str,
}

impl Forwarding {
    /// Switches `family` forwarding on for `interface`, returning a guard when xlb changed it.
    pub fn enable(family: Family, interface: &str) -> io::Result<Option<Self>> {
        let (dir, name) = match family {
            Family::V4 => ("ipv4", "IPv4"),
            Family::V6 => ("ipv6", "IPv6"),
        };
        let path = PathBuf::from(format!("/proc/sys/net/{dir}/conf/{interface}/forwarding"));
        if fs::read_to_string(&path)?.trim() == "1" {
            return Ok(None);
        }
        fs::write(&path, "1")?;
        info!(
            "Enabled {name} forwarding on {interface}: the kernel resolves next hops for XDP only on forwarding interfaces"
        );
        Ok(Some(Self {
            path,
            interface: interface.to_string(),
            family: name,
        }))
    }
}

impl Forwarding {
    /// Leaves forwarding on: for the agent that adopts the data plane, which needs it.
    pub fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        if let Err(err) = fs::write(&self.path, "0") {
            warn!(
                "Cannot switch {} forwarding back off on {}: {err}",
                self.family, self.interface
            );
        }
    }
}
