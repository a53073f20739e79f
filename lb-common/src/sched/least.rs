//! The least-connection family (lc, wlc, sed, nq, fo, ovf, and the choice lblc falls back
//! on), with IPVS's arithmetic: weights are compared by cross-multiplying, never divided,
//! and of equally good reals the first in the service's order wins.

/// Most reals a service of the family may have: the XDP program compares them all for
/// every new flow.
pub const MAX_LEAST_REALS: u32 = 64;

/// What the family knows of a real when a new flow arrives.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Load {
    pub weight: u32,
    /// Established connections.
    pub active: u32,
    /// Connections opening, closing, or without states (UDP).
    pub inactive: u32,
}

/// A scheduler of the family, as the XDP program finds it in a service.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Least {
    /// Fewest connections: an active one counts 256 inactive ones.
    Lc = 0,
    /// lc's count per unit of weight.
    Wlc = 1,
    /// Shortest expected delay: (active + 1) per unit of weight.
    Sed = 2,
    /// Never queue: an idle real at once, else as sed.
    Nq = 3,
    /// Weighted failover: the heaviest real.
    Fo = 4,
    /// Weighted overflow: the heaviest real with fewer active connections than its weight.
    Ovf = 5,
}

impl Least {
    pub const ALL: [Least; 6] = [
        Least::Lc,
        Least::Wlc,
        Least::Sed,
        Least::Nq,
        Least::Fo,
        Least::Ovf,
    ];

    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Least::Lc),
            1 => Some(Least::Wlc),
            2 => Some(Least::Sed),
            3 => Some(Least::Nq),
            4 => Some(Least::Fo),
            5 => Some(Least::Ovf),
            _ => None,
        }
    }

    /// Whether the real may take a new flow at all.
    #[inline(always)]
    pub fn eligible(self, real: &Load) -> bool {
        real.weight > 0 && (self != Least::Ovf || real.active < real.weight)
    }

    /// Whether the search may stop at this real (nq's idle real).
    #[inline(always)]
    pub fn settles(self, real: &Load) -> bool {
        self == Least::Nq && real.active == 0
    }

    /// Whether `candidate` beats `best`; both eligible.
    #[inline(always)]
    pub fn prefers(self, best: &Load, candidate: &Load) -> bool {
        let weighted =
            |b: u64, c: u64| b * u64::from(candidate.weight) > c * u64::from(best.weight);
        match self {
            Least::Lc => lc_overhead(candidate) < lc_overhead(best),
            Least::Wlc => weighted(lc_overhead(best), lc_overhead(candidate)),
            Least::Sed | Least::Nq => {
                weighted(u64::from(best.active) + 1, u64::from(candidate.active) + 1)
            }
            Least::Fo | Least::Ovf => candidate.weight > best.weight,
        }
    }
}

/// A pick in progress, one real offered at a time: the XDP program offers them from the
/// steps of a `bpf_loop`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Picker {
    /// Position of the best real so far; [`Picker::NONE`] while none is eligible.
    pub best: u32,
    pub load: Load,
}

impl Default for Picker {
    fn default() -> Self {
        Self {
            best: Self::NONE,
            load: Load::default(),
        }
    }
}

impl Picker {
    pub const NONE: u32 = u32::MAX;

    /// Considers the real at `position`; true when the search may stop.
    #[inline(always)]
    pub fn offer(&mut self, rule: Least, position: u32, real: &Load) -> bool {
        if !rule.eligible(real) {
            return false;
        }
        if self.best == Self::NONE || rule.settles(real) || rule.prefers(&self.load, real) {
            self.best = position;
            self.load = *real;
        }
        rule.settles(real)
    }

    /// Considers the real at `position` for the opposite question: the most loaded by
    /// `rule`, of the reals with a weight (lblcr's choice of whom to drop from a set).
    #[inline(always)]
    pub fn offer_heaviest(&mut self, rule: Least, position: u32, real: &Load) {
        if real.weight == 0 {
            return;
        }
        if self.best == Self::NONE || rule.prefers(real, &self.load) {
            self.best = position;
            self.load = *real;
        }
    }

    pub fn picked(&self) -> Option<u32> {
        (self.best != Self::NONE).then_some(self.best)
    }
}

#[inline(always)]
fn lc_overhead(real: &Load) -> u64 {
    (u64::from(real.active) << 8) + u64::from(real.inactive)
}

/// lblc's and lblcr's rule for giving up a destination's real: it has more active
/// connections than its weight while some real of the service is below half its own. The
/// first half decides whether the second needs looking at.
#[inline(always)]
pub fn may_be_overloaded(real: &Load) -> bool {
    real.active > real.weight
}

