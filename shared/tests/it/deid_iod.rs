//! PS3.15's combined codes and the rule for attributes outside Table E.1-1, decided by the
//! attribute's Type in the instance's IOD (PS3.3, from `shared/data/iod/`) at every depth:
//! Type 3 or absent removes, Type 2 empties, Type 1 writes a dummy; a sequence that must stay
//! keeps valid items. SOP Classes the tables do not hold keep the Type-blind choice.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use dicom_core::VR;
use pseal::deid::{deidentify, TakenAction, DUMMY_TEXT};

use crate::deid_support::*;

const SOP_CLASS_UID: u32 = 0x0008_0016;
const ENHANCED_MR: &str = "1.2.840.10008.5.1.4.1.1.4.1";
const DX_FOR_PRESENTATION: &str = "1.2.840.10008.5.1.4.1.1.1.1";
const BASIC_TEXT_SR: &str = "1.2.840.10008.5.1.4.1.1.88.11";
const UNKNOWN_CLASS: &str = "1.2.826.0.1.3680043.10.999.0.42";

const REFERENCED_PPS_SEQUENCE: u32 = 0x0008_1111;
const REFERENCED_SOP_CLASS_UID: u32 = 0x0008_1150;
const REFERENCED_SOP_INSTANCE_UID: u32 = 0x0008_1155;
const INSTITUTION_NAME: u32 = 0x0008_0080;
const CONTENT_DATE: u32 = 0x0008_0023;
const ACQUISITION_DATE_TIME: u32 = 0x0008_002A;
const DEVICE_SERIAL_NUMBER: u32 = 0x0018_1000;
const REQUESTED_PROCEDURE_DESCRIPTION: u32 = 0x0032_1060;
const POSITION_REFERENCE_INDICATOR: u32 = 0x0020_1040;
const CONTENT_SEQUENCE: u32 = 0x0040_A730;
const PPS_UID: &str = "1.2.826.0.1.3680043.10.1.700";

/// The Referenced Performed Procedure Step Sequence the fixtures' RIS writes: one reference.
fn pps() -> dicom_object::mem::InMemElement {
    seq(
        REFERENCED_PPS_SEQUENCE,
        vec![item(vec![
            el(REFERENCED_SOP_CLASS_UID, VR::UI, "1.2.840.10008.3.1.2.3.3"),
            el(REFERENCED_SOP_INSTANCE_UID, VR::UI, PPS_UID),
        ])],
    )
}

fn with_class(class: &str, extra: Vec<dicom_object::mem::InMemElement>) -> dicom_object::InMemDicomObject {
    let mut all = vec![el(SOP_CLASS_UID, VR::UI, class)];
    all.extend(extra);
    mr("1.2.826.0.1.3680043.10.1.701", all)
}

/// The three errors dciodvfy found in every archived MR file before IOD knowledge: an empty item
/// in Referenced Performed Procedure Step Sequence (X/Z/D, Type 3 in MR Image: removed) and
/// Position Reference Indicator (outside the table, Type 2: emptied, not removed).
#[test]
fn mr_image_removes_type_3_and_empties_type_2() {
    let ds = mr(
        "1.2.826.0.1.3680043.10.1.702",
        vec![
            pps(),
            el(POSITION_REFERENCE_INDICATOR, VR::LO, "NASION Mustermann"),
            el(INSTITUTION_NAME, VR::LO, "Klinikum Musterstadt"),
            el(CONTENT_DATE, VR::DA, "20240131"),
            el(REQUESTED_PROCEDURE_DESCRIPTION, VR::LO, "MRT Schaedel"),
        ],
    );
    let out = deidentify(file(ds), &profile("none"), &key()).unwrap();
    let o = &out.object;
    assert_eq!(out.iod, Some("mr-image"));
    assert!(o.get(tag(REFERENCED_PPS_SEQUENCE)).is_none(), "Type 3: removed");
    assert_eq!(out.actions.get(REFERENCED_PPS_SEQUENCE, TakenAction::Removed), 1);
    assert_eq!(text(o.get(tag(POSITION_REFERENCE_INDICATOR)).unwrap()), "");
    assert!(
        o.get(tag(INSTITUTION_NAME)).is_none(),
        "X/Z/D, Type 3 in General Equipment"
    );
    // Content Date is Z/D and Type 2C in General Image: emptied.
    assert_eq!(text(o.get(tag(CONTENT_DATE)).unwrap()), "");
    // X/Z, and not in the MR Image IOD at the top level: removed.
    assert!(o.get(tag(REQUESTED_PROCEDURE_DESCRIPTION)).is_none());
    let bytes = to_bytes(o);
    for gone in ["Mustermann", "Musterstadt", "20240131", PPS_UID] {
        assert!(!contains(&bytes, gone.as_bytes()), "{gone}");
    }
}

