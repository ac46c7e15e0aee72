//! Cross-site linkage, steward side: one pseudonym for a patient seen at two hospitals, with no
//! names or birth dates kept.
//!
//! At import, a bundle from a site with linkage on carries the patient's family name, given
//! names, birth name, birth date and sex in its sealed identity record. The first time a (site,
//! local ID) brings them, [`normalise`] evens out spelling, [`encode`] turns each field into a
//! keyed encoding (Bloom filters of bigrams for names, salted by birth year; tokens for date
//! parts) and blocking tokens, and the clear values are dropped. The new record is compared
//! ([`score`]) with the records of the *other* sites of the same domain that share a blocking
//! token, and [`decide`] turns the scores into a decision under the steward's [`Policy`]:
//! link at once (`--auto-link`, a single clear match), queue for review, or nothing.
//!
//! Review and merge are [`merge`] (`pseal-central links …`); the store side is
//! `store::links`; what releases must say about merges is [`changes`]. The method, the threats
//! and the measured error rates are in `docs/linkage.md`.

pub mod changes;
pub mod encode;
pub mod merge;
pub mod normalise;
pub mod score;

pub use encode::{Clear, Encoded, LinkageKeys};
pub use score::{FieldScores, Probe, Weights};

/// The steward's linkage policy for an import run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// At or above: a match (linked automatically with `auto_link`, else queued).
    pub upper: f64,
    /// At or above (and below `upper`): a possible match, queued for review.
    pub lower: f64,
    /// Link matches at or above `upper` without review (`import --auto-link`).
    pub auto_link: bool,
    /// A match is linked automatically only when every other candidate scores at least this
    /// much below it (and below `upper`); a closer runner-up (a twin, a namesake) sends both to
    /// review. `None`: any other candidate at or above `lower` does.
    pub margin: Option<f64>,
    /// At most this many possible matches are queued for one new patient (the best ones).
    pub max_queued: usize,
}

/// Default upper threshold (measured: `docs/linkage.md`, "Measured error rates").
pub const DEFAULT_UPPER: f64 = 0.95;
/// Default lower threshold.
pub const DEFAULT_LOWER: f64 = 0.75;
/// Default margin between an automatic link and the runner-up.
pub const DEFAULT_MARGIN: f64 = 0.1;

impl Default for Policy {
    fn default() -> Self {
        Policy {
            upper: DEFAULT_UPPER,
            lower: DEFAULT_LOWER,
            auto_link: false,
            margin: Some(DEFAULT_MARGIN),
            max_queued: 5,
        }
    }
}

impl Policy {
    /// Checks `0 < lower <= upper <= 1` and `0 <= margin <= 1`.
    pub fn validate(&self) -> Result<(), BadThresholds> {
        let margin_ok = self.margin.is_none_or(|m| (0.0..=1.0).contains(&m));
        if !(self.lower > 0.0 && self.lower <= self.upper && self.upper <= 1.0 && margin_ok) {
            return Err(BadThresholds {
                lower: self.lower,
                upper: self.upper,
                margin: self.margin,
            });
        }
        Ok(())
    }
}

/// Linkage thresholds [`Policy::validate`] refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "linkage thresholds must satisfy 0 < lower ({lower}) <= upper ({upper}) <= 1 and 0 <= margin ({margin:?}) <= 1"
)]
pub struct BadThresholds {
    /// The lower threshold given.
    pub lower: f64,
    /// The upper threshold given.
    pub upper: f64,
    /// The margin given.
    pub margin: Option<f64>,
}

/// A stored patient scored against a new one.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The stored patient's row.
    pub patient: i64,
    /// The row whose pseudonym the stored patient's studies are under (itself unless merged).
    pub cluster: i64,
    /// The scores.
    pub scores: FieldScores,
}

/// What to do with a new patient.
#[derive(Debug, Clone)]
pub enum Decision {
    /// No stored patient is a possible match: the new pseudonym stands.
    Unmatched,
    /// One clear match, and the policy links clear matches: use its pseudonym from now on.
    AutoLink(Candidate),
    /// Possible matches for the steward to review, best first.
    Queue(Vec<Candidate>),
}

