//! Health checkers of a real server.

use std::time::Duration;

use super::{
    args, block, boolean, command_from, flag, one, parsed, renamed, set, set_some, track_weight,
    unknown, unsupported, value,
};
use crate::config::{
    diag::Diagnostics,
    model::{
        BfdCheck, Check, CheckConnect, CheckTiming, DEFAULT_DELAY_LOOP, DnsCheck, FileCheck,
        HexPattern, HttpCheck, HttpProtocol, MiscCheck, PingCheck, SmtpCheck, TcpCheck, UdpCheck,
        Url,
    },
    tree::{Arg, Node},
};

/// keepalived's `delay_before_retry` for HTTP_GET and SSL_GET when none is set.
const HTTP_DELAY_BEFORE_RETRY: Duration = Duration::from_secs(3);
/// The bound of a FILE_CHECK's weight: a real's weight has room where a VRRP priority
/// has not.
const REAL_FILE_WEIGHT: i64 = i32::MAX as i64;
/// keepalived's `retry` for DNS_CHECK when none is set.
const DNS_RETRY: u32 = 3;

/// Timing settings as written at one level (service, real or checker); unset ones fall
/// through to the level above, then to keepalived's defaults.
#[derive(Clone, Debug, Default)]
pub(super) struct TimingDraft {
    connect_timeout: Option<Duration>,
    retry: Option<u32>,
    delay_before_retry: Option<Duration>,
    pub(super) delay_loop: Option<Duration>,
    warmup: Option<Duration>,
    /// Only a checker's own: a real's or service's `alpha` is the real's.
    alpha: Option<bool>,
    /// MISC_CHECK's `misc_timeout`, only a checker's own.
    misc_timeout: Option<Duration>,
}

impl TimingDraft {
    /// Reads `node` when it is a timing keyword; false otherwise. The service's
    /// `delay_loop` is its own field, so it is left to the service.
    pub(super) fn read(&mut self, node: &Node, diags: &mut Diagnostics) -> bool {
        match node.name() {
            "connect_timeout" => set_some(&mut self.connect_timeout, node, diags, value::seconds),
            "retry" => set_some(&mut self.retry, node, diags, value::count),
            "nb_get_retry" => {
                renamed(node, "retry", diags);
                set_some(&mut self.retry, node, diags, value::count);
            }
            "delay_before_retry" => {
                set_some(&mut self.delay_before_retry, node, diags, value::seconds)
            }
            "warmup" => set_some(&mut self.warmup, node, diags, value::seconds),
            "delay_loop" => set_some(&mut self.delay_loop, node, diags, value::seconds),
            _ => return false,
        }
        true
    }

    fn or(&self, above: &TimingDraft) -> TimingDraft {
        TimingDraft {
            connect_timeout: self.connect_timeout.or(above.connect_timeout),
            retry: self.retry.or(above.retry),
            delay_before_retry: self.delay_before_retry.or(above.delay_before_retry),
            delay_loop: self.delay_loop.or(above.delay_loop),
            warmup: self.warmup.or(above.warmup),
            alpha: self.alpha.or(above.alpha),
            misc_timeout: self.misc_timeout.or(above.misc_timeout),
        }
    }
}

/// What a real's checkers inherit that is not timing.
pub(super) struct Inherited<'a> {
    /// The HTTP `virtualhost` of the real, or else of the service.
    pub(super) virtualhost: Option<&'a String>,
    /// The real's resolved `alpha`.
    pub(super) alpha: bool,
    /// The service's `delay_loop`, resolved.
    pub(super) delay_loop: Duration,
}

