//! TLS for `SSL_GET`, with rustls.
//!
//! keepalived checks over TLS without verifying the server's certificate (unless a global
//! `SSL` block names a CA, which xlb does not support): a health check asks whether the
//! server answers, not who it is. The handshake's signatures are still verified, so the
//! server must hold the key of the certificate it shows.

use std::{
    io,
    net::IpAddr,
    sync::{Arc, OnceLock},
    time::Duration,
};

use rustls::{
    ClientConfig, DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{CryptoProvider, ring, verify_tls12_signature, verify_tls13_signature},
    pki_types::{CertificateDer, ServerName, UnixTime},
};
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, client::TlsStream};

use super::connect::timed_out;

/// How an SSL_GET checker opens TLS.
#[derive(Clone, Debug)]
pub struct Tls {
    /// `enable_sni`: name the virtual host in the handshake.
    sni: bool,
}

impl Tls {
    pub fn new(sni: bool) -> Self {
        Self { sni }
    }

    /// Runs the handshake on `stream` within `timeout`. SNI names `host` when enabled and
    /// `host` is a DNS name; otherwise the server is addressed by `ip`, and no SNI is sent.
    pub async fn connect(
        &self,
        stream: TcpStream,
        host: Option<&str>,
        ip: IpAddr,
        timeout: Duration,
    ) -> io::Result<TlsStream<TcpStream>> {
        let name = host
            .filter(|_| self.sni)
            .and_then(|h| ServerName::try_from(h.to_owned()).ok())
            .unwrap_or(ServerName::IpAddress(ip.into()));
        let handshake = TlsConnector::from(client_config()).connect(name, stream);
        tokio::time::timeout(timeout, handshake)
            .await
            .unwrap_or_else(|_| Err(timed_out("handshake timed out")))
    }
}

/// One client configuration for every checker.
fn client_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(ring::default_provider());
            let verifier = Arc::new(AnyCertificate(provider.clone()));
            let config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// Takes any certificate, as keepalived does, but checks the handshake's signatures.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::{net::SocketAddr, sync::Mutex};

    use rustls::{
        ServerConfig,
        pki_types::{PrivateKeyDer, pem::PemObject},
    };
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };
    use tokio_rustls::TlsAcceptor;

    use super::*;
    use crate::check::{http, tests::checker};

    /// A self-signed certificate for `xlb-test.example`, made for these tests only.
    const CERT: &[u8] = include_bytes!("testdata/cert.pem");
    const KEY: &[u8] = include_bytes!("testdata/key.pem");

    /// An HTTPS server on loopback answering `200 OK`; it records the SNI it was sent.
    async fn server(sni: Arc<Mutex<Option<String>>>) -> SocketAddr {
        let cert = CertificateDer::from_pem_slice(CERT).unwrap();
        let key = PrivateKeyDer::from_pem_slice(KEY).unwrap();
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    continue;
                };
                *sni.lock().unwrap() = tls.get_ref().1.server_name().map(str::to_owned);
                let mut buf = [0u8; 1024];
                let _ = tls.read(&mut buf).await;
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
                let _ = tls.shutdown().await;
            }
        });
        addr
    }

    fn probe(block: &str, addr: SocketAddr) -> http::Probe {
        let crate::config::Check::Ssl(check) = checker(block) else {
            panic!("SSL_GET")
        };
        http::Probe::new(&check, addr, true).unwrap()
    }

    #[tokio::test]
    async fn ssl_get_checks_over_tls_and_sends_sni_when_asked() {
        let sni = Arc::new(Mutex::new(None));
        let addr = server(sni.clone()).await;
        let label = "[127.0.0.1]:tcp:443";
        let block = "SSL_GET {\n connect_timeout 2\n virtualhost xlb-test.example\n \
                     url {\n path /\n digest 444bcb3a3fcf8389296c49467f27e1d6\n }\n";
        probe(&format!("{block}}}"), addr).run(label).await.unwrap();
        assert_eq!(*sni.lock().unwrap(), None, "no SNI unless enable_sni");
        probe(&format!("{block} enable_sni\n}}"), addr)
            .run(label)
            .await
            .unwrap();
        assert_eq!(sni.lock().unwrap().as_deref(), Some("xlb-test.example"));
    }

    #[tokio::test]
    async fn a_plain_server_fails_the_handshake() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n").await;
            }
        });
        let failure = probe(
            "SSL_GET {\n connect_timeout 2\n url {\n path /\n }\n}",
            addr,
        )
        .run("[127.0.0.1]:tcp:443")
        .await
        .unwrap_err();
        assert!(
            failure.to_string().starts_with("SSL handshake"),
            "{failure}"
        );
    }
}
