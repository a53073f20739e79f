//! `HTTP_GET` and `SSL_GET`: a real is alive while every URL answers with an accepted
//! status code, and with the expected MD5 digest and regular-expression match of its body
//! when those are configured.
//!
//! The request is keepalived's, byte for byte (its `User-Agent`, its `Host` rules, its
//! `http_protocol` variants), so servers that special-case keepalived's checks see the
//! same thing. The digest covers the body as sent, chunked framing included, like
//! keepalived's and its `genhash` tool's, so digests made with `genhash` keep matching.
//!
//! That is why the response is not read by an HTTP client such as hyper, which decodes
//! chunked bodies and so digests other bytes: the head (status line and headers, up to
//! the first blank line, where keepalived starts the body) is parsed by `httparse`, and
//! the body is the bytes after it, up to its `Content-Length` or the server's close.

use std::{net::SocketAddr, ops::RangeInclusive, time::Duration};

use regex_lite::Regex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{connect::Endpoint, runner::Failure, ssl};
use crate::config::{HttpCheck, HttpProtocol, Url};

/// How much of a response head is read before giving up on finding its end.
const MAX_HEAD: usize = 64 * 1024;
/// How much of a body is kept for the regular expression; the digest covers all of it.
const MAX_MATCHED_BODY: usize = 1024 * 1024;

/// One HTTP_GET or SSL_GET checker.
pub struct Probe {
    endpoint: Endpoint,
    protocol: HttpProtocol,
    /// The checker's `virtualhost`, or its real's, or its service's.
    virtualhost: Option<String>,
    urls: Vec<UrlCheck>,
    /// TLS for SSL_GET, with SNI when `enable_sni` is set.
    tls: Option<ssl::Tls>,
}

/// One `url` block, ready to check.
struct UrlCheck {
    path: String,
    digest: Option<[u8; 16]>,
    status_codes: Vec<RangeInclusive<u16>>,
    virtualhost: Option<String>,
    regex: Option<Regex>,
    regex_no_match: bool,
}

/// Compiles a `url`'s `regex`, saying what is wrong with it.
pub fn compile_regex(url: &Url) -> Result<Option<Regex>, String> {
    url.regex
        .as_deref()
        .map(|pattern| {
            Regex::new(pattern)
                .map_err(|err| format!("regex '{pattern}' is not supported by xlb: {err}"))
        })
        .transpose()
}

impl Probe {
    pub fn new(check: &HttpCheck, real: SocketAddr, tls: bool) -> Result<Self, String> {
        let urls = check
            .urls
            .iter()
            .map(|url| {
                Ok(UrlCheck {
                    path: url.path.clone(),
                    digest: url.digest.as_deref().map(parse_digest).transpose()?,
                    status_codes: url.status_codes.clone(),
                    virtualhost: url.virtualhost.clone(),
                    regex: compile_regex(url)?,
                    regex_no_match: url.regex_no_match,
                })
            })
            .collect::<Result<_, String>>()?;
        let endpoint = Endpoint::new(&check.connect, real, check.timing.connect_timeout);
        let tls = tls.then(|| ssl::Tls::new(check.enable_sni));
        Ok(Self {
            endpoint,
            protocol: check.http_protocol,
            virtualhost: check.virtualhost.clone(),
            urls,
            tls,
        })
    }

    /// Fetches every URL in turn; the first that fails fails the probe.
    pub async fn run(&self, label: &str) -> Result<(), Failure> {
        for url in &self.urls {
            self.fetch(url, label).await?;
        }
        Ok(())
    }

