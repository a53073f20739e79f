//! What tracking does to an instance: from the state of tracked interfaces, scripts and
//! files to a fault or a priority adjustment, with keepalived's weight rules.

/// Something an instance tracks, by the key its status is reported under.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Tracked {
    /// By name, as configured: an interface deleted and created again is the same one to
    /// tracking, though the kernel gives it a new index.
    Interface(String),
    Script(String),
    File(String),
}

/// One tracked object with the weight that applies to this instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Track {
    pub what: Tracked,
    /// 0: the instance faults while the object is down. Positive: added while up.
    /// Negative: added while down.
    pub weight: i32,
    /// keepalived's `reverse`: the weight moves the priority the other way.
    pub reverse: bool,
}

/// A tracked object's last reported status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Up(bool),
    /// A track file's number.
    Value(i64),
}

/// What tracking makes of an instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub fault: bool,
    pub delta: i32,
}

/// Folds the status of every tracked object into a verdict; objects with no status
/// yet count as up.
pub fn evaluate<'a>(tracks: &[Track], status: impl Fn(&Tracked) -> Option<Status> + 'a) -> Verdict {
    let mut v = Verdict::default();
    for t in tracks {
        match status(&t.what).unwrap_or(Status::Up(true)) {
            Status::Up(up) => {
                if t.weight == 0 {
                    v.fault |= !up;
                    continue;
                }
                // A positive weight counts while up, a negative one while down;
                // reverse flips the sign, not the condition.
                if (t.weight > 0) == up {
                    v.delta += if t.reverse { -t.weight } else { t.weight };
                }
            }
            Status::Value(n) => {
                if t.weight == 0 {
                    v.fault |= n != 0;
                    continue;
                }
                let w = if t.reverse { -t.weight } else { t.weight };
                let d = n.saturating_mul(i64::from(w));
                // keepalived faults an instance whose file pushes it below priority 1.
                if d <= -254 {
                    v.fault = true;
                } else {
                    v.delta += i32::try_from(d).unwrap_or(i32::MAX);
                }
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(what: Tracked, weight: i32, reverse: bool) -> Track {
        Track {
            what,
            weight,
            reverse,
        }
    }

    #[test]
    fn zero_weight_faults_while_down() {
        let t = [track(Tracked::Interface("eth0".into()), 0, false)];
        assert_eq!(evaluate(&t, |_| Some(Status::Up(true))), Verdict::default());
        assert!(evaluate(&t, |_| Some(Status::Up(false))).fault);
        assert!(!evaluate(&t, |_| None).fault, "unknown counts as up");
    }

    #[test]
    fn weights_apply_in_their_direction() {
        let s = |n: &str| Tracked::Script(n.into());
        let t = [track(s("plus"), 10, false), track(s("minus"), -20, false)];
        let all_up = evaluate(&t, |_| Some(Status::Up(true)));
        assert_eq!(
            all_up,
            Verdict {
                fault: false,
                delta: 10
            }
        );
        let all_down = evaluate(&t, |_| Some(Status::Up(false)));
        assert_eq!(
            all_down,
            Verdict {
                fault: false,
                delta: -20
            }
        );
        let reversed = [track(s("r"), 10, true)];
        assert_eq!(evaluate(&reversed, |_| Some(Status::Up(true))).delta, -10);
        assert_eq!(evaluate(&reversed, |_| Some(Status::Up(false))).delta, 0);
    }

    #[test]
    fn track_files_multiply_and_fault_far_below() {
        let t = [track(Tracked::File("f".into()), 2, false)];
        assert_eq!(evaluate(&t, |_| Some(Status::Value(-5))).delta, -10);
        assert!(evaluate(&t, |_| Some(Status::Value(-127))).fault);
        let zero = [track(Tracked::File("f".into()), 0, false)];
        assert!(evaluate(&zero, |_| Some(Status::Value(1))).fault);
        assert!(!evaluate(&zero, |_| Some(Status::Value(0))).fault);
    }
}
