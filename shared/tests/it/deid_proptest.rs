//! Arbitrary datasets (random tags including table, private and structural ones, every VR,
//! nesting, lengths) never panic the engine, and under the Basic Profile a secret planted in any
//! text value never reaches the output.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_object::mem::InMemElement;
use dicom_object::InMemDicomObject;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use pseal::deid::{deidentify, RETAINED_TEXT};

use crate::deid_support::*;

const VRS: &[VR] = &[
    VR::AE,
    VR::AS,
    VR::AT,
    VR::CS,
    VR::DA,
    VR::DS,
    VR::DT,
    VR::FL,
    VR::FD,
    VR::IS,
    VR::LO,
    VR::LT,
    VR::OB,
    VR::OD,
    VR::OF,
    VR::OL,
    VR::OV,
    VR::OW,
    VR::PN,
    VR::SH,
    VR::SL,
    VR::SS,
    VR::ST,
    VR::SV,
    VR::TM,
    VR::UC,
    VR::UI,
    VR::UL,
    VR::UN,
    VR::UR,
    VR::US,
    VR::UT,
    VR::UV,
];

const CLASSES: &[&str] = &[
    MR_IMAGE_STORAGE,
    "1.2.840.10008.5.1.4.1.1.7",
    "1.2.840.10008.5.1.4.1.1.6.1",
    "1.2.840.10008.1.3.10",
    "1.2.840.10008.5.1.4.1.1.104.1",
    "",
    "not a uid",
];

/// Standard attributes outside Table E.1-1 (the rule for those is exercised on them).
const OUTSIDE: &[u32] = &[
    0x0008_0008,
    0x0008_0060,
    0x0008_0064,
    0x0018_0020,
    0x0018_0050,
    0x0018_0087,
    0x0018_1310,
    0x0018_5100,
    0x0020_0011,
    0x0020_0032,
    0x0020_0037,
    0x0020_1040,
    0x0020_1041,
    0x0028_0002,
    0x0028_0004,
    0x0028_0010,
    0x0028_0030,
    0x0028_0301,
    0x0028_1050,
    0x0028_1052,
    0x0040_A040,
    0x0040_A160,
    0x0040_A30A,
    0x0040_9096,
    0x0040_08EA,
    0x5200_9229,
    0x0028_9110,
    0x0018_9117,
    0x0008_2218,
    0x0054_0220,
    0x7FE0_0010,
    0x0008_0005,
];

/// A tag: from Table E.1-1, a private creator or private element, a structural group, or any.
fn any_tag() -> impl Strategy<Value = Tag> {
    let table: Vec<u32> = pseal::deid::table_rows()
        .into_iter()
        .filter_map(|r| r.tag_value)
        .collect();
    prop_oneof![
        3 => proptest::sample::select(table).prop_map(tag),
        3 => proptest::sample::select(OUTSIDE).prop_map(tag),
        1 => (0u16..0x80).prop_map(|g| Tag(2 * g + 1, 0x0010 + (g % 4))),
        2 => (0u16..0x80, 0x1000u16..0x1400).prop_map(|(g, e)| Tag(2 * g + 1, e)),
        1 => (prop_oneof![Just(0u16), Just(2), Just(4), Just(0x6000), Just(0x5000), Just(0xFFFA)],
              any::<u16>()).prop_map(|(g, e)| Tag(g, e)),
        2 => any::<(u16, u16)>().prop_map(|(g, e)| Tag(g, e)),
    ]
    .prop_filter("retained text attributes are allowed to carry text", |t| {
        let packed = u32::from(t.group()) << 16 | u32::from(t.element());
        !RETAINED_TEXT.iter().any(|&(r, _)| r == packed)
            && *t != Tag(0xFFFE, 0xE000)
            && *t != Tag(0xFFFE, 0xE00D)
            && *t != Tag(0xFFFE, 0xE0DD)
    })
}

fn text_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("secret".to_string()),
        Just("t1 secret\\secret".to_string()),
        "[a-z0-9 ._\\\\^-]{0,20}".prop_map(|s| format!("{s}secret")),
        "\\PC{0,12}",
        Just(String::new()),
    ]
}