/// Fills a checker's timing from its own settings, then the levels above it (nearest
/// first), then the defaults keepalived gives its kind, and fills HTTP checkers' missing
/// `virtualhost`.
pub(super) fn resolve(check: &mut Check, levels: &[&TimingDraft], inherited: &Inherited) {
    let draft = levels
        .iter()
        .fold(TimingDraft::default(), |acc, level| acc.or(level));
    // A service's own `delay_loop` is the service's; a real's or checker's overrides it.
    let delay_loop = levels[..levels.len().saturating_sub(1)]
        .iter()
        .find_map(|l| l.delay_loop)
        .unwrap_or(inherited.delay_loop);
    let defaults = CheckTiming::default();
    let (default_retry, default_delay_before_retry) = match check {
        Check::Misc(_) => (0, defaults.delay_before_retry),
        Check::Http(_) | Check::Ssl(_) => (defaults.retry, HTTP_DELAY_BEFORE_RETRY),
        Check::Dns(_) => (DNS_RETRY, delay_loop),
        _ => (defaults.retry, defaults.delay_before_retry),
    };
    let resolved = CheckTiming {
        connect_timeout: draft.connect_timeout.unwrap_or(defaults.connect_timeout),
        retry: draft.retry.unwrap_or(default_retry),
        delay_before_retry: draft
            .delay_before_retry
            .unwrap_or(default_delay_before_retry),
        delay_loop,
        warmup: draft.warmup.unwrap_or(delay_loop),
        alpha: draft.alpha.unwrap_or(inherited.alpha),
    };
    let virtualhost = inherited.virtualhost;
    match check {
        Check::Tcp(c) => c.timing = resolved,
        Check::Http(c) | Check::Ssl(c) => {
            c.timing = resolved;
            if c.virtualhost.is_none() {
                c.virtualhost = virtualhost.cloned();
            }
        }
        Check::Misc(c) => {
            c.timing = resolved;
            c.timeout = draft.misc_timeout.unwrap_or(delay_loop);
        }
        Check::Udp(c) => c.timing = resolved,
        Check::Dns(c) => c.timing = resolved,
        Check::Ping(c) => c.timing = resolved,
        Check::Smtp(c) => c.timing = resolved,
        Check::File(_) | Check::Bfd(_) => {}
    }
}

/// Reads `node` when it is a checker: `None` when it is not one, `Some(None)` when it is
/// one but could not be read.
pub(super) fn read(node: &Node, diags: &mut Diagnostics) -> Option<Option<(Check, TimingDraft)>> {
    let pos = node.pos().clone();
    let mut connect = CheckConnect::default();
    let mut timing = TimingDraft::default();
    let check = match node.name() {
        "TCP_CHECK" => {
            for child in block(node, diags) {
                if !common(child, &mut connect, &mut timing, diags) {
                    unknown(child, diags);
                }
            }
            Some(Check::Tcp(TcpCheck {
                pos,
                connect,
                timing: CheckTiming::default(),
            }))
        }
        "PING_CHECK" => {
            for child in block(node, diags) {
                if !common(child, &mut connect, &mut timing, diags) {
                    unknown(child, diags);
                }
            }
            Some(Check::Ping(PingCheck {
                pos,
                connect,
                timing: CheckTiming::default(),
            }))
        }
        "HTTP_GET" | "SSL_GET" => http(node, &mut connect, &mut timing, diags),
        "MISC_CHECK" => misc(node, &mut timing, diags),
        "UDP_CHECK" => udp(node, &mut connect, &mut timing, diags),
        "DNS_CHECK" => dns(node, &mut connect, &mut timing, diags),
        "SMTP_CHECK" => smtp(node, &mut connect, &mut timing, diags),
        "FILE_CHECK" => file(node, diags),
        "BFD_CHECK" => bfd(node, diags),
        _ => return None,
    };
    Some(check.map(|c| (c, timing)))
}

/// Connection and timing keywords every network checker takes; false for others.
fn common(
    node: &Node,
    connect: &mut CheckConnect,
    timing: &mut TimingDraft,
    diags: &mut Diagnostics,
) -> bool {
    match node.name() {
        "connect_ip" => set_some(&mut connect.ip, node, diags, value::ip),
        "connect_port" => set_some(&mut connect.port, node, diags, value::port),
        "bindto" => set_some(&mut connect.bind_ip, node, diags, value::ip),
        "bind_port" => set_some(&mut connect.bind_port, node, diags, value::port),
        "bind_if" => set_some(&mut connect.bind_if, node, diags, |v| Ok(v.to_string())),
        "fwmark" => set_some(&mut connect.fwmark, node, diags, |v| {
            value::integer(v, 0, u64::from(u32::MAX)).map(|n| n as u32)
        }),
        _ => return checker_option(node, timing, diags),
    }
    true
}