/// Enhanced MR Image requires what MR Image leaves optional: dummies where Type 1.
#[test]
fn enhanced_mr_image_writes_dummies_where_type_1() {
    let ds = with_class(
        ENHANCED_MR,
        vec![
            el(DEVICE_SERIAL_NUMBER, VR::LO, "SN-4711"),
            el(CONTENT_DATE, VR::DA, "20240131"),
            el(ACQUISITION_DATE_TIME, VR::DT, "20240131101500"),
            el(INSTITUTION_NAME, VR::LO, "Klinikum Musterstadt"),
        ],
    );
    let out = deidentify(file(ds), &profile("none"), &key()).unwrap();
    let o = &out.object;
    assert_eq!(out.iod, Some("enhanced-mr-image"));
    // Enhanced General Equipment: Device Serial Number Type 1 (X/Z/D → D).
    assert_eq!(text(o.get(tag(DEVICE_SERIAL_NUMBER)).unwrap()), DUMMY_TEXT);
    // Image Pixel / Enhanced MR Image: Content Date Type 1 (Z/D → D), Acquisition DateTime 1C.
    assert_eq!(text(o.get(tag(CONTENT_DATE)).unwrap()), "19000101");
    assert_eq!(text(o.get(tag(ACQUISITION_DATE_TIME)).unwrap()), "19000101000000");
    assert!(o.get(tag(INSTITUTION_NAME)).is_none());
    assert!(!contains(&to_bytes(o), b"SN-4711"));
}

/// A sequence Table E.1-1 replaces by a dummy where the IOD requires it keeps valid items: the
/// references it holds, replaced like every UID, never one empty item.
#[test]
fn a_required_reference_sequence_keeps_its_references_replaced() {
    let k = key();
    let out = deidentify(file(with_class(DX_FOR_PRESENTATION, vec![pps()])), &profile("none"), &k).unwrap();
    let o = &out.object;
    assert_eq!(out.iod, Some("digital-x-ray-image"));
    let items = o.get(tag(REFERENCED_PPS_SEQUENCE)).unwrap().items().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        text(items[0].get(tag(REFERENCED_SOP_INSTANCE_UID)).unwrap()),
        k.placeholder(PPS_UID)
    );
    assert_eq!(
        text(items[0].get(tag(REFERENCED_SOP_CLASS_UID)).unwrap()),
        "1.2.840.10008.3.1.2.3.3"
    );
    assert_eq!(out.actions.get(REFERENCED_PPS_SEQUENCE, TakenAction::Dummy), 1);
}

/// Type 2: the sequence stays, without items.
#[test]
fn a_type_2_sequence_is_emptied() {
    let out = deidentify(file(with_class(BASIC_TEXT_SR, vec![pps()])), &profile("none"), &key()).unwrap();
    assert_eq!(out.iod, Some("basic-text-sr"));
    let pps = out.object.get(tag(REFERENCED_PPS_SEQUENCE)).unwrap();
    assert_eq!(pps.items().unwrap().len(), 0);
    assert_eq!(out.actions.get(REFERENCED_PPS_SEQUENCE, TakenAction::Emptied), 1);
}

