//! A site's de-identification profile: its configuration, and every row of Table E.1-1 resolved
//! once into the action pseal takes under the selected options.

use serde::{Deserialize, Serialize};

use super::generated::cid7050::CID7050;
use super::iod::Type;
use super::options::{DeidOption, Options};
use super::private::SafePrivateIndex;
use super::table::{rows, Cell, Code, Row, RowIndex};

/// The de-identification part of a site configuration.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq, Eq)]
#[serde(default)]
pub struct DeidConfig {
    /// The options applied on top of the Basic Profile; pseal's default profile
    /// ([`Options::default_profile`]) when absent.
    pub options: Options,
    /// SOP Class UIDs that the site has checked and allows despite the burned-in rules: files of
    /// these classes are exported instead of quarantined (a DICOMDIR never is).
    pub allow_burned_in: Vec<String>,
}

/// What the Basic Profile does to an attribute. A combined code stays a [`Choice`] until the walk
/// knows the attribute's Type in the instance's IOD (see [`Choice::resolve`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Basic {
    /// X.
    Remove,
    /// Z.
    Empty,
    /// D.
    Dummy,
    /// U.
    Uid,
    /// U* of X/Z/U*: the sequence is kept and its items cleaned (their UIDs are U rows).
    RecurseReplacingUids,
    /// One of the combined codes, decided per instance.
    Choice(Choice),
}

impl Basic {
    fn of(code: Code) -> Basic {
        match code {
            Code::X | Code::C | Code::K => Basic::Remove,
            Code::Z => Basic::Empty,
            Code::D => Basic::Dummy,
            Code::U => Basic::Uid,
            Code::ZD => Basic::Choice(Choice::ZD),
            Code::XZ => Basic::Choice(Choice::XZ),
            Code::XD => Basic::Choice(Choice::XD),
            Code::XZD => Basic::Choice(Choice::XZD),
            Code::XZUStar => Basic::Choice(Choice::XZUStar),
        }
    }
}

/// A combined action code of Table E.1-1: "X (or Z) unless Z or D is required to maintain IOD
/// conformance".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::upper_case_acronyms)] // the standard's own codes, letter for letter
pub(crate) enum Choice {
    /// Z/D.
    ZD,
    /// X/Z.
    XZ,
    /// X/D.
    XD,
    /// X/Z/D.
    XZD,
    /// X/Z/U*.
    XZUStar,
}

impl Choice {
    /// The action for an attribute of Type `ty` at its place in the instance's IOD, or, with
    /// `None` (a SOP Class the IOD tables do not hold), the alternative that conforms whatever
    /// the Type: D when D is among the alternatives, Z for X/Z, U* for X/Z/U*.
    ///
    /// With a Type, the least that conforms: Type 3 (or absent from the IOD there) removes
    /// (Z/D, which has no X, empties), Type 2 or 2C empties, Type 1 or 1C writes a dummy (X/Z/U*
    /// keeps the sequence with its references replaced). X/Z on a Type 1 attribute and X/D on a
    /// Type 2 one fall outside the code's alternatives; pseal then writes what the IOD requires
    /// (a dummy, an empty value), which carries no more than the code's own alternatives.
    pub(crate) fn resolve(self, ty: Option<Type>) -> Basic {
        let Some(ty) = ty else {
            return match self {
                Choice::ZD | Choice::XD | Choice::XZD => Basic::Dummy,
                Choice::XZ => Basic::Empty,
                Choice::XZUStar => Basic::RecurseReplacingUids,
            };
        };
        match (self, ty) {
            (Choice::XZUStar, t) if t.needs_value() => Basic::RecurseReplacingUids,
            (_, t) if t.needs_value() => Basic::Dummy,
            (_, t) if t.needs_presence() => Basic::Empty,
            (Choice::ZD, _) => Basic::Empty,
            _ => Basic::Remove,
        }
    }
}

/// The action pseal takes on an attribute of a table row under the selected options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The Basic Profile action.
    Basic(Basic),
    /// Keep (sequences: keep and clean the items).
    Keep,
    /// Clean: sequences are kept and their items cleaned; descriptions are kept when they pass
    /// the vocabulary rule; otherwise the Basic Profile action applies.
    Clean(Basic),
    /// Retain Longitudinal Temporal Information with Modified Dates: a DA, DT or TM value is
    /// captured for the steward, then the Basic Profile action applies.
    Capture(Basic),
}

