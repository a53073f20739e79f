//! Per-interface IPv4 forwarding, which `bpf_fib_lookup` insists on.

use std::{fs, io, path::PathBuf};

use tracing::{info, warn};

/// Forwarding switched on by xlb; switched back off when dropped.
#[derive(Debug)]
pub struct Forwarding {
    path: PathBuf,
    interface: String,
}

impl Forwarding {
    /// Switches forwarding on for `interface`, returning a guard when xlb changed it.
    pub fn enable(interface: &str) -> io::Result<Option<Self>> {
        let path = PathBuf::from(format!("/proc/sys/net/ipv4/conf/{interface}/forwarding"));
        if fs::read_to_string(&path)?.trim() == "1" {
            return Ok(None);
        }
        fs::write(&path, "1")?;
        info!(
            "Enabled IPv4 forwarding on {interface}: the kernel resolves next hops for XDP only on forwarding interfaces"
        );
        Ok(Some(Self {
            path,
            interface: interface.to_string(),
        }))
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        if let Err(err) = fs::write(&self.path, "0") {
            warn!(
                "Cannot switch IPv4 forwarding back off on {}: {err}",
                self.interface
            );
        }
    }
}