    async fn fetch(&self, url: &UrlCheck, label: &str) -> Result<(), Failure> {
        let failed = |what: &str, err: &dyn std::fmt::Display| {
            Failure::new(format!("{what} server {label}: {err}."))
        };
        let stream = self
            .endpoint
            .tcp()
            .await
            .map_err(|err| failed("Error connecting", &err))?;
        let host = url.virtualhost.as_deref().or(self.virtualhost.as_deref());
        let request = request(&url.path, self.protocol, host, self.endpoint.target);
        let timeout = self.endpoint.timeout;
        let keep_body = url.regex.is_some();
        let response = match &self.tls {
            None => exchange(stream, &request, timeout, keep_body).await,
            Some(tls) => {
                let stream = tls
                    .connect(stream, host, self.endpoint.target.ip(), timeout)
                    .await
                    .map_err(|err| {
                        failed("SSL handshake/communication error connecting to", &err)
                    })?;
                exchange(stream, &request, timeout, keep_body).await
            }
        }
        .map_err(|err| failed("Read error with", &err))?;
        url.verify(&response, label)
    }
}

/// keepalived's request: `Connection: close` for 1.0C and 1.1, and a `Host` of the
/// virtual host, or else of the address and port connected to.
fn request(path: &str, protocol: HttpProtocol, host: Option<&str>, target: SocketAddr) -> String {
    let minor = match protocol {
        HttpProtocol::Http11 => 1,
        HttpProtocol::Http10 | HttpProtocol::Http10C => 0,
    };
    let close = match protocol {
        HttpProtocol::Http10 => "",
        HttpProtocol::Http10C | HttpProtocol::Http11 => "Connection: close\r\n",
    };
    let host = match host {
        Some(host) => host.to_owned(),
        None => target.to_string(),
    };
    format!(
        "GET {path} HTTP/1.{minor}\r\nUser-Agent: KeepAliveClient\r\n{close}Host: {host}\r\n\r\n"
    )
}

fn parse_digest(hex: &str) -> Result<[u8; 16], String> {
    let mut digest = [0u8; 16];
    if hex.len() != 32 {
        return Err(format!("digest '{hex}' is not 32 hexadecimal digits"));
    }
    for (byte, pair) in digest.iter_mut().zip(hex.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).map_err(|e| e.to_string())?;
        *byte = u8::from_str_radix(pair, 16).map_err(|e| format!("digest '{hex}': {e}"))?;
    }
    Ok(digest)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl UrlCheck {
    /// Judges a response as keepalived does: status code, then digest, then regex.
    fn verify(&self, response: &Response, label: &str) -> Result<(), Failure> {
        let path = &self.path;
        let Some(status) = response.status else {
            return Err(Failure::new(format!(
                "Read, no data received from server {label} url({path})."
            )));
        };
        if !self
            .status_codes
            .iter()
            .any(|codes| codes.contains(&status))
        {
            return Err(Failure::new(format!(
                "HTTP status code error to {label} url({path}), status_code [{status}]."
            )));
        }
        if let Some(digest) = &self.digest
            && *digest != response.digest
        {
            return Err(Failure::new(format!(
                "MD5 digest error to {label} url({path}), MD5SUM [{}].",
                hex(&response.digest)
            )));
        }
        if let Some(regex) = &self.regex
            && regex.is_match(&String::from_utf8_lossy(&response.body)) == self.regex_no_match
        {
            return Err(Failure::new(format!(
                "Regex match failed to {label} url({path})."
            )));
        }
        Ok(())
    }
}

/// What a check looks at in a response.
#[derive(Debug, PartialEq, Eq)]
struct Response {
    /// `None` when no complete head with a status line arrived.
    status: Option<u16>,
    /// MD5 of the body.
    digest: [u8; 16],
    /// The body's first [`MAX_MATCHED_BODY`] bytes, when asked for.
    body: Vec<u8>,
}

