//! The hash that maps a client (sh, mh) or a destination (dh) to a bucket of a selection
//! table, and the bucket layouts of sh and dh.
//!
//! The XDP program hashes each new flow with [`flow_bucket`]; user space uses the same
//! function to predict, test and measure where clients land.

use core::num::NonZeroU32;

use super::{TableError, ring::fit_cycle};
use crate::Addr;

/// Seed of a flow's hash.
pub const FLOW_SEED: u32 = 0x2545_f491;

/// Probes a flow makes for an available real under sh-fallback / mh-fallback before it
/// gives up. Each probe lands on an independent bucket, so giving up while any real is
/// available is as likely as that many coin flips all landing on down reals.
pub const FALLBACK_PROBES: u32 = 32;

/// A 32-bit hash of an address and a port, as the packet carries them (network order).
#[inline(always)]
pub fn hash_addr(seed: u32, addr: &Addr, port: u16) -> u32 {
    let mut h = seed;
    h = mix(h, addr.0[0]);
    h = mix(h, addr.0[1]);
    h = mix(h, addr.0[2]);
    h = mix(h, addr.0[3]);
    h = mix(h, u32::from(port));
    avalanche(h)
}

/// The bucket, in a table of `len`, of a flow whose address hashed to `hash`, on its
/// `probe`th try: the first try is the hash itself, later ones rehash it so that the
/// clients of an unavailable real spread over the others instead of piling onto one.
///
/// `len` is non-zero by type so that the kernel's modulo has no division-by-zero path,
/// which the verifier would refuse.
#[inline(always)]
pub fn flow_bucket(hash: u32, probe: u32, len: NonZeroU32) -> u32 {
    let h = if probe == 0 {
        hash
    } else {
        avalanche(hash ^ probe.wrapping_mul(0x9e37_79b9))
    };
    h % len
}

#[inline(always)]
const fn mix(h: u32, word: u32) -> u32 {
    let k = word
        .wrapping_mul(0xcc9e_2d51)
        .rotate_left(15)
        .wrapping_mul(0x1b87_3593);
    (h ^ k)
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

/// Spreads every input bit over the whole output, so `% len` of the result is uniform.
#[inline(always)]
const fn avalanche(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// IPVS `sh`: buckets dealt to the reals in turn, each taking as many consecutive buckets
/// as its weight, and a real of weight 0 one bucket: it keeps its place, so when it is
/// quiesced only its own clients are refused (or, with sh-fallback, moved).
///
/// Fills all of `out` with positions in `weights`; weights whose sum exceeds the table are
/// scaled down, keeping every real at least one bucket.
pub fn source_hash(weights: &[u32], out: &mut [u32]) -> Result<usize, TableError> {
    let mut runs = [0u32; super::MAX_WEIGHTED_REALS];
    let runs = runs_for(weights, out.len(), &mut runs)?;
    for (run, weight) in runs.iter_mut().zip(weights) {
        *run = (*weight).max(1);
    }
    fit_cycle(runs, out.len());
    Ok(deal(runs, out))
}

/// IPVS `dh`: buckets dealt one per real in turn; weights do not shape the table, they
/// only decide whether the real a destination hashes to may take it.
pub fn destination_hash(weights: &[u32], out: &mut [u32]) -> Result<usize, TableError> {
    let mut runs = [0u32; super::MAX_WEIGHTED_REALS];
    let runs = runs_for(weights, out.len(), &mut runs)?;
    runs.fill(1);
    Ok(deal(runs, out))
}

/// The first `weights.len()` entries of `runs`, once sure every real fits a bucket.
fn runs_for<'a>(
    weights: &[u32],
    capacity: usize,
    runs: &'a mut [u32; super::MAX_WEIGHTED_REALS],
) -> Result<&'a mut [u32], TableError> {
    let limit = capacity.min(runs.len());
    if weights.len() > limit {
        return Err(TableError::TooManyReals {
            reals: weights.len(),
            capacity: limit,
        });
    }
    Ok(&mut runs[..weights.len()])
}

/// Fills `out` with real positions, real `i` taking `runs[i]` consecutive buckets per turn.
fn deal(runs: &[u32], out: &mut [u32]) -> usize {
    if runs.is_empty() {
        return 0;
    }
    let (mut real, mut taken) = (0, 0);
    for slot in out.iter_mut() {
        *slot = real as u32;
        taken += 1;
        if taken >= runs[real] {
            real = (real + 1) % runs.len();
            taken = 0;
        }
    }
    out.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(table: &[u32], real: u32) -> usize {
        table.iter().filter(|r| **r == real).count()
    }

    #[test]
    fn sh_deals_runs_as_long_as_the_weights() {
        let mut out = [9u32; 10];
        assert_eq!(source_hash(&[3, 1, 0], &mut out), Ok(10));
        assert_eq!(out, [0, 0, 0, 1, 2, 0, 0, 0, 1, 2]);
    }

    #[test]
    fn sh_scales_weights_that_overflow_the_table() {
        let mut out = [0u32; 64];
        source_hash(&[1000, 10, 1], &mut out).unwrap();
        assert!(count(&out, 0) > count(&out, 1), "{out:?}");
        assert!(count(&out, 1) >= 1 && count(&out, 2) >= 1, "{out:?}");
    }

    #[test]
    fn dh_ignores_weights() {
        let mut out = [9u32; 5];
        destination_hash(&[5, 1], &mut out).unwrap();
        assert_eq!(out, [0, 1, 0, 1, 0]);
    }

    #[test]
    fn no_reals_is_an_empty_table() {
        let mut out = [0u32; 4];
        assert_eq!(source_hash(&[], &mut out), Ok(0));
    }

    #[test]
    fn more_reals_than_buckets_is_an_error() {
        let mut out = [0u32; 2];
        assert_eq!(
            destination_hash(&[1, 1, 1], &mut out),
            Err(TableError::TooManyReals {
                reals: 3,
                capacity: 2
            })
        );
    }

    #[test]
    fn the_port_changes_the_hash() {
        let addr = Addr([0x0700_a8c0, 0, 0, 0]);
        assert_ne!(
            hash_addr(FLOW_SEED, &addr, 1),
            hash_addr(FLOW_SEED, &addr, 2)
        );
    }

    #[test]
    fn flows_spread_evenly_over_buckets() {
        let len = 7;
        let mut hits = [0u32; 7];
        for client in 0..7000u32 {
            let hash = hash_addr(FLOW_SEED, &Addr([client.to_be(), 0, 0, 0]), 0);
            hits[flow_bucket(hash, 0, len.try_into().unwrap()) as usize] += 1;
        }
        assert!(hits.iter().all(|h| (800..1200).contains(h)), "{hits:?}");
    }

    #[test]
    fn probes_visit_other_buckets() {
        let hash = hash_addr(FLOW_SEED, &Addr([1, 0, 0, 0]), 0);
        let len = NonZeroU32::new(4093).unwrap();
        let first = flow_bucket(hash, 0, len);
        let others = (1..FALLBACK_PROBES)
            .filter(|p| flow_bucket(hash, *p, len) != first)
            .count();
        assert!(others >= FALLBACK_PROBES as usize - 2);
    }
}
