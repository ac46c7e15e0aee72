//! Counts of what de-identification did to each attribute, for the data-protection officer's
//! review report: per tag and action taken, mergeable across files.

use std::collections::BTreeMap;
use std::fmt;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::Tag;
use dicom_dictionary_std::StandardDataDictionary;
use serde::{Deserialize, Serialize};

use super::table::{rows, tag_string, RowIndex};

/// What was actually done to one occurrence of an attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum TakenAction {
    /// Removed (X), with any sequence items.
    Removed,
    /// Replaced by a zero-length value, or a sequence by one without items (Z).
    Emptied,
    /// Replaced by a dummy value (D); a sequence keeps its items, with every value in them
    /// replaced or removed by the rules and no text kept as it is (UIDs replaced as everywhere).
    Dummy,
    /// Replaced by a placeholder UID (U); the original went into the captured record.
    UidReplaced,
    /// Kept unchanged (K); a sequence kept has its items cleaned by the same rules.
    Kept,
    /// Cleaned (C): a description that passed the vocabulary rule, or a sequence whose items
    /// were cleaned.
    Cleaned,
    /// The original value went into the captured record for the steward (counted in addition
    /// to what happened to it in the output).
    CapturedForSteward,
    /// A private attribute removed.
    PrivateRemoved,
    /// A private attribute kept (safe private list), or the private creator of one.
    PrivateKept,
    /// A standard attribute outside Table E.1-1 kept by pseal's rule for such attributes.
    OutsideTableKept,
    /// An attribute outside Table E.1-1 removed by pseal's rule for such attributes.
    OutsideTableRemoved,
    /// An attribute outside Table E.1-1 that the rule would remove, emptied because the
    /// instance's IOD makes it Type 2 (or 2C) at its place.
    OutsideTableEmptied,
    /// An attribute outside Table E.1-1 that the rule would remove, replaced by a dummy because
    /// the instance's IOD makes it Type 1 (or 1C) at its place.
    OutsideTableDummy,
    /// An equipment or concept name kept by the rule for attributes outside the table
    /// (`RETAINED_TEXT`) whose value did not pass the descriptor rule: replaced by a dummy.
    RetainedTextReplaced,
    /// Inserted or overwritten by pseal (conformance markers).
    Inserted,
}

impl TakenAction {
    /// The kebab-case name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            TakenAction::Removed => "removed",
            TakenAction::Emptied => "emptied",
            TakenAction::Dummy => "dummy",
            TakenAction::UidReplaced => "uid-replaced",
            TakenAction::Kept => "kept",
            TakenAction::Cleaned => "cleaned",
            TakenAction::CapturedForSteward => "captured-for-steward",
            TakenAction::PrivateRemoved => "private-removed",
            TakenAction::PrivateKept => "private-kept",
            TakenAction::OutsideTableKept => "outside-table-kept",
            TakenAction::OutsideTableRemoved => "outside-table-removed",
            TakenAction::OutsideTableEmptied => "outside-table-emptied",
            TakenAction::OutsideTableDummy => "outside-table-dummy",
            TakenAction::RetainedTextReplaced => "retained-text-replaced",
            TakenAction::Inserted => "inserted",
        }
    }
}

impl fmt::Display for TakenAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How many times each action was taken on each attribute (tag), at any depth. Private
/// attributes are counted under their own tag. Merge the counts of many files with
/// [`ActionCounts::merge`]; serialized as a list of [`ActionCount`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "Vec<ActionCount>", from = "Vec<ActionCount>")]
pub struct ActionCounts {
    counts: BTreeMap<(u32, TakenAction), u64>,
}

/// One line of [`ActionCounts`], with the attribute's name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionCount {
    /// The tag, `group << 16 | element`.
    pub tag: u32,
    /// The tag as `(GGGG,EEEE)`.
    pub tag_string: String,
    /// The attribute's name: from Table E.1-1, else the standard dictionary's keyword, else
    /// `Private attribute`, `Private creator` or `Unknown attribute`.
    pub name: String,
    /// What was done.
    pub action: TakenAction,
    /// How many times.
    pub count: u64,
}

impl ActionCounts {
    /// Count one action on one tag.
    pub(crate) fn add(&mut self, tag: u32, action: TakenAction) {
        *self.counts.entry((tag, action)).or_default() += 1;
    }

    /// Add another set of counts (from another file) to this one.
    pub fn merge(&mut self, other: &ActionCounts) {
        for (key, n) in &other.counts {
            *self.counts.entry(*key).or_default() += n;
        }
    }

    /// How many times `action` was taken on `tag`.
    pub fn get(&self, tag: u32, action: TakenAction) -> u64 {
        self.counts.get(&(tag, action)).copied().unwrap_or(0)
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Every `(tag, action, count)` in tag order, with the attribute name.
    pub fn iter(&self) -> impl Iterator<Item = ActionCount> + '_ {
        let index = RowIndex::new();
        self.counts.iter().map(move |(&(tag, action), &count)| ActionCount {
            tag,
            tag_string: tag_string(tag),
            name: attribute_name(&index, tag),
            action,
            count,
        })
    }
}

impl From<ActionCounts> for Vec<ActionCount> {
    fn from(counts: ActionCounts) -> Vec<ActionCount> {
        counts.iter().collect()
    }
}

impl From<Vec<ActionCount>> for ActionCounts {
    fn from(list: Vec<ActionCount>) -> ActionCounts {
        let mut counts = ActionCounts::default();
        for line in list {
            *counts.counts.entry((line.tag, line.action)).or_default() += line.count;
        }
        counts
    }
}

/// The name of an attribute for reports; never a value read from a file.
pub(crate) fn attribute_name(index: &RowIndex, tag: u32) -> String {
    let (group, element) = ((tag >> 16) as u16, (tag & 0xFFFF) as u16);
    if group % 2 == 1 {
        return if (0x0010..=0x00FF).contains(&element) {
            "Private creator".to_string()
        } else {
            "Private attribute".to_string()
        };
    }
    if let Some(row) = index.standard(tag).and_then(|i| rows().get(i)) {
        return row.name.to_string();
    }
    match StandardDataDictionary.by_tag(Tag(group, element)) {
        Some(entry) => entry.alias().to_string(),
        None => "Unknown attribute".to_string(),
    }
}
