//! `xlb status` as a person reads it: laid out like `ipvsadm -Ln --stats`, which operators
//! of LVS already know.

use std::fmt;

use super::Status;
use crate::config::ForwardMethod;

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "xlb (pid {}) XDP on {}",
            self.pid,
            self.interfaces.join(", ")
        )?;
        writeln!(f, "Prot LocalAddress:Port Scheduler")?;
        writeln!(
            f,
            "  -> RemoteAddress:Port          Forward Weight State ActiveConn InActConn   Packets      Bytes   NewFlows"
        )?;
        for service in &self.services {
            let standby = if service.active {
                ""
            } else {
                " (standby: VRRP BACKUP)"
            };
            let protocol = service.protocol.to_string().to_uppercase();
            writeln!(
                f,
                "{protocol:<4} {} {}{standby}",
                service.addr,
                service.scheduler.name()
            )?;
            for real in &service.reals {
                let c = real.counters;
                writeln!(
                    f,
                    "  -> {:<26} {:<7} {:>6} {:<5} {:>10} {:>9} {:>9} {:>10} {:>10}",
                    real.addr.to_string(),
                    forward(service.method),
                    real.weight,
                    if real.healthy { "up" } else { "down" },
                    real.conns.active,
                    real.conns.inactive,
                    c.packets,
                    c.bytes,
                    c.new_flows
                )?;
            }
        }
        let events: Vec<String> = self
            .events
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        writeln!(f, "Data plane: {}", events.join(" "))
    }
}

/// ipvsadm's name for a forwarding method.
fn forward(method: ForwardMethod) -> &'static str {
    match method {
        ForwardMethod::Dr => "Route",
        ForwardMethod::Nat => "Masq",
        ForwardMethod::Tun => "Tunnel",
    }
}

#[cfg(test)]
mod tests {
    use lb_common::stats::Counters;

    use super::*;
    use crate::{
        config::{Protocol, Scheduler},
        ctl::{ConnCounts, RealStatus, ServiceStatus},
    };

    #[test]
    fn reads_like_ipvsadm() {
        let status = Status {
            pid: 7,
            interfaces: vec!["eth0".into()],
            services: vec![ServiceStatus {
                addr: "203.0.113.10:80".parse().unwrap(),
                active: false,
                protocol: Protocol::Tcp,
                scheduler: Scheduler::Wrr,
                method: ForwardMethod::Dr,
                counters: Counters::default(),
                reals: vec![RealStatus {
                    addr: "192.0.2.11:80".parse().unwrap(),
                    weight: 3,
                    healthy: false,
                    counters: Counters {
                        packets: 5,
                        bytes: 300,
                        new_flows: 1,
                    },
                    conns: ConnCounts {
                        active: 2,
                        inactive: 1,
                    },
                }],
            }],
            events: [("tx".to_string(), 5)].into(),
        };
        assert_eq!(
            status.to_string(),
            "xlb (pid 7) XDP on eth0\n\
             Prot LocalAddress:Port Scheduler\n  \
             -> RemoteAddress:Port          Forward Weight State ActiveConn InActConn   Packets      Bytes   NewFlows\n\
             TCP  203.0.113.10:80 wrr (standby: VRRP BACKUP)\n  \
             -> 192.0.2.11:80              Route        3 down           2         1         5        300          1\n\
             Data plane: tx=5\n"
        );
    }
}