/// Sends `request` and reads the response until the server closes, the body reaches its
/// `Content-Length`, or a read waits longer than `timeout`.
async fn exchange<S>(
    mut stream: S,
    request: &str,
    timeout: Duration,
    keep_body: bool,
) -> std::io::Result<Response>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let timed_out = || super::connect::timed_out("timed out");
    tokio::time::timeout(timeout, stream.write_all(request.as_bytes()))
        .await
        .map_err(|_| timed_out())??;
    let mut reader = ResponseReader::new(keep_body);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::time::timeout(timeout, stream.read(&mut buf))
            .await
            .map_err(|_| timed_out())??;
        if n == 0 || reader.feed(&buf[..n]) {
            return Ok(reader.finish());
        }
    }
}

/// A response as it arrives: the head until its blank line, then the body, digested as
/// it streams by.
struct ResponseReader {
    head: Vec<u8>,
    /// Once the head is complete: what it says.
    parsed: Option<Head>,
    body_len: usize,
    md5: md5::Context,
    body: Option<Vec<u8>>,
}

impl ResponseReader {
    fn new(keep_body: bool) -> Self {
        Self {
            head: Vec::new(),
            parsed: None,
            body_len: 0,
            md5: md5::Context::new(),
            body: keep_body.then(Vec::new),
        }
    }

    /// Takes the next bytes; true once nothing more is expected.
    fn feed(&mut self, mut data: &[u8]) -> bool {
        if self.parsed.is_none() {
            let before = self.head.len();
            self.head.extend_from_slice(data);
            let Some(end) = find(&self.head, b"\r\n\r\n") else {
                return self.head.len() > MAX_HEAD;
            };
            let head_len = end + 4;
            data = &data[head_len - before..];
            self.parsed = Some(Head::parse(&self.head[..head_len]));
        }
        let length = self.parsed.and_then(|head| head.content_length);
        let wanted = length.map_or(data.len(), |l| {
            l.saturating_sub(self.body_len).min(data.len())
        });
        let data = &data[..wanted];
        self.md5.consume(data);
        self.body_len += data.len();
        if let Some(body) = &mut self.body {
            let room = MAX_MATCHED_BODY.saturating_sub(body.len());
            body.extend_from_slice(&data[..room.min(data.len())]);
        }
        length.is_some_and(|l| self.body_len >= l)
    }