/// Keywords every checker takes, MISC_CHECK included; false for others.
fn checker_option(node: &Node, timing: &mut TimingDraft, diags: &mut Diagnostics) -> bool {
    match node.name() {
        "alpha" => timing.alpha = boolean(node, diags).or(timing.alpha),
        // xlb logs every failure of a checker whose real is up, as this asks.
        "log_all_failures" => {
            boolean(node, diags);
        }
        _ => return timing.read(node, diags),
    }
    true
}

fn http(
    node: &Node,
    connect: &mut CheckConnect,
    timing: &mut TimingDraft,
    diags: &mut Diagnostics,
) -> Option<Check> {
    let mut check = HttpCheck {
        pos: node.pos().clone(),
        connect: CheckConnect::default(),
        timing: CheckTiming::default(),
        urls: Vec::new(),
        virtualhost: None,
        http_protocol: HttpProtocol::default(),
        enable_sni: false,
        fast_recovery: false,
    };
    for child in block(node, diags) {
        if common(child, connect, timing, diags) {
            continue;
        }
        match child.name() {
            "url" => check.urls.extend(url(child, diags)),
            "virtualhost" => set_some(&mut check.virtualhost, child, diags, |v| Ok(v.to_string())),
            "http_protocol" => set(&mut check.http_protocol, child, diags, |v| match v {
                "1.0" => Ok(HttpProtocol::Http10),
                "1.0C" | "1.0c" => Ok(HttpProtocol::Http10C),
                "1.1" => Ok(HttpProtocol::Http11),
                _ => Err(format!(
                    "unknown http_protocol '{v}' (expected 1.0, 1.0C or 1.1)"
                )),
            }),
            "enable_sni" => check.enable_sni = boolean(child, diags).unwrap_or(false),
            "fast_recovery" => check.fast_recovery = boolean(child, diags).unwrap_or(false),
            _ => {
                unknown(child, diags);
            }
        }
    }
    if check.urls.is_empty() {
        diags.error(
            node.pos(),
            format!("'{}' needs at least one 'url'", node.name()),
        );
        return None;
    }
    check.connect = std::mem::take(connect);
    Some(if node.name() == "SSL_GET" {
        Check::Ssl(check)
    } else {
        Check::Http(check)
    })
}

fn url(node: &Node, diags: &mut Diagnostics) -> Option<Url> {
    let mut url = Url {
        pos: node.pos().clone(),
        path: String::new(),
        digest: None,
        status_codes: Vec::new(),
        virtualhost: None,
        regex: None,
        regex_no_match: false,
    };
    let mut path = None;
    for child in block(node, diags) {
        match child.name() {
            "path" => set_some(&mut path, child, diags, |v| Ok(v.to_string())),
            "digest" => set_some(&mut url.digest, child, diags, |v| {
                if v.len() == 32 && v.chars().all(|c| c.is_ascii_hexdigit()) {
                    Ok(v.to_ascii_lowercase())
                } else {
                    Err(format!("digest '{v}' is not 32 hexadecimal digits (MD5)"))
                }
            }),
            "status_code" => {
                for arg in args(child, 1, usize::MAX, diags).unwrap_or_default() {
                    url.status_codes
                        .extend(parsed(arg, status_range(&arg.value), diags));
                }
            }
            "virtualhost" => set_some(&mut url.virtualhost, child, diags, |v| Ok(v.to_string())),
            "regex" => set_some(&mut url.regex, child, diags, |v| Ok(v.to_string())),
            "regex_no_match" => url.regex_no_match = flag(child, diags),
            "regex_options" | "regex_min_offset" | "regex_max_offset" | "regex_stack" => {
                unsupported(child, diags)
            }
            _ => unknown(child, diags),
        }
    }
    let Some(path) = path else {
        diags.error(node.pos(), "'url' needs a 'path'");
        return None;
    };
    url.path = path;
    if url.status_codes.is_empty() {
        url.status_codes.push(200..=299);
    }
    Some(url)
}

