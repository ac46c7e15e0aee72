//! Files other readers read and dicom-rs does not are read (their header rewritten in memory,
//! `part10::repair`) and de-identified like any other, instead of being left out as unreadable:
//! a sequence written as UN with undefined length (CP-246), an implicit-VR element whose
//! dictionary VR is SQ but whose value is bytes, a meta group without group length or transfer
//! syntax. A DICOMDIR is reported as one, whatever follows its meta group.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use dicom_core::value::Value;
use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use pseal::deid::{DeidConfig, Options, Profile, UidPlaceholderKey};
use pseal::export::instance::{deidentify_path, LeftOutReason};
use std::path::Path;

fn profile() -> Profile {
    Profile::new(&DeidConfig {
        options: Options::parse_list("default").unwrap(),
        ..DeidConfig::default()
    })
}

/// The support MR instance (explicit VR little endian) as bytes, and where its data set starts.
fn instance() -> (Vec<u8>, usize) {
    let bytes = pseal_fixtures::sample::mr_instance(16).unwrap();
    let group_length = u32::from_le_bytes(bytes[140..144].try_into().unwrap()) as usize;
    (bytes, 144 + group_length)
}

/// De-identifies `bytes` written to `dir/name` and opens the result again.
fn through(dir: &Path, name: &str, bytes: &[u8]) -> dicom_object::DefaultDicomObject {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let done =
        deidentify_path(&path, &profile(), &UidPlaceholderKey::random()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut out = Vec::new();
    done.encoded.write_to(&mut out).unwrap();
    pseal::part10::survey(std::io::Cursor::new(&out), out.len() as u64).unwrap();
    dicom_object::from_reader(&out[128..]).unwrap()
}

/// A CP-246 sequence: (0040,A170) Purpose of Reference Code Sequence written as UN of undefined
/// length, its item in implicit VR, holding a code and a nested sequence of defined length.
fn cp246_sequence() -> Vec<u8> {
    let implicit = |tag: (u16, u16), value: &[u8]| {
        let mut out = tag.0.to_le_bytes().to_vec();
        out.extend(tag.1.to_le_bytes());
        out.extend((value.len() as u32).to_le_bytes());
        out.extend(value);
        out
    };
    let mut item = implicit((0x0008, 0x0100), b"121322");
    item.extend(implicit((0x0008, 0x0102), b"DCM "));
    let mut inner = implicit((0x0008, 0x0100), b"R-42453 ");
    inner.extend(implicit((0x0008, 0x0102), b"SRT "));
    // (0008,0121) Equivalent Code Sequence, defined length, one defined-length item.
    let mut seq = vec![0xFE, 0xFF, 0x00, 0xE0];
    seq.extend((inner.len() as u32).to_le_bytes());
    seq.extend(&inner);
    item.extend(implicit((0x0008, 0x0121), &seq));
    let mut out = vec![0x40, 0x00, 0x70, 0xA1, b'U', b'N', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];
    out.extend([0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
    out.extend(item);
    out.extend([0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0, 0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
    out
}

#[test]
fn a_un_sequence_of_undefined_length_is_read_as_a_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, _) = instance();
    // Just before Pixel Data (the support instance has nothing between (0040,A170) and it).
    let layout = pseal::part10::survey(std::io::Cursor::new(&bytes), bytes.len() as u64).unwrap();
    let (pixels, _) = layout.pixel_data.unwrap();
    let mut file = bytes[..pixels as usize].to_vec();
    file.extend(cp246_sequence());
    file.extend(&bytes[pixels as usize..]);
    assert!(
        pseal::part10::survey(std::io::Cursor::new(&file), file.len() as u64).is_err(),
        "dicom-rs alone would misread it"
    );
    let out = through(dir.path(), "cp246.dcm", &file);
    let purpose = out.element(Tag(0x0040, 0xA170)).unwrap();
    assert_eq!(purpose.vr(), VR::SQ);
    let item = &purpose.items().unwrap()[0];
    assert_eq!(item.element(tags::CODE_VALUE).unwrap().vr(), VR::SH);
    assert_eq!(item.element(tags::CODE_VALUE).unwrap().to_str().unwrap(), "121322");
    let equivalent = item.element(Tag(0x0008, 0x0121)).unwrap().items().unwrap();
    assert_eq!(
        equivalent[0]
            .element(tags::CODE_VALUE)
            .unwrap()
            .to_str()
            .unwrap()
            .trim(),
        "R-42453"
    );
    // Pixel data copied as it was.
    assert!(out.element(tags::PIXEL_DATA).is_ok());
}

#[test]
fn an_implicit_sq_that_holds_bytes_is_read_as_un_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dicom_object::from_reader(&pseal_fixtures::sample::mr_instance(16).unwrap()[128..]).unwrap();
    let mut obj = whole.into_inner();
    // (0040,0260) Performed Protocol Code Sequence is SQ in the dictionary; a writer with an
    // older dictionary wrote bytes (as another VR) there.
    obj.put(dicom_core::DataElement::new(
        Tag(0x0040, 0x0260),
        VR::OB,
        dicom_core::value::PrimitiveValue::U8(b"OLDVALUE".to_vec().into()),
    ));
    let file = obj
        .with_meta(
            dicom_object::FileMetaTableBuilder::new()
                .transfer_syntax("1.2.840.10008.1.2")
                .implementation_class_uid("1.2.826.0.1.3680043.10.999.0.1"),
        )
        .unwrap();
    let mut bytes = Vec::new();
    file.write_all(&mut bytes).unwrap();
    assert!(pseal::part10::survey(std::io::Cursor::new(&bytes), bytes.len() as u64).is_err());
    let out = through(dir.path(), "implicit-sq.dcm", &bytes);
    // Read as UN bytes: outside the table, UN, removed; the rest of the file is there.
    assert!(out.element(Tag(0x0040, 0x0260)).is_err());
    assert_eq!(out.meta().transfer_syntax().trim_end_matches('\0'), "1.2.840.10008.1.2");
    assert!(out.element(tags::PIXEL_DATA).is_ok());
    assert!(matches!(out.element(tags::ROWS).unwrap().value(), Value::Primitive(_)));
}

#[test]
fn a_meta_group_without_length_and_transfer_syntax_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, start) = instance();
    // Drop the group length and the transfer syntax from the meta group.
    let mut meta: Vec<u8> = Vec::new();
    let mut pos = 144;
    while pos < start {
        let tag = (
            u16::from_le_bytes([bytes[pos], bytes[pos + 1]]),
            u16::from_le_bytes([bytes[pos + 2], bytes[pos + 3]]),
        );
        let vr = [bytes[pos + 4], bytes[pos + 5]];
        let len = if &vr == b"OB" {
            12 + u32::from_le_bytes(bytes[pos + 8..pos + 12].try_into().unwrap()) as usize
        } else {
            8 + u16::from_le_bytes([bytes[pos + 6], bytes[pos + 7]]) as usize
        };
        if tag != (0x0002, 0x0010) {
            meta.extend(&bytes[pos..pos + len]);
        }
        pos += len;
    }
    let mut file = bytes[..132].to_vec();
    file.extend(meta);
    file.extend(&bytes[start..]);
    let out = through(dir.path(), "meta.dcm", &file);
    assert_eq!(
        out.meta().transfer_syntax().trim_end_matches('\0'),
        "1.2.840.10008.1.2.1"
    );
    assert!(out.element(tags::PIXEL_DATA).is_ok());
}

