//! `UDP_CHECK`: a real is alive while a datagram sent to it draws no ICMP error within
//! `connect_timeout`; with `require_reply`, while it draws a reply of the right length
//! that starts as the configured pattern says.

use std::{io, net::SocketAddr, os::fd::AsRawFd};

use tokio::net::UdpSocket;

use super::{connect::Endpoint, random_u64, runner::Failure};
use crate::config::{HexPattern, UdpCheck};

/// What keepalived sends when no `payload` is configured: that many arbitrary bytes.
const DEFAULT_PAYLOAD_LEN: usize = 32;

pub struct Probe {
    endpoint: Endpoint,
    payload: Vec<u8>,
    reply: Option<Reply>,
}

/// What a required reply must look like.
struct Reply {
    pattern: Option<HexPattern>,
    min_len: usize,
    max_len: usize,
}

impl Probe {
    pub fn new(check: &UdpCheck, real: SocketAddr) -> Self {
        let payload = check.payload.clone().unwrap_or_else(|| {
            (0..DEFAULT_PAYLOAD_LEN)
                .map(|_| random_u64() as u8)
                .collect()
        });
        Self {
            endpoint: Endpoint::new(&check.connect, real, check.timing.connect_timeout),
            payload,
            reply: check.reply_required.then(|| Reply {
                pattern: check.require_reply.clone(),
                min_len: check.min_reply_length as usize,
                max_len: check.max_reply_length as usize,
            }),
        }
    }

    pub async fn run(&self, label: &str) -> Result<(), Failure> {
        let failed =
            |err: io::Error| Failure::new(format!("UDP connection to {label} failed: {err}."));
        let socket = self.endpoint.udp().map_err(failed)?;
        report_icmp_errors(&socket, self.endpoint.target).map_err(failed)?;
        socket.send(&self.payload).await.map_err(failed)?;
        let mut buf = vec![0u8; usize::from(u16::MAX)];
        match tokio::time::timeout(self.endpoint.timeout, socket.recv(&mut buf)).await {
            Err(_) if self.reply.is_some() => {
                Err(Failure::new(format!("UDP check to {label} got no reply.")))
            }
            Err(_) => Ok(()),
            Ok(Err(err)) => Err(failed(err)),
            Ok(Ok(len)) => match &self.reply {
                Some(reply) => reply.check(&buf[..len], label),
                None => Ok(()),
            },
        }
    }
}

impl Reply {
    fn check(&self, data: &[u8], label: &str) -> Result<(), Failure> {
        let fits = (self.min_len..=self.max_len).contains(&data.len())
            && self.pattern.as_ref().is_none_or(|p| p.matches(data));
        if fits {
            Ok(())
        } else {
            Err(Failure::new(format!(
                "UDP check to {label} reply data mismatch."
            )))
        }
    }
}

/// Asks the kernel to report every ICMP error about the datagram (host and network
/// unreachable too, not only port unreachable), as keepalived does.
fn report_icmp_errors(socket: &UdpSocket, target: SocketAddr) -> io::Result<()> {
    let (level, name) = match target {
        SocketAddr::V4(_) => (libc::SOL_IP, libc::IP_RECVERR),
        SocketAddr::V6(_) => (libc::SOL_IPV6, libc::IPV6_RECVERR),
    };
    let on: libc::c_int = 1;
    // SAFETY: a valid socket, and an option value of the size given.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::tests::checker;

    const LABEL: &str = "[127.0.0.1]:udp:53";

    fn probe(block: &str, real: SocketAddr) -> Probe {
        let crate::config::Check::Udp(check) = checker(block) else {
            panic!("UDP_CHECK")
        };
        Probe::new(&check, real)
    }

    /// A loopback server that answers every datagram with `reply` after echoing nothing
    /// else; returns its address.
    async fn server(reply: &'static [u8]) -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((_, from)) = socket.recv_from(&mut buf).await {
                let _ = socket.send_to(reply, from).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_closed_port_fails_and_silence_passes_unless_a_reply_is_required() {
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        probe("UDP_CHECK {\n connect_timeout 0.2\n}", addr)
            .run(LABEL)
            .await
            .unwrap();
        let required = probe("UDP_CHECK {\n connect_timeout 0.2\n require_reply\n}", addr);
        assert!(
            required
                .run(LABEL)
                .await
                .unwrap_err()
                .to_string()
                .contains("no reply")
        );
        drop(silent);
        let failure = probe("UDP_CHECK {\n connect_timeout 1\n}", addr)
            .run(LABEL)
            .await
            .unwrap_err();
        assert!(failure.to_string().contains("refused"), "{failure}");
    }

    #[tokio::test]
    async fn replies_are_matched_against_the_pattern() {
        let addr = server(b"\x12\x34\x56hello").await;
        let block =
            |rest: &str| format!("UDP_CHECK {{\n connect_timeout 1\n payload 0102\n {rest}\n}}");
        for (rest, ok) in [
            ("require_reply", true),
            ("require_reply 1234", true),
            ("require_reply 12 3X 56", true),
            ("require_reply 1235", false),
            ("require_reply\n max_reply_length 4", false),
            ("require_reply\n min_reply_length 9", false),
        ] {
            let result = probe(&block(rest), addr).run(LABEL).await;
            assert_eq!(result.is_ok(), ok, "{rest}: {result:?}");
        }
    }
}
