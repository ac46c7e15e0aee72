//! The Clean Descriptors rule: acquisition vocabulary passes, anything that may be a name, an
//! identifier or a date does not.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use dicom_core::VR;
use pseal::deid::{deidentify, vocabulary};

use crate::deid_support::*;

#[test]
fn acquisition_descriptions_pass() {
    for d in [
        "t1_mprage_sag_p2_iso",
        "t1_mprage_tra_p2_iso_KM",
        "t2_tse_tra_512_5mm",
        "t2_tirm_tra_dark-fluid_4mm",
        "ep2d_diff_3scan_trace_p2_ADC",
        "t2_swi3d_tra_1.5mm_MIP",
        "Ax T1 +C",
        "Sag CUBE FLAIR",
        "AX T2 FRFSE",
        "Ax DWI 1000b",
        "ISOVUE300/100",
        "3D T1 BRAVO",
        "T1W_3D_TFE_Gd",
        "sT1W_3D_TFE",
        "MRT Schädel nativ und mit KM",
        "Kopf nativ 5.0 H31s",
        "Apparent Diffusion Coefficient (mm2/s)",
        "ep2d_perf_p2",
        "T1 post Gd",
        "",
        "  ",
    ] {
        assert!(vocabulary::passes(d), "{d:?} should pass");
    }
}

#[test]
fn names_identifiers_and_dates_fail() {
    for d in [
        "T2 FLAIR Mustermann",
        "Mustermann",
        "t1 Max",
        "T1 12345678",
        "T1 01.02.2024",
        "T1 01.02.24",
        "T1 3/4/24",
        "T1 10:45",
        "T1 1985",
        "JD1985",
        "jd85",
        "mm85x",
        "T1 Jürgen",
        "T1 Çelik",
        "Patient Protocol",
    ] {
        assert!(!vocabulary::passes(d), "{d:?} should fail");
    }
}

#[test]
fn a_name_in_a_description_removes_it() {
    let ds = mr(
        "1.2.3.20",
        vec![
            el(0x0008_103E, VR::LO, "t2_tse_tra Mustermann"),
            el(0x0008_1030, VR::LO, "MRT Schädel nativ und mit KM"),
            el(0x0018_1030, VR::LO, "t1_mprage_sag_p2_iso"),
        ],
    );
    let out = deidentify(file(ds), &profile("clean-descriptors"), &key()).unwrap();
    let o = &out.object;
    // Series Description is X in the Basic Profile: removed.
    assert!(o.get(tag(0x0008_103E)).is_none());
    assert_eq!(text(o.get(tag(0x0008_1030)).unwrap()), "MRT Schädel nativ und mit KM");
    assert_eq!(text(o.get(tag(0x0018_1030)).unwrap()), "t1_mprage_sag_p2_iso");
    assert!(!contains(&to_bytes(o), b"Mustermann"));
    // Without the option no description survives.
    let ds = mr("1.2.3.21", vec![el(0x0018_1030, VR::LO, "t1_mprage_sag_p2_iso")]);
    let out = deidentify(file(ds), &profile("none"), &key()).unwrap();
    assert!(!contains(&to_bytes(&out.object), b"mprage"));
}

/// The equipment and concept names the rule for attributes outside Table E.1-1 keeps must pass
/// the same rule: those the fixtures and common scanners write do.
#[test]
fn equipment_and_concept_names_pass() {
    for d in [
        "SIEMENS",
        "Siemens Healthineers",
        "GE MEDICAL SYSTEMS",
        "Philips Medical Systems",
        "Prisma_fit",
        "MAGNETOM Vida",
        "Avanto_fit",
        "SIGNA Premier",
        "Ingenia",
        "syngo MR XA30",
        "syngo MR E11",
        "syngo MR VE11C",
        "*tfl3d1_16ns",
        "*tse2d1_15",
        "*tir2d1_16",
        "*ep_b1000t",
        "*swi3d1r",
        "*epse2d1_64",
        "HeadNeck_20",
        "Head_32",
        "HE1-4",
        "32Ch Head",
        "Br40d",
        "Hr40f",
        "J30s",
        "STANDARD",
        "BONE",
        "HU",
        "Magnetic Resonance",
        "Computed Tomography",
        "Brain",
        "Iodinated contrast agent",
        "Basic Application Confidentiality Profile",
        "Retain Longitudinal Temporal Information Modified Dates Option",
    ] {
        assert!(vocabulary::passes(d), "{d:?} should pass");
    }
}
