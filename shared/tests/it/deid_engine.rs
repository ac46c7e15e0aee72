//! Engine behaviour on small instances built in code: placeholder UIDs and references, the
//! regenerated meta group, conformance markers, private attributes, dates, counts.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use dicom_core::header::Header;
use dicom_core::value::PrimitiveValue;
use dicom_core::VR;
use pseal::deid::{deidentify, DeidError, TakenAction, UidPlaceholderKey, IMPLEMENTATION_CLASS_UID};

use crate::deid_support::*;

const REFERENCED_IMAGE_SEQUENCE: u32 = 0x0008_1140;
const REFERENCED_SOP_INSTANCE_UID: u32 = 0x0008_1155;
const REFERENCED_SOP_CLASS_UID: u32 = 0x0008_1150;
const STUDY_INSTANCE_UID: u32 = 0x0020_000D;
const SOP_INSTANCE_UID: u32 = 0x0008_0018;
const SOP_CLASS_UID: u32 = 0x0008_0016;
/// A SOP Class the IOD tables do not hold (a private one): the combined codes take the
/// alternative that conforms whatever the Type, as before pseal knew IODs.
const UNKNOWN_CLASS: &str = "1.2.826.0.1.3680043.10.999.0.42";

#[test]
fn placeholders_are_consistent_across_files_depths_and_references() {
    let study = "1.2.826.0.1.3680043.10.1.100";
    let a_uid = "1.2.826.0.1.3680043.10.1.1";
    let a = mr(a_uid, vec![el(STUDY_INSTANCE_UID, VR::UI, study)]);
    // Referenced Image Sequence (X/Z/U*) is Type 3 in MR Image, where it is removed
    // (deid_iod); in an instance whose IOD is not known it is kept, its references replaced.
    let b = mr(
        "1.2.826.0.1.3680043.10.1.2",
        vec![
            el(SOP_CLASS_UID, VR::UI, UNKNOWN_CLASS),
            el(STUDY_INSTANCE_UID, VR::UI, study),
            seq(
                REFERENCED_IMAGE_SEQUENCE,
                vec![item(vec![
                    el(REFERENCED_SOP_CLASS_UID, VR::UI, MR_IMAGE_STORAGE),
                    el(REFERENCED_SOP_INSTANCE_UID, VR::UI, a_uid),
                    // the study UID again, two levels down
                    seq(0x0040_A730, vec![item(vec![el(0x0040_A124, VR::UI, study)])]),
                ])],
            ),
        ],
    );
    let p = profile("clean-structured-content");
    let k = key();
    let out_a = deidentify(file(a), &p, &k).unwrap();
    let out_b = deidentify(file(b), &p, &k).unwrap();
    let a_new = text(out_a.object.get(tag(SOP_INSTANCE_UID)).unwrap());
    let study_a = text(out_a.object.get(tag(STUDY_INSTANCE_UID)).unwrap());
    let study_b = text(out_b.object.get(tag(STUDY_INSTANCE_UID)).unwrap());
    assert_eq!(study_a, study_b);
    assert_eq!(study_a, k.placeholder(study));
    let path = [(REFERENCED_IMAGE_SEQUENCE, 0)];
    let reference = text(find(&out_b.object, &path, REFERENCED_SOP_INSTANCE_UID).unwrap());
    assert_eq!(reference, a_new, "the reference follows the referenced instance");
    let deep = [(REFERENCED_IMAGE_SEQUENCE, 0), (0x0040_A730, 0)];
    assert_eq!(text(find(&out_b.object, &deep, 0x0040_A124).unwrap()), study_a);
    // SOP classes are not identifying and stay.
    assert_eq!(
        text(find(&out_b.object, &path, REFERENCED_SOP_CLASS_UID).unwrap()),
        MR_IMAGE_STORAGE
    );
    // The pairs are recorded once per instance.
    let pairs = &out_b.captured.uids;
    assert_eq!(pairs.iter().filter(|p| p.original == study).count(), 1);
    assert!(pairs.iter().any(|p| p.original == a_uid && p.placeholder == a_new));
    // Another bundle key gives unlinkable placeholders.
    let other = UidPlaceholderKey::from_bytes([8; 32]);
    assert_ne!(other.placeholder(study), k.placeholder(study));
}