/// A resolved profile: the configuration plus per-row decisions and lookup indices.
#[derive(Clone, Debug)]
pub struct Profile {
    options: Options,
    allow_burned_in: Vec<String>,
    decisions: Vec<Decision>,
    pub(crate) rows: RowIndex,
    pub(crate) safe_private: SafePrivateIndex,
}

impl Profile {
    /// Resolve a configuration.
    ///
    /// Options built with `FromIterator` may hold both date options, which parsing and
    /// deserialization refuse; Modified Dates then wins and Full Dates is dropped, the more
    /// protective choice.
    pub fn new(config: &DeidConfig) -> Profile {
        let mut options = config.options;
        if options.contains(DeidOption::RetainLongModifiedDates) {
            options = options
                .iter()
                .filter(|&o| o != DeidOption::RetainLongFullDates)
                .collect();
        }
        let decisions = rows().iter().map(|r| resolve(r, &options)).collect();
        Profile {
            options,
            allow_burned_in: config.allow_burned_in.iter().map(|s| s.trim().to_string()).collect(),
            decisions,
            rows: RowIndex::new(),
            safe_private: SafePrivateIndex::new(),
        }
    }

    /// The options in force.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The SOP classes allowed despite the burned-in rules.
    pub fn allow_burned_in(&self) -> &[String] {
        &self.allow_burned_in
    }

    /// The values of De-identification Method (0012,0063), each at most 64 characters (LO):
    /// the profile with pseal's version, then the CID 7050 meaning of each option applied.
    pub fn method_description_values(&self) -> Vec<String> {
        let mut values = vec![format!(
            "Basic Application Confidentiality Profile (pseal {})",
            env!("CARGO_PKG_VERSION")
        )];
        values.extend(self.options.iter().map(|o| o.code_meaning().to_string()));
        values
    }

    /// De-identification Method (0012,0063) as one string, its values separated by `\` as DICOM
    /// writes a multi-valued LO.
    pub fn method_description(&self) -> String {
        self.method_description_values().join("\\")
    }

    /// `(code value, code meaning)` of CID 7050 (coding scheme DCM) for
    /// De-identification Method Code Sequence (0012,0064): 113100 Basic Application
    /// Confidentiality Profile, then one code per option applied, in table order.
    pub fn cid7050_codes(&self) -> Vec<(&'static str, &'static str)> {
        let find = |meaning: &str| CID7050.iter().copied().find(|&(_, m)| m == meaning);
        let mut codes: Vec<(&'static str, &'static str)> =
            find("Basic Application Confidentiality Profile").into_iter().collect();
        codes.extend(self.options.iter().filter_map(|o| find(o.code_meaning())));
        codes
    }

    /// The decision for a row.
    pub(crate) fn decision(&self, row: usize) -> Decision {
        self.decisions
            .get(row)
            .copied()
            .unwrap_or(Decision::Basic(Basic::Remove))
    }
}

/// Resolve one row. Precedence when several selected options have a cell on the row: the
/// Modified Dates capture first, then any C (clean), then any K (keep); cleaning is never less
/// protective than keeping, and no real date leaves with Modified Dates on.
fn resolve(row: &Row, options: &Options) -> Decision {
    let basic = Basic::of(row.basic);
    let cell = |o: DeidOption| {
        if options.contains(o) {
            row.options.get(o.column()).copied().unwrap_or(Cell::E)
        } else {
            Cell::E
        }
    };
    if cell(DeidOption::RetainLongModifiedDates) == Cell::C {
        return Decision::Capture(basic);
    }
    let cells: Vec<Cell> = DeidOption::ALL.into_iter().map(cell).collect();
    if cells.contains(&Cell::C) {
        return Decision::Clean(basic);
    }
    if cells.contains(&Cell::K) {
        return Decision::Keep;
    }
    match row.basic {
        Code::K => Decision::Keep,
        Code::C => Decision::Clean(Basic::Remove),
        _ => Decision::Basic(basic),
    }
}
