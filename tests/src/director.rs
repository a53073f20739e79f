//! The topologies with one director ([`crate::DrTopology`], [`crate::NatTopology`]), and
//! `xlb run` on it.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use crate::{Child, HttpServer, Node, reals, wait_until};

/// How long a ready xlb may take to check the reals and answer through the VIP.
const FIRST_ANSWER: Duration = Duration::from_secs(15);

/// A client reaching a VIP through one director, the reals behind it, and the segments
/// `S` they are on: one [`crate::Lan`] for [`crate::DrTopology`], the reals' and the
/// client's for [`crate::NatTopology`].
pub struct Topology<S> {
    pub client: Node,
    pub director: Node,
    pub reals: Vec<Node>,
    /// Where clients connect.
    pub vip: SocketAddr,
    /// Where the reals listen.
    pub real_port: u16,
    /// The director's interfaces, which `xlb run` attaches to.
    pub interfaces: Vec<&'static str>,
    /// Kept for as long as the hosts use them.
    pub lans: S,
}

impl<S> Topology<S> {
    /// A keepalived.conf with one round-robin TCP service on the VIP, forwarding by
    /// `lb_kind` ("DR", "NAT") to every real's [`Topology::real_port`], each real under a
    /// TCP_CHECK every second.
    pub fn round_robin_config(&self, lb_kind: &str) -> String {
        let reals: String = self
            .reals
            .iter()
            .map(|real| {
                format!(
                    "    real_server {} {} {{ TCP_CHECK {{ connect_timeout 1 }} }}\n",
                    real.addr(),
                    self.real_port
                )
            })
            .collect();
        format!(
            "virtual_server {} {} {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind {lb_kind}\n    \
             protocol TCP\n{reals}}}\n",
            self.vip.ip(),
            self.vip.port()
        )
    }

    /// Starts an HTTP server on [`Topology::real_port`] of every real, answering with the
    /// real's name.
    pub fn start_http_servers(&self) -> anyhow::Result<Vec<HttpServer>> {
        reals::start_http_servers(&self.reals, self.real_port)
    }

    /// Starts `xlb run` on the director, attached to its [`Topology::interfaces`] with
    /// `config` as its keepalived.conf, and returns it with its run directory (where
    /// `xlb status` finds it) once the client's first request through the VIP is answered.
    pub fn start_xlb(&self, config: &str) -> anyhow::Result<(Child, PathBuf)> {
        self.start_xlb_for(config, self.vip)
    }

    /// [`Topology::start_xlb`], waiting for an answer through `vip` instead. A failure says
    /// how xlb ended and what it wrote on stderr.
    pub fn start_xlb_for(&self, config: &str, vip: SocketAddr) -> anyhow::Result<(Child, PathBuf)> {
        let (mut xlb, run_dir) = self.director.spawn_xlb("xlb", config, &self.interfaces)?;
        if let Err(err) = wait_until(
            "the first answer through the VIP",
            FIRST_ANSWER,
            Duration::from_millis(50),
            || self.client.http_get(vip),
        ) {
            return Err(xlb.failure(format!("{err:#}")));
        }
        Ok((xlb, run_dir))
    }
}