/// Inside a sequence replaced by a dummy (Content Sequence, D), nothing is kept as text, not
/// even code meanings; what the IOD requires there gets a dummy, codes (CS) and UIDs stay valid.
#[test]
fn inside_a_dummy_sequence_required_text_becomes_dummies() {
    let concept = seq(
        0x0040_A043,
        vec![item(vec![
            el(0x0008_0100, VR::SH, "MUSTER1"),
            el(0x0008_0102, VR::SH, "99KLINIKUM"),
            el(0x0008_0104, VR::LO, "Befund Dr. Mustermann"),
        ])],
    );
    let content = seq(
        CONTENT_SEQUENCE,
        vec![item(vec![
            el(0x0040_A010, VR::CS, "CONTAINS"),
            el(0x0040_A040, VR::CS, "TEXT"),
            concept,
            el(0x0040_A160, VR::UT, "Patient Mustermann, geboren 1970"),
        ])],
    );
    let out = deidentify(file(with_class(BASIC_TEXT_SR, vec![content])), &profile("none"), &key()).unwrap();
    let o = &out.object;
    let items = o.get(tag(CONTENT_SEQUENCE)).unwrap().items().unwrap();
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(text(item.get(tag(0x0040_A040)).unwrap()), "TEXT");
    assert_eq!(text(item.get(tag(0x0040_A010)).unwrap()), "CONTAINS");
    assert_eq!(text(item.get(tag(0x0040_A160)).unwrap()), DUMMY_TEXT);
    let name = &item.get(tag(0x0040_A043)).unwrap().items().unwrap()[0];
    for t in [0x0008_0100, 0x0008_0102, 0x0008_0104] {
        assert_eq!(text(name.get(tag(t)).unwrap()), DUMMY_TEXT, "{t:08X}");
    }
    let bytes = to_bytes(o);
    for gone in ["Mustermann", "MUSTER1", "99KLINIKUM", "1970"] {
        assert!(!contains(&bytes, gone.as_bytes()), "{gone}");
    }
}

/// A SOP Class the tables do not hold: the alternative that conforms whatever the Type (D when
/// among the alternatives, Z for X/Z), as pseal did before it knew IODs; the result says so.
#[test]
fn classes_without_iod_data_keep_the_type_blind_choice() {
    let ds = with_class(
        UNKNOWN_CLASS,
        vec![
            pps(),
            el(INSTITUTION_NAME, VR::LO, "Klinikum Musterstadt"),
            el(REQUESTED_PROCEDURE_DESCRIPTION, VR::LO, "MRT Schaedel"),
            el(POSITION_REFERENCE_INDICATOR, VR::LO, "NASION"),
        ],
    );
    let k = key();
    let out = deidentify(file(ds), &profile("none"), &k).unwrap();
    let o = &out.object;
    assert_eq!(out.iod, None);
    assert_eq!(text(o.get(tag(INSTITUTION_NAME)).unwrap()), DUMMY_TEXT);
    assert_eq!(text(o.get(tag(REQUESTED_PROCEDURE_DESCRIPTION)).unwrap()), "");
    assert!(o.get(tag(POSITION_REFERENCE_INDICATOR)).is_none());
    let items = o.get(tag(REFERENCED_PPS_SEQUENCE)).unwrap().items().unwrap();
    assert_eq!(items.len(), 1, "a dummy sequence keeps its items");
    assert_eq!(
        text(items[0].get(tag(REFERENCED_SOP_INSTANCE_UID)).unwrap()),
        k.placeholder(PPS_UID)
    );
}

/// Equipment and concept names kept by the rule for attributes outside the table must pass the
/// descriptor rule; one that does not becomes a dummy and is counted. Code values stay.
#[test]
fn retained_text_that_fails_the_descriptor_rule_becomes_a_dummy() {
    let code = seq(
        0x0008_1032,
        vec![item(vec![
            el(0x0008_0100, VR::SH, "MRSCHKM"),
            el(0x0008_0102, VR::SH, "99RIS"),
            el(0x0008_0104, VR::LO, "Tumorprotokoll Dr. Mustermann"),
        ])],
    );
    let ds = mr(
        "1.2.826.0.1.3680043.10.1.703",
        vec![
            el(0x0008_0070, VR::LO, "SIEMENS"),
            el(0x0018_1250, VR::SH, "Head_32"),
            el(0x0018_1251, VR::SH, "Spule von Herrn Mustermann"),
            el(0x0018_0024, VR::SH, "*tfl3d1_16ns"),
            seq(
                0x0040_0260,
                vec![item(vec![
                    el(0x0008_0100, VR::SH, "MRSCHKM"),
                    el(0x0008_0102, VR::SH, "99RIS"),
                    el(0x0008_0104, VR::LO, "Tumorprotokoll Dr. Mustermann"),
                ])],
            ),
            code,
        ],
    );
    // Clean Descriptors keeps Procedure Code Sequence (0008,1032) and Performed Protocol Code
    // Sequence (0040,0260) is outside the table: both are cleaned item by item.
    let out = deidentify(file(ds), &profile("clean-descriptors"), &key()).unwrap();
    let o = &out.object;
    assert_eq!(text(o.get(tag(0x0008_0070)).unwrap()), "SIEMENS");
    assert_eq!(text(o.get(tag(0x0018_1250)).unwrap()), "Head_32");
    assert_eq!(text(o.get(tag(0x0018_1251)).unwrap()), DUMMY_TEXT);
    assert_eq!(text(o.get(tag(0x0018_0024)).unwrap()), "*tfl3d1_16ns");
    let item = &o.get(tag(0x0040_0260)).unwrap().items().unwrap()[0];
    assert_eq!(text(item.get(tag(0x0008_0100)).unwrap()), "MRSCHKM");
    assert_eq!(text(item.get(tag(0x0008_0102)).unwrap()), "99RIS");
    assert_eq!(text(item.get(tag(0x0008_0104)).unwrap()), DUMMY_TEXT);
    assert_eq!(out.actions.get(0x0018_1251, TakenAction::RetainedTextReplaced), 1);
    assert!(out.actions.get(0x0008_0104, TakenAction::RetainedTextReplaced) >= 1);
    assert!(!contains(&to_bytes(o), b"Mustermann"));
}