#[test]
fn a_dicomdir_is_reported_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut meta: Vec<u8> = Vec::new();
    for (tag, value) in [
        ((0x0002u16, 0x0002u16), &b"1.2.840.10008.1.3.10"[..]),
        ((0x0002, 0x0003), &b"1.2.3.4\0"[..]),
        ((0x0002, 0x0010), &b"1.2.840.10008.1.2.1\0"[..]),
    ] {
        meta.extend(tag.0.to_le_bytes());
        meta.extend(tag.1.to_le_bytes());
        meta.extend(b"UI");
        meta.extend((value.len() as u16).to_le_bytes());
        meta.extend(value);
    }
    let mut file = vec![0u8; 128];
    file.extend(b"DICM");
    file.extend([0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0]);
    file.extend((meta.len() as u32).to_le_bytes());
    file.extend(meta);
    // A truncated directory record sequence, as in pydicom's DICOMDIR-nooffset.
    file.extend([0x04, 0x00, 0x20, 0x12, b'S', b'Q', 0, 0, 0x00, 0x01, 0, 0]);
    let path = dir.path().join("DICOMDIR");
    std::fs::write(&path, &file).unwrap();
    let Err(err) = deidentify_path(&path, &profile(), &UidPlaceholderKey::random()) else {
        panic!("a DICOMDIR was de-identified");
    };
    assert!(matches!(err, LeftOutReason::Quarantined(_)), "{err}");
    assert!(err.to_string().contains("DICOMDIR"), "{err}");
}

/// pydicom's UN_sequence.dcm (nothing but a CP-246 private sequence holding references, meta
/// group of a CT), which dcmdump and pydicom read, is read and de-identified: the private sequence
/// goes, the SOP Class comes from the meta group.
#[test]
fn pydicom_un_sequence_file_is_read() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/realworld/pydicom-3.0.2/test_files/UN_sequence.dcm");
    if !path.exists() {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!(
                "SKIPPED: {} is not present (it sits beside the checkout in CI)\n",
                path.display()
            )
            .as_bytes(),
        );
        return;
    }
    let done = deidentify_path(&path, &profile(), &UidPlaceholderKey::random()).unwrap();
    let mut out = Vec::new();
    done.encoded.write_to(&mut out).unwrap();
    let reopened = dicom_object::from_reader(&out[128..]).unwrap();
    assert!(reopened.element(Tag(0x4453, 0x100C)).is_err());
    assert_eq!(
        reopened
            .element(tags::SOP_CLASS_UID)
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches('\0'),
        "1.2.840.10008.5.1.4.1.1.2"
    );
}
