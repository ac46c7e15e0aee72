//! The text values that leave the hospital: every text attribute of the de-identified files with
//! its distinct values and how many times each occurs, so a data-protection officer sees them
//! without opening files. Bounded: a few hundred distinct values per attribute are kept; the rest
//! are counted.

use dicom_core::header::Header;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::VR;
use dicom_object::InMemDicomObject;
use serde::Serialize;
use std::collections::BTreeMap;

/// De-identification Method Code Sequence (0012,0064), which pseal writes.
const DEIDENTIFICATION_METHOD_CODE_SEQUENCE: u32 = 0x0012_0064;

/// Distinct values kept per attribute; further values are only counted.
pub const MAX_DISTINCT: usize = 200;
/// Characters of a value shown; longer values are cut and marked with `…`.
pub const MAX_CHARS: usize = 300;

/// Values seen per attribute (`group << 16 | element`, at any depth).
#[derive(Debug, Default, Clone)]
pub struct ValueCounts {
    tags: BTreeMap<u32, TagValues>,
}

/// The values of one attribute.
#[derive(Debug, Default, Clone, Serialize)]
pub struct TagValues {
    /// Distinct values (as written, `\` between multiple values; `(empty)` for no value) and
    /// how many occurrences had each.
    pub values: BTreeMap<String, u64>,
    /// Occurrences whose value was not kept because [`MAX_DISTINCT`] values were already listed.
    pub more: u64,
}

/// The text VRs whose values the report lists. UIDs are left out (every file has its own
/// placeholder); numbers (DS, IS) are listed only for attributes of Table E.1-1, since the
/// geometry of an image (positions, spacings) is hundreds of distinct numbers that identify nobody.
fn listed(vr: VR, in_table: bool) -> bool {
    match vr {
        VR::AE
        | VR::AS
        | VR::CS
        | VR::DA
        | VR::DT
        | VR::LO
        | VR::LT
        | VR::PN
        | VR::SH
        | VR::ST
        | VR::TM
        | VR::UC
        | VR::UR
        | VR::UT => true,
        VR::DS | VR::IS => in_table,
        _ => false,
    }
}

impl ValueCounts {
    /// Records the values of every listed text attribute of a de-identified dataset, sequence
    /// items included. `in_table` says whether a tag is a Table E.1-1 attribute.
    pub fn add_dataset(&mut self, dataset: &InMemDicomObject, in_table: &dyn Fn(u32) -> bool) {
        for element in dataset.iter() {
            let tag = element.tag();
            let packed = u32::from(tag.group()) << 16 | u32::from(tag.element());
            match element.value() {
                // pseal's own De-identification Method Code Sequence: written, not kept.
                Value::Sequence(_) if packed == DEIDENTIFICATION_METHOD_CODE_SEQUENCE => {}
                Value::Sequence(seq) => {
                    for item in seq.items() {
                        self.add_dataset(item, in_table);
                    }
                }
                Value::Primitive(p) if listed(element.vr(), in_table(packed)) => {
                    self.add(packed, &text(p));
                }
                _ => {}
            }
        }
    }

    fn add(&mut self, tag: u32, value: &str) {
        let entry = self.tags.entry(tag).or_default();
        if let Some(n) = entry.values.get_mut(value) {
            *n += 1;
        } else if entry.values.len() < MAX_DISTINCT {
            entry.values.insert(value.to_string(), 1);
        } else {
            entry.more += 1;
        }
    }

    /// Adds the counts of another set (another file).
    pub fn merge(&mut self, other: ValueCounts) {
        for (tag, values) in other.tags {
            let entry = self.tags.entry(tag).or_default();
            entry.more += values.more;
            for (value, n) in values.values {
                if let Some(count) = entry.values.get_mut(&value) {
                    *count += n;
                } else if entry.values.len() < MAX_DISTINCT {
                    entry.values.insert(value, n);
                } else {
                    entry.more += n;
                }
            }
        }
    }

    /// The values of `tag`, if any were seen.
    pub fn get(&self, tag: u32) -> Option<&TagValues> {
        self.tags.get(&tag)
    }
}

/// A value as the report shows it: trailing padding removed, cut after [`MAX_CHARS`] characters.
fn text(p: &PrimitiveValue) -> String {
    let raw = match p {
        PrimitiveValue::Empty => String::new(),
        other => other.to_str().trim_end_matches(['\0', ' ']).to_string(),
    };
    if raw.is_empty() {
        return "(empty)".into();
    }
    match raw.char_indices().nth(MAX_CHARS) {
        Some((i, _)) => format!("{}…", &raw[..i]),
        None => raw,
    }
}

impl TagValues {
    /// The values, most frequent first (then alphabetical).
    pub fn by_count(&self) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self.values.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use dicom_core::{DataElement, Tag};

    #[test]
    fn distinct_values_are_counted_and_bounded() {
        let mut all = ValueCounts::default();
        for i in 0..(MAX_DISTINCT + 5) {
            let mut one = ValueCounts::default();
            let ds = InMemDicomObject::from_element_iter([
                DataElement::new(Tag(0x0008, 0x103E), VR::LO, PrimitiveValue::from(format!("T1 {i}"))),
                DataElement::new(Tag(0x0010, 0x0040), VR::CS, PrimitiveValue::from("F")),
                DataElement::new(Tag(0x0020, 0x0032), VR::DS, PrimitiveValue::from("1.5")),
            ]);
            one.add_dataset(&ds, &|_| false);
            all.merge(one);
        }
        let sex = all.get(0x0010_0040).map(TagValues::by_count);
        assert_eq!(sex, Some(vec![("F", (MAX_DISTINCT + 5) as u64)]));
        let series = all.get(0x0008_103E).expect("series descriptions");
        assert_eq!(series.values.len(), MAX_DISTINCT);
        assert_eq!(series.more, 5);
        assert!(
            all.get(0x0020_0032).is_none(),
            "geometry outside the table is not listed"
        );
    }
}
