//! The split path (header parsed, Pixel Data copied verbatim) writes exactly the bytes that
//! de-identifying and encoding the whole object writes, reports the same actions and captures the
//! same originals — for explicit and implicit VR, native and encapsulated pixel data, undefined-
//! length sequences — and falls back to reading the whole file when Pixel Data is not last.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use dicom_core::value::{PixelFragmentSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use pseal::deid::{DeidConfig, Options, Profile, UidPlaceholderKey};
use pseal::export::instance::deidentify_path;
use std::path::Path;

fn profile() -> Profile {
    Profile::new(&DeidConfig {
        options: Options::parse_list("default").unwrap(),
        ..DeidConfig::default()
    })
}

/// Re-encodes the support instance in another transfer syntax, optionally changing its elements.
fn variant(ts: &str, change: impl FnOnce(&mut InMemDicomObject)) -> Vec<u8> {
    let original = dicom_object::from_reader(pseal_fixtures::sample::mr_instance(32).unwrap().as_slice()).unwrap();
    let mut obj = original.into_inner();
    change(&mut obj);
    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(ts)
                .implementation_class_uid("1.2.826.0.1.3680043.10.999.0.1"),
        )
        .unwrap();
    let mut out = Vec::new();
    file.write_all(&mut out).unwrap();
    out
}

/// Asserts the split path equals the whole-object path on `bytes`; returns whether it split.
fn check(dir: &Path, name: &str, bytes: &[u8]) -> bool {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let profile = profile();
    let key = UidPlaceholderKey::random();

    let whole = dicom_object::OpenFileOptions::new().open_file(&path).unwrap();
    let expected = pseal::deid::deidentify(whole, &profile, &key).unwrap();
    let mut expected_bytes = Vec::new();
    expected.object.write_all(&mut expected_bytes).unwrap();

    let done = deidentify_path(&path, &profile, &key).unwrap();
    let mut got = Vec::new();
    done.encoded.write_to(&mut got).unwrap();
    assert_eq!(got.len() as u64, done.encoded.len(), "{name}: len()");
    assert!(
        got == expected_bytes,
        "{name}: split output differs from whole-object output"
    );
    let mut via_reader = Vec::new();
    std::io::copy(&mut done.encoded.reader().unwrap(), &mut via_reader).unwrap();
    assert!(via_reader == expected_bytes, "{name}: reader() differs");
    let out = dir.join(format!("{name}.out"));
    done.encoded
        .write_to_file(&mut std::fs::File::create(&out).unwrap())
        .unwrap();
    assert!(
        std::fs::read(&out).unwrap() == expected_bytes,
        "{name}: write_to_file differs"
    );
    assert_eq!(done.actions, expected.actions, "{name}: action counts");
    assert_eq!(done.captured, expected.captured, "{name}: captured originals");
    done.encoded.pixel_data.is_some()
}

#[test]
fn explicit_vr_native_pixel_data_splits_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    assert!(check(
        dir.path(),
        "explicit.dcm",
        &pseal_fixtures::sample::mr_instance(64).unwrap()
    ));
}

#[test]
fn implicit_vr_native_pixel_data_splits_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    assert!(check(dir.path(), "implicit.dcm", &variant("1.2.840.10008.1.2", |_| {})));
}

#[test]
fn encapsulated_pixel_data_splits_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = variant("1.2.840.10008.1.2.4.50", |obj| {
        let fragments = vec![vec![0xFF, 0xD8, 1, 2, 3, 4], vec![5, 6, 7, 8, 0xFF, 0xD9]];
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OB,
            Value::PixelSequence(PixelFragmentSequence::new(vec![], fragments)),
        ));
        obj.put(DataElement::new(
            tags::LOSSY_IMAGE_COMPRESSION,
            VR::CS,
            PrimitiveValue::from("01"),
        ));
    });
    assert!(check(dir.path(), "encapsulated.dcm", &bytes));
}

#[test]
fn de_identified_output_with_undefined_length_sequences_splits_again() {
    // The steward re-keys de-identified files, whose sequences have undefined length.
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.dcm");
    std::fs::write(&source, pseal_fixtures::sample::mr_instance(32).unwrap()).unwrap();
    let done = deidentify_path(&source, &profile(), &UidPlaceholderKey::random()).unwrap();
    let mut bytes = Vec::new();
    done.encoded.write_to(&mut bytes).unwrap();
    assert!(
        bytes.windows(4).any(|w| w == [0xFE, 0xFF, 0xDD, 0xE0]),
        "has a sequence delimiter"
    );
    let located = pseal::part10::survey(std::io::Cursor::new(&bytes), bytes.len() as u64).unwrap();
    let (offset, len) = located.pixel_data.expect("pixel data located");
    assert_eq!(&bytes[offset as usize..offset as usize + 4], &[0xE0, 0x7F, 0x10, 0x00]);
    assert_eq!(offset + len, bytes.len() as u64);
    assert!(check(dir.path(), "deidentified.dcm", &bytes));
}

#[test]
fn elements_after_pixel_data_fall_back_to_reading_the_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = variant("1.2.840.10008.1.2.1", |obj| {
        obj.put(DataElement::new(
            Tag(0x7FE1, 0x0010),
            VR::LO,
            PrimitiveValue::from("VENDOR"),
        ));
    });
    assert!(!check(dir.path(), "trailing.dcm", &bytes));
}

#[test]
fn truncated_and_foreign_files_are_refused_before_parsing() {
    let bytes = pseal_fixtures::sample::mr_instance(16).unwrap();
    let cut = &bytes[..bytes.len() - 10];
    let err = pseal::part10::survey(std::io::Cursor::new(cut), cut.len() as u64).unwrap_err();
    assert!(err.to_string().contains("only"), "{err}");
    let junk = vec![7u8; 500];
    let err = pseal::part10::survey(std::io::Cursor::new(&junk), 500).unwrap_err();
    assert!(err.to_string().contains("DICM"), "{err}");
}
