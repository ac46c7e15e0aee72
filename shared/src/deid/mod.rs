//! De-identification of DICOM instances per PS3.15 Annex E: the Basic Application Level
//! Confidentiality Profile with every option of Table E.1-1, the rule for attributes outside
//! the table, burned-in quarantine, and what is captured for the steward.
//!
//! ```
//! use pseal::deid::{DeidConfig, Options, Profile};
//!
//! let config = DeidConfig { options: Options::parse_list("default")?, ..DeidConfig::default() };
//! let profile = Profile::new(&config);
//! assert_eq!(
//!     profile.options().names(),
//!     ["retain-patient-characteristics", "retain-long-modified-dates", "clean-descriptors"]
//! );
//! # Ok::<(), pseal::deid::OptionsError>(())
//! ```
//!
//! See `docs/deidentification.md` for the profile, the options, the rules and the conformance
//! statement.

mod captured;
mod conformance;
mod engine;
mod generated;
mod iod;
mod options;
mod outside;
mod private;
mod profile;
mod quarantine;
mod references;
mod report;
mod table;
mod uids;
mod values;
mod walk;

pub mod vocabulary;

pub use captured::{Captured, CapturedValue, UidPair};
pub use conformance::{implementation_version_name, longitudinal_temporal_information, IMPLEMENTATION_CLASS_UID};
pub use engine::{deidentify, DeidError, Deidentified, UidPlaceholderKey};
pub use options::{DeidOption, Options, OptionsError};
pub use outside::RETAINED_TEXT;
pub use profile::{DeidConfig, Profile};
pub use quarantine::{displayable_uid, QuarantineReason};
pub use report::{ActionCount, ActionCounts, TakenAction};
pub use values::{DUMMY_AS, DUMMY_DA, DUMMY_DT, DUMMY_PN, DUMMY_TEXT, DUMMY_TM, DUMMY_UR};

/// One row of PS3.15 Table E.1-1 as pseal implements it (edition 2026c), for reports and tests.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TableRowInfo {
    /// The tag as the standard writes it: `(0008,0018)`, `(50xx,xxxx)`, `(60xx,3000)`,
    /// `(60xx,4000)`, or `(gggg,eeee)` for the private attributes.
    pub tag: String,
    /// The single tag (`group << 16 | element`), `None` for the four pattern rows.
    pub tag_value: Option<u32>,
    /// The attribute name.
    pub name: &'static str,
    /// Whether PS3.6 lists it as retired.
    pub retired: bool,
    /// The Basic Profile action code (`X`, `Z/D`, `X/Z/U*`, ...).
    pub basic: &'static str,
    /// The non-empty option cells: the option and `K` or `C`.
    pub option_cells: Vec<(DeidOption, &'static str)>,
}

/// Every row of Table E.1-1 (656), in the order of the standard's CSV.
pub fn table_rows() -> Vec<TableRowInfo> {
    table::rows()
        .iter()
        .map(|r| TableRowInfo {
            tag: table::pattern_string(r.tag),
            tag_value: match r.tag {
                table::TagPattern::Exact(t) => Some(t),
                _ => None,
            },
            name: r.name,
            retired: r.retired,
            basic: r.basic.as_str(),
            option_cells: DeidOption::ALL
                .into_iter()
                .filter_map(|o| match r.options.get(o.column()) {
                    Some(table::Cell::K) => Some((o, "K")),
                    Some(table::Cell::C) => Some((o, "C")),
                    _ => None,
                })
                .collect(),
        })
        .collect()
}

/// One row of PS3.15 Table E.3.10-1 (safe private attributes): `(group, element byte, private
/// creator, VR, meaning)`; the element is `(group, bbEE)` in the block `bb` the creator reserved.
pub fn safe_private_attributes() -> Vec<(u16, u8, &'static str, &'static str, &'static str)> {
    generated::safe_private::SAFE_PRIVATE
        .iter()
        .map(|s| (s.group, s.element, s.creator, s.vr, s.meaning))
        .collect()
}

/// Whether `profile` keeps the Table E.1-1 attribute `tag` only when its value passes a check
/// (action C: a description made only of acquisition vocabulary), so that its removal, emptying
/// or dummy is the outcome of that check rather than of a fixed rule. For the review report.
pub(crate) fn decided_by_check(profile: &Profile, tag: u32) -> bool {
    profile
        .rows
        .standard(tag)
        .is_some_and(|row| matches!(profile.decision(row), profile::Decision::Clean(_)))
}

/// Whether `tag` is an attribute of Table E.1-1 (one the profile decides by its own row).
pub(crate) fn in_table(profile: &Profile, tag: u32) -> bool {
    profile.rows.standard(tag).is_some()
}
