//! Re-keys one de-identified instance for the research archive.
//!
//! The steward writes what only it can: the pseudonym as PatientID and PatientName; archive UIDs
//! (each bundle placeholder replaced by the keyed mapping of the original UID it stands for, at any
//! depth, so references stay consistent across bundles and re-exports); dates captured by the
//! hospital, shifted by the patient's offset (whole days, so intervals are exact and times of day
//! are kept); and the age at scan from the sealed birth date, written as PatientAge (over 89 as
//! `090Y`). The birth date itself is never written or stored.

use crate::archive::{Archive, IndexRow};
use chrono::NaiveDate;
use dicom_core::header::Header;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject};
use pseal::deid::{Captured, CapturedValue};
use pseal::part10::SplitInstance;
use pseal::pseudonym::Pseudonym;
use std::collections::HashMap;
use thiserror::Error;

/// An index row holding only the attributes researchers filter on (scanner, sequence,
/// geometry, and the study time that orders two sessions of one day), read from a (re-keyed or
/// archived) instance as written in the file: text, trimmed; empty when absent. None of them
/// identifies a patient: the profile keeps them.
pub fn details_of(obj: &InMemDicomObject) -> IndexRow {
    let text = |tag| element_text(obj, tag);
    IndexRow {
        study_time: text(tags::STUDY_TIME),
        series_number: text(tags::SERIES_NUMBER),
        instance_number: text(tags::INSTANCE_NUMBER),
        manufacturer: text(tags::MANUFACTURER),
        model: text(tags::MANUFACTURER_MODEL_NAME),
        field_strength: text(tags::MAGNETIC_FIELD_STRENGTH),
        sequence_name: text(tags::SEQUENCE_NAME),
        slice_thickness: text(tags::SLICE_THICKNESS),
        rows: text(tags::ROWS),
        columns: text(tags::COLUMNS),
        ..IndexRow::default()
    }
}

/// The value of a top-level attribute as text, trimmed of padding; empty when absent or binary.
pub fn element_text(obj: &InMemDicomObject, tag: Tag) -> String {
    obj.element(tag)
        .ok()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_matches(['\0', ' ']).to_string())
        .unwrap_or_default()
}

/// Why an instance could not be re-keyed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RekeyError {
    /// The staged instance is not readable DICOM (it passed the digest check, so the site wrote it so).
    #[error("instance {entry} is not readable DICOM: {reason}")]
    Unreadable {
        /// The bundle entry.
        entry: String,
        /// Why.
        reason: String,
    },
    /// A required UID is missing after re-keying.
    #[error("instance {entry} has no {what}")]
    Missing {
        /// The bundle entry.
        entry: String,
        /// Which attribute.
        what: &'static str,
    },
    /// The re-keyed object could not be encoded.
    #[error("instance {entry} could not be encoded: {reason}")]
    Encode {
        /// The bundle entry.
        entry: String,
        /// Why.
        reason: String,
    },
}

/// The per-patient and per-store inputs of re-keying.
pub struct RekeyContext<'a> {
    /// The patient's pseudonym.
    pub pseudonym: &'a Pseudonym,
    /// The patient's date offset in days.
    pub date_offset_days: i64,
    /// The patient's pseudonym domain (research project), for the index row.
    pub domain: &'a str,
    /// Maps an original UID to its archive UID.
    pub archive_uid: &'a dyn Fn(&str) -> String,
}

/// Re-keys the staged instance file `staged` (bundle entry `entry`): parses the attributes before
/// Pixel Data, re-keys and encodes them, and refers to the pixel data in place. Returns the
/// instance ready for the archive (never held whole: see `pseal::part10`) and its `index.csv`
/// row (its archive path included; the session columns are filled when rows are read back).
pub fn rekey_file(
    staged: &std::path::Path,
    entry: &str,
    captured: &Captured,
    ctx: &RekeyContext<'_>,
) -> Result<(SplitInstance, IndexRow), RekeyError> {
    let (object, pixel_data) = pseal::part10::open_split(staged).map_err(|e| RekeyError::Unreadable {
        entry: entry.into(),
        reason: e.to_string(),
    })?;
    let (head, row) = rekey(object, entry, captured, ctx)?;
    Ok((SplitInstance { head, pixel_data }, row))
}