/// Decides from the scored candidates (any order, any number per cluster). A match is linked
/// automatically only when the policy allows it, it is the only cluster at or above `upper`,
/// and every other cluster scores at least `margin` below it (with no margin: no other cluster
/// reaches `lower`); anything less clear goes to review. The runners-up of an automatic link
/// are not queued: they scored clearly below a match the policy trusts.
pub fn decide(candidates: Vec<Candidate>, policy: &Policy) -> Decision {
    let mut best: Vec<Candidate> = Vec::new();
    for c in candidates {
        match best.iter_mut().find(|b| b.cluster == c.cluster) {
            Some(b) if b.scores.total >= c.scores.total => {}
            Some(b) => *b = c,
            None => best.push(c),
        }
    }
    best.retain(|c| c.scores.total >= policy.lower);
    best.sort_by(|a, b| {
        b.scores
            .total
            .total_cmp(&a.scores.total)
            .then(a.patient.cmp(&b.patient))
    });
    if best.is_empty() {
        return Decision::Unmatched;
    }
    let top = best[0].scores.total;
    let clear = match (best.get(1), policy.margin) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(second), Some(margin)) => second.scores.total < policy.upper && second.scores.total <= top - margin,
    };
    if policy.auto_link && top >= policy.upper && clear {
        return Decision::AutoLink(best.remove(0));
    }
    best.truncate(policy.max_queued.max(1));
    Decision::Queue(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(patient: i64, cluster: i64, total: f64) -> Candidate {
        Candidate {
            patient,
            cluster,
            scores: FieldScores {
                total,
                ..FieldScores::default()
            },
        }
    }

    #[test]
    fn only_a_single_clear_match_is_linked_automatically() {
        let auto = Policy {
            auto_link: true,
            ..Policy::default()
        };
        assert!(matches!(decide(vec![c(1, 1, 0.99), c(2, 2, 0.2)], &auto), Decision::AutoLink(x) if x.patient == 1));
        assert!(matches!(decide(vec![c(1, 1, 0.99)], &Policy::default()), Decision::Queue(v) if v.len() == 1));
        // A runner-up within the margin makes it ambiguous; one clearly below does not.
        assert!(matches!(decide(vec![c(1, 1, 0.99), c(2, 2, 0.92)], &auto), Decision::Queue(v) if v.len() == 2));
        assert!(matches!(decide(vec![c(1, 1, 0.99), c(2, 2, 0.8)], &auto), Decision::AutoLink(x) if x.patient == 1));
        // Two matches are always ambiguous, however far apart.
        let wide = Policy {
            margin: Some(0.01),
            ..auto
        };
        assert!(matches!(decide(vec![c(1, 1, 1.0), c(2, 2, 0.96)], &wide), Decision::Queue(v) if v.len() == 2));
        // Without a margin any other possible match does.
        let strict = Policy { margin: None, ..auto };
        assert!(matches!(decide(vec![c(1, 1, 0.99), c(2, 2, 0.8)], &strict), Decision::Queue(v) if v.len() == 2));
        // Two rows of one merged patient are one candidate.
        assert!(matches!(decide(vec![c(1, 1, 0.99), c(3, 1, 0.97)], &auto), Decision::AutoLink(x) if x.patient == 1));
        assert!(matches!(decide(vec![c(1, 1, 0.5)], &auto), Decision::Unmatched));
        assert!(matches!(decide(vec![c(1, 1, 0.8)], &auto), Decision::Queue(_)));
    }

    #[test]
    fn thresholds_are_checked() {
        assert!(Policy::default().validate().is_ok());
        let bad = Policy {
            lower: 0.9,
            upper: 0.8,
            ..Policy::default()
        };
        assert!(bad.validate().is_err());
        let bad = Policy {
            margin: Some(-0.1),
            ..Policy::default()
        };
        assert!(bad.validate().is_err());
    }
}
