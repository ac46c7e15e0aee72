//! Helpers shared by the de-identification tests: building instances in code, writing and
//! re-reading them, searching bytes, reading the CSVs of `shared/data`.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;
use dicom_object::file::ReadPreamble;
use dicom_object::mem::InMemElement;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};
use pseal::deid::{DeidConfig, Options, Profile, UidPlaceholderKey};
use std::collections::BTreeMap;
use std::path::Path;

pub use pseal_fixtures::{EXPLICIT_VR_LITTLE_ENDIAN as EXPLICIT_VR_LE, MR_IMAGE_STORAGE};

/// The rows of a CSV file with a header line, each a map from column name to cell.
pub fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

pub fn tag(t: u32) -> Tag {
    Tag((t >> 16) as u16, (t & 0xFFFF) as u16)
}

pub fn el(t: u32, vr: VR, value: impl Into<PrimitiveValue>) -> InMemElement {
    DataElement::new(tag(t), vr, Value::Primitive(value.into()))
}

pub fn seq(t: u32, items: Vec<InMemDicomObject>) -> InMemElement {
    DataElement::new(
        tag(t),
        VR::SQ,
        Value::Sequence(DataSetSequence::new(items, Length::UNDEFINED)),
    )
}

pub fn item(elements: Vec<InMemElement>) -> InMemDicomObject {
    InMemDicomObject::from_element_iter(elements)
}

/// A minimal MR instance with the given extra elements.
pub fn mr(instance_uid: &str, extra: Vec<InMemElement>) -> InMemDicomObject {
    let mut ds = item(vec![
        el(0x0008_0016, VR::UI, MR_IMAGE_STORAGE),
        el(0x0008_0018, VR::UI, instance_uid),
        el(0x0008_0060, VR::CS, "MR"),
        el(0x0010_0010, VR::PN, "Mustermann^Max"),
        el(0x0010_0020, VR::LO, "PID12345678"),
    ]);
    for e in extra {
        ds.put(e);
    }
    ds
}

/// Wrap a dataset in a file object with an explicit VR little endian meta group.
pub fn file(ds: InMemDicomObject) -> DefaultDicomObject {
    let class = ds
        .get(tag(0x0008_0016))
        .and_then(|e| e.value().to_str().ok().map(|s| s.to_string()))
        .unwrap_or_else(|| MR_IMAGE_STORAGE.to_string());
    let instance = ds
        .get(tag(0x0008_0018))
        .and_then(|e| e.value().to_str().ok().map(|s| s.to_string()))
        .unwrap_or_else(|| "1.2.3.4".to_string());
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(class)
        .media_storage_sop_instance_uid(instance)
        .transfer_syntax(EXPLICIT_VR_LE)
        .source_application_entity_title("HOSPITAL_AE")
        .build()
        .unwrap();
    ds.with_exact_meta(meta)
}

pub fn profile(options: &str) -> Profile {
    Profile::new(&DeidConfig {
        options: Options::parse_list(options).unwrap(),
        ..DeidConfig::default()
    })
}

pub fn key() -> UidPlaceholderKey {
    UidPlaceholderKey::from_bytes([7; 32])
}

pub fn to_bytes(obj: &DefaultDicomObject) -> Vec<u8> {
    let mut bytes = Vec::new();
    obj.write_all(&mut bytes).unwrap();
    bytes
}

pub fn reopen(bytes: &[u8]) -> DefaultDicomObject {
    OpenFileOptions::new()
        .read_preamble(ReadPreamble::Always)
        .from_reader(bytes)
        .unwrap()
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The VR the standard dictionary gives a tag (LO when unknown; the virtual VRs resolved).
pub fn dictionary_vr(t: u32) -> VR {
    match StandardDataDictionary.by_tag(tag(t)).map(|e| e.vr()) {
        Some(VirtualVr::Exact(vr)) => vr,
        Some(VirtualVr::Xs) | Some(VirtualVr::Lt) => VR::US,
        Some(_) => VR::OW,
        None => VR::LO,
    }
}

/// The element at a path of `(sequence tag, item index)` below the top level.
pub fn find<'a>(ds: &'a InMemDicomObject, path: &[(u32, usize)], t: u32) -> Option<&'a InMemElement> {
    let mut current = ds;
    for &(s, i) in path {
        current = current.get(tag(s))?.items()?.get(i)?;
    }
    current.get(tag(t))
}

pub fn text(e: &InMemElement) -> String {
    e.value()
        .to_str()
        .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
        .unwrap_or_default()
}

/// Says, visibly, that a test left part of its work out: libtest swallows `eprintln!` from a
/// passing test, but not a direct write to the process's standard error.
pub fn say_skipped(why: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}