/// `CODE` or `FIRST-LAST`, HTTP status codes 100–599.
fn status_range(text: &str) -> Result<std::ops::RangeInclusive<u16>, String> {
    let code = |t: &str| value::integer(t, 100, 599).map(|n| n as u16);
    match text.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (code(a)?, code(b)?);
            if a > b {
                return Err(format!("status code range '{text}' is empty"));
            }
            Ok(a..=b)
        }
        None => code(text).map(|c| c..=c),
    }
}

fn misc(node: &Node, timing: &mut TimingDraft, diags: &mut Diagnostics) -> Option<Check> {
    let mut command = None;
    let mut user = None;
    let mut dynamic = false;
    for child in block(node, diags) {
        if checker_option(child, timing, diags) {
            continue;
        }
        match child.name() {
            "misc_path" => {
                if let Some(args) = args(child, 1, 1, diags) {
                    command = command_from(child, args, diags);
                }
            }
            "misc_timeout" => set_some(&mut timing.misc_timeout, child, diags, |v| {
                value::integer(v, 1, u64::from(u32::MAX)).map(Duration::from_secs)
            }),
            "misc_dynamic" => dynamic = flag(child, diags),
            "user" => user = args(child, 1, 2, diags).and_then(super::script_user),
            _ => unknown(child, diags),
        }
    }
    let Some(mut command) = command else {
        diags.error(node.pos(), "'MISC_CHECK' needs a 'misc_path'");
        return None;
    };
    command.user = user;
    Some(Check::Misc(MiscCheck {
        pos: node.pos().clone(),
        command,
        // Resolved with the timing, from the checker's `delay_loop` (see `resolve`).
        timeout: DEFAULT_DELAY_LOOP,
        dynamic,
        timing: CheckTiming::default(),
    }))
}

fn udp(
    node: &Node,
    connect: &mut CheckConnect,
    timing: &mut TimingDraft,
    diags: &mut Diagnostics,
) -> Option<Check> {
    let mut check = UdpCheck {
        pos: node.pos().clone(),
        connect: CheckConnect::default(),
        timing: CheckTiming::default(),
        payload: None,
        reply_required: false,
        require_reply: None,
        min_reply_length: 0,
        max_reply_length: u32::from(u8::MAX),
    };
    let length = |v: &str| value::integer(v, 0, u64::from(u16::MAX)).map(|n| n as u32);
    for child in block(node, diags) {
        if common(child, connect, timing, diags) {
            continue;
        }
        match child.name() {
            "payload" => {
                if let Some(words) = args(child, 1, usize::MAX, diags) {
                    check.payload =
                        hex_words(child, words, false, diags).map(|pattern| pattern.bytes);
                }
            }
            "require_reply" => {
                check.reply_required = true;
                if let Some(words @ [_, ..]) = args(child, 0, usize::MAX, diags) {
                    check.require_reply = hex_words(child, words, true, diags);
                }
            }
            "min_reply_length" => set(&mut check.min_reply_length, child, diags, length),
            "max_reply_length" => set(&mut check.max_reply_length, child, diags, length),
            _ => unknown(child, diags),
        }
    }
    if check.min_reply_length > check.max_reply_length {
        diags.warning(
            node.pos(),
            format!(
                "min_reply_length {} > max_reply_length {}: UDP_CHECK will always fail",
                check.min_reply_length, check.max_reply_length
            ),
        );
    }
    check.connect = std::mem::take(connect);
    Some(Check::Udp(check))
}

