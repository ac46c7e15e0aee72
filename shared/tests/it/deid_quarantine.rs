//! Files that must not leave: burned-in annotation, secondary captures, ultrasound, photographs,
//! documents, DICOMDIR; and the site's override by SOP class.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use dicom_core::VR;
use dicom_object::InMemDicomObject;
use pseal::deid::{deidentify, DeidConfig, DeidError, Options, Profile, QuarantineReason};

use crate::deid_support::*;

const SC: &str = "1.2.840.10008.5.1.4.1.1.7";
const SC_MULTIFRAME_TRUE_COLOR: &str = "1.2.840.10008.5.1.4.1.1.7.4";
const US: &str = "1.2.840.10008.5.1.4.1.1.6.1";
const US_MULTIFRAME: &str = "1.2.840.10008.5.1.4.1.1.3.1";
const VL_PHOTOGRAPHIC: &str = "1.2.840.10008.5.1.4.1.1.77.1.4";
const VIDEO_PHOTOGRAPHIC: &str = "1.2.840.10008.5.1.4.1.1.77.1.4.1";
const ENCAPSULATED_PDF: &str = "1.2.840.10008.5.1.4.1.1.104.1";
const DICOMDIR: &str = "1.2.840.10008.1.3.10";

fn instance(class: &str, burned_in: Option<&str>) -> InMemDicomObject {
    let mut ds = mr("1.2.3.4.5", vec![el(0x0008_0016, VR::UI, class)]);
    if let Some(b) = burned_in {
        ds.put(el(0x0028_0301, VR::CS, b));
    }
    ds
}

fn outcome(class: &str, burned_in: Option<&str>, allow: &[&str]) -> Result<(), QuarantineReason> {
    let profile = Profile::new(&DeidConfig {
        options: Options::none(),
        allow_burned_in: allow.iter().map(|s| s.to_string()).collect(),
    });
    match deidentify(file(instance(class, burned_in)), &profile, &key()) {
        Ok(_) => Ok(()),
        Err(DeidError::Quarantined(r)) => Err(r),
        Err(e) => panic!("{e}"),
    }
}

fn code(r: Result<(), QuarantineReason>) -> &'static str {
    match r {
        Ok(()) => "exported",
        Err(r) => r.code(),
    }
}

#[test]
fn quarantine_rules() {
    let cases: &[(&str, Option<&str>, &str)] = &[
        (MR_IMAGE_STORAGE, None, "exported"),
        (MR_IMAGE_STORAGE, Some("NO"), "exported"),
        (MR_IMAGE_STORAGE, Some("YES"), "burned-in-annotation"),
        (SC, None, "secondary-capture-undeclared"),
        (SC, Some("NO"), "exported"),
        (SC, Some("YES"), "burned-in-annotation"),
        (SC_MULTIFRAME_TRUE_COLOR, None, "secondary-capture-undeclared"),
        (US, None, "ultrasound-undeclared"),
        (US, Some("NO"), "exported"),
        (US_MULTIFRAME, None, "ultrasound-undeclared"),
        (VL_PHOTOGRAPHIC, Some("NO"), "visible-light"),
        (VIDEO_PHOTOGRAPHIC, None, "visible-light"),
        (ENCAPSULATED_PDF, None, "encapsulated-document"),
        (DICOMDIR, None, "media-directory"),
    ];
    for &(class, burned_in, expected) in cases {
        assert_eq!(code(outcome(class, burned_in, &[])), expected, "{class} {burned_in:?}");
    }
}

#[test]
fn the_site_allow_list_overrides_by_sop_class_but_never_for_a_dicomdir() {
    assert_eq!(code(outcome(SC, None, &[SC])), "exported");
    assert_eq!(
        code(outcome(MR_IMAGE_STORAGE, Some("YES"), &[MR_IMAGE_STORAGE])),
        "exported"
    );
    assert_eq!(code(outcome(ENCAPSULATED_PDF, None, &[SC])), "encapsulated-document");
    assert_eq!(code(outcome(DICOMDIR, None, &[DICOMDIR])), "media-directory");
}

#[test]
fn a_directory_record_sequence_makes_a_dicomdir_whatever_the_class() {
    let mut ds = instance(MR_IMAGE_STORAGE, None);
    ds.put(seq(0x0004_1220, vec![item(vec![])]));
    let err = deidentify(file(ds), &profile("none"), &key()).unwrap_err();
    assert!(matches!(err, DeidError::Quarantined(QuarantineReason::MediaDirectory)));
}

#[test]
fn messages_say_how_to_override_and_carry_no_file_values() {
    let r = outcome(SC, None, &[]).unwrap_err();
    let message = r.to_string();
    assert!(message.contains(SC));
    assert!(message.contains("allow_burned_in"));
    assert!(!message.contains("Mustermann"));
    assert!(!message.contains("PID12345678"));
    // A SOP class that is not a UID is not echoed.
    let r = outcome("Mustermann^Max", Some("YES"), &[]).unwrap_err();
    assert!(!r.to_string().contains("Mustermann"));
    assert_eq!(r.sop_class_uid(), Some("(not a valid UID)"));
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains("burned-in-annotation"));
}
