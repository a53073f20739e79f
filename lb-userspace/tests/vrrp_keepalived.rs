//! VRRP end to end against keepalived 2.2.7: xlb's engine in one network namespace,
//! keepalived in another, a veth pair between them. Assertions are on the VIPs the
//! kernel shows and on the gratuitous ARPs/NAs seen on the wire.
//!
//! These need root and keepalived/tcpdump; they skip (and say so) without them.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc as std_mpsc,
    thread,
    time::{Duration, Instant},
};

use xlb::vrrp::{
    AdvertInterval, Priority, Version, Vrid,
    announce::GarpSettings,
    check::Expect,
    engine::{self, InstanceSpec, Spec},
    fsm::Settings,
    instance::Plan,
    netlink::HostAddr,
    notify::Scripts,
    packet::{Auth, MCAST_V4, MCAST_V6},
};

/// Skips a test that cannot run here, loudly.
fn can_run() -> bool {
    let root = nix::unistd::Uid::effective().is_root();
    let tools = ["keepalived", "tcpdump", "ip"].iter().all(|t| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !(root && tools) {
        eprintln!("skipping: needs root, keepalived, tcpdump and ip");
    }
    root && tools
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces joined by a veth pair, removed on drop.
struct Pair {
    a: String,
    b: String,
    dir: PathBuf,
}

const IF_A: &str = "vrrpa";
const IF_B: &str = "vrrpb";

impl Pair {
    fn new(tag: &str) -> Self {
        let id = format!("{}-{tag}", std::process::id());
        let (a, b) = (format!("xlbv-a-{id}"), format!("xlbv-b-{id}"));
        let dir = std::env::temp_dir().join(format!("xlb-vrrp-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let pair = Self { a, b, dir };
        sh(&["ip", "netns", "add", &pair.a]);
        sh(&["ip", "netns", "add", &pair.b]);
        sh(&[
            "ip", "-n", &pair.a, "link", "add", IF_A, "type", "veth", "peer", "name", IF_B,
            "netns", &pair.b,
        ]);
        for (ns, dev, v4, v6) in [
            (&pair.a, IF_A, "192.0.2.1/24", "2001:db8::1/64"),
            (&pair.b, IF_B, "192.0.2.2/24", "2001:db8::2/64"),
        ] {
            sh(&["ip", "-n", ns, "addr", "add", v4, "dev", dev]);
            sh(&["ip", "-n", ns, "addr", "add", v6, "dev", dev, "nodad"]);
            // No duplicate address detection: link-local sources are usable at once.
            sh(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{dev}.accept_dad=0"),
            ]);
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        pair
    }

    fn has(&self, ns: &str, dev: &str, addr: &str) -> bool {
        let out = Command::new("ip")
            .args(["-n", ns, "-o", "addr", "show", "dev", dev])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .any(|w| w.split('/').next() == Some(addr))
    }

    /// The link-local address of `dev` in `ns`.
    fn link_local(&self, ns: &str, dev: &str) -> IpAddr {
        let out = Command::new("ip")
            .args([
                "-n", ns, "-o", "-6", "addr", "show", "dev", dev, "scope", "link",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let word = text
            .split_whitespace()
            .skip_while(|w| *w != "inet6")
            .nth(1)
            .expect("link-local address");
        word.split('/').next().unwrap().parse().unwrap()
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A process killed (by its own PID) on drop.
struct Proc(Child);

impl Proc {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    fn terminate(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until `cond` holds or `limit` passes; returns how long it took.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return Some(start.elapsed());
        }
        thread::sleep(Duration::from_millis(10));
    }
    None
}

fn keepalived(pair: &Pair, ns: &str, name: &str, instance: &str) -> Proc {
    let conf = pair.dir.join(format!("{name}.conf"));
    std::fs::write(
        &conf,
        format!("global_defs {{\n router_id {name}\n}}\n{instance}"),
    )
    .unwrap();
    let pid = |p: &str| {
        pair.dir
            .join(format!("{name}.{p}.pid"))
            .display()
            .to_string()
    };
    let log = std::fs::File::create(pair.dir.join(format!("{name}.log"))).unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", ns, "keepalived", "-n", "-l", "-D", "-f"])
        .arg(&conf)
        .args([
            "-p",
            &pid("main"),
            "-r",
            &pid("vrrp"),
            "-c",
            &pid("checkers"),
        ])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    Proc(child)
}

/// tcpdump in `ns` on `dev`, writing what it sees to a file.
fn capture(pair: &Pair, ns: &str, dev: &str, filter: &str) -> (Proc, PathBuf) {
    let out = pair.dir.join(format!("cap-{ns}-{}.txt", filter.len()));
    let child = Command::new("ip")
        .args([
            "netns", "exec", ns, "tcpdump", "-l", "-nn", "-i", dev, filter,
        ])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = wait_until(Duration::from_secs(5), || {
        Command::new("ip").args(["netns", "exec", ns, "sh", "-c", &format!("grep -q ' {dev}' /proc/net/packet || cat /proc/net/packet | wc -l | grep -qv '^1$'")]).status().is_ok_and(|s| s.success())
    });
    assert!(started.is_some(), "tcpdump did not start");
    (Proc(child), out)
}

/// Whether a line of `file` contains every one of `words`.
fn seen(file: &Path, words: &[&str]) -> bool {
    std::fs::read_to_string(file)
        .is_ok_and(|t| t.lines().any(|l| words.iter().all(|w| l.contains(w))))
}

/// xlb's engine running in a namespace, on its own thread and runtime.
struct Xlb {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Xlb {
    fn start(ns: &str, spec: Spec) -> Self {
        Self::run(ns, move || engine::start(spec).expect("engine starts").0)
    }

    fn run(ns: &str, start: impl FnOnce() -> engine::Handle + Send + 'static) -> Self {
        let ns_path = format!("/run/netns/{ns}");
        let (stop_tx, stop_rx) = std_mpsc::channel::<()>();
        let (ready_tx, ready_rx) = std_mpsc::channel();
        let thread = thread::spawn(move || {
            let f = std::fs::File::open(&ns_path).unwrap();
            nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let handle = start();
                ready_tx.send(()).unwrap();
                let _ = tokio::task::spawn_blocking(move || stop_rx.recv()).await;
                handle.shutdown().await;
            });
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("engine ready");
        Self {
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Runs the VRRP part of a keepalived.conf, as `xlb run` would.
    fn from_config(ns: &str, text: &str) -> Self {
        let config = xlb::config::parse_str("test.conf", text)
            .expect("config reads")
            .config;
        Self::run(ns, move || {
            xlb::vrrp::start(&config).expect("vrrp starts").0
        })
    }

    fn shutdown(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Xlb {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Inst {
    version: Version,
    priority: u8,
    interval_ms: u64,
    vip: &'static str,
    prefix: u8,
    primary: IpAddr,
    peers: Vec<IpAddr>,
    preempt: bool,
    auth: Auth,
}

fn spec(ifindex_ns: &str, i: Inst) -> Spec {
    let ifindex: u32 = Command::new("ip")
        .args(["-n", ifindex_ns, "-o", "link", "show", IF_A])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split(':')
                .next()
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .unwrap();
    let vip: IpAddr = i.vip.parse().unwrap();
    let interval = AdvertInterval::from_duration(Duration::from_millis(i.interval_ms)).unwrap();
    let destinations = if i.peers.is_empty() {
        vec![if vip.is_ipv6() {
            IpAddr::V6(MCAST_V6)
        } else {
            IpAddr::V4(MCAST_V4)
        }]
    } else {
        i.peers.clone()
    };
    let plan = Plan {
        settings: Settings {
            name: "VI_1".into(),
            version: i.version,
            priority: Priority::new(i.priority),
            interval,
            preempt: i.preempt,
            preempt_delay: Duration::ZERO,
            want_master: false,
            primary: i.primary,
        },
        vrid: Vrid::new(51).unwrap(),
        ifname: IF_A.into(),
        ifindex,
        destinations,
        expect: Expect {
            version: i.version,
            auth: i.auth,
            interval,
            vips: vec![vip],
            unicast_peers: i.peers,
            check_unicast_src: false,
        },
        vips: vec![HostAddr {
            addr: vip,
            prefix_len: i.prefix,
            ifindex,
            label: None,
            scope: 0,
            broadcast: None,
            nodad: vip.is_ipv6(),
        }],
        excluded: vec![],
        garp: GarpSettings {
            rules: xlb::config::Garp::default(),
            interval: Duration::ZERO,
        },
    };
    Spec {
        instances: vec![InstanceSpec {
            plan,
            tracks: vec![],
            notify: Scripts::default(),
        }],
        ..Spec::default()
    }
}

fn keepalived_instance(
    version: u8,
    priority: u8,
    advert_int: &str,
    vip: &str,
    extra: &str,
) -> String {
    format!(
        "vrrp_instance VI_1 {{\n state BACKUP\n interface {IF_B}\n virtual_router_id 51\n priority {priority}\n advert_int {advert_int}\n version {version}\n {extra}\n virtual_ipaddress {{\n  {vip}\n }}\n}}\n"
    )
}

fn v4(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Skew_Time for a v3 backup of `priority` at `interval`.
fn skew(priority: u32, interval: Duration) -> Duration {
    interval * (256 - priority) / 256
}

const MARGIN: Duration = Duration::from_millis(700);

#[test]
fn xlb_wins_by_priority_hands_over_on_stop_and_preempts_back() {
    if !can_run() {
        return;
    }
    let pair = Pair::new("elect");
    let (_tcpdump, arps) = capture(&pair, &pair.b, IF_B, "arp");
    let _ka = keepalived(
        &pair,
        &pair.b,
        "ka",
        &keepalived_instance(3, 100, "1", "203.0.113.10/24", ""),
    );
    let inst = || Inst {
        version: Version::V3,
        priority: 200,
        interval_ms: 1000,
        vip: "203.0.113.10",
        prefix: 24,
        primary: v4("192.0.2.1"),
        peers: vec![],
        preempt: true,
        auth: Auth::None,
    };
    let mut xlb = Xlb::start(&pair.a, spec(&pair.a, inst()));
    let vip = "203.0.113.10";
    assert!(
        wait_until(Duration::from_secs(6), || pair.has(&pair.a, IF_A, vip)).is_some(),
        "xlb (priority 200) did not become master"
    );
    assert!(
        wait_until(Duration::from_secs(3), || seen(
            &arps,
            &["Request who-has 203.0.113.10 ", "tell 203.0.113.10,"]
        ))
        .is_some(),
        "no gratuitous ARP from xlb on the wire"
    );
    // keepalived, hearing a better master, stays BACKUP and holds no VIP.
    thread::sleep(Duration::from_millis(1500));
    assert!(
        !pair.has(&pair.b, IF_B, vip),
        "keepalived took the VIP from a better master"
    );

    // Graceful stop: priority 0 lets keepalived take over within its Skew_Time.
    let stopped = Instant::now();
    xlb.shutdown();
    assert!(!pair.has(&pair.a, IF_A, vip), "xlb left its VIP behind");
    let took = wait_until(skew(100, Duration::from_secs(1)) + MARGIN, || {
        pair.has(&pair.b, IF_B, vip)
    });
    assert!(
        took.is_some(),
        "keepalived did not take over within Skew_Time after {:?}",
        stopped.elapsed()
    );

    // Back with the higher priority, xlb preempts.
    let _xlb = Xlb::start(&pair.a, spec(&pair.a, inst()));
    assert!(
        wait_until(Duration::from_secs(6), || pair.has(&pair.a, IF_A, vip)).is_some(),
        "xlb did not preempt"
    );
    assert!(
        wait_until(Duration::from_secs(3), || !pair.has(&pair.b, IF_B, vip)).is_some(),
        "keepalived kept the VIP after being preempted"
    );
}

#[test]
fn xlb_takes_over_from_a_killed_keepalived_within_master_down_interval_v2_pass() {
    if !can_run() {
        return;
    }
    let pair = Pair::new("kill");
    let mut ka = keepalived(
        &pair,
        &pair.b,
        "ka",
        &keepalived_instance(
            2,
            200,
            "1",
            "203.0.113.20/24",
            "authentication {\n  auth_type PASS\n  auth_pass s3cret\n }",
        ),
    );
    let vip = "203.0.113.20";
    assert!(
        wait_until(Duration::from_secs(8), || pair.has(&pair.b, IF_B, vip)).is_some(),
        "keepalived not master"
    );
    let _xlb = Xlb::start(
        &pair.a,
        spec(
            &pair.a,
            Inst {
                version: Version::V2,
                priority: 100,
                interval_ms: 1000,
                vip,
                prefix: 24,
                primary: v4("192.0.2.1"),
                peers: vec![],
                preempt: true,
                auth: Auth::pass("s3cret"),
            },
        ),
    );
    // Well past xlb's own Master_Down_Interval: it must stay backup under a live master.
    thread::sleep(Duration::from_secs(5));
    assert!(
        !pair.has(&pair.a, IF_A, vip),
        "xlb took the VIP from a higher-priority keepalived"
    );
    ka.kill();
    let down = Duration::from_secs(3) + Duration::from_micros(156 * 1_000_000 / 256);
    assert!(
        wait_until(down + MARGIN, || pair.has(&pair.a, IF_A, vip)).is_some(),
        "xlb did not take over within Master_Down_Interval"
    );
}

#[test]
fn v3_fast_adverts_over_unicast_keepalived_master_stops() {
    if !can_run() {
        return;
    }
    let pair = Pair::new("ucast");
    let vip = "203.0.113.30";
    let mut ka = keepalived(
        &pair,
        &pair.b,
        "ka",
        &keepalived_instance(
            3,
            200,
            "0.1",
            "203.0.113.30/24",
            "unicast_src_ip 192.0.2.2\n unicast_peer {\n  192.0.2.1\n }",
        ),
    );
    assert!(
        wait_until(Duration::from_secs(8), || pair.has(&pair.b, IF_B, vip)).is_some(),
        "keepalived not master"
    );
    let _xlb = Xlb::start(
        &pair.a,
        spec(
            &pair.a,
            Inst {
                version: Version::V3,
                priority: 100,
                interval_ms: 100,
                vip,
                prefix: 24,
                primary: v4("192.0.2.1"),
                peers: vec![v4("192.0.2.2")],
                preempt: true,
                auth: Auth::None,
            },
        ),
    );
    thread::sleep(Duration::from_secs(1));
    assert!(
        !pair.has(&pair.a, IF_A, vip),
        "xlb took the VIP under a live unicast master"
    );
    ka.terminate();
    assert!(
        wait_until(skew(100, Duration::from_millis(100)) + MARGIN, || pair
            .has(&pair.a, IF_A, vip))
        .is_some(),
        "xlb did not take over after keepalived's priority-0 advert"
    );
}

#[test]
fn ipv6_xlb_master_sends_unsolicited_na_and_keepalived_follows() {
    if !can_run() {
        return;
    }
    let pair = Pair::new("v6");
    let vip = "2001:db8::100";
    let (_tcpdump, nas) = capture(&pair, &pair.b, IF_B, "icmp6");
    let _ka = keepalived(
        &pair,
        &pair.b,
        "ka",
        &keepalived_instance(3, 100, "1", "2001:db8::100/64", ""),
    );
    let primary = pair.link_local(&pair.a, IF_A);
    let mut xlb = Xlb::start(
        &pair.a,
        spec(
            &pair.a,
            Inst {
                version: Version::V3,
                priority: 200,
                interval_ms: 1000,
                vip,
                prefix: 64,
                primary,
                peers: vec![],
                preempt: true,
                auth: Auth::None,
            },
        ),
    );
    assert!(
        wait_until(Duration::from_secs(6), || pair.has(&pair.a, IF_A, vip)).is_some(),
        "xlb not master over IPv6"
    );
    assert!(
        wait_until(Duration::from_secs(3), || seen(
            &nas,
            &["neighbor advertisement, tgt is 2001:db8::100,"]
        ))
        .is_some(),
        "no unsolicited NA on the wire"
    );
    thread::sleep(Duration::from_millis(1500));
    assert!(
        !pair.has(&pair.b, IF_B, vip),
        "keepalived took the IPv6 VIP from a better master"
    );
    xlb.shutdown();
    assert!(
        wait_until(skew(100, Duration::from_secs(1)) + MARGIN, || pair
            .has(&pair.b, IF_B, vip))
        .is_some(),
        "keepalived did not take over the IPv6 VIP"
    );
}

fn xlb_conf(iface: &str, priority: u8, flag: &Path) -> String {
    format!(
        "vrrp_script chk {{\n script \"/usr/bin/test -e {}\"\n interval 1\n fall 1\n rise 1\n}}\n\
         vrrp_instance VI_1 {{\n state BACKUP\n interface {iface}\n virtual_router_id 52\n priority {priority}\n\
         advert_int 0.5\n version 3\n track_script {{\n  chk\n }}\n virtual_ipaddress {{\n  203.0.113.40/24\n }}\n}}\n",
        flag.display()
    )
}

#[test]
fn xlb_pair_from_config_moves_the_vip_when_the_tracking_script_fails() {
    if !can_run() {
        return;
    }
    let pair = Pair::new("track");
    let vip = "203.0.113.40";
    let (flag_a, flag_b) = (pair.dir.join("ok-a"), pair.dir.join("ok-b"));
    std::fs::write(&flag_a, "").unwrap();
    std::fs::write(&flag_b, "").unwrap();
    let _a = Xlb::from_config(&pair.a, &xlb_conf(IF_A, 150, &flag_a));
    let _b = Xlb::from_config(&pair.b, &xlb_conf(IF_B, 100, &flag_b));
    assert!(
        wait_until(Duration::from_secs(5), || pair.has(&pair.a, IF_A, vip)).is_some(),
        "priority 150 not master"
    );
    thread::sleep(Duration::from_secs(1));
    assert!(!pair.has(&pair.b, IF_B, vip), "both xlb hold the VIP");
    std::fs::remove_file(&flag_a).unwrap();
    assert!(
        wait_until(Duration::from_secs(4), || pair.has(&pair.b, IF_B, vip)
            && !pair.has(&pair.a, IF_A, vip))
        .is_some(),
        "the VIP did not move when the tracking script failed"
    );
    std::fs::write(&flag_a, "").unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || pair.has(&pair.a, IF_A, vip)
            && !pair.has(&pair.b, IF_B, vip))
        .is_some(),
        "the VIP did not come back when the script recovered"
    );
}