/// The second half of the overload rule: a real of the service is below half its weight.
#[inline(always)]
pub fn has_room(real: &Load) -> bool {
    u64::from(real.active) * 2 < u64::from(real.weight)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(weight: u32, active: u32, inactive: u32) -> Load {
        Load {
            weight,
            active,
            inactive,
        }
    }

    /// The position of the real to take among `loads`, offered in order as the XDP
    /// program offers them.
    fn pick(least: Least, loads: &[Load]) -> Option<u32> {
        let mut picker = Picker::default();
        for (i, real) in loads.iter().enumerate() {
            if picker.offer(least, i as u32, real) {
                break;
            }
        }
        picker.picked()
    }

    #[test]
    fn values_round_trip() {
        for l in Least::ALL {
            assert_eq!(Least::from_u8(l as u8), Some(l));
        }
        assert_eq!(Least::from_u8(6), None);
    }

    #[test]
    fn lc_counts_an_active_connection_as_256_inactive() {
        let reals = [load(1, 1, 0), load(1, 0, 255)];
        assert_eq!(pick(Least::Lc, &reals), Some(1));
        let reals = [load(1, 1, 0), load(1, 0, 256)];
        assert_eq!(pick(Least::Lc, &reals), Some(0), "ties keep the first");
    }

    #[test]
    fn lc_ignores_weight_but_not_weight_zero() {
        let reals = [load(0, 0, 0), load(100, 5, 0), load(1, 4, 0)];
        assert_eq!(pick(Least::Lc, &reals), Some(2));
    }

    #[test]
    fn wlc_divides_by_weight() {
        let reals = [load(1, 2, 0), load(3, 5, 0)];
        assert_eq!(pick(Least::Wlc, &reals), Some(1), "5/3 < 2/1");
        let reals = [load(1, 2, 0), load(3, 6, 0)];
        assert_eq!(pick(Least::Wlc, &reals), Some(0), "6/3 = 2/1: the first");
    }

    #[test]
    fn sed_counts_the_flow_about_to_arrive() {
        // wlc sees 0/1 < 1/10, sed sees (0+1)/1 > (1+1)/10.
        let reals = [load(1, 0, 0), load(10, 1, 0)];
        assert_eq!(pick(Least::Wlc, &reals), Some(0));
        assert_eq!(pick(Least::Sed, &reals), Some(1));
    }

    #[test]
    fn nq_takes_an_idle_real_at_once() {
        let reals = [load(10, 1, 0), load(1, 0, 0)];
        assert_eq!(pick(Least::Sed, &reals), Some(0));
        assert_eq!(pick(Least::Nq, &reals), Some(1));
    }

    #[test]
    fn fo_takes_the_heaviest_whatever_its_load() {
        let reals = [
            load(2, 0, 0),
            load(5, 1000, 0),
            load(5, 0, 0),
            load(0, 0, 0),
        ];
        assert_eq!(pick(Least::Fo, &reals), Some(1));
    }

    #[test]
    fn ovf_overflows_once_active_reaches_weight() {
        let reals = [load(2, 0, 0), load(5, 4, 0)];
        assert_eq!(pick(Least::Ovf, &reals), Some(1));
        let reals = [load(2, 0, 0), load(5, 5, 0)];
        assert_eq!(pick(Least::Ovf, &reals), Some(0));
        let reals = [load(2, 2, 0), load(5, 5, 0)];
        assert_eq!(pick(Least::Ovf, &reals), None);
    }

    #[test]
    fn the_heaviest_is_the_most_loaded_per_weight() {
        let mut picker = Picker::default();
        let reals = [load(1, 1, 0), load(0, 9, 0), load(4, 3, 0), load(1, 1, 0)];
        for (i, real) in reals.iter().enumerate() {
            picker.offer_heaviest(Least::Wlc, i as u32, real);
        }
        assert_eq!(
            picker.picked(),
            Some(0),
            "1/1 beats 3/4; the first of equals stays"
        );
    }

    #[test]
    fn nobody_eligible_is_none() {
        assert_eq!(pick(Least::Wlc, &[load(0, 0, 0)]), None);
        assert_eq!(pick(Least::Lc, &[]), None);
    }

    #[test]
    fn overload_needs_more_active_than_weight_and_a_real_below_half_its_weight() {
        assert!(may_be_overloaded(&load(2, 3, 0)));
        assert!(!may_be_overloaded(&load(2, 2, 0)));
        assert!(has_room(&load(4, 1, 0)));
        assert!(!has_room(&load(4, 2, 0)));
        assert!(!has_room(&load(0, 0, 0)));
    }
}
