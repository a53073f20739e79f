//! Persistence: while a client's template holds, its new connections go to the real the
//! template names; otherwise the scheduler picks and a new template records the pick.
//!
//! A template is honoured only while its real can take new flows: a real that is down or
//! quiesced to weight 0 loses its persistent clients (IPVS's `expire_quiescent_template`),
//! so a failed real does not keep drawing its regulars.

use lb_common::{
    maps::{FlowKey, Real, Service},
    persist::{Persist, PersistKey},
};

use super::Scheduler;
use crate::{
    clock,
    maps::{PERSIST, REALS},
};

/// The real for a new flow of `service`, by its client's template or by its scheduler `S`.
#[inline(always)]
pub fn choose<S: Scheduler>(service: &Service, key: &FlowKey) -> Option<(u32, Real)> {
    let now = clock::now();
    let template_key = (service.persistence != 0)
        .then(|| PersistKey::new(service.id, &key.src, &service.granularity));
    if let Some(found) = template_key.and_then(|k| honoured(service, &k, now)) {
        return Some(found);
    }
    // One call of the scheduler whether the service persists or not: its scans are
    // verified once per call.
    let (index, real) = S::choose(service, key)?;
    if let Some(template_key) = template_key {
        let template = Persist {
            real: index,
            generation: real.generation,
            seen: now,
        };
        // A full LRU evicts its oldest template; failing here only loses stickiness.
        let _ = PERSIST.insert(&template_key, &template, 0);
    }
    Some((index, real))
}

/// The real of a template that still holds, its last use brought up to `now`.
#[inline(always)]
fn honoured(service: &Service, key: &PersistKey, now: u64) -> Option<(u32, Real)> {
    // SAFETY: a live map value; a template is only ever rewritten whole or by its `seen`.
    let template = unsafe { &mut *PERSIST.get_ptr_mut(key)? };
    if !template.holds(now, service.persistence) {
        return None;
    }
    let real = *REALS.get(template.real)?;
    if !real.is_available() || real.generation != template.generation {
        return None;
    }
    if template.stale(now) {
        template.seen = now;
    }
    Some((template.real, real))
}
