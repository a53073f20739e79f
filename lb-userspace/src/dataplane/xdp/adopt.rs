//! Taking over the maps a previous agent pinned: what it had applied, read back from the
//! maps themselves, which are the only record that cannot disagree with what forwards.
//!
//! The installed services come from `VIPS` and their reals from `REALS`, whose entries name
//! their service's slot; every slot's generation comes from `REALS` too, so that a slot
//! given to a new real still tells the flows of its old one apart. Selection tables are not
//! read back: the first plan writes each service's table into its other slot and switches,
//! as any changed table is switched. Services the previous agent held on standby (not in
//! `VIPS`) start afresh, in new slots; nothing forwards to them meanwhile.

use std::collections::HashMap;

use lb_common::maps::{MAX_REALS, TABLE_SIZE, table_base};

use super::{Applied, XdpError, encode, maps::Maps};
use crate::config::{RealKey, ServiceKey};

/// What the maps say was applied.
#[derive(Debug)]
pub struct State {
    pub services: Vec<(ServiceKey, u32)>,
    pub reals: Vec<(RealKey, u32)>,
    /// Per real slot.
    pub generations: Vec<u32>,
    pub applied: HashMap<ServiceKey, Applied>,
}

impl Default for State {
    /// Nothing applied yet: the state of fresh maps.
    fn default() -> Self {
        Self {
            services: Vec::new(),
            reals: Vec::new(),
            generations: vec![0; MAX_REALS as usize],
            applied: HashMap::new(),
        }
    }
}

pub fn read(maps: &Maps) -> Result<State, XdpError> {
    let mut state = State::default();
    let mut by_id: HashMap<u32, ServiceKey> = HashMap::new();
    for (vip, value) in maps.services()? {
        let Some(key) = encode::service_key(&vip) else {
            continue;
        };
        by_id.insert(value.id, key);
        state.services.push((key, value.id));
        state.applied.insert(
            key,
            Applied {
                value,
                slot: (value.table - table_base(value.id, 0)) / TABLE_SIZE,
                table: Vec::new(),
                reals: Vec::new(),
                installed: true,
            },
        );
    }
    for index in 0..MAX_REALS {
        let real = maps.real(index)?;
        state.generations[index as usize] = real.generation;
        let (true, Some(service)) = (real.is_present(), by_id.get(&real.service)) else {
            continue;
        };
        let Some(addr) = encode::MapAddr::socket_addr(real.addr, real.family, real.port) else {
            continue;
        };
        state.reals.push((service.real(addr), index));
        if let Some(applied) = state.applied.get_mut(service) {
            applied.reals.push(addr);
        }
    }
    Ok(state)
}
