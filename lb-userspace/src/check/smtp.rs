//! `SMTP_CHECK`: a real is alive while its mail server greets with 220, answers `HELO`
//! with 250 and answers `QUIT`, on the checker's own endpoint and on every (deprecated)
//! `host` block.
//!
//! Replies may span several lines (`250-...` then `250 ...`), which keepalived, reading
//! only the first line, would reject.

use std::{io, net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
};

use super::{
    connect::{Endpoint, timed_out},
    runner::Failure,
};
use crate::config::{CheckConnect, SmtpCheck};

/// keepalived's `helo_name` when none is set.
const DEFAULT_HELO: &str = "smtpchecker.keepalived.org";
/// Bounds what a server can make the checker read.
const MAX_LINE: u64 = 1024;
const MAX_LINES: usize = 64;

pub struct Probe {
    endpoints: Vec<Endpoint>,
    helo: String,
}

impl Probe {
    pub fn new(check: &SmtpCheck, real: SocketAddr) -> Self {
        let timeout = check.timing.connect_timeout;
        // As in keepalived, `host` blocks alone replace the checker's own endpoint.
        let own = (check.connect != CheckConnect::default() || check.hosts.is_empty())
            .then_some(&check.connect);
        let endpoints = own
            .into_iter()
            .chain(&check.hosts)
            .map(|connect| Endpoint::new(connect, real, timeout))
            .collect();
        Self {
            endpoints,
            helo: check
                .helo_name
                .clone()
                .unwrap_or_else(|| DEFAULT_HELO.to_owned()),
        }
    }

    pub async fn run(&self) -> Result<(), Failure> {
        for endpoint in &self.endpoints {
            self.converse(endpoint).await?;
        }
        Ok(())
    }

    async fn converse(&self, endpoint: &Endpoint) -> Result<(), Failure> {
        let server = endpoint.target;
        let failed = |what: &str, err: io::Error| {
            Failure::new(format!(
                "SMTP_CHECK {what} server [{}]:{}: {err}.",
                server.ip(),
                server.port()
            ))
        };
        let bad = |what: &str, code: Option<u16>| {
            let code = code.map_or("none".to_owned(), |c| c.to_string());
            Failure::new(format!(
                "SMTP_CHECK Bad {what} from server [{}]:{} (code {code}).",
                server.ip(),
                server.port()
            ))
        };
        let stream = endpoint
            .tcp()
            .await
            .map_err(|err| failed("Error connecting to", err))?;
        let mut session = Session {
            stream: BufReader::new(stream),
            timeout: endpoint.timeout,
        };
        // keepalived's conversation: what to send (nothing before the greeting), and the
        // reply code needed (any reply to QUIT will do).
        let steps = [
            (None, Some((220, "greeting banner"))),
            (
                Some(format!("HELO {}\r\n", self.helo)),
                Some((250, "HELO response")),
            ),
            (Some("QUIT\r\n".to_owned()), None),
        ];
        for (line, expected) in steps {
            if let Some(line) = line {
                session
                    .send(&line)
                    .await
                    .map_err(|e| failed("Write failure to", e))?;
            }
            let code = session
                .reply()
                .await
                .map_err(|e| failed("Read failure from", e))?;
            if let Some((wanted, what)) = expected
                && code != Some(wanted)
            {
                return Err(bad(what, code));
            }
        }
        Ok(())
    }
}

struct Session {
    stream: BufReader<TcpStream>,
    timeout: Duration,
}

impl Session {
    async fn send(&mut self, line: &str) -> io::Result<()> {
        tokio::time::timeout(
            self.timeout,
            self.stream.get_mut().write_all(line.as_bytes()),
        )
        .await
        .map_err(|_| timed_out("write timed out"))?
    }

    async fn reply(&mut self) -> io::Result<Option<u16>> {
        tokio::time::timeout(self.timeout, read_reply(&mut self.stream))
            .await
            .map_err(|_| timed_out("read timed out"))?
    }
}

/// Reads one reply, all its lines; its code, or `None` when the last line has none.
async fn read_reply<R: AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<Option<u16>> {
    for _ in 0..MAX_LINES {
        let mut line = String::new();
        if (&mut *reader).take(MAX_LINE).read_line(&mut line).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let code = line
            .get(..3)
            .and_then(|c| c.parse().ok())
            .filter(|_| line.as_bytes()[..3].iter().all(u8::is_ascii_digit));
        if code.is_none() || line.as_bytes().get(3) != Some(&b'-') {
            return Ok(code);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        format!("more than {MAX_LINES} reply lines"),
    ))
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;
    use crate::check::tests::checker;

    #[tokio::test]
    async fn replies_are_read_whole() {
        let mut input: &[u8] = b"250-mail.example.org\r\n250-SIZE 1000\r\n250 HELP\r\n220 next\r\n";
        let mut reader = BufReader::new(&mut input);
        assert_eq!(read_reply(&mut reader).await.unwrap(), Some(250));
        assert_eq!(read_reply(&mut reader).await.unwrap(), Some(220));
        let mut junk: &[u8] = b"hello\r\n";
        assert_eq!(
            read_reply(&mut BufReader::new(&mut junk)).await.unwrap(),
            None
        );
        let mut cut: &[u8] = b"250-more to come\r\n";
        assert!(read_reply(&mut BufReader::new(&mut cut)).await.is_err());
    }

    /// A loopback mail server greeting with `greeting`, recording what it was told.
    async fn server(greeting: &'static str) -> (SocketAddr, tokio::sync::mpsc::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream.write_all(greeting.as_bytes()).await;
                let mut buf = [0u8; 256];
                let Ok(n) = stream.read(&mut buf).await else {
                    continue;
                };
                let _ = tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .await;
                let _ = stream.write_all(b"250 pleased\r\n").await;
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(b"221 bye\r\n").await;
            }
        });
        (addr, rx)
    }

    fn probe(block: &str, real: SocketAddr) -> Probe {
        let crate::config::Check::Smtp(check) = checker(block) else {
            panic!("SMTP_CHECK")
        };
        Probe::new(&check, real)
    }

    #[tokio::test]
    async fn a_mail_server_is_greeted_and_left() {
        let (addr, mut told) = server("220-mail.example.org\r\n220 ESMTP\r\n").await;
        probe(
            "SMTP_CHECK {\n connect_timeout 1\n helo_name lb.example.org\n}",
            addr,
        )
        .run()
        .await
        .unwrap();
        assert_eq!(told.recv().await.unwrap(), "HELO lb.example.org\r\n");
        probe("SMTP_CHECK {\n connect_timeout 1\n}", addr)
            .run()
            .await
            .unwrap();
        assert_eq!(
            told.recv().await.unwrap(),
            format!("HELO {DEFAULT_HELO}\r\n")
        );
    }

    #[tokio::test]
    async fn a_busy_server_fails() {
        let (addr, _told) = server("421 busy\r\n").await;
        let failure = probe("SMTP_CHECK {\n connect_timeout 1\n}", addr)
            .run()
            .await
            .unwrap_err();
        assert!(
            failure.to_string().contains("Bad greeting banner"),
            "{failure}"
        );
        assert!(failure.to_string().contains("code 421"), "{failure}");
    }
}
