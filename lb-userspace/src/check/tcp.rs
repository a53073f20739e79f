//! `TCP_CHECK`: a real is alive while it accepts TCP connections.

use super::{connect::Endpoint, runner::Failure};

/// Connects to the endpoint within its timeout, then closes.
pub async fn probe(endpoint: &Endpoint, label: &str) -> Result<(), Failure> {
    endpoint
        .tcp()
        .await
        .map(drop)
        .map_err(|err| Failure::new(format!("TCP connection to {label} failed: {err}.")))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::CheckConnect;

    #[tokio::test]
    async fn succeeds_against_a_listener_and_fails_without_one() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let endpoint = Endpoint::new(&CheckConnect::default(), addr, Duration::from_secs(1));
        probe(&endpoint, "[127.0.0.1]:tcp:80").await.unwrap();
        drop(listener);
        let failure = probe(&endpoint, "[127.0.0.1]:tcp:80").await.unwrap_err();
        assert!(
            failure.to_string().contains("Connection refused"),
            "{failure}"
        );
    }
}
