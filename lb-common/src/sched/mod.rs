//! Schedulers: how a new flow picks a real, with IPVS's rules.
//!
//! The table-driven ones (rr, wrr, sh, dh, mh) are laid out here, in user space, as a
//! service's selection table; the XDP program only steps along it or indexes it with
//! [`hash`]. The least-connection family compares reals per new flow with [`least`], which
//! the XDP program calls as it is.

pub mod hash;
pub mod least;
pub mod locality;
pub mod maglev;
pub mod ring;

pub use ring::{cycle_len, round_robin, weighted_round_robin};

/// Errors building a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// The output slice cannot hold even one entry per real that must have one.
    TooManyReals { reals: usize, capacity: usize },
}

/// Most reals one weighted table is built over (the per-service limit of the data plane).
pub const MAX_WEIGHTED_REALS: usize = 1024;

/// Buckets of a table indexed by a hash (sh, dh, mh): prime, as Maglev needs for every
/// skip to visit every bucket, and within a selection table.
pub const HASH_TABLE_LEN: usize = 4093;

/// The share of flows that change real from `before` to `after`, two tables of the same
/// length that hold real identities: each bucket stands for the same share of clients.
pub fn moved_share(before: &[u32], after: &[u32]) -> f64 {
    if before.is_empty() {
        return 0.0;
    }
    let moved = before.iter().zip(after).filter(|(a, b)| a != b).count();
    moved as f64 / before.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::TABLE_SIZE;

    #[test]
    fn hash_tables_fit_a_selection_table() {
        assert!(HASH_TABLE_LEN <= TABLE_SIZE as usize);
    }

    #[test]
    fn moved_share_counts_differing_buckets() {
        assert_eq!(moved_share(&[1, 2, 3, 4], &[1, 2, 5, 5]), 0.5);
        assert_eq!(moved_share(&[], &[]), 0.0);
    }
}
