//! IPVS `mh`: Maglev hashing with weights.
//!
//! Every real gets a permutation of the table's buckets from two hashes of its address and
//! port (an offset and a skip); the reals then take turns claiming their next unclaimed
//! bucket, each as many times per turn as its weight (divided by the weights' gcd). A
//! real's permutation does not depend on the others, so adding or removing one real moves
//! little more than the buckets it gains or loses: about 1/N of the flows.

use super::{MAX_WEIGHTED_REALS, TableError, ring::fit_cycle};
use crate::{
    Addr,
    sched::{hash::hash_addr, ring::gcd},
};

const OFFSET_SEED: u32 = 0x5bd1_e995;
const SKIP_SEED: u32 = 0x27d4_eb2f;
const FREE: u32 = u32::MAX;

/// A real as Maglev places it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaglevReal {
    pub addr: Addr,
    /// Network byte order.
    pub port: u16,
    /// Reals of weight 0 get no bucket, as in IPVS.
    pub weight: u32,
}

/// Fills all of `out` (whose length must be prime) with positions in `reals`; returns the
/// length, or 0 when no real has a weight.
pub fn maglev(reals: &[MaglevReal], out: &mut [u32]) -> Result<usize, TableError> {
    let len = out.len();
    if reals.len() > MAX_WEIGHTED_REALS.min(len) {
        return Err(TableError::TooManyReals {
            reals: reals.len(),
            capacity: MAX_WEIGHTED_REALS.min(len),
        });
    }
    let mut turns = [0u32; MAX_WEIGHTED_REALS];
    let turns = &mut turns[..reals.len()];
    for (t, r) in turns.iter_mut().zip(reals) {
        *t = r.weight;
    }
    let step = turns.iter().copied().fold(0, gcd);
    if step == 0 {
        return Ok(0);
    }
    turns.iter_mut().for_each(|t| *t /= step);
    fit_cycle(turns, len);

    let mut offset = [0u64; MAX_WEIGHTED_REALS];
    let mut skip = [0u64; MAX_WEIGHTED_REALS];
    let mut next = [0u64; MAX_WEIGHTED_REALS];
    let modulus = len as u64;
    for (i, r) in reals.iter().enumerate() {
        offset[i] = u64::from(hash_addr(OFFSET_SEED, &r.addr, r.port)) % modulus;
        skip[i] = u64::from(hash_addr(SKIP_SEED, &r.addr, r.port)) % (modulus - 1) + 1;
    }
    out.fill(FREE);
    let mut filled = 0;
    while filled < len {
        for (i, t) in turns.iter().enumerate() {
            for _ in 0..*t {
                let bucket = loop {
                    let b = ((offset[i] + next[i] * skip[i]) % modulus) as usize;
                    next[i] += 1;
                    if out[b] == FREE {
                        break b;
                    }
                };
                out[bucket] = i as u32;
                filled += 1;
                if filled == len {
                    return Ok(len);
                }
            }
        }
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::{HASH_TABLE_LEN, hash::source_hash, moved_share};

    fn real(i: u32, weight: u32) -> MaglevReal {
        MaglevReal {
            addr: Addr([u32::from_be_bytes([192, 0, 2, i as u8]).to_be(), 0, 0, 0]),
            port: 80u16.to_be(),
            weight,
        }
    }

    /// The table as real identities (last address byte), for comparing tables built over
    /// different sets of reals.
    fn identities(reals: &[MaglevReal]) -> Vec<u32> {
        let mut out = vec![0u32; HASH_TABLE_LEN];
        maglev(reals, &mut out).unwrap();
        out.iter()
            .map(|p| u32::from_be(reals[*p as usize].addr.0[0]) & 0xff)
            .collect()
    }

    fn share(table: &[u32], id: u32) -> f64 {
        table.iter().filter(|r| **r == id).count() as f64 / table.len() as f64
    }

    #[test]
    fn equal_weights_share_the_table_evenly() {
        let reals: Vec<_> = (1..=5).map(|i| real(i, 1)).collect();
        let table = identities(&reals);
        for i in 1..=5 {
            let s = share(&table, i);
            assert!((0.19..0.21).contains(&s), "real {i}: {s}");
        }
    }

    #[test]
    fn weights_set_the_shares_and_zero_takes_nothing() {
        let reals = [real(1, 3), real(2, 1), real(3, 0)];
        let table = identities(&reals);
        assert!((0.74..0.76).contains(&share(&table, 1)));
        assert!((0.24..0.26).contains(&share(&table, 2)));
        assert_eq!(share(&table, 3), 0.0);
    }

    #[test]
    fn no_weight_is_an_empty_table() {
        let mut out = [0u32; 7];
        assert_eq!(maglev(&[real(1, 0)], &mut out), Ok(0));
    }

    #[test]
    fn removing_one_of_n_moves_about_one_nth() {
        let n = 10;
        let all: Vec<_> = (1..=n).map(|i| real(i, 1)).collect();
        let before = identities(&all);
        let after = identities(&all[1..]);
        let moved = moved_share(&before, &after);
        let own = share(&before, 1);
        assert!(moved >= own, "the removed real's flows must move");
        assert!(
            moved < own + 0.03,
            "Maglev moved {moved:.3} of flows; the removed real had {own:.3}"
        );
    }

    #[test]
    fn adding_one_moves_about_its_share() {
        let all: Vec<_> = (1..=9).map(|i| real(i, 1)).collect();
        let mut more = all.clone();
        more.push(real(10, 1));
        let moved = moved_share(&identities(&all), &identities(&more));
        assert!(moved < 0.1 + 0.03, "Maglev moved {moved:.3}");
    }

    #[test]
    fn sh_moves_far_more_than_maglev() {
        let ids: Vec<u32> = (1..=10).collect();
        let sh = |ids: &[u32]| {
            let mut out = vec![0u32; HASH_TABLE_LEN];
            source_hash(&vec![1; ids.len()], &mut out).unwrap();
            out.iter().map(|p| ids[*p as usize]).collect::<Vec<_>>()
        };
        let moved = moved_share(&sh(&ids), &sh(&ids[1..]));
        assert!(moved > 0.5, "sh moved only {moved:.3}");
    }
}
