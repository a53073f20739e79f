//! What a data plane reports about the traffic it carried.

use std::collections::BTreeMap;

use lb_common::stats::{Counters, Event};

use crate::{
    config::{RealKey, ServiceKey},
    ctl::ConnCounts,
};

/// Counters summed over CPUs, keyed like the plan they were applied from.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub services: BTreeMap<ServiceKey, Counters>,
    pub reals: BTreeMap<RealKey, Counters>,
    pub conns: BTreeMap<RealKey, ConnCounts>,
    /// Packets the XDP programs passed or dropped, by reason, and how they forwarded the
    /// rest.
    pub events: Vec<(Event, u64)>,
}