/// Attributes a converter wrote with VR UN are judged, and kept, as the attributes they are:
/// before, every one of them was removed (or became a dummy where the IOD requires it).
#[test]
fn un_values_are_read_as_their_attribute() {
    let un = |t: u32, bytes: &[u8]| el(t, VR::UN, dicom_core::value::PrimitiveValue::U8(bytes.to_vec().into()));
    let ds = mr(
        "1.2.826.0.1.3680043.10.1.704",
        vec![
            un(0x0008_0060, b"MR"),
            un(0x0020_0032, b"-120\\-120\\35 "),
            un(0x0028_0010, &64u16.to_le_bytes()),
            un(0x0008_0070, b"SIEMENS "),
            un(POSITION_REFERENCE_INDICATOR, b"Mustermann"),
        ],
    );
    let out = deidentify(file(ds), &profile("none"), &key()).unwrap();
    let o = &out.object;
    assert_eq!(o.get(tag(0x0008_0060)).unwrap().vr(), VR::CS);
    assert_eq!(text(o.get(tag(0x0008_0060)).unwrap()), "MR");
    assert_eq!(text(o.get(tag(0x0020_0032)).unwrap()), "-120\\-120\\35");
    assert_eq!(o.get(tag(0x0028_0010)).unwrap().value().to_int::<u16>().unwrap(), 64);
    assert_eq!(text(o.get(tag(0x0008_0070)).unwrap()), "SIEMENS");
    assert_eq!(text(o.get(tag(POSITION_REFERENCE_INDICATOR)).unwrap()), "");
    assert!(!contains(&to_bytes(o), b"Mustermann"));
}

/// The Common Instance Reference module lists the instances an instance references elsewhere;
/// when de-identification removed every such reference, the lists go too (they would refer to
/// nothing, which dciodvfy reports), and stay where references stay.
#[test]
fn instance_reference_lists_go_with_the_references() {
    let series = || {
        seq(
            0x0008_1115,
            vec![item(vec![
                el(0x0020_000E, VR::UI, "1.2.826.0.1.3680043.10.1.710"),
                seq(
                    0x0008_114A,
                    vec![item(vec![
                        el(REFERENCED_SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.4"),
                        el(REFERENCED_SOP_INSTANCE_UID, VR::UI, "1.2.826.0.1.3680043.10.1.711"),
                    ])],
                ),
            ])],
        )
    };
    let image = || {
        seq(
            0x0008_1140,
            vec![item(vec![
                el(REFERENCED_SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.4"),
                el(REFERENCED_SOP_INSTANCE_UID, VR::UI, "1.2.826.0.1.3680043.10.1.711"),
            ])],
        )
    };
    // MR Image: Referenced Image Sequence (X/Z/U*) is Type 3, removed; the list goes with it.
    let out = deidentify(
        file(mr("1.2.826.0.1.3680043.10.1.712", vec![image(), series()])),
        &profile("none"),
        &key(),
    )
    .unwrap();
    assert!(out.object.get(tag(0x0008_1140)).is_none());
    assert!(out.object.get(tag(0x0008_1115)).is_none());
    assert_eq!(out.actions.get(0x0008_1115, TakenAction::OutsideTableRemoved), 1);
    // Without IOD data the reference is kept, and so is the list.
    let out = deidentify(
        file(with_class(UNKNOWN_CLASS, vec![image(), series()])),
        &profile("none"),
        &key(),
    )
    .unwrap();
    assert!(out.object.get(tag(0x0008_1140)).is_some());
    assert!(out.object.get(tag(0x0008_1115)).is_some());
}
