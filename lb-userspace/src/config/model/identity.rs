//! What a service and a real are known by, everywhere past the configuration: the data
//! plane's maps, the checkers' reports, the agent's health records and keepalived's logs.

use std::{fmt, net::SocketAddr};

use serde::Serialize;

use super::{Protocol, ServiceTarget, VirtualServer};

/// A virtual service as the data plane matches it: address, port and protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ServiceKey {
    pub addr: SocketAddr,
    pub protocol: Protocol,
}

impl ServiceKey {
    /// The real at `addr` of this service.
    pub const fn real(self, addr: SocketAddr) -> RealKey {
        RealKey {
            service: self,
            addr,
        }
    }
}

impl fmt::Display for ServiceKey {
    /// keepalived's spelling: `[203.0.113.10]:tcp:80`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        endpoint(f, self.addr, self.protocol)
    }
}

/// A real server of a service: the same address may serve several services.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RealKey {
    pub service: ServiceKey,
    pub addr: SocketAddr,
}

impl fmt::Display for RealKey {
    /// keepalived's spelling in checker logs: the real's address with the service's
    /// protocol, `[192.0.2.11]:tcp:80`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        endpoint(f, self.addr, self.service.protocol)
    }
}

fn endpoint(f: &mut fmt::Formatter<'_>, addr: SocketAddr, protocol: Protocol) -> fmt::Result {
    write!(f, "[{}]:{protocol}:{}", addr.ip(), addr.port())
}

impl VirtualServer {
    /// The service's key, for a service of one address and port (not a fwmark or a
    /// group, which match many).
    pub fn key(&self) -> Option<ServiceKey> {
        match self.target {
            ServiceTarget::Addr(addr) => Some(ServiceKey {
                addr,
                protocol: self.protocol,
            }),
            ServiceTarget::Fwmark(_) | ServiceTarget::Group(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_and_reals_read_as_keepalived_writes_them() {
        let service = ServiceKey {
            addr: "[2001:db8::10]:443".parse().unwrap(),
            protocol: Protocol::Tcp,
        };
        assert_eq!(service.to_string(), "[2001:db8::10]:tcp:443");
        let real = service.real("192.0.2.11:8080".parse().unwrap());
        assert_eq!(real.to_string(), "[192.0.2.11]:tcp:8080");
    }
}