/// keepalived's free-form `HEX_STR`, its words joined by spaces: digits pair into bytes
/// and a digit alone before a space is a byte of its own ("Ab12f 3" is AB 12 0F 03).
/// With `wildcards`, an `X` digit matches any nibble.
fn hex_words(
    node: &Node,
    words: &[Arg],
    wildcards: bool,
    diags: &mut Diagnostics,
) -> Option<HexPattern> {
    let text = words
        .iter()
        .map(|w| w.value.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let nibble = |c: char| match c.to_digit(16) {
        Some(d) => Some((d as u8, 0x0f)),
        None if wildcards && c.eq_ignore_ascii_case(&'x') => Some((0, 0)),
        None => None,
    };
    let mut pattern = HexPattern {
        bytes: Vec::new(),
        mask: Vec::new(),
    };
    for word in text.split([' ', '\t']).filter(|w| !w.is_empty()) {
        let digits: Option<Vec<(u8, u8)>> = word.chars().map(nibble).collect();
        let Some(digits) = digits else {
            diags.error(
                node.pos(),
                format!(
                    "'{word}' is not hexadecimal{}",
                    if wildcards { " (X for any digit)" } else { "" }
                ),
            );
            return None;
        };
        for pair in digits.chunks(2) {
            let (hi, lo) = match *pair {
                [hi, lo] => (hi, lo),
                [lo] => ((0, 0x0f), lo),
                _ => continue,
            };
            pattern.bytes.push(hi.0 << 4 | lo.0);
            pattern.mask.push(hi.1 << 4 | lo.1);
        }
    }
    Some(pattern)
}

fn dns(
    node: &Node,
    connect: &mut CheckConnect,
    timing: &mut TimingDraft,
    diags: &mut Diagnostics,
) -> Option<Check> {
    const TYPES: &[&str] = &[
        "A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY",
    ];
    let mut query_type = "SOA".to_string();
    let mut name = ".".to_string();
    for child in block(node, diags) {
        if common(child, connect, timing, diags) {
            continue;
        }
        match child.name() {
            "type" => set(&mut query_type, child, diags, |v| {
                TYPES
                    .iter()
                    .find(|t| t.eq_ignore_ascii_case(v))
                    .map(|t| t.to_string())
                    .ok_or_else(|| format!("unknown DNS query type '{v}'"))
            }),
            "name" => set(&mut name, child, diags, |v| Ok(v.to_string())),
            _ => unknown(child, diags),
        }
    }
    Some(Check::Dns(DnsCheck {
        pos: node.pos().clone(),
        connect: std::mem::take(connect),
        timing: CheckTiming::default(),
        query_type,
        name,
    }))
}

fn smtp(
    node: &Node,
    connect: &mut CheckConnect,
    timing: &mut TimingDraft,
    diags: &mut Diagnostics,
) -> Option<Check> {
    let mut helo_name = None;
    let mut hosts = Vec::new();
    for child in block(node, diags) {
        if common(child, connect, timing, diags) {
            continue;
        }
        match child.name() {
            "helo_name" => set_some(&mut helo_name, child, diags, |v| Ok(v.to_string())),
            "host" => {
                let mut host = CheckConnect::default();
                let mut ignored = TimingDraft::default();
                for line in block(child, diags) {
                    if !common(line, &mut host, &mut ignored, diags) {
                        unknown(line, diags);
                    }
                }
                hosts.push(host);
            }
            _ => unknown(child, diags),
        }
    }
    Some(Check::Smtp(SmtpCheck {
        pos: node.pos().clone(),
        connect: std::mem::take(connect),
        timing: CheckTiming::default(),
        helo_name,
        hosts,
    }))
}

fn file(node: &Node, diags: &mut Diagnostics) -> Option<Check> {
    let mut track_file = None;
    let mut weight = None;
    for child in block(node, diags) {
        match child.name() {
            "track_file" => set_some(&mut track_file, child, diags, |v| Ok(v.to_string())),
            "weight" => {
                let whole = [std::slice::from_ref(&child.keyword), &child.args].concat();
                weight = track_weight(child, &whole, REAL_FILE_WEIGHT, diags);
            }
            _ => unknown(child, diags),
        }
    }
    let Some(track_file) = track_file else {
        diags.error(node.pos(), "'FILE_CHECK' needs a 'track_file'");
        return None;
    };
    Some(Check::File(FileCheck {
        pos: node.pos().clone(),
        track_file,
        weight,
    }))
}

fn bfd(node: &Node, diags: &mut Diagnostics) -> Option<Check> {
    unsupported(node, diags);
    let mut name = None;
    for child in block(node, diags) {
        match child.name() {
            "name" => name = one(child, diags).map(|a| a.value.clone()),
            "alpha" => {
                flag(child, diags);
            }
            _ => unknown(child, diags),
        }
    }
    Some(Check::Bfd(BfdCheck {
        pos: node.pos().clone(),
        name: name.unwrap_or_default(),
    }))
}
