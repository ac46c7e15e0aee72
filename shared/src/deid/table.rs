//! The shape of PS3.15 Table E.1-1 as data, and how an attribute tag finds its row.
//!
//! The rows themselves are generated from `shared/data/ps3.15-table-e1-1.csv` into
//! [`super::generated::table_e1_1`]; this file only declares the types they are written in
//! and the lookup.

use super::generated::table_e1_1::TABLE_E1_1;

/// Which tags a row of Table E.1-1 covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TagPattern {
    /// Exactly one tag, `group << 16 | element`.
    Exact(u32),
    /// A repeating-group row: a tag `t` matches when `t & mask == value` and its group is even.
    /// `(50xx,xxxx)` is `value 0x5000_0000, mask 0xFF00_0000`; `(60xx,3000)` is
    /// `value 0x6000_3000, mask 0xFF00_FFFF`.
    Masked {
        /// Bits that must be set after masking.
        value: u32,
        /// Bits that take part in the comparison.
        mask: u32,
    },
    /// The `(gggg,eeee)` row: every element of an odd (private) group.
    Private,
}

impl TagPattern {
    /// Whether `tag` (`group << 16 | element`) is covered by this pattern.
    pub(crate) fn matches(self, tag: u32) -> bool {
        let odd_group = (tag >> 16) & 1 == 1;
        match self {
            TagPattern::Exact(t) => t == tag,
            TagPattern::Masked { value, mask } => !odd_group && tag & mask == value,
            TagPattern::Private => odd_group,
        }
    }
}

/// An action code of Table E.1-1a, as it appears in the Basic Profile column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(clippy::upper_case_acronyms)] // the standard's own codes, letter for letter
pub(crate) enum Code {
    /// Replace with a non-zero length dummy value consistent with the VR.
    D,
    /// Replace with a zero-length value.
    Z,
    /// Remove the attribute (and a sequence with all its items).
    X,
    /// Keep (sequences are kept and their items cleaned). Defined by Table E.1-1a; no Basic
    /// Profile cell of the 2026c table uses it.
    #[allow(dead_code)]
    K,
    /// Clean: replace with values of similar meaning known not to identify. Defined by Table
    /// E.1-1a; no Basic Profile cell of the 2026c table uses it.
    #[allow(dead_code)]
    C,
    /// Replace with a UID that is consistent within the set of instances.
    U,
    /// Z unless D is required for IOD conformance.
    ZD,
    /// X unless Z is required.
    XZ,
    /// X unless D is required.
    XD,
    /// X unless Z or D is required.
    XZD,
    /// X unless Z, or replacing the contained instance UIDs, is required.
    XZUStar,
}

impl Code {
    /// The code as the standard writes it (`"X/Z/U*"`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Code::D => "D",
            Code::Z => "Z",
            Code::X => "X",
            Code::K => "K",
            Code::C => "C",
            Code::U => "U",
            Code::ZD => "Z/D",
            Code::XZ => "X/Z",
            Code::XD => "X/D",
            Code::XZD => "X/Z/D",
            Code::XZUStar => "X/Z/U*",
        }
    }
}

/// An option column cell: empty (the option does not change the Basic Profile action), `K` or
/// `C`. These are the only values the option columns of the 2026c table hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cell {
    /// The option does not change this attribute.
    E,
    /// The option keeps this attribute.
    K,
    /// The option cleans this attribute.
    C,
}

/// One row of Table E.1-1.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Row {
    /// The tag or tag pattern of the row.
    pub(crate) tag: TagPattern,
    /// The attribute name as the standard writes it.
    pub(crate) name: &'static str,
    /// Whether PS3.6 lists the attribute as retired.
    pub(crate) retired: bool,
    /// The Basic Profile action.
    pub(crate) basic: Code,
    /// The option columns, in the order of [`super::DeidOption::ALL`].
    pub(crate) options: [Cell; 10],
}

/// All rows of the table, in the order of the CSV (sorted by tag, masks as if `x` were 0, the
/// private row last).
pub(crate) fn rows() -> &'static [Row] {
    &TABLE_E1_1
}

/// Index from tag to row, built once per [`super::Profile`].
#[derive(Clone, Debug)]
pub(crate) struct RowIndex {
    /// `(tag, row index)` of every exact row, sorted by tag.
    exact: Vec<(u32, usize)>,
    /// Row indices of the masked rows.
    masked: Vec<usize>,
}

impl RowIndex {
    /// Build the index over [`rows`].
    pub(crate) fn new() -> RowIndex {
        let mut exact = Vec::new();
        let mut masked = Vec::new();
        for (i, row) in rows().iter().enumerate() {
            match row.tag {
                TagPattern::Exact(t) => exact.push((t, i)),
                TagPattern::Masked { .. } => masked.push(i),
                // Private attributes are decided by the private rule.
                TagPattern::Private => {}
            }
        }
        exact.sort_unstable();
        RowIndex { exact, masked }
    }

    /// The row covering a standard (even-group) tag, if any. Exact rows win over masks.
    pub(crate) fn standard(&self, tag: u32) -> Option<usize> {
        if let Ok(pos) = self.exact.binary_search_by_key(&tag, |&(t, _)| t) {
            return self.exact.get(pos).map(|&(_, i)| i);
        }
        self.masked
            .iter()
            .copied()
            .find(|&i| rows().get(i).is_some_and(|r| r.tag.matches(tag)))
    }
}

/// The tag column of a row as the standard writes it: `(0008,0018)`, `(50xx,xxxx)`,
/// `(gggg,eeee)`.
pub(crate) fn pattern_string(pattern: TagPattern) -> String {
    match pattern {
        TagPattern::Exact(t) => tag_string(t),
        TagPattern::Masked { value, mask } => {
            let mut s = String::from("(");
            for i in (0..8).rev() {
                let nibble = (value >> (i * 4)) & 0xF;
                if (mask >> (i * 4)) & 0xF == 0 {
                    s.push('x');
                } else {
                    s.push(char::from_digit(nibble, 16).unwrap_or('?').to_ascii_uppercase());
                }
                if i == 4 {
                    s.push(',');
                }
            }
            s.push(')');
            s
        }
        TagPattern::Private => "(gggg,eeee)".to_string(),
    }
}

/// Format a tag as `(GGGG,EEEE)`.
pub(crate) fn tag_string(tag: u32) -> String {
    format!("({:04X},{:04X})", tag >> 16, tag & 0xFFFF)
}
