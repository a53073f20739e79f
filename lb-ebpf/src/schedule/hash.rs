//! sh, dh and mh: the bucket a hash of the client (sh, mh) or of the destination (dh)
//! lands on in the service's table; with fallback, further probes until one holds a real
//! that can take the flow.

use core::num::NonZeroU32;

use lb_common::{
    maps::{FlowKey, Real, Service, select, service_flags},
    sched::hash::{FALLBACK_PROBES, FLOW_SEED, flow_bucket, hash_addr},
};

use super::Scheduler;
use crate::maps::{REALS, TABLES};

pub struct Hash;

impl Scheduler for Hash {
    const COUNTS_CONNECTIONS: bool = false;

    #[inline(always)]
    fn choose(service: &Service, key: &FlowKey) -> Option<(u32, Real)> {
        let len = NonZeroU32::new(service.table_len)?;
        let hash = if service.select == select::DESTINATION_HASH {
            hash_addr(FLOW_SEED, &key.dst, 0)
        } else {
            let port = if service.flags & service_flags::PORT != 0 {
                key.sport
            } else {
                0
            };
            hash_addr(FLOW_SEED, &key.src, port)
        };
        let probes = if service.flags & service_flags::FALLBACK != 0 {
            FALLBACK_PROBES
        } else {
            1
        };
        for probe in 0..probes {
            let bucket = flow_bucket(hash, probe, len);
            let index = *TABLES.get(service.table + bucket)?;
            let real = *REALS.get(index)?;
            if real.is_available() {
                return Some((index, real));
            }
        }
        None
    }
}
