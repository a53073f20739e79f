//! keepalived.conf compatibility: real-world samples are accepted, broken inputs are
//! rejected with exact positions, and no input makes the reader panic or hang.

use std::path::PathBuf;

use proptest::prelude::*;
use xlb::config::{self, Options};

fn opts(id: Option<&str>) -> Options {
    Options {
        config_id: id.map(str::to_string),
    }
}

/// keepalived's own sample configurations, shared beside the workspace.
fn samples_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()?
        .parent()?
        .join("shared/keepalived-samples");
    dir.is_dir().then_some(dir)
}

#[test]
fn every_keepalived_sample_is_accepted() {
    let Some(dir) = samples_dir() else {
        println!("skipped: no keepalived-samples folder beside the workspace");
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("keepalived.conf")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no samples in {}", dir.display());
    for file in &files {
        // keepalived.conf.conditional_conf is meant to run with `-i high` or `-i low`.
        for id in ["high", "low"] {
            let loaded = config::load_with(file, &opts(Some(id)))
                .unwrap_or_else(|diags| panic!("{} (-i {id}) rejected:\n{diags}", file.display()));
            let c = &loaded.config;
            assert!(
                !c.vrrp_instances.is_empty() || !c.virtual_servers.is_empty(),
                "{} read as empty",
                file.display()
            );
        }
    }
}

#[test]
fn samples_read_into_the_model_as_keepalived_means_them() {
    let Some(dir) = samples_dir() else {
        println!("skipped: no keepalived-samples folder beside the workspace");
        return;
    };
    let high = config::load_with(
        &dir.join("keepalived.conf.conditional_conf"),
        &opts(Some("high")),
    )
    .unwrap()
    .config;
    let vi = &high.vrrp_instances[0];
    assert_eq!(vi.priority.get(), 170);
    assert_eq!(vi.version, config::VrrpVersion::V3);
    assert_eq!(vi.advert_int, std::time::Duration::from_secs(12));
    assert_eq!(vi.track.interfaces[1].weight.weight, 20);
    assert_eq!(
        high.vrrp_scripts[0].command.argv,
        ["/etc/keepalived/scripts/check_high_VI_0.sh"]
    );
    let low = config::load_with(
        &dir.join("keepalived.conf.conditional_conf"),
        &opts(Some("low")),
    )
    .unwrap()
    .config;
    assert_eq!(low.vrrp_instances[0].priority.get(), 85);

    let vsg = config::load(&dir.join("keepalived.conf.virtual_server_group"))
        .unwrap()
        .config;
    let endpoints = vsg.service_endpoints(&vsg.virtual_servers[0]);
    // 10.0.0.1:8080, 10.0.0.2:80, 192.168.200.1:1358, 192.168.200.3-10:80, fwmark 1, 2.
    assert_eq!(endpoints.len(), 3 + 8 + 2);
    assert!(endpoints.contains(&config::ServiceEndpoint::Addr(
        "192.168.200.10:80".parse().unwrap()
    )));
    assert!(endpoints.contains(&config::ServiceEndpoint::Fwmark(2)));

    let ssl = config::load(&dir.join("keepalived.conf.status_code"))
        .unwrap()
        .config;
    let config::Check::Ssl(check) = &ssl.virtual_servers[0].real_servers[0].checks[0] else {
        panic!("an SSL_GET checker")
    };
    assert_eq!(
        check.urls[0].status_codes,
        [200..=299, 400..=499, 503..=503, 505..=505]
    );
    assert_eq!(check.timing.retry, 3);
}

/// Broken inputs, each with every diagnostic it must produce.
const BROKEN: &[(&str, &str)] = &[
    (
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress {\n    192.0.2.1\n",
        "t.conf:1:20: error: block is never closed\n\
         t.conf:4:21: error: block is never closed\n",
    ),
    (
        "a {\n}\n}\n",
        "t.conf:1:1: error: unknown keyword 'a'\nt.conf:3:1: error: '}' closes no block\n",
    ),
    (
        "global_defs {\n  router_id \"abc\n}\n",
        "t.conf:2:13: error: unterminated \"quoted\" string\n",
    ),
    (
        "bogus_block {\n}\n",
        "t.conf:1:1: error: unknown keyword 'bogus_block'\n",
    ),
    (
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 0\n}\n",
        "t.conf:3:21: error: VRID '0' is not between 1 and 255\n",
    ),
    (
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 256\n}\n",
        "t.conf:3:21: error: VRID '256' is not between 1 and 255\n",
    ),
    (
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_ipaddress {\n 192.0.2.1\n }\n}\n",
        "t.conf:1:1: error: (VI_1) virtual_router_id is missing\n",
    ),
    (
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 1\n  priority 0\n  virtual_ipaddress {\n 192.0.2.1\n }\n}\n",
        "t.conf:4:12: error: priority '0' is not between 1 and 255\n",
    ),
    (
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 1\n  advert_int 0.5\n  virtual_ipaddress {\n 192.0.2.1\n }\n}\n",
        "t.conf:4:14: error: (VI_1) VRRPv2 advertisement interval must be whole seconds between 1 and 255\n",
    ),
    (
        "vrrp_instance VI_1 {\n  interface eth0\n  version 3\n  virtual_router_id 1\n  advert_int 41\n  virtual_ipaddress {\n 192.0.2.1\n }\n}\n",
        "t.conf:5:14: error: (VI_1) VRRPv3 advertisement interval must be at most 40.95 seconds\n",
    ),
    (
        "vrrp_instance VI_1 {\n  interface eth0\n  version 3\n  virtual_router_id 1\n  advert_int 0.015\n  virtual_ipaddress {\n 192.0.2.1\n }\n}\n",
        "t.conf:5:14: error: (VI_1) VRRPv3 advertisement interval must be a multiple of 0.01 seconds\n",
    ),
    (
        "vrrp_instance VI_1 {\n  interface eth0\n  state FOO\n  virtual_router_id 1\n  virtual_ipaddress {\n 192.0.2.1\n }\n}\n",
        "t.conf:3:9: error: unknown state 'FOO' (expected MASTER or BACKUP)\n",
    ),
    (
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress {\n    192.0.2.1\n    2001:db8::1\n  }\n}\n",
        "t.conf:6:5: error: (VI_1) virtual address 2001:db8::1 is IPv6 but the instance is IPv4 (from virtual_ipaddress)\n",
    ),
    (
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 7\n  virtual_ipaddress {\n 192.0.2.1\n }\n}\n\
         vrrp_instance VI_2 {\n  interface eth0\n  virtual_router_id 7\n  virtual_ipaddress {\n 192.0.2.2\n }\n}\n",
        "t.conf:8:1: error: (VI_2) virtual_router_id 7 for IPv4 is already used on eth0 by VI_1\n",
    ),
    (
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress {\n 192.0.2.1\n }\n}\n\
         vrrp_instance VI_2 {\n  interface eth0\n  virtual_router_id 2\n  virtual_ipaddress {\n 192.0.2.1/24\n }\n}\n",
        "t.conf:12:2: error: (VI_2) 192.0.2.1 on eth0 is already a virtual address of VI_1 at t.conf:5:2\n",
    ),
    (
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress {\n 192.0.2.1\n }\n  track_script {\n    chk_missing\n  }\n}\n",
        "t.conf:8:5: error: (VI_1) track_script 'chk_missing' is not defined by any vrrp_script\n",
    ),
    (
        "vrrp_sync_group G {\n  group {\n    VI_1 VI_9\n  }\n}\n\
         vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress {\n 192.0.2.1\n }\n}\n",
        "t.conf:3:10: error: (G) vrrp_instance 'VI_9' is not defined\n",
    ),
    (
        "virtual_server group NOPE {\n  lb_algo rr\n}\n",
        "t.conf:1:1: error: virtual_server_group 'NOPE' is not defined\n",
    ),
    (
        "virtual_server 203.0.113.1 80 {\n  real_server 2001:db8::5 80 {\n  }\n}\n",
        "t.conf:2:3: error: real_server 2001:db8::5 is IPv6 but the virtual_server is IPv4\n",
    ),
    (
        "virtual_server 203.0.113.1 80 {\n  lb_algo fastest\n  lb_kind ROUTE\n  protocol ICMP\n}\n",
        "t.conf:2:11: error: unknown lb_algo 'fastest'\n\
         t.conf:3:11: error: unknown lb_kind 'ROUTE' (expected DR, NAT or TUN)\n\
         t.conf:4:12: error: unknown protocol 'ICMP' (expected TCP, UDP or SCTP)\n",
    ),
    (
        "virtual_server 203.0.113.1 80 {\n  real_server 192.0.2.5 80 {\n    weight 70000\n  }\n}\n",
        "t.conf:3:12: error: 70000 is outside 0..=65535\n",
    ),
    (
        "include /nonexistent/xlb.conf\n",
        "t.conf:1:1: error: included file /nonexistent/xlb.conf does not exist\n",
    ),
    (
        "virtual_server 203.0.113.1 80 {\n  real_server 192.0.2.5 80 {\n    HTTP_GET {\n      connect_timeout 3\n    }\n  }\n}\n",
        "t.conf:3:5: error: 'HTTP_GET' needs at least one 'url'\n",
    ),
    (
        "virtual_server 203.0.113.1 80 {\n  real_server 192.0.2.5 80 {\n    HTTP_GET {\n      url {\n        path /\n        digest xyz\n        status_code 700\n      }\n    }\n  }\n}\n",
        "t.conf:6:16: error: digest 'xyz' is not 32 hexadecimal digits (MD5)\n\
         t.conf:7:21: error: 700 is outside 100..=599\n",
    ),
    (
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress {\n 192.0.2.1\n }\n  track_interface {\n    eth1 weight 300\n  }\n}\n",
        "t.conf:8:17: error: 300 is outside -253..=253\n",
    ),
    (
        "vrrp_script chk {\n  interval 2\n}\n",
        "t.conf:1:1: error: vrrp_script 'chk' has no 'script'\n",
    ),
    (
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress {\n    192.0.2.1/33\n  }\n  unicast_peer {\n    192.0.2.300\n  }\n}\n",
        "t.conf:1:1: warning: (VI_1) no virtual_ipaddress; at least one is sensible\n\
         t.conf:5:5: error: '33' is not a prefix length of 0 to 32\n\
         t.conf:8:5: error: '192.0.2.300' is not an IP address\n",
    ),
    (
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress {\n 192.0.2.1\n }\n  authentication {\n    auth_type MD5\n  }\n}\n",
        "t.conf:8:15: error: unknown authentication type 'MD5' (expected PASS or AH)\n",
    ),
    (
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress {\n 192.0.2.1\n }\n}\n\
         vrrp_instance VI_1 {\n  interface eth1\n  virtual_router_id 2\n  virtual_ipaddress {\n 192.0.2.2\n }\n}\n",
        "t.conf:8:1: error: vrrp_instance 'VI_1' is already defined at t.conf:1:1\n",
    ),
    (
        "vrrp_instance {\n}\n",
        "t.conf:1:1: error: 'vrrp_instance' needs exactly one name\n",
    ),
    (
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 1\n  priority 100 {\n  }\n  virtual_ipaddress {\n 192.0.2.1\n }\n}\n",
        "t.conf:4:3: error: 'priority' takes no block\n",
    ),
    (
        "virtual_server fwmark x {\n}\n",
        "t.conf:1:23: error: 'x' is not an integer\n",
    ),
    (
        "$A=x$A\nrouter $A\n",
        "t.conf:2:8: error: more than 1000 substitutions on one line (a definition refers to itself?)\n",
    ),
    (
        "virtual_server 203.0.113.1 80 {\n  real_server 192.0.2.5 80 {\n    TCP_CHECK {\n      nb_get_retry 2\n      connect_tmeout 3\n    }\n  }\n}\n",
        "t.conf:4:7: warning: 'nb_get_retry' is the old name of 'retry'\n\
         t.conf:5:7: error: unknown keyword 'connect_tmeout'\n",
    ),
];