#[test]
fn placeholder_form_and_key_hygiene() {
    let k = key();
    let p = k.placeholder("1.2.3.4\0");
    assert_eq!(p, k.placeholder("1.2.3.4"));
    assert!(p.starts_with("2.25."));
    assert!(p.len() <= 64);
    assert!(p[5..].bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(format!("{k:?}"), "UidPlaceholderKey(..)");
    let r1 = UidPlaceholderKey::random();
    let r2 = UidPlaceholderKey::random();
    assert_ne!(r1.placeholder("1.2.3"), r2.placeholder("1.2.3"));
}

#[test]
fn meta_is_regenerated_and_written_with_a_zero_preamble() {
    let out = deidentify(
        file(mr("1.2.826.0.1.3680043.10.1.5", vec![])),
        &profile("default"),
        &key(),
    )
    .unwrap();
    let meta = out.object.meta();
    let new_uid = text(out.object.get(tag(SOP_INSTANCE_UID)).unwrap());
    assert_eq!(meta.media_storage_sop_instance_uid().trim_end_matches('\0'), new_uid);
    assert_eq!(
        meta.media_storage_sop_class_uid().trim_end_matches('\0'),
        MR_IMAGE_STORAGE
    );
    assert_eq!(meta.transfer_syntax().trim_end_matches('\0'), EXPLICIT_VR_LE);
    assert_eq!(meta.implementation_class_uid(), IMPLEMENTATION_CLASS_UID);
    assert_eq!(
        meta.implementation_version_name(),
        Some(format!("PSEAL_{}", env!("CARGO_PKG_VERSION")).as_str())
    );
    assert_eq!(meta.source_application_entity_title(), None);
    assert_eq!(meta.private_information_creator_uid(), None);
    let bytes = to_bytes(&out.object);
    assert!(bytes[..128].iter().all(|&b| b == 0));
    assert_eq!(&bytes[128..132], b"DICM");
    assert!(!contains(&bytes, b"HOSPITAL_AE"));
    assert!(!contains(&bytes, b"1.2.826.0.1.3680043.10.1.5"));
    let back = reopen(&bytes);
    assert!(back.iter().all(|e| !matches!(e.tag().group(), 0x0002 | 0x0004)));
}

#[test]
fn group_0004_and_original_attributes_never_pass() {
    let ds = mr(
        "1.2.3.9",
        vec![
            el(0x0004_1130, VR::CS, "FILESET"),
            seq(0x0400_0561, vec![item(vec![el(0x0010_0010, VR::PN, "Old^Name")])]),
            el(0x0008_0000, VR::UL, PrimitiveValue::from(12u32)),
        ],
    );
    let out = deidentify(file(ds), &profile("none"), &key()).unwrap();
    assert!(out.object.get(tag(0x0004_1130)).is_none());
    assert!(out.object.get(tag(0x0400_0561)).is_none());
    assert!(out.object.get(tag(0x0008_0000)).is_none());
    assert!(!contains(&to_bytes(&out.object), b"Old^Name"));
}

#[test]
fn conformance_markers_on_every_output() {
    for (options, ltim, codes) in [
        ("none", "REMOVED", vec!["113100"]),
        ("default", "MODIFIED", vec!["113100", "113108", "113107", "113105"]),
        (
            "retain-long-full-dates,retain-uids",
            "UNMODIFIED",
            vec!["113100", "113110", "113106"],
        ),
    ] {
        let p = profile(options);
        let out = deidentify(file(mr("1.2.3.10", vec![])), &p, &key()).unwrap();
        let o = &out.object;
        assert_eq!(text(o.get(tag(0x0012_0062)).unwrap()), "YES");
        assert_eq!(text(o.get(tag(0x0028_0303)).unwrap()), ltim);
        let method = text(o.get(tag(0x0012_0063)).unwrap());
        assert_eq!(method, p.method_description());
        assert!(p.method_description_values().iter().all(|v| v.len() <= 64));
        let items = o.get(tag(0x0012_0064)).unwrap().items().unwrap();
        let got: Vec<String> = items.iter().map(|i| text(i.get(tag(0x0008_0100)).unwrap())).collect();
        assert_eq!(got, codes, "{options}");
        for i in items {
            assert_eq!(text(i.get(tag(0x0008_0102)).unwrap()), "DCM");
            assert!(!text(i.get(tag(0x0008_0104)).unwrap()).is_empty());
        }
        // Patient's Name is Z; Patient ID is Z/D and Type 2 in the MR Image IOD: emptied.
        assert_eq!(text(o.get(tag(0x0010_0010)).unwrap()), "");
        assert_eq!(text(o.get(tag(0x0010_0020)).unwrap()), "");
        assert_eq!(out.iod, Some("mr-image"));
        assert_eq!(out.actions.get(0x0012_0062, TakenAction::Inserted), 1);
    }
}

#[test]
fn modified_dates_are_captured_and_not_written() {
    let ds = mr(
        "1.2.3.11",
        vec![
            el(0x0008_0020, VR::DA, "20240131"),
            el(0x0008_0030, VR::TM, "101500"),
            el(0x0010_0030, VR::DA, "19700412"),
            el(0x0010_0040, VR::CS, "F"),
            el(0x0010_1010, VR::AS, "053Y"),
        ],
    );
    let out = deidentify(file(ds), &profile("default"), &key()).unwrap();
    let bytes = to_bytes(&out.object);
    for value in ["20240131", "101500", "19700412"] {
        assert!(!contains(&bytes, value.as_bytes()), "{value}");
    }
    let study_date = out.captured.values.iter().find(|c| c.tag == 0x0008_0020).unwrap();
    assert_eq!((study_date.vr.as_str(), study_date.value.as_str()), ("DA", "20240131"));
    assert!(study_date.path.is_empty());
    assert_eq!(out.captured.birth_date.as_deref(), Some("19700412"));
    // Patient characteristics kept.
    assert_eq!(text(out.object.get(tag(0x0010_0040)).unwrap()), "F");
    assert_eq!(text(out.object.get(tag(0x0010_1010)).unwrap()), "053Y");
    // Study Date is Z: present and empty for the steward to fill.
    assert_eq!(text(out.object.get(tag(0x0008_0020)).unwrap()), "");
}

#[test]
fn private_attributes_without_creator_are_removed_and_safe_ones_kept_only_with_the_option() {
    let ds = || {
        mr(
            "1.2.3.12",
            vec![
                // GEMS_ACQU_01 (0019,xx23) Table Speed is on the safe list.
                el(0x0019_0010, VR::LO, "GEMS_ACQU_01"),
                el(0x0019_1023, VR::DS, "12.5"),
                el(0x0019_1099, VR::LO, "NOT ON THE LIST"),
                // The same element byte under another creator is not safe.
                el(0x0019_0011, VR::LO, "SOME VENDOR"),
                el(0x0019_1123, VR::DS, "77.5"),
                // No creator for block 0x12.
                el(0x0019_1223, VR::DS, "88.5"),
                // Creator-less group.
                el(0x0029_1023, VR::LO, "ORPHAN"),
            ],
        )
    };
    let without = deidentify(file(ds()), &profile("none"), &key()).unwrap();
    assert!(without.object.iter().all(|e| e.tag().group() % 2 == 0));
    assert_eq!(without.actions.get(0x0019_1023, TakenAction::PrivateRemoved), 1);

    let with = deidentify(file(ds()), &profile("retain-safe-private"), &key()).unwrap();
    let o = &with.object;
    assert_eq!(text(o.get(tag(0x0019_1023)).unwrap()), "12.5");
    assert_eq!(text(o.get(tag(0x0019_0010)).unwrap()), "GEMS_ACQU_01");
    for gone in [0x0019_1099, 0x0019_0011, 0x0019_1123, 0x0019_1223, 0x0029_1023] {
        assert!(o.get(tag(gone)).is_none(), "{gone:08X}");
    }
    assert_eq!(with.actions.get(0x0019_1023, TakenAction::PrivateKept), 1);
}

#[test]
fn safe_private_with_a_wrong_vr_is_removed() {
    let ds = mr(
        "1.2.3.13",
        vec![
            el(0x0019_0010, VR::LO, "GEMS_ACQU_01"),
            el(0x0019_1023, VR::LO, "Mustermann"),
        ],
    );
    let out = deidentify(file(ds), &profile("retain-safe-private"), &key()).unwrap();
    assert!(out.object.get(tag(0x0019_1023)).is_none());
    assert!(out.object.get(tag(0x0019_0010)).is_none());
}

#[test]
fn attributes_outside_the_table() {
    let ds = mr(
        "1.2.3.14",
        vec![
            el(0x0018_0087, VR::DS, "3"),                        // Magnetic Field Strength: kept
            el(0x0018_0024, VR::SH, "*tfl3d1_16ns"),             // Sequence Name: retained text
            el(0x0008_0070, VR::LO, "SIEMENS"),                  // Manufacturer: retained text
            el(0x0020_1040, VR::LO, "Mustermann"),               // Position Reference Indicator: Type 2 text
            el(0x0018_0050, VR::DS, "Mustermann"),               // malformed DS: Type 2
            el(0x0008_0008, VR::CS, "ORIGINAL\\PRIMARY"),        // Image Type: kept
            el(0x0011_0000, VR::UL, PrimitiveValue::from(4u32)), // private group length
            el(0x0040_A160, VR::UT, "free text"),                // Text Value: removed
            el(0x7FE0_0010, VR::OW, PrimitiveValue::U16(vec![1, 2, 3, 4].into())),
        ],
    );
    let out = deidentify(file(ds), &profile("none"), &key()).unwrap();
    let o = &out.object;
    assert_eq!(text(o.get(tag(0x0018_0087)).unwrap()), "3");
    assert_eq!(text(o.get(tag(0x0018_0024)).unwrap()), "*tfl3d1_16ns");
    assert_eq!(text(o.get(tag(0x0008_0070)).unwrap()), "SIEMENS");
    // Text outside the table is removed, but the MR IOD's Frame of Reference module makes
    // Position Reference Indicator Type 2: emptied.
    assert_eq!(text(o.get(tag(0x0020_1040)).unwrap()), "");
    // A malformed number is not kept either; Image Plane makes Slice Thickness Type 2.
    assert_eq!(text(o.get(tag(0x0018_0050)).unwrap()), "");
    assert!(o.get(tag(0x0040_A160)).is_none());
    assert_eq!(text(o.get(tag(0x0008_0008)).unwrap()), "ORIGINAL\\PRIMARY");
    assert!(o.get(tag(0x7FE0_0010)).is_some());
    assert_eq!(out.actions.get(0x0020_1040, TakenAction::OutsideTableEmptied), 1);
    assert_eq!(out.actions.get(0x0040_A160, TakenAction::OutsideTableRemoved), 1);
    assert!(!contains(&to_bytes(&out.object), b"Mustermann"));
}

#[test]
fn action_counts_merge_and_name_attributes() {
    let p = profile("default");
    let a = deidentify(file(mr("1.2.3.15", vec![])), &p, &key()).unwrap();
    let b = deidentify(file(mr("1.2.3.16", vec![])), &p, &key()).unwrap();
    let mut total = a.actions.clone();
    total.merge(&b.actions);
    assert_eq!(total.get(0x0010_0010, TakenAction::Emptied), 2);
    assert_eq!(total.get(SOP_INSTANCE_UID, TakenAction::UidReplaced), 2);
    let line = total.iter().find(|l| l.tag == 0x0010_0010).unwrap();
    assert_eq!(line.name, "Patient's Name");
    assert_eq!(line.tag_string, "(0010,0010)");
    let json = serde_json::to_string(&total).unwrap();
    assert!(json.contains("\"emptied\""));
    let back: pseal::deid::ActionCounts = serde_json::from_str(&json).unwrap();
    assert_eq!(back, total);
}

#[test]
fn deep_nesting_is_malformed_not_a_crash() {
    let mut inner = item(vec![el(0x0010_0010, VR::PN, "Deep^Name")]);
    for _ in 0..40 {
        inner = item(vec![seq(0x0040_A730, vec![inner])]);
    }
    let mut ds = mr("1.2.3.17", vec![]);
    for e in inner {
        ds.put(e);
    }
    let err = deidentify(file(ds), &profile("clean-structured-content"), &key()).unwrap_err();
    assert!(matches!(err, DeidError::Malformed { .. }));
    assert!(!err.to_string().contains("Deep"));
}

#[test]
fn missing_sop_class_is_malformed_without_values_in_the_message() {
    let mut ds = mr("1.2.3.18", vec![]);
    ds.remove_element(tag(0x0008_0016));
    let mut f = file(ds);
    f.update_meta(|m| m.media_storage_sop_class_uid = String::new());
    let err = deidentify(f, &profile("none"), &key()).unwrap_err();
    assert!(matches!(err, DeidError::Malformed { .. }));
    assert!(!err.to_string().contains("Mustermann"));
}

#[test]
fn debug_output_of_a_result_shows_no_value() {
    let out = deidentify(
        file(mr("1.2.826.0.1.3680043.10.1.30", vec![])),
        &profile("default"),
        &key(),
    )
    .unwrap();
    let debug = format!("{out:?}");
    assert!(!debug.contains("1.2.826.0.1.3680043.10.1.30"), "{debug}");
    assert!(!debug.contains("2.25."), "{debug}");
}

#[test]
fn empty_originals_stay_empty_under_dummy() {
    let ds = mr(
        "1.2.3.31",
        vec![
            el(SOP_CLASS_UID, VR::UI, UNKNOWN_CLASS),
            el(0x0008_0080, VR::LO, ""),
            el(0x0008_0021, VR::DA, ""),
            seq(0x0040_A730, vec![]),
        ],
    );
    let out = deidentify(file(ds), &profile("none"), &key()).unwrap();
    let o = &out.object;
    assert_eq!(text(o.get(tag(0x0008_0080)).unwrap()), "");
    assert_eq!(text(o.get(tag(0x0008_0021)).unwrap()), "");
    assert_eq!(o.get(tag(0x0040_A730)).unwrap().items().unwrap().len(), 0);
    // A non-empty Content Sequence (D) keeps its item; the Text Value in it (free text outside
    // the table, which the MR IOD does not hold there) is removed.
    let ds = mr(
        "1.2.3.32",
        vec![seq(
            0x0040_A730,
            vec![item(vec![el(0x0040_A160, VR::UT, "Befund Mustermann")])],
        )],
    );
    let out = deidentify(file(ds), &profile("none"), &key()).unwrap();
    let items = out.object.get(tag(0x0040_A730)).unwrap().items().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].iter().count(), 0);
}