fn primitive(vr: VR) -> BoxedStrategy<PrimitiveValue> {
    match vr {
        VR::OB | VR::UN | VR::OW | VR::OD | VR::OF | VR::OL | VR::OV => proptest::collection::vec(any::<u8>(), 0..48)
            .prop_map(|b| PrimitiveValue::U8(b.into()))
            .boxed(),
        VR::US => proptest::collection::vec(any::<u16>(), 0..4)
            .prop_map(|v| PrimitiveValue::U16(v.into()))
            .boxed(),
        VR::SS => proptest::collection::vec(any::<i16>(), 0..4)
            .prop_map(|v| PrimitiveValue::I16(v.into()))
            .boxed(),
        VR::UL => proptest::collection::vec(any::<u32>(), 0..4)
            .prop_map(|v| PrimitiveValue::U32(v.into()))
            .boxed(),
        VR::SL => proptest::collection::vec(any::<i32>(), 0..4)
            .prop_map(|v| PrimitiveValue::I32(v.into()))
            .boxed(),
        VR::UV | VR::SV => proptest::collection::vec(any::<u64>(), 0..3)
            .prop_map(|v| PrimitiveValue::U64(v.into()))
            .boxed(),
        VR::FL => proptest::collection::vec(any::<f32>(), 0..3)
            .prop_map(|v| PrimitiveValue::F32(v.into()))
            .boxed(),
        VR::FD => proptest::collection::vec(any::<f64>(), 0..3)
            .prop_map(|v| PrimitiveValue::F64(v.into()))
            .boxed(),
        VR::AT => any::<(u16, u16)>()
            .prop_map(|(g, e)| PrimitiveValue::Tags(vec![Tag(g, e)].into()))
            .boxed(),
        _ => text_value().prop_map(PrimitiveValue::from).boxed(),
    }
}

fn leaf() -> impl Strategy<Value = InMemElement> {
    (any_tag(), proptest::sample::select(VRS))
        .prop_flat_map(|(t, vr)| primitive(vr).prop_map(move |v| DataElement::new(t, vr, Value::Primitive(v))))
}

fn dataset() -> impl Strategy<Value = Vec<InMemElement>> {
    let element = leaf().prop_recursive(4, 48, 4, |inner| {
        (
            any_tag(),
            proptest::collection::vec(proptest::collection::vec(inner, 0..4), 0..3),
        )
            .prop_map(|(t, items)| {
                let items: Vec<InMemDicomObject> = items.into_iter().map(InMemDicomObject::from_element_iter).collect();
                DataElement::new(
                    t,
                    VR::SQ,
                    Value::Sequence(DataSetSequence::new(items, Length::UNDEFINED)),
                )
            })
    });
    proptest::collection::vec(element, 0..24)
}

fn instance(elements: Vec<InMemElement>, class: &str, with_class: bool) -> InMemDicomObject {
    let mut ds = InMemDicomObject::from_element_iter(elements);
    if with_class {
        ds.put(el(0x0008_0016, VR::UI, class));
        ds.put(el(0x0008_0018, VR::UI, "1.2.826.0.1.3680043.10.77"));
    }
    ds
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        // Past failures, kept beside this file (deid_proptest.proptest-regressions), run first.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_datasets_never_panic(
        elements in dataset(),
        class in proptest::sample::select(CLASSES),
        with_class in any::<bool>(),
        options in proptest::sample::select(&["none", "default", "retain-safe-private,retain-uids,clean-structured-content,clean-graphics", "retain-long-full-dates,retain-device-identity,retain-institution-identity"][..]),
    ) {
        let object = file(instance(elements, class, with_class));
        let _ = deidentify(object, &profile(options), &key());
    }

    #[test]
    fn basic_profile_lets_no_planted_secret_through(
        elements in dataset(),
    ) {
        let object = file(instance(elements, MR_IMAGE_STORAGE, true));
        if let Ok(out) = deidentify(object, &profile("none"), &key()) {
            let mut bytes = Vec::new();
            if out.object.write_all(&mut bytes).is_ok() {
                prop_assert!(!contains(&bytes, b"secret"));
            }
        }
    }
}
