//! Comparing a new record (clear, in memory during its import) with a stored one (encoded): a
//! score per field and their weighted total.
//!
//! - Names: the Dice coefficient of the two Bloom filters under the stored record's salt (the
//!   new record is encoded again under it when the birth years differ). Family name takes the
//!   best of family and birth name on either side (a name changed at marriage); given names the
//!   best of all given names and the first one (a second given name missing at one site); and
//!   when family and given names agree better crosswise, the crosswise pair counts (a site that
//!   writes the names in the other order).
//! - Birth date, per part: 1 when equal, [`ONE_EDIT`] ([`ONE_EDIT_YEAR`] for the year) for one
//!   changed or transposed digit, 0 otherwise; day and month swapped count [`SWAPPED`] each.
//! - Sex: 1 or 0.
//!
//! The total is the weighted mean over the fields both records have, names counting by their
//! Dice coefficient above [`DICE_FLOOR`] (the EpiLink form of
//! Contiero et al. 2005, which Mainzelliste uses): each field's weight is `log2((1 − e) / f)`
//! for its error rate `e` and the chance `f` that two different people agree on it by chance
//! ([`Weights::DEFAULT`]; `docs/linkage.md` gives the values and where they come from).

use super::encode::{Clear, Encoded, LinkageKeys, NameFilter, NameFilters};
use serde::{Deserialize, Serialize};

/// Credit for the birth year one digit edit away (about one year in five is, by chance).
pub const ONE_EDIT_YEAR: f64 = 0.5;
/// Credit for day or month one digit edit away (for a day, two in five are, by chance).
pub const ONE_EDIT: f64 = 0.3;
/// Dice coefficients at or below this count as no agreement on a name: two different names of
/// similar length share some bigrams by chance (`Huber` and `Gruber` 0.5); above it the
/// agreement rises linearly to 1.
pub const DICE_FLOOR: f64 = 0.4;
/// Credit for day and month each when they are swapped.
pub const SWAPPED: f64 = 0.9;

/// The per-field scores of one pair (absent where either record lacks the field). Holds no
/// value of either record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FieldScores {
    /// Family name (with birth names considered).
    pub family: Option<f64>,
    /// Given names.
    pub given: Option<f64>,
    /// Day of birth.
    pub day: Option<f64>,
    /// Month of birth.
    pub month: Option<f64>,
    /// Year of birth.
    pub year: Option<f64>,
    /// Sex.
    pub sex: Option<f64>,
    /// The names agreed crosswise (family at one site is given at the other).
    #[serde(default)]
    pub names_swapped: bool,
    /// A birth name on one side matched the other's family or birth name better than the
    /// family names did.
    #[serde(default)]
    pub birth_name_used: bool,
    /// The weighted total in [0, 1].
    pub total: f64,
}

/// Field weights of the total.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// Family name.
    pub family: f64,
    /// Given names.
    pub given: f64,
    /// Day of birth.
    pub day: f64,
    /// Month of birth.
    pub month: f64,
    /// Year of birth.
    pub year: f64,
    /// Sex.
    pub sex: f64,
}

/// `log2((1 − e) / f)`.
fn weight(error: f64, frequency: f64) -> f64 {
    ((1.0 - error) / frequency).log2()
}

impl Weights {
    /// The weights pseal uses, from assumed error rates and chance agreements (see
    /// `docs/linkage.md`, "Scores"): family name e 0.05 f 1/2,000; given names e 0.05 f 1/200;
    /// day e 0.02 f 1/30; month e 0.02 f 1/12; year e 0.02 f 1/60; sex e 0.01 f 1/2.
    pub fn default_weights() -> Weights {
        Weights {
            family: weight(0.05, 1.0 / 2000.0),
            given: weight(0.05, 1.0 / 200.0),
            day: weight(0.02, 1.0 / 30.0),
            month: weight(0.02, 1.0 / 12.0),
            year: weight(0.02, 1.0 / 60.0),
            sex: weight(0.01, 0.5),
        }
    }

