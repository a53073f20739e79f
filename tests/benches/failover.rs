//! Failover time: from SIGKILL of the master director to (a) the VIP present on the backup
//! and (b) the first new connection forwarded through it, at VRRPv2 with 1 s adverts and
//! VRRPv3 with 0.1 s adverts, with the backup's VRRP run by xlb and by keepalived.
//!
//! `cargo xtask bench` runs this. The master is always `xlb run` (VRRP and the XDP data
//! plane). Both backups forward with xlb's XDP data plane so that the two are measured
//! the same way and differ only in who runs VRRP: an `xlb run` with the `vrrp_instance`,
//! or keepalived moving the VIP for an `xlb run` without one (a VIP no instance manages
//! is always served, as in LVS setups where keepalived moves the address).
//!
//! The client probes the VIP with fresh TCP connections; until the backup announces the
//! VIP they reach the dead master's kernel, which refuses them, so the first one accepted
//! was forwarded by the backup to a real.

use std::{
    net::{SocketAddr, TcpStream, UdpSocket},
    thread,
    time::{Duration, Instant},
};

use anyhow::ensure;
use xlb::ctl;
use xlb_testbed::{
    Child, FailoverTopology, HttpServer, Keepalived, Peer, Vrrp, is_root, note_skip, wait_until,
};

const ROUNDS: usize = 3;
const POLL: Duration = Duration::from_millis(2);
/// Longer than any election or failover measured here.
const SETTLE: Duration = Duration::from_secs(20);
const PROBE_TIMEOUT: Duration = Duration::from_millis(100);
const MASTER: u8 = 200;
const BACKUP: u8 = 100;

/// What one failover took, from the SIGKILL.
struct Sample {
    vip: Duration,
    forwarded: Duration,
}

/// A failover setup ready to be cut. Fields drop in order: the processes before their
/// namespaces.
struct Setup {
    master: Child,
    _backup: (Child, Option<Keepalived>),
    _servers: Vec<HttpServer>,
    topo: FailoverTopology,
}

fn main() -> anyhow::Result<()> {
    if !is_root() {
        note_skip("failover", "needs root for network namespaces");
        return Ok(());
    }
    let cases = [(2, Duration::from_secs(1)), (3, Duration::from_millis(100))];
    println!(
        "failover after SIGKILL of the master (median and worst of {ROUNDS}; until the VIP \
         is on the backup / until the first connection is forwarded)"
    );
    println!(
        "{:<14} {:<11} {:>22} {:>22}",
        "adverts", "backup", "VIP on backup", "first forwarded"
    );
    for (version, advert_int) in cases {
        for backup in [Peer::Xlb, Peer::Keepalived] {
            let samples = (0..ROUNDS)
                .map(|round| {
                    let timers = |priority| Vrrp {
                        version,
                        advert_int,
                        priority,
                    };
                    let setup = setup(round, backup, timers(MASTER), timers(BACKUP))?;
                    failover(setup)
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            println!(
                "{:<14} {:<11} {:>22} {:>22}",
                format!("v{version} {advert_int:?}"),
                format!("{backup:?}"),
                summary(samples.iter().map(|s| s.vip).collect()),
                summary(samples.iter().map(|s| s.forwarded).collect()),
            );
        }
    }
    Ok(())
}

/// Builds a topology with an xlb master and the given backup, and waits until the master
/// forwards and the backup is ready to take over.
fn setup(round: usize, backup: Peer, master: Vrrp, standby: Vrrp) -> anyhow::Result<Setup> {
    let topo = FailoverTopology::new(&format!("failover-{round}"))?;
    let servers = topo.start_http_servers()?;
    let [dir1, dir2] = &topo.directors;
    let with_vrrp = |vrrp| format!("{}{}", topo.vrrp_instance(vrrp), topo.virtual_server());
    let (master_xlb, _) = dir1.spawn_xlb("xlb", &with_vrrp(master), &["eth0"])?;
    let (backup_xlb, backup_run, keepalived) = match backup {
        Peer::Xlb => {
            let (xlb, run) = dir2.spawn_xlb("xlb", &with_vrrp(standby), &["eth0"])?;
            (xlb, run, None)
        }
        Peer::Keepalived => {
            let keepalived =
                Keepalived::start(dir2, "keepalived", &topo.vrrp_instance(standby))?.quiet();
            let (xlb, run) = dir2.spawn_xlb("xlb", &topo.virtual_server(), &["eth0"])?;
            (xlb, run, Some(keepalived))
        }
    };
    wait_until("an answer through the VIP", SETTLE, POLL, || {
        topo.client.http_get(topo.vip)
    })?;
    wait_until("the backup's reals up", SETTLE, POLL, || {
        let status = ctl::status(&backup_run)?;
        let up = status
            .services
            .iter()
            .flat_map(|s| &s.reals)
            .all(|r| r.healthy);
        ensure!(up && !status.services.is_empty(), "not yet");
        Ok::<_, anyhow::Error>(())
    })?;
    // The first answer may have come through the backup, if it won the first election
    // before the master had started.
    wait_until("the master alone to hold the VIP", SETTLE, POLL, || {
        ensure!(dir1.has_address(topo.vip.ip())?, "the master lacks the VIP");
        ensure!(
            !dir2.has_address(topo.vip.ip())?,
            "the backup holds the VIP too"
        );
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(Setup {
        master: master_xlb.quiet(),
        _backup: (backup_xlb.quiet(), keepalived),
        _servers: servers,
        topo,
    })
}

/// Kills the master and measures, from then, when the VIP is on the backup and when a
/// connection is first forwarded.
fn failover(mut setup: Setup) -> anyhow::Result<Sample> {
    let topo = &setup.topo;
    let vip = topo.vip;
    let killed = Instant::now();
    setup.master.kill()?;
    thread::scope(|scope| {
        // Binding to an address succeeds once it is local: a syscall, where listing the
        // addresses with `ip` would cost a process per look.
        let on_backup = scope.spawn(|| {
            topo.directors[1].run(|| {
                wait_until("the VIP on the backup", SETTLE, POLL, || {
                    UdpSocket::bind(SocketAddr::new(vip.ip(), 0)).map(|_| killed.elapsed())
                })
            })
        });
        let forwarded = topo.client.run(|| {
            wait_until("a connection through the backup", SETTLE, POLL, || {
                connect(vip).map(|()| killed.elapsed())
            })
        })??;
        let vip = on_backup.join().expect("the VIP watcher panicked")??;
        Ok(Sample { vip, forwarded })
    })
}

fn connect(vip: SocketAddr) -> anyhow::Result<()> {
    TcpStream::connect_timeout(&vip, PROBE_TIMEOUT)?;
    Ok(())
}

/// "median / worst" of `samples`.
fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    format!(
        "{:.0} ms / {:.0} ms",
        ms(&samples[samples.len() / 2]),
        ms(samples.last().expect("at least one round"))
    )
}