    fn finish(self) -> Response {
        Response {
            status: self.parsed.and_then(|head| head.status),
            digest: self.md5.finalize().0,
            body: self.body.unwrap_or_default(),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What a response head says that a check uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Head {
    /// The status line's code: `None` when the head is no HTTP/1 status line (another
    /// protocol, a code that is not three digits).
    status: Option<u16>,
    /// The first `Content-Length` header that holds a number.
    content_length: Option<usize>,
}

impl Head {
    /// Parses a complete head, blank line included. keepalived reads little more than the
    /// status code, so httparse is told to be as lenient: header lines it cannot read are
    /// skipped, folded and oddly spaced headers are taken, and a head whose headers cannot
    /// be read at all still has the status its first line gave.
    fn parse(head: &[u8]) -> Self {
        // One header per line at the most, so no head has too many.
        let lines = head.iter().filter(|&&b| b == b'\n').count();
        let mut headers = vec![httparse::EMPTY_HEADER; lines];
        let mut response = httparse::Response::new(&mut headers);
        let parsed = httparse::ParserConfig::default()
            .allow_spaces_after_header_name_in_responses(true)
            .allow_obsolete_multiline_headers_in_responses(true)
            .ignore_invalid_headers_in_responses(true)
            .parse_response(&mut response, head);
        let content_length = match parsed {
            Ok(httparse::Status::Complete(_)) => response
                .headers
                .iter()
                .filter(|header| header.name.eq_ignore_ascii_case("content-length"))
                .find_map(|header| std::str::from_utf8(header.value).ok()?.trim().parse().ok()),
            _ => None,
        };
        Self {
            status: response.code,
            content_length,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicU16, Ordering},
    };

    use tokio::net::TcpListener;

    use super::*;
    use crate::{check::tests::checker, config::Check};

    #[test]
    fn requests_are_keepalived_s() {
        let target: SocketAddr = "192.0.2.11:80".parse().unwrap();
        assert_eq!(
            request("/health", HttpProtocol::Http10C, None, target),
            "GET /health HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\n\
             Host: 192.0.2.11:80\r\n\r\n"
        );
        assert_eq!(
            request("/", HttpProtocol::Http11, Some("www.example.org"), target),
            "GET / HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\n\
             Host: www.example.org\r\n\r\n"
        );
        let v6: SocketAddr = "[2001:db8::1]:8080".parse().unwrap();
        assert_eq!(
            request("/", HttpProtocol::Http10, None, v6),
            "GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: [2001:db8::1]:8080\r\n\r\n"
        );
    }

    fn status_code(head: &str) -> Option<u16> {
        Head::parse(format!("{head}\r\n").as_bytes()).status
    }

    fn content_length(head: &str) -> Option<usize> {
        Head::parse(head.as_bytes()).content_length
    }

    #[test]
    fn status_lines_and_lengths_are_read_strictly() {
        assert_eq!(
            status_code("HTTP/1.1 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(status_code("HTTP/1.0 200\r\n"), Some(200));
        assert_eq!(status_code("HTTP/1.1 20 OK\r\n"), None);
        assert_eq!(status_code("SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(
            content_length("HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n"),
            Some(12)
        );
        assert_eq!(content_length("HTTP/1.1 200 OK\r\n\r\n"), None);
    }

    #[test]
    fn heads_are_read_as_leniently_as_keepalived_reads_them() {
        let head = Head::parse(
            b"HTTP/1.1 200 OK\r\nnot a header\r\nX-Folded: a\r\n b\r\n\
              Content-Length : 7\r\n\r\n",
        );
        assert_eq!(
            head,
            Head {
                status: Some(200),
                content_length: Some(7)
            }
        );
        assert_eq!(
            Head::parse(b"HTTP/1.1 404 Not Found\r\nBad\0Header: x\r\n\r\n").status,
            Some(404),
            "unreadable headers still leave the status"
        );
    }

    fn read(chunks: &[&[u8]], keep_body: bool) -> (Response, bool) {
        let mut reader = ResponseReader::new(keep_body);
        let mut done = false;
        for chunk in chunks {
            done = reader.feed(chunk);
        }
        (reader.finish(), done)
    }

    #[test]
    fn bodies_are_digested_up_to_their_length_across_reads() {
        let (response, done) = read(
            &[
                b"HTTP/1.1 200 OK\r\nContent-Le",
                b"ngth: 5\r\n\r\nhel",
                b"loEXTRA",
            ],
            true,
        );
        assert!(done, "complete once Content-Length bytes arrived");
        assert_eq!(response.status, Some(200));
        assert_eq!(response.digest, md5::compute(b"hello").0);
        assert_eq!(response.body, b"hello");
        let (until_close, done) = read(&[b"HTTP/1.0 404 Not Found\r\n\r\nnope"], false);
        assert!(
            !done,
            "without a length the body ends when the server closes"
        );
        assert_eq!(until_close.digest, md5::compute(b"nope").0);
        assert!(
            until_close.body.is_empty(),
            "not kept when nothing matches it"
        );
        let (nothing, _) = read(&[b"HTTP/1.1 200 OK\r\n"], false);
        assert_eq!(nothing.status, None, "no blank line, no head");
    }

    fn url(codes: Vec<RangeInclusive<u16>>) -> UrlCheck {
        UrlCheck {
            path: "/".into(),
            digest: None,
            status_codes: codes,
            virtualhost: None,
            regex: None,
            regex_no_match: false,
        }
    }

    fn response(status: u16, body: &[u8]) -> Response {
        Response {
            status: Some(status),
            digest: md5::compute(body).0,
            body: body.to_vec(),
        }
    }

    const LABEL: &str = "[192.0.2.11]:tcp:80";

    #[test]
    fn status_codes_digests_and_regexes_decide() {
        let ranges = url(vec![200..=200, 300..=399]);
        assert!(ranges.verify(&response(200, b""), LABEL).is_ok());
        assert!(ranges.verify(&response(302, b""), LABEL).is_ok());
        assert_eq!(
            ranges
                .verify(&response(500, b""), LABEL)
                .unwrap_err()
                .to_string(),
            "HTTP status code error to [192.0.2.11]:tcp:80 url(/), status_code [500]."
        );

        let digest = UrlCheck {
            digest: Some(parse_digest("5d41402abc4b2a76b9719d911017c592").unwrap()),
            ..url(vec![200..=299])
        };
        assert!(digest.verify(&response(200, b"hello"), LABEL).is_ok());
        assert_eq!(
            digest
                .verify(&response(200, b"bye"), LABEL)
                .unwrap_err()
                .to_string(),
            format!(
                "MD5 digest error to [192.0.2.11]:tcp:80 url(/), MD5SUM [{}].",
                hex(&md5::compute(b"bye").0)
            )
        );

        let matching = UrlCheck {
            regex: Some(Regex::new("sta(tus)?: ok").unwrap()),
            ..url(vec![200..=299])
        };
        assert!(
            matching
                .verify(&response(200, b"status: ok"), LABEL)
                .is_ok()
        );
        assert!(
            matching
                .verify(&response(200, b"status: bad"), LABEL)
                .is_err()
        );
        let refusing = UrlCheck {
            regex_no_match: true,
            ..matching
        };
        assert!(
            refusing
                .verify(&response(200, b"status: ok"), LABEL)
                .is_err()
        );
        assert!(
            refusing
                .verify(&response(200, b"status: bad"), LABEL)
                .is_ok()
        );
    }

    #[test]
    fn unsupported_regexes_are_reported() {
        let Check::Http(check) = checker("HTTP_GET {\n url {\n path /\n regex \"(?<=a)b\"\n }\n}")
        else {
            panic!("HTTP_GET")
        };
        assert!(
            compile_regex(&check.urls[0])
                .unwrap_err()
                .contains("(?<=a)b")
        );
    }

    /// A server on loopback answering every request with the current status and `body`,
    /// keeping the connection open after its answer.
    async fn server(status: Arc<AtomicU16>, body: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let code = status.load(Ordering::Relaxed);
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let mut got = Vec::new();
                    while find(&got, b"\r\n\r\n").is_none() {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let response = format!(
                        "HTTP/1.1 {code} X\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    // Open until the checker closes: it must stop at Content-Length.
                    let _ = stream.read(&mut buf).await;
                });
            }
        });
        addr
    }

    fn http(block: &str) -> HttpCheck {
        match checker(block) {
            Check::Http(check) => check,
            other => panic!("not HTTP_GET: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_real_server_passes_and_fails_on_its_status() {
        let status = Arc::new(AtomicU16::new(200));
        let addr = server(status.clone(), "hello").await;
        let check = http(
            "HTTP_GET {\n connect_timeout 2\n url {\n path /\n }\n \
             url {\n path /hash\n status_code 200\n digest 5d41402abc4b2a76b9719d911017c592\n }\n}",
        );
        let probe = Probe::new(&check, addr, false).unwrap();
        probe.run(LABEL).await.unwrap();
        status.store(503, Ordering::Relaxed);
        let failure = probe.run(LABEL).await.unwrap_err();
        assert!(
            failure.to_string().contains("status_code [503]"),
            "{failure}"
        );
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let check = http("HTTP_GET {\n connect_timeout 0.2\n url {\n path /\n }\n}");
        let probe = Probe::new(&check, addr, false).unwrap();
        let failure = probe.run(LABEL).await.unwrap_err();
        assert!(failure.to_string().contains("timed out"), "{failure}");
        drop(listener);
    }
}
