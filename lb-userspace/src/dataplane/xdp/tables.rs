//! Selection tables: what a service's scheduler walks or indexes, laid out in user space.

use lb_common::{
    maps::TABLE_SIZE,
    sched::{
        self, hash,
        maglev::{MaglevReal, maglev},
    },
};

use super::{
    XdpError,
    encode::{MapAddr, Selection, supports_reals},
};
use crate::{
    config::ServiceKey,
    dataplane::{RealPlan, ServicePlan},
};

/// The service's selection table as real slots: the order the program walks (rr, wrr), the
/// buckets it hashes into (sh, dh, mh), or the reals it compares (the lc family, which
/// reads their weights from `REALS`).
///
/// Hash tables are built over the reals that are up, as keepalived leaves a failed real out
/// of IPVS; a real of weight 0 still holds its sh and dh buckets, as in IPVS, and refuses
/// the clients that hash to it unless the service falls back.
pub fn selection_table(
    key: ServiceKey,
    selection: Selection,
    plan: &ServicePlan,
    indices: &[u32],
) -> Result<Vec<u32>, XdpError> {
    let unsupported = |reason| XdpError::Unsupported {
        service: key,
        reason,
    };
    // Positions in `plan.reals` of the reals a table is built over, and their weights.
    let over = |weight: fn(&RealPlan) -> Option<u32>| -> (Vec<usize>, Vec<u32>) {
        plan.reals
            .iter()
            .enumerate()
            .filter_map(|(i, r)| weight(r).map(|w| (i, w)))
            .unzip()
    };
    let ring = |r: &RealPlan| Some(r.effective_weight());
    let hashed = |r: &RealPlan| r.healthy.then_some(r.weight.get());
    let mut positions = vec![0u32; TABLE_SIZE as usize];
    let buckets = &mut positions[..sched::HASH_TABLE_LEN];
    let (listed, built) = match selection {
        Selection::Least(_) | Selection::Locality { .. } => {
            supports_reals(plan.scheduler, plan.reals.len()).map_err(unsupported)?;
            return Ok(indices.to_vec());
        }
        Selection::RoundRobin => {
            let (listed, weights) = over(ring);
            (listed, sched::round_robin(&weights, &mut positions))
        }
        Selection::Weighted => {
            let (listed, weights) = over(ring);
            (
                listed,
                sched::weighted_round_robin(&weights, &mut positions),
            )
        }
        Selection::SourceHash => {
            let (listed, weights) = over(hashed);
            (listed, hash::source_hash(&weights, buckets))
        }
        Selection::DestinationHash => {
            let (listed, weights) = over(hashed);
            (listed, hash::destination_hash(&weights, buckets))
        }
        Selection::Maglev => {
            let (listed, weights) = over(hashed);
            let reals: Vec<MaglevReal> = listed
                .iter()
                .zip(&weights)
                .map(|(i, weight)| {
                    let real = MapAddr::from(plan.reals[*i].addr);
                    MaglevReal {
                        addr: real.addr,
                        port: real.port,
                        weight: *weight,
                    }
                })
                .collect();
            (listed, maglev(&reals, buckets))
        }
    };
    let len = built.map_err(|sched::TableError::TooManyReals { reals, capacity }| {
        unsupported(format!(
            "{reals} reals do not fit a selection table of {capacity}"
        ))
    })?;
    Ok(positions[..len]
        .iter()
        .map(|p| indices[listed[*p as usize]])
        .collect())
}
