//! What the data plane reports about the traffic it carried.

use std::{collections::BTreeMap, net::SocketAddr};

use lb_common::stats::{Counters, Event};

use crate::{ctl::Conns, dataplane::ServiceKey};

/// Counters summed over CPUs, keyed like the plan they were applied from.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub services: BTreeMap<ServiceKey, Counters>,
    pub reals: BTreeMap<(ServiceKey, SocketAddr), Counters>,
    pub conns: BTreeMap<(ServiceKey, SocketAddr), Conns>,
    /// Packets the program passed or dropped, by reason, and how it forwarded the rest.
    pub events: Vec<(Event, u64)>,
}
