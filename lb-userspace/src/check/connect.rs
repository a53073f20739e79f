//! Where a checker's probes go and where they come from: the real's address and port
//! unless `connect_ip` / `connect_port` say otherwise, from `bindto` / `bind_port`, on
//! `bind_if`, marked with `fwmark`.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use crate::config::CheckConnect;

/// A checker's connection settings, resolved against its real.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub target: SocketAddr,
    bind: Option<SocketAddr>,
    bind_if: Option<String>,
    fwmark: Option<u32>,
    /// `connect_timeout`: how long connecting, and each wait for an answer, may take.
    pub timeout: Duration,
}

impl Endpoint {
    pub fn new(connect: &CheckConnect, real: SocketAddr, timeout: Duration) -> Self {
        let target = SocketAddr::new(
            connect.ip.unwrap_or(real.ip()),
            connect.port.unwrap_or(real.port()),
        );
        let unspecified = match target {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let bind = (connect.bind_ip.is_some() || connect.bind_port.is_some()).then(|| {
            SocketAddr::new(
                connect.bind_ip.unwrap_or(unspecified),
                connect.bind_port.unwrap_or(0),
            )
        });
        Self {
            target,
            bind,
            bind_if: connect.bind_if.clone(),
            fwmark: connect.fwmark,
            timeout,
        }
    }

    /// A non-blocking socket toward the target's family with every option applied.
    pub fn socket(&self, kind: Type, protocol: Protocol) -> io::Result<Socket> {
        let socket = Socket::new(Domain::for_address(self.target), kind, Some(protocol))?;
        socket.set_nonblocking(true)?;
        socket.set_cloexec(true)?;
        if let Some(name) = &self.bind_if {
            socket.bind_device(Some(name.as_bytes()))?;
        }
        if let Some(mark) = self.fwmark {
            socket.set_mark(mark)?;
        }
        if let Some(addr) = self.bind {
            socket.bind(&SockAddr::from(addr))?;
        }
        Ok(socket)
    }

    /// A TCP connection to the target, within the timeout.
    pub async fn tcp(&self) -> io::Result<TcpStream> {
        let socket = self.socket(Type::STREAM, Protocol::TCP)?;
        let socket = TcpSocket::from_std_stream(socket.into());
        tokio::time::timeout(self.timeout, socket.connect(self.target))
            .await
            .unwrap_or_else(|_| Err(timed_out("connection timed out")))
    }

    /// A UDP socket connected to the target, so that the kernel hands it only the
    /// target's answers and its ICMP errors.
    pub fn udp(&self) -> io::Result<UdpSocket> {
        let socket = self.socket(Type::DGRAM, Protocol::UDP)?;
        socket.connect(&SockAddr::from(self.target))?;
        UdpSocket::from_std(socket.into())
    }
}

pub fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_is_the_target_unless_told_otherwise() {
        let real: SocketAddr = "192.0.2.11:80".parse().unwrap();
        let plain = Endpoint::new(&CheckConnect::default(), real, Duration::from_secs(1));
        assert_eq!((plain.target, plain.bind), (real, None));
        let moved = Endpoint::new(
            &CheckConnect {
                port: Some(8080),
                bind_port: Some(4000),
                ..CheckConnect::default()
            },
            real,
            Duration::from_secs(1),
        );
        assert_eq!(moved.target, "192.0.2.11:8080".parse().unwrap());
        assert_eq!(moved.bind, Some("0.0.0.0:4000".parse().unwrap()));
    }
}
