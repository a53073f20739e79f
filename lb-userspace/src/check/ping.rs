//! `PING_CHECK`: a real is alive while it answers an ICMP (or ICMPv6) echo request within
//! `connect_timeout`.
//!
//! keepalived uses "ping" datagram sockets and widens `ping_group_range` so that it may;
//! xlb runs as root anyway (it loads XDP programs), so it uses a raw socket and leaves that
//! sysctl alone. The socket is connected to the real, so the kernel hands it only the
//! real's packets; replies are matched on the echo's identifier and sequence number.

use std::{
    io::{self, Read},
    net::SocketAddr,
    sync::atomic::{AtomicU16, Ordering},
};

use lb_common::inet_csum;
use socket2::{Protocol, SockAddr, Socket, Type};
use tokio::io::{Interest, unix::AsyncFd};

use super::{connect::Endpoint, random_u64, runner::Failure};
use crate::config::PingCheck;

/// keepalived's echo payload size.
const PAYLOAD_LEN: usize = 56;
const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;

/// Sequence numbers, shared by every ping checker.
static SEQUENCE: AtomicU16 = AtomicU16::new(0);

pub struct Probe {
    endpoint: Endpoint,
}

impl Probe {
    pub fn new(check: &PingCheck, real: SocketAddr) -> Self {
        Self {
            endpoint: Endpoint::new(&check.connect, real, check.timing.connect_timeout),
        }
    }

    pub async fn run(&self, label: &str) -> Result<(), Failure> {
        let echo = Echo {
            v4: self.endpoint.target.is_ipv4(),
            id: random_u64() as u16,
            seq: SEQUENCE.fetch_add(1, Ordering::Relaxed),
        };
        let exchange = async {
            let socket = self.socket(echo.v4)?;
            let request = echo.request();
            socket
                .async_io(Interest::WRITABLE, |s| s.send(&request))
                .await?;
            let mut buf = [0u8; 1500];
            loop {
                let len = socket
                    .async_io(Interest::READABLE, |s| (&*s).read(&mut buf))
                    .await?;
                if echo.is_reply(&buf[..len]) {
                    return Ok::<_, io::Error>(());
                }
            }
        };
        match tokio::time::timeout(self.endpoint.timeout, exchange).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(Failure::new(format!(
                "ICMP connection to {label} failed: {err}."
            ))),
            Err(_) => Err(Failure::new(format!(
                "ICMP connection to address {label} timeout."
            ))),
        }
    }

    /// A raw ICMP socket connected to the target.
    fn socket(&self, v4: bool) -> io::Result<AsyncFd<Socket>> {
        let protocol = if v4 {
            Protocol::ICMPV4
        } else {
            Protocol::ICMPV6
        };
        let socket = self.endpoint.socket(Type::RAW, protocol)?;
        let target = SocketAddr::new(self.endpoint.target.ip(), 0);
        socket.connect(&SockAddr::from(target))?;
        // SAFETY: the socket owns its descriptor, which the `AsyncFd` owns in turn.
        unsafe { AsyncFd::register(socket) }.map_err(|e| e.into_parts().1)
    }
}

/// One echo request and what answers it.
#[derive(Clone, Copy, Debug)]
struct Echo {
    v4: bool,
    id: u16,
    seq: u16,
}

impl Echo {
    /// The ICMP message. ICMPv6's checksum covers a pseudo-header the kernel fills in, so
    /// it is left to the kernel; ICMPv4's is ours.
    fn request(self) -> Vec<u8> {
        let kind = if self.v4 {
            ECHO_REQUEST_V4
        } else {
            ECHO_REQUEST_V6
        };
        let mut msg = vec![kind, 0, 0, 0];
        msg.extend_from_slice(&self.id.to_be_bytes());
        msg.extend_from_slice(&self.seq.to_be_bytes());
        msg.extend((0..PAYLOAD_LEN).map(|i| i as u8));
        if self.v4 {
            let sum = inet_csum::checksum(&msg);
            msg[2..4].copy_from_slice(&sum.to_ne_bytes());
        }
        msg
    }

    /// Whether `packet`, as a raw socket reads it (after an IPv4 header, or bare for
    /// ICMPv6), is the reply to this echo.
    fn is_reply(self, packet: &[u8]) -> bool {
        let (icmp, reply) = if self.v4 {
            let Some(&first) = packet.first() else {
                return false;
            };
            let header = usize::from(first & 0x0f) * 4;
            (packet.get(header..).unwrap_or_default(), ECHO_REPLY_V4)
        } else {
            (packet, ECHO_REPLY_V6)
        };
        icmp.len() >= 8
            && icmp[0] == reply
            && icmp[4..6] == self.id.to_be_bytes()
            && icmp[6..8] == self.seq.to_be_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::tests::{checker, skip};

    #[test]
    fn requests_carry_a_valid_checksum_and_replies_are_matched() {
        let echo = Echo {
            v4: true,
            id: 0x1234,
            seq: 7,
        };
        let request = echo.request();
        assert_eq!(request.len(), 8 + PAYLOAD_LEN);
        assert_eq!(
            inet_csum::checksum(&request),
            0,
            "a message with its checksum sums to zero"
        );
        let mut reply = vec![0x45; 20];
        reply.extend_from_slice(&request);
        assert!(!echo.is_reply(&reply), "our own request is no reply");
        reply[20] = ECHO_REPLY_V4;
        assert!(echo.is_reply(&reply));
        assert!(!Echo { seq: 8, ..echo }.is_reply(&reply));
        assert!(!echo.is_reply(&reply[..24]));

        let echo6 = Echo { v4: false, ..echo };
        let mut reply6 = echo6.request();
        assert_eq!(reply6[0], ECHO_REQUEST_V6);
        reply6[0] = ECHO_REPLY_V6;
        assert!(echo6.is_reply(&reply6));
    }

    #[tokio::test]
    async fn loopback_answers_echo_requests() {
        if !nix::unistd::Uid::effective().is_root() {
            return skip("raw ICMP sockets need root");
        }
        let label = "[127.0.0.1]:tcp:80";
        let crate::config::Check::Ping(check) = checker("PING_CHECK {\n connect_timeout 1\n}")
        else {
            panic!("PING_CHECK")
        };
        Probe::new(&check, "127.0.0.1:80".parse().unwrap())
            .run(label)
            .await
            .unwrap();
        Probe::new(&check, "[::1]:80".parse().unwrap())
            .run("[::1]:tcp:80")
            .await
            .unwrap();
    }
}
