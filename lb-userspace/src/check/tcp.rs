//! `TCP_CHECK`: a real is alive while it accepts TCP connections.

use std::{
    io,
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use tokio::net::TcpSocket;

/// Connects to `target` (from `bind` when given) within `timeout`, then closes.
pub async fn probe(target: SocketAddr, bind: Option<IpAddr>, timeout: Duration) -> io::Result<()> {
    let socket = match target {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(ip) = bind {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    match tokio::time::timeout(timeout, socket.connect(target)).await {
        Ok(stream) => stream.map(drop),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "connection timed out",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn succeeds_against_a_listener_and_fails_without_one() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        probe(addr, None, Duration::from_secs(1)).await.unwrap();
        drop(listener);
        let err = probe(addr, None, Duration::from_secs(1)).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    }
}