    /// The weighted mean of the fields present in `s`.
    pub fn total(&self, s: &FieldScores) -> f64 {
        let name = |d: Option<f64>| d.map(|d| ((d - DICE_FLOOR) / (1.0 - DICE_FLOOR)).clamp(0.0, 1.0));
        let fields = [
            (name(s.family), self.family),
            (name(s.given), self.given),
            (s.day, self.day),
            (s.month, self.month),
            (s.year, self.year),
            (s.sex, self.sex),
        ];
        let (mut sum, mut weights) = (0.0, 0.0);
        for (score, w) in fields {
            if let Some(v) = score {
                sum += v * w;
                weights += w;
            }
        }
        if weights == 0.0 {
            0.0
        } else {
            sum / weights
        }
    }
}

/// True when `a` and `b` (equal length) differ in one position or by one adjacent transposition.
fn one_edit(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() || a == b {
        return false;
    }
    let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    match diff.as_slice() {
        [_] => true,
        [i, j] => *j == i + 1 && a[*i] == b[*j] && a[*j] == b[*i],
        _ => false,
    }
}

fn part(a: u16, b: u16, width: usize, credit: f64) -> f64 {
    if a == b {
        return 1.0;
    }
    let (x, y) = (format!("{a:0width$}"), format!("{b:0width$}"));
    if one_edit(x.as_bytes(), y.as_bytes()) {
        credit
    } else {
        0.0
    }
}

fn dice(a: &Option<NameFilter>, b: &Option<NameFilter>) -> Option<f64> {
    Some(a.as_ref()?.dice(b.as_ref()?))
}

fn best(values: &[Option<f64>]) -> Option<f64> {
    values.iter().flatten().copied().reduce(f64::max)
}

/// A new record being matched: its clear fields and its name filters per salt, computed once.
pub struct Probe<'k> {
    keys: &'k LinkageKeys,
    clear: Clear,
    filters: std::collections::HashMap<Option<u16>, NameFilters>,
}