/// Re-keys `object` (the staged instance `entry`) with its captured originals: the encoded
/// object and its `index.csv` row.
pub fn rekey(
    mut object: DefaultDicomObject,
    entry: &str,
    captured: &Captured,
    ctx: &RekeyContext<'_>,
) -> Result<(Vec<u8>, IndexRow), RekeyError> {
    let uid_map: HashMap<&str, String> = captured
        .uids
        .iter()
        .map(|p| {
            (
                p.placeholder.trim_end_matches(['\0', ' ']),
                (ctx.archive_uid)(&p.original),
            )
        })
        .collect();
    replace_uids(&mut object, &uid_map);

    let mut shifted_any = false;
    for value in &captured.values {
        if let Some(new) = shift_value(value, ctx.date_offset_days) {
            shifted_any |= put_at(&mut object, &value.path, value.tag, vr_of(&value.vr), new);
        }
    }
    let pseudonym = ctx.pseudonym.to_string();
    object.put(DataElement::new(
        tags::PATIENT_ID,
        VR::LO,
        PrimitiveValue::from(pseudonym.as_str()),
    ));
    object.put(DataElement::new(
        tags::PATIENT_NAME,
        VR::PN,
        PrimitiveValue::from(pseudonym.as_str()),
    ));
    if let Some(age) = age_at_scan(captured) {
        object.put(DataElement::new(tags::PATIENT_AGE, VR::AS, PrimitiveValue::from(age)));
    } else if let Some(capped) = object
        .element(tags::PATIENT_AGE)
        .ok()
        .and_then(|e| e.to_str().ok())
        .and_then(|a| cap_age(&a))
    {
        // No birth date to compute from: the hospital's own age stays, but never above 89.
        object.put(DataElement::new(
            tags::PATIENT_AGE,
            VR::AS,
            PrimitiveValue::from(capped),
        ));
    }
    if shifted_any {
        object.put(DataElement::new(
            tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED,
            VR::CS,
            PrimitiveValue::from("MODIFIED"),
        ));
    }

    let text = |obj: &DefaultDicomObject, tag: Tag| -> String {
        obj.element(tag)
            .ok()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
            .unwrap_or_default()
    };
    let sop_uid = text(&object, tags::SOP_INSTANCE_UID);
    if sop_uid.is_empty() {
        return Err(RekeyError::Missing {
            entry: entry.into(),
            what: "SOP Instance UID",
        });
    }
    let study_uid = text(&object, tags::STUDY_INSTANCE_UID);
    let series_uid = text(&object, tags::SERIES_INSTANCE_UID);
    let fields = IndexRow {
        path: Archive::instance_path(&pseudonym, &study_uid, &series_uid, &sop_uid),
        pseudonym,
        study_uid,
        series_uid,
        sop_uid: sop_uid.clone(),
        modality: text(&object, tags::MODALITY),
        study_date: text(&object, tags::STUDY_DATE),
        series_description: text(&object, tags::SERIES_DESCRIPTION),
        patient_age: text(&object, tags::PATIENT_AGE),
        patient_sex: text(&object, tags::PATIENT_SEX),
        domain: ctx.domain.to_string(),
        ..details_of(&object)
    };
    if fields.study_uid.is_empty() {
        return Err(RekeyError::Missing {
            entry: entry.into(),
            what: "Study Instance UID",
        });
    }
    if fields.series_uid.is_empty() {
        return Err(RekeyError::Missing {
            entry: entry.into(),
            what: "Series Instance UID",
        });
    }
    object.update_meta(|m| m.media_storage_sop_instance_uid = sop_uid);
    let mut bytes = Vec::new();
    object.write_all(&mut bytes).map_err(|e| RekeyError::Encode {
        entry: entry.into(),
        reason: e.to_string(),
    })?;
    Ok((bytes, fields))
}

fn vr_of(text: &str) -> VR {
    match text {
        "DA" => VR::DA,
        "DT" => VR::DT,
        _ => VR::TM,
    }
}

/// Replaces every UI value that is a known placeholder, at any depth.
fn replace_uids(obj: &mut InMemDicomObject, map: &HashMap<&str, String>) {
    let tags: Vec<(Tag, VR)> = obj.iter().map(|e| (e.tag(), e.vr())).collect();
    for (tag, vr) in tags {
        if vr == VR::SQ {
            obj.update_value(tag, |v| {
                if let Some(items) = v.items_mut() {
                    for item in items.iter_mut() {
                        replace_uids(item, map);
                    }
                }
            });
        } else if vr == VR::UI {
            let values: Vec<String> = match obj.element(tag).ok().and_then(|e| e.to_multi_str().ok()) {
                Some(v) => v.iter().map(|s| s.trim_end_matches(['\0', ' ']).to_string()).collect(),
                None => continue,
            };
            if values.iter().any(|s| map.contains_key(s.as_str())) {
                let mapped: Vec<String> = values
                    .iter()
                    .map(|s| map.get(s.as_str()).cloned().unwrap_or_else(|| s.clone()))
                    .collect();
                obj.put(DataElement::new(
                    tag,
                    VR::UI,
                    PrimitiveValue::Strs(mapped.into_iter().collect()),
                ));
            }
        }
    }
}

/// Puts an element into the dataset at `path`, if every sequence item on the way still exists.
fn put_at(obj: &mut InMemDicomObject, path: &[(u32, u32)], tag: u32, vr: VR, value: String) -> bool {
    let t = Tag((tag >> 16) as u16, (tag & 0xffff) as u16);
    match path.split_first() {
        None => {
            obj.put(DataElement::new(t, vr, PrimitiveValue::from(value)));
            true
        }
        Some((&(seq, item), rest)) => {
            let seq_tag = Tag((seq >> 16) as u16, (seq & 0xffff) as u16);
            let mut done = false;
            obj.update_value(seq_tag, |v: &mut Value<InMemDicomObject, _>| {
                if let Some(items) = v.items_mut() {
                    if let Some(it) = items.get_mut(item as usize) {
                        done = put_at(it, rest, tag, vr, value.clone());
                    }
                }
            });
            done
        }
    }
}

