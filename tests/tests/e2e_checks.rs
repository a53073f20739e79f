//! Health checkers beyond TCP_CHECK, end to end: `xlb run` on the director of the LVS-DR
//! topology, an HTTP_GET checker on a real's health endpoint and a MISC_CHECK script, each
//! taking its real out of the tables and bringing it back, as seen by `xlb status` and by
//! client traffic through the VIP.

use std::{
    collections::BTreeSet,
    fs,
    io::{Read, Write},
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU16, Ordering},
    },
    thread,
    time::Duration,
};

use anyhow::{Context, ensure};
use xlb::ctl::{self, RealStatus};
use xlb_testbed::{Child, DrTopology, Node, require_root, wait_until};

const POLL: Duration = Duration::from_millis(50);
/// A checker runs every `delay_loop` (1 s) and gives up after `connect_timeout` (1 s) or
/// `misc_timeout` (2 s); this leaves room for a loaded CI machine on top.
const VERDICT: Duration = Duration::from_secs(10);
const HEALTH_PORT: u16 = 8080;

/// real1 is checked on its health endpoint, real2 by a script whose exit status the test
/// sets, real3 by TCP from a start in `alpha` mode (down until checked).
fn config(script: &Path) -> String {
    format!(
        "virtual_server 203.0.113.10 80 {{
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 192.0.2.11 80 {{
        HTTP_GET {{
            connect_port {HEALTH_PORT}
            connect_timeout 1
            retry 0
            url {{
                path /health
                status_code 200-299
            }}
        }}
    }}
    real_server 192.0.2.12 80 {{
        MISC_CHECK {{
            misc_path \"{}\"
            misc_timeout 2
            misc_dynamic
        }}
    }}
    real_server 192.0.2.13 80 {{
        alpha
        TCP_CHECK {{
            connect_timeout 1
            retry 0
        }}
    }}
}}
",
        script.display()
    )
}

/// An HTTP endpoint in a real's namespace answering every request with the status code
/// the test sets; stopped when dropped.
struct HealthEndpoint {
    status: Arc<AtomicU16>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl HealthEndpoint {
    fn start(node: &Node, port: u16) -> anyhow::Result<Self> {
        let listener = node.run(|| TcpListener::bind(("0.0.0.0", port)))??;
        listener.set_nonblocking(true)?;
        let status = Arc::new(AtomicU16::new(200));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (status, stop) = (status.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let _ = answer(stream, status.load(Ordering::Relaxed));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        Ok(Self {
            status,
            stop,
            thread: Some(thread),
        })
    }

    fn set(&self, status: u16) {
        self.status.store(status, Ordering::Relaxed);
    }
}

/// Reads a request head (bounded in size and time) and answers it with `status`.
fn answer(mut stream: std::net::TcpStream, status: u16) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    stream.write_all(format!("HTTP/1.0 {status} Test\r\nContent-Length: 2\r\n\r\nok").as_bytes())
}

impl Drop for HealthEndpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `xlb run` on the director, with the file its MISC_CHECK script exits with.
struct Director {
    xlb: Child,
    run_dir: PathBuf,
    misc_status: PathBuf,
}

impl Director {
    fn start(topo: &DrTopology) -> anyhow::Result<Self> {
        let dir = topo.director.dir();
        let misc_status = dir.join("misc-status");
        fs::write(&misc_status, "0\n")?;
        let script = dir.join("misc-check.sh");
        fs::write(
            &script,
            format!("#!/bin/sh\nexit \"$(cat {})\"\n", misc_status.display()),
        )?;
        fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        let (xlb, run_dir) = topo.start_xlb(&config(&script))?;
        Ok(Self {
            xlb,
            run_dir,
            misc_status,
        })
    }

    fn set_misc_status(&self, status: u8) -> anyhow::Result<()> {
        Ok(fs::write(&self.misc_status, format!("{status}\n"))?)
    }

    fn real(&self, addr: SocketAddr) -> anyhow::Result<RealStatus> {
        ctl::status(&self.run_dir)?
            .services
            .into_iter()
            .flat_map(|s| s.reals)
            .find(|r| r.addr == addr)
            .context("real not in status")
    }

    /// Waits until `real` is healthy (or not) with `weight`.
    fn wait_for(&self, real: SocketAddr, healthy: bool, weight: u32) -> anyhow::Result<()> {
        let state = if healthy { "up" } else { "down" };
        wait_until(
            &format!("{real} to be {state} with weight {weight}"),
            VERDICT,
            POLL,
            || {
                let found = self.real(real)?;
                ensure!(
                    found.healthy == healthy && found.weight == weight,
                    "healthy {}, weight {}",
                    found.healthy,
                    found.weight
                );
                Ok::<_, anyhow::Error>(())
            },
        )
    }

    /// Waits until xlb has logged `line`.
    fn wait_for_log(&self, line: &str) -> anyhow::Result<()> {
        wait_until(&format!("xlb to log {line:?}"), VERDICT, POLL, || {
            self.xlb.stderr().contains(line)
        })
    }
}

fn real(topo: &DrTopology, i: usize) -> SocketAddr {
    SocketAddr::from((topo.reals[i].addr(), 80))
}

/// The reals that answered fresh connections through the VIP.
fn answering(topo: &DrTopology) -> anyhow::Result<BTreeSet<String>> {
    let answers = topo.client.http_get_many(topo.vip, 12)?;
    ensure!(answers.failures().is_empty(), "{:?}", answers.failures());
    Ok(answers.per_server().keys().map(|s| s.to_string()).collect())
}

fn names(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn http_get_and_misc_check_take_reals_out_and_bring_them_back() -> anyhow::Result<()> {
    require_root!(Ok(()));
    let topo = DrTopology::new("checks")?;
    let _servers = topo.start_http_servers()?;
    let health = HealthEndpoint::start(&topo.reals[0], HEALTH_PORT)?;
    let director = Director::start(&topo)?;
    for i in 0..3 {
        director.wait_for(real(&topo, i), true, 1)?;
    }
    // Logged only on a change to up: real3 did start down.
    director.wait_for_log("TCP connection to [192.0.2.13]:tcp:80 success.")?;
    assert_eq!(answering(&topo)?, names(&["real1", "real2", "real3"]));

    health.set(500);
    director.wait_for(real(&topo, 0), false, 1)?;
    director.wait_for_log(
        "HTTP status code error to [192.0.2.11]:tcp:80 url(/health), status_code [500].",
    )?;
    assert_eq!(answering(&topo)?, names(&["real2", "real3"]));

    director.set_misc_status(1)?;
    director.wait_for(real(&topo, 1), false, 1)?;
    director.wait_for_log("(exited with status 1)")?;
    assert_eq!(answering(&topo)?, names(&["real3"]));

    // Back up; misc_dynamic's status 7 sets real2's weight to 5.
    health.set(200);
    director.set_misc_status(7)?;
    director.wait_for(real(&topo, 0), true, 1)?;
    director.wait_for(real(&topo, 1), true, 5)?;
    director.wait_for_log("Remote Web server [192.0.2.11]:tcp:80 succeed on service.")?;
    assert_eq!(answering(&topo)?, names(&["real1", "real2", "real3"]));
    Ok(())
}