#[test]
fn broken_inputs_are_reported_exactly() {
    let mut failures = Vec::new();
    for (text, expected) in BROKEN {
        let diags = match config::parse_str_with("t.conf", text, &opts(None)) {
            Ok(loaded) => format!("accepted with:\n{}", loaded.warnings),
            Err(diags) => diags.to_string(),
        };
        if diags != *expected {
            failures.push(format!(
                "--- input:\n{text}--- expected:\n{expected}--- got:\n{diags}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Words a keepalived.conf is made of, to build plausible nonsense from.
const VOCABULARY: &[&str] = &[
    "{",
    "}",
    "\n",
    " ",
    "\"",
    "'",
    "\\",
    "#",
    "!",
    "$X=",
    "$X",
    "${X}",
    "$Y=$X$X",
    "@",
    "@^",
    "~SEQ(N, 1, 3)",
    "~LST(A, 1, 2)",
    "${N}",
    "include nothing-here*.conf",
    "global_defs",
    "vrrp_instance",
    "VI_1",
    "vrrp_sync_group",
    "group",
    "vrrp_script",
    "script",
    "track_script",
    "track_interface",
    "weight",
    "-300",
    "reverse",
    "state",
    "MASTER",
    "BACKUP",
    "interface",
    "eth0",
    "virtual_router_id",
    "priority",
    "advert_int",
    "0.5",
    "version",
    "3",
    "virtual_ipaddress",
    "virtual_ipaddress_excluded",
    "192.0.2.1/24",
    "2001:db8::1",
    "dev",
    "label",
    "authentication",
    "auth_type",
    "PASS",
    "AH",
    "auth_pass",
    "unicast_peer",
    "nopreempt",
    "notify_master",
    "virtual_server",
    "virtual_server_group",
    "fwmark",
    "203.0.113.1",
    "80",
    "192.0.2.1-300",
    "real_server",
    "TCP_CHECK",
    "HTTP_GET",
    "url",
    "path",
    "status_code",
    "200-",
    "MISC_CHECK",
    "misc_path",
    "lb_algo",
    "rr",
    "lb_kind",
    "DR",
    "protocol",
    "UDP",
    "delay_loop",
    "6",
    "retry",
    "255",
    "0",
    "65536",
    "sorry_server",
    "quorum",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(VOCABULARY), 0..200)
        .prop_map(|words| words.join(" "))
}

/// Every diagnostic points into the text it was read from.
fn positions_in_bounds(text: &str, diags: &config::Diagnostics) {
    let lines = text.lines().count().max(1) as u32;
    for d in diags.iter() {
        assert!(
            d.pos.line >= 1 && d.pos.line <= lines,
            "{d} outside {lines} lines"
        );
        assert!(d.pos.col >= 1, "{d}");
    }
}

fn read(text: &str) {
    let diags = match config::parse_str_with("fuzz.conf", text, &opts(Some("main"))) {
        Ok(loaded) => loaded.warnings,
        Err(diags) => diags,
    };
    positions_in_bounds(text, &diags);
}

proptest! {
    // A hang fails the case instead of stalling the suite.
    #![proptest_config(ProptestConfig { cases: 256, timeout: 20_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        read(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn token_soups_never_panic(text in soup()) {
        read(&text);
    }
}

/// `xlb check` as an operator runs it: diagnostics on stderr, status 0 or 1, the model
/// on stdout with `--json`.
#[test]
fn xlb_check_reports_and_exits_like_a_linter() {
    let dir = std::env::temp_dir().join(format!("xlb-check-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.conf");
    let bad = dir.join("bad.conf");
    std::fs::write(
        &good,
        "vrrp_instance VI_1 {\n interface lo\n virtual_router_id 9\n use_vmac\n @a priority 200\n \
         virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
    )
    .unwrap();
    std::fs::write(&bad, "vrrp_instance VI_1 {\n virtual_router_id 300\n").unwrap();
    let xlb = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_xlb"))
            .arg("check")
            .args(args)
            .output()
            .unwrap()
    };
    let out = xlb(&["-f", good.to_str().unwrap(), "--json", "-i", "a"]);
    let bad_out = xlb(&["-f", bad.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();

    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "{}:4:2: warning: 'use_vmac' is not supported by xlb yet and is ignored\n",
            good.display()
        )
    );
    let model: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(model["vrrp_instances"][0]["priority"], 200);
    assert_eq!(model["vrrp_instances"][0]["vrid"], 9);

    assert_eq!(bad_out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&bad_out.stderr),
        format!(
            "{b}:1:20: error: block is never closed\n\
             {b}:2:20: error: VRID '300' is not between 1 and 255\n",
            b = bad.display()
        )
    );
    assert!(bad_out.stdout.is_empty());
}