fn parse_da(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y%m%d").ok()
}

fn shift_da(s: &str, days: i64) -> Option<String> {
    let d = parse_da(s)?;
    let shifted = d.checked_add_signed(chrono::TimeDelta::try_days(days)?)?;
    Some(shifted.format("%Y%m%d").to_string())
}

/// The shifted value of a captured date, datetime or time; `None` when it cannot be shifted
/// exactly (partial dates), in which case the de-identified value stays.
pub fn shift_value(v: &CapturedValue, days: i64) -> Option<String> {
    let parts: Vec<&str> = v.value.trim_end_matches(['\0', ' ']).split('\\').collect();
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        let p = p.trim();
        let shifted = match v.vr.as_str() {
            "DA" => shift_da(p, days)?,
            "DT" => {
                if p.len() < 8 || !p.is_char_boundary(8) {
                    return None;
                }
                format!("{}{}", shift_da(&p[..8], days)?, &p[8..])
            }
            // Whole-day offsets leave the time of day unchanged.
            "TM" => p.to_string(),
            _ => return None,
        };
        out.push(shifted);
    }
    Some(out.join("\\"))
}

/// Age at scan from the sealed birth date and the original study (or series, acquisition) date.
pub fn age_at_scan(captured: &Captured) -> Option<String> {
    let birth = parse_da(captured.birth_date.as_deref()?)?;
    let top_date = |tag: Tag| {
        let t = (u32::from(tag.0) << 16) | u32::from(tag.1);
        captured
            .values
            .iter()
            .find(|v| v.path.is_empty() && v.tag == t)
            .and_then(|v| parse_da(v.value.trim_end_matches(['\0', ' '])))
    };
    let scan = top_date(tags::STUDY_DATE)
        .or_else(|| top_date(tags::SERIES_DATE))
        .or_else(|| top_date(tags::ACQUISITION_DATE))?;
    Some(format_age(birth, scan))
}

/// `Some("090Y")` when an AS value states more than 89 years (HIPAA Safe Harbor), else `None`.
pub fn cap_age(value: &str) -> Option<String> {
    let v = value.trim_matches(|c: char| c == '\0' || c == ' ');
    let years: u32 = v.strip_suffix('Y')?.parse().ok()?;
    (years > 89).then(|| "090Y".to_string())
}

/// Formats an age as DICOM AS, capping at 90 years (HIPAA Safe Harbor: ages over 89).
pub fn format_age(birth: NaiveDate, at: NaiveDate) -> String {
    use chrono::Datelike;
    if at < birth {
        return "000D".into();
    }
    let mut years = at.year() - birth.year();
    if (at.month(), at.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    if years > 89 {
        return "090Y".into();
    }
    if years >= 2 {
        return format!("{years:03}Y");
    }
    let months =
        (at.year() - birth.year()) * 12 + at.month() as i32 - birth.month() as i32 - i32::from(at.day() < birth.day());
    if months >= 1 {
        return format!("{months:03}M");
    }
    format!("{:03}D", (at - birth).num_days())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn d(s: &str) -> NaiveDate {
        parse_da(s).unwrap()
    }

    #[test]
    fn ages_follow_dicom_and_hipaa() {
        assert_eq!(format_age(d("19800615"), d("20240614")), "043Y");
        assert_eq!(format_age(d("19800615"), d("20240615")), "044Y");
        assert_eq!(format_age(d("19200101"), d("20240101")), "090Y");
        assert_eq!(format_age(d("19340101"), d("20240101")), "090Y");
        assert_eq!(format_age(d("19350102"), d("20240101")), "088Y");
        assert_eq!(format_age(d("20230101"), d("20240301")), "014M");
        assert_eq!(format_age(d("20240101"), d("20240111")), "010D");
    }

    #[test]
    fn hospital_ages_over_89_are_capped() {
        assert_eq!(cap_age("095Y"), Some("090Y".into()));
        assert_eq!(cap_age("090Y "), Some("090Y".into()));
        assert_eq!(cap_age("089Y"), None);
        assert_eq!(cap_age("100M"), None);
        assert_eq!(cap_age("garbage"), None);
    }

    #[test]
    fn shifting_keeps_intervals_and_times() {
        let v = |vr: &str, value: &str| CapturedValue {
            path: vec![],
            tag: 0,
            vr: vr.into(),
            value: value.into(),
        };
        assert_eq!(shift_value(&v("DA", "20240301"), -1), Some("20240229".into()));
        assert_eq!(
            shift_value(&v("DT", "20240301123000.5+0100"), -1),
            Some("20240229123000.5+0100".into())
        );
        assert_eq!(shift_value(&v("TM", "123000"), -400), Some("123000".into()));
        assert_eq!(shift_value(&v("DA", "2024"), -1), None);
        assert_eq!(
            shift_value(&v("DA", "20240101\\20240201"), 10),
            Some("20240111\\20240211".into())
        );
    }
}