impl<'k> Probe<'k> {
    /// A probe of `clear` under `keys`.
    pub fn new(keys: &'k LinkageKeys, clear: Clear) -> Probe<'k> {
        Probe {
            keys,
            clear,
            filters: Default::default(),
        }
    }

    /// The clear fields.
    pub fn clear(&self) -> &Clear {
        &self.clear
    }

    fn filters(&mut self, salt: Option<u16>) -> &NameFilters {
        let (keys, clear) = (self.keys, &self.clear);
        self.filters
            .entry(salt)
            .or_insert_with(|| keys.name_filters(clear, salt))
    }

    /// Scores the stored record `other` against this one.
    pub fn score(&mut self, other: &Encoded, weights: &Weights) -> FieldScores {
        let mut s = FieldScores::default();
        let their_date = other.date.as_ref().and_then(|t| self.keys.decode_date(t));
        if let (Some((y1, m1, d1)), Some((y2, m2, d2))) = (self.clear.date, their_date) {
            s.year = Some(part(y1, y2, 4, ONE_EDIT_YEAR));
            if m1 != m2 && d1 != d2 && m1 == d2 && d1 == m2 {
                s.month = Some(SWAPPED);
                s.day = Some(SWAPPED);
            } else {
                s.month = Some(part(u16::from(m1), u16::from(m2), 2, ONE_EDIT));
                s.day = Some(part(u16::from(d1), u16::from(d2), 2, ONE_EDIT));
            }
        }
        // The stored names are salted by the stored birth year; ours are encoded under it.
        let salt = their_date.map(|(y, _, _)| y);
        let theirs = &other.names;
        let ours = self.filters(salt).clone();
        let family_direct = dice(&ours.family, &theirs.family);
        let family_any = best(&[
            family_direct,
            dice(&ours.birth, &theirs.family),
            dice(&ours.family, &theirs.birth),
            dice(&ours.birth, &theirs.birth),
        ]);
        let given = best(&[
            dice(&ours.given, &theirs.given),
            dice(&ours.given_first, &theirs.given_first),
        ]);
        let cross_family = best(&[
            dice(&ours.family, &theirs.given),
            dice(&ours.family, &theirs.given_first),
        ]);
        let cross_given = best(&[
            dice(&ours.given, &theirs.family),
            dice(&ours.given_first, &theirs.family),
        ]);
        let straight = family_any.unwrap_or(0.0) + given.unwrap_or(0.0);
        let crosswise = cross_family.unwrap_or(0.0) + cross_given.unwrap_or(0.0);
        if crosswise > straight + 0.2 {
            s.family = cross_family;
            s.given = cross_given;
            s.names_swapped = true;
        } else {
            s.family = family_any;
            s.given = given;
            s.birth_name_used = family_any.unwrap_or(0.0) > family_direct.unwrap_or(0.0) + 1e-9;
        }
        if let (Some(a), Some(b)) = (self.clear.sex, other.sex) {
            s.sex = Some(if a == b { 1.0 } else { 0.0 });
        }
        s.total = weights.total(&s);
        s
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pseal::linkage::LinkageRecord;

    fn record(family: &str, given: &str, birth: &str, date: &str, sex: &str) -> LinkageRecord {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        LinkageRecord {
            family_name: opt(family),
            given_names: opt(given),
            birth_name: opt(birth),
            birth_date: opt(date),
            sex: opt(sex),
            conflicts: Default::default(),
        }
    }

    fn total(a: LinkageRecord, b: LinkageRecord) -> FieldScores {
        let keys = LinkageKeys::derive(&[3; 32]);
        let stored = keys.encode(&Clear::from_record(&b));
        Probe::new(&keys, Clear::from_record(&a)).score(&stored, &Weights::default_weights())
    }

    #[test]
    fn one_edit_is_one_substitution_or_transposition() {
        assert!(one_edit(b"1967", b"1976"));
        assert!(one_edit(b"1967", b"1968"));
        assert!(!one_edit(b"1967", b"1986"));
        assert!(!one_edit(b"12", b"12"));
        assert!(one_edit(b"12", b"21"));
    }

    #[test]
    fn registry_errors_keep_a_high_score() {
        let base = record("Müller", "Anna Maria", "", "19650312", "F");
        assert_eq!(total(base.clone(), base.clone()).total, 1.0);
        let umlaut = total(record("Mueller", "Anna Maria", "", "19650312", "F"), base.clone());
        assert_eq!(umlaut.total, 1.0);
        let swapped = total(record("Anna Maria", "Müller", "", "19650312", "F"), base.clone());
        assert!(swapped.names_swapped && swapped.total > 0.99, "{swapped:?}");
        let day_month = total(record("Müller", "Anna Maria", "", "19651203", "F"), base.clone());
        assert_eq!(day_month.day, Some(SWAPPED));
        let married = total(record("Schmid", "Anna Maria", "Müller", "19650312", "F"), base.clone());
        assert!(married.birth_name_used && married.total == 1.0, "{married:?}");
        let first_only = total(record("Müller", "Anna", "", "19650312", "F"), base.clone());
        assert_eq!(first_only.given, Some(1.0));
        let year = total(record("Müller", "Anna Maria", "", "19560312", "F"), base.clone());
        assert_eq!(year.year, Some(ONE_EDIT_YEAR));
        assert!(year.family.unwrap() == 1.0, "names compare under the other year's salt");
    }

    #[test]
    fn different_people_score_low() {
        let base = record("Müller", "Anna Maria", "", "19650312", "F");
        let twin = total(record("Müller", "Sophie", "", "19650312", "F"), base.clone());
        assert!(twin.total < 0.9, "{twin:?}");
        let stranger = total(record("Huber", "Josef", "", "19480923", "M"), base);
        assert!(stranger.total < 0.2, "{stranger:?}");
    }
}
