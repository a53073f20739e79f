//! rr and wrr: selection tables laid out the way IPVS walks its reals.
//!
//! The XDP program takes one step along a service's table per new flow, so the table *is*
//! the schedule: building it here, with IPVS's rules for weights, gives the kernel IPVS's
//! behaviour without any per-packet arithmetic beyond a counter.

use super::{MAX_WEIGHTED_REALS, TableError};

/// IPVS `rr`: every real with a non-zero weight once, in order. Weight 0 takes no new flows.
///
/// Writes real indices (positions in `weights`) to `out` and returns how many it wrote.
pub fn round_robin(weights: &[u32], out: &mut [u32]) -> Result<usize, TableError> {
    check_capacity(weights, out.len())?;
    let mut len = 0;
    for (i, _) in weights.iter().enumerate().filter(|(_, w)| **w > 0) {
        out[len] = i as u32;
        len += 1;
    }
    Ok(len)
}

/// IPVS `wrr`: a cycle in which each real appears as often as its weight, interleaved the
/// way IPVS interleaves them (the current-weight threshold falls by the weights' gcd each
/// pass, and every real at or above it is taken in order), not in blocks.
///
/// A cycle longer than `out` is built from weights scaled down to fit, keeping every
/// non-zero weight at least 1, so proportions are kept as well as the table size allows.
pub fn weighted_round_robin(weights: &[u32], out: &mut [u32]) -> Result<usize, TableError> {
    check_capacity(weights, out.len())?;
    if weights.len() > MAX_WEIGHTED_REALS {
        return Err(TableError::TooManyReals {
            reals: weights.len(),
            capacity: MAX_WEIGHTED_REALS,
        });
    }
    let mut scaled = [0u32; MAX_WEIGHTED_REALS];
    let scaled = &mut scaled[..weights.len()];
    scaled.copy_from_slice(weights);
    fit_cycle(scaled, out.len());
    let weights = &*scaled;

    let step = weights.iter().copied().fold(0, gcd);
    let top = weights.iter().copied().max().unwrap_or(0);
    let mut len = 0;
    let mut threshold = top;
    while threshold > 0 {
        for (i, w) in weights.iter().enumerate() {
            if *w >= threshold {
                out[len] = i as u32;
                len += 1;
            }
        }
        threshold -= step;
    }
    Ok(len)
}

fn check_capacity(weights: &[u32], capacity: usize) -> Result<(), TableError> {
    let live = weights.iter().filter(|w| **w > 0).count();
    if live > capacity {
        return Err(TableError::TooManyReals {
            reals: live,
            capacity,
        });
    }
    Ok(())
}

/// Length of one wrr cycle: each weight divided by the gcd of all of them, summed.
pub fn cycle_len(weights: &[u32]) -> u64 {
    let step = weights.iter().copied().fold(0, gcd);
    if step == 0 {
        return 0;
    }
    weights.iter().map(|w| u64::from(w / step)).sum()
}

/// Halves weights (never below 1 for a live real) until one cycle fits in `capacity`.
pub(crate) fn fit_cycle(weights: &mut [u32], capacity: usize) {
    while cycle_len(weights) > capacity as u64 {
        for w in weights.iter_mut().filter(|w| **w > 1) {
            *w = w.div_ceil(2);
        }
        if weights.iter().all(|w| *w <= 1) {
            break;
        }
    }
}

pub(crate) const fn gcd(a: u32, b: u32) -> u32 {
    let (mut a, mut b) = (a, b);
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrr(weights: &[u32]) -> Vec<u32> {
        let mut out = [0u32; 64];
        let n = weighted_round_robin(weights, &mut out).unwrap();
        out[..n].to_vec()
    }

    #[test]
    fn rr_skips_weight_zero() {
        let mut out = [0u32; 8];
        let n = round_robin(&[1, 0, 5, 1], &mut out).unwrap();
        assert_eq!(&out[..n], &[0, 2, 3]);
    }

    #[test]
    fn rr_with_no_live_real_is_empty() {
        let mut out = [0u32; 8];
        assert_eq!(round_robin(&[0, 0], &mut out), Ok(0));
    }

    #[test]
    fn rr_reports_a_table_too_small() {
        let mut out = [0u32; 2];
        assert_eq!(
            round_robin(&[1, 1, 1], &mut out),
            Err(TableError::TooManyReals {
                reals: 3,
                capacity: 2
            })
        );
    }

    #[test]
    fn wrr_interleaves_like_ipvs() {
        assert_eq!(wrr(&[4, 3, 2]), vec![0, 0, 1, 0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn wrr_three_to_one_to_zero() {
        assert_eq!(wrr(&[3, 1, 0]), vec![0, 0, 0, 1]);
    }

    #[test]
    fn wrr_divides_by_the_gcd() {
        assert_eq!(wrr(&[100, 50]), vec![0, 0, 1]);
    }

    #[test]
    fn wrr_equal_weights_is_round_robin() {
        assert_eq!(wrr(&[7, 7, 7]), vec![0, 1, 2]);
    }

    #[test]
    fn wrr_all_zero_is_empty() {
        assert_eq!(wrr(&[0, 0]), Vec::<u32>::new());
    }

    #[test]
    fn wrr_scales_a_cycle_that_does_not_fit() {
        let mut out = [0u32; 16];
        let n = weighted_round_robin(&[1000, 1, 1], &mut out).unwrap();
        assert!(n <= out.len());
        let table = &out[..n];
        let heavy = table.iter().filter(|i| **i == 0).count();
        assert!(heavy >= n - 2, "heavy real should dominate: {table:?}");
        assert!(
            table.contains(&1) && table.contains(&2),
            "light reals keep a slot: {table:?}"
        );
    }

    #[test]
    fn cycle_len_counts_one_cycle() {
        assert_eq!(cycle_len(&[3, 1, 0]), 4);
        assert_eq!(cycle_len(&[100, 50]), 3);
        assert_eq!(cycle_len(&[0]), 0);
    }
}
