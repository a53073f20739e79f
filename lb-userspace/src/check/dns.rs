//! `DNS_CHECK`: a real is alive while it answers a query (`type` for `name`, SOA for "."
//! by default) over UDP with no error code.
//!
//! Messages are written and read with `simple-dns`. Like keepalived, the check reads only
//! an answer's header (its id, whether it is a response, its response code): a resolver
//! that answers is alive whatever its answer's records say.

use std::{io, net::SocketAddr};

use simple_dns::{CLASS, Name, Packet, PacketFlag, Question, RCODE, TYPE, header_buffer};

use super::{connect::Endpoint, random_u64, runner::Failure};
use crate::config::DnsCheck;

/// The query types keepalived knows, by their names in keepalived.conf.
const TYPES: &[(&str, TYPE)] = &[
    ("A", TYPE::A),
    ("NS", TYPE::NS),
    ("CNAME", TYPE::CNAME),
    ("SOA", TYPE::SOA),
    ("MX", TYPE::MX),
    ("TXT", TYPE::TXT),
    ("AAAA", TYPE::AAAA),
    ("RRSIG", TYPE::RRSIG),
    ("DNSKEY", TYPE::DNSKEY),
];

pub struct Probe {
    endpoint: Endpoint,
    name: String,
    qtype: TYPE,
}

impl Probe {
    pub fn new(check: &DnsCheck, real: SocketAddr) -> Result<Self, String> {
        let qtype = TYPES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(&check.query_type))
            .map(|&(_, code)| code)
            .ok_or_else(|| format!("unknown DNS query type '{}'", check.query_type))?;
        Ok(Self {
            endpoint: Endpoint::new(&check.connect, real, check.timing.connect_timeout),
            name: check.name.clone(),
            qtype,
        })
    }

    pub async fn run(&self, label: &str) -> Result<(), Failure> {
        let failed = |what: String| Failure::new(format!("DNS_CHECK ({label}) {what}"));
        let io_failed = |err: io::Error| failed(format!("socket error: {err}."));
        let id = random_u64() as u16;
        let query = query(id, &self.name, self.qtype).map_err(failed)?;
        let socket = self.endpoint.udp().map_err(io_failed)?;
        socket.send(&query).await.map_err(io_failed)?;
        let mut buf = [0u8; 4096];
        let wait = async {
            loop {
                let len = socket.recv(&mut buf).await?;
                if let Some(rcode) = answer(&buf[..len], id) {
                    return Ok(rcode);
                }
            }
        };
        match tokio::time::timeout(self.endpoint.timeout, wait).await {
            Err(_) => Err(failed("read timeout from socket.".into())),
            Ok(Err(err)) => Err(io_failed(err)),
            Ok(Ok(RCODE::NoError)) => Ok(()),
            Ok(Ok(rcode)) => Err(failed(format!(
                "read error occurred. (rcode = {})",
                rcode_number(rcode)
            ))),
        }
    }
}

/// A query with id `id` for `name` (dotted, "." for the root), class IN, recursion
/// desired, as keepalived sends it.
fn query(id: u16, name: &str, qtype: TYPE) -> Result<Vec<u8>, String> {
    let invalid = |err: simple_dns::SimpleDnsError| format!("name '{name}': {err}");
    let mut packet = Packet::new_query(id);
    packet.set_flags(PacketFlag::RECURSION_DESIRED);
    packet.questions.push(Question::new(
        Name::new(name).map_err(invalid)?,
        qtype.into(),
        CLASS::IN.into(),
        false,
    ));
    packet.build_bytes_vec().map_err(invalid)
}

/// The response code of `msg` when it is the response to query `id`; `None` for anything
/// else (too short, another id, a query), which keepalived ignores while it waits.
fn answer(msg: &[u8], id: u16) -> Option<RCODE> {
    let ours = header_buffer::id(msg).ok()? == id
        && header_buffer::has_flags(msg, PacketFlag::RESPONSE).ok()?;
    ours.then(|| header_buffer::rcode_unchecked(msg))
}

/// The number keepalived logs for a response code. simple-dns folds the unassigned codes
/// (11 to 15) into one variant, so those are logged by name.
fn rcode_number(rcode: RCODE) -> String {
    match rcode {
        RCODE::Reserved => "unassigned".to_owned(),
        code => (code as u16).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::UdpSocket;

    use super::*;
    use crate::check::tests::checker;

    #[test]
    fn queries_are_built_like_keepalived_s() {
        assert_eq!(
            query(0xabcd, "www.example.org", TYPE::A).unwrap(),
            b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\
              \x03www\x07example\x03org\x00\x00\x01\x00\x01"
        );
        assert_eq!(
            query(1, ".", TYPE::SOA).unwrap(),
            b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x06\x00\x01"
        );
        assert!(query(1, &"a".repeat(64), TYPE::A).is_err());
    }

    #[test]
    fn only_responses_to_our_query_count() {
        let mut response = query(7, ".", TYPE::SOA).unwrap();
        assert_eq!(answer(&response, 7), None, "a query is no answer");
        response[2] |= 0x80;
        assert_eq!(answer(&response, 7), Some(RCODE::NoError));
        assert_eq!(answer(&response, 8), None);
        response[3] |= 0x03;
        assert_eq!(answer(&response, 7), Some(RCODE::NameError), "NXDOMAIN");
        assert_eq!(answer(&response[..5], 7), None);
    }

    /// A loopback resolver that first sends a stray response with a wrong id, then
    /// answers with `rcode`.
    async fn resolver(rcode: u8) -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((len, from)) = socket.recv_from(&mut buf).await {
                let mut reply = buf[..len].to_vec();
                reply[2] |= 0x80;
                reply[3] |= rcode;
                let mut stray = reply.clone();
                stray[0] ^= 0xff;
                let _ = socket.send_to(&stray, from).await;
                let _ = socket.send_to(&reply, from).await;
            }
        });
        addr
    }

    fn probe(real: SocketAddr) -> Probe {
        let crate::config::Check::Dns(check) =
            checker("DNS_CHECK {\n connect_timeout 1\n type A\n name example.org\n}")
        else {
            panic!("DNS_CHECK")
        };
        Probe::new(&check, real).unwrap()
    }

    #[tokio::test]
    async fn a_resolver_passes_unless_it_answers_an_error() {
        let label = "[127.0.0.1]:udp:53";
        probe(resolver(0).await).run(label).await.unwrap();
        let failure = probe(resolver(2).await).run(label).await.unwrap_err();
        assert!(failure.to_string().contains("rcode = 2"), "{failure}");
    }
}
