//! The planted-identifier proof: every attribute of Table E.1-1 (read from the CSV, not from the
//! engine's generated table) gets a unique marker at the top level, two sequences deep and in a
//! private group; after de-identification no marker survives except where the option switched
//! on keeps the attribute.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::path::Path;

use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::{Tag, VR};
use dicom_object::mem::InMemElement;
use dicom_object::InMemDicomObject;
use pseal::deid::{deidentify, DeidOption, Deidentified};

use crate::deid_support::*;

/// Outer and inner container sequences (outside the table, so kept and recursed):
/// Shared Functional Groups Sequence > Pixel Measures Sequence.
const OUTER: u32 = 0x5200_9229;
const INNER: u32 = 0x0028_9110;
const NESTED: [(u32, usize); 2] = [(OUTER, 0), (INNER, 0)];
const TEXT_VALUE: u32 = 0x0040_A160;

struct Plant {
    row: BTreeMap<String, String>,
    tag: u32,
    vr: VR,
    top: PrimitiveValue,
    nested: PrimitiveValue,
    /// Byte strings that must not survive unless kept.
    needles: Vec<Vec<u8>>,
}

fn rows() -> Vec<BTreeMap<String, String>> {
    read_csv(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/ps3.15-table-e1-1.csv"
    )))
}

/// A valid, unique date for a number below 4000 (years 1100 to 1111).
fn date(v: usize) -> String {
    format!("{}{:02}{:02}", 1100 + v / 336, 1 + (v % 336) / 28, 1 + v % 28)
}

/// A marker of the VR for row `i` at location `loc` (`T`op, `N`ested, `P`rivate).
fn marker(vr: VR, i: usize, loc: char) -> (PrimitiveValue, Option<Vec<u8>>) {
    let n = match loc {
        'T' => 0,
        'N' => 1,
        _ => 2,
    };
    let text = |s: String| {
        let bytes = s.clone().into_bytes();
        (PrimitiveValue::from(s), Some(bytes))
    };
    match vr {
        VR::AE | VR::CS | VR::LO | VR::LT | VR::SH | VR::ST | VR::UC | VR::UT | VR::PN | VR::UR => {
            text(format!("MK{i:04}{loc}"))
        }
        VR::DA => text(date(i * 3 + n)),
        VR::TM => text(format!("1234{:02}.{:06}", 10 + n, 100_000 + i)),
        VR::DT => text(format!("{}123456.654321", date(i * 3 + n))),
        VR::AS => (PrimitiveValue::from(format!("{:03}Y", i % 1000)), None),
        VR::DS => text(format!("1.{i:04}{n}7")),
        VR::IS => text(format!("7{i:04}{n}")),
        VR::UI => text(format!("1.2.826.0.1.3680043.10.999.{}", 3000 + 1000 * n + i)),
        VR::US | VR::SS => (PrimitiveValue::from(40000u16 + i as u16 + n as u16), None),
        VR::UL | VR::SL => (PrimitiveValue::from(4_000_000u32 + (i * 3 + n) as u32), None),
        VR::FL => (PrimitiveValue::from(4000.5f32 + (i * 3 + n) as f32), None),
        VR::FD => (PrimitiveValue::from(4000.25f64 + (i * 3 + n) as f64), None),
        VR::AT => (PrimitiveValue::Tags(vec![Tag(0x4321, (i * 3 + n) as u16)].into()), None),
        VR::UV | VR::SV | VR::OV => (PrimitiveValue::from(40_000u64 + (i * 3 + n) as u64), None),
        _ => {
            let bytes = format!("MKB{i:04}{loc}").into_bytes();
            (PrimitiveValue::U8(bytes.clone().into()), Some(bytes))
        }
    }
}

fn plants() -> Vec<Plant> {
    let mut out = Vec::new();
    for (i, row) in rows().into_iter().enumerate() {
        let tags: Vec<u32> = match row["tag"].as_str() {
            "(gggg,eeee)" => continue,
            "(50xx,xxxx)" => vec![0x5000_3000, 0x5002_0022],
            "(60xx,3000)" => vec![0x6000_3000],
            "(60xx,4000)" => vec![0x6002_4000],
            t => {
                let hex: String = t.chars().filter(|c| c.is_ascii_hexdigit()).collect();
                vec![u32::from_str_radix(&hex, 16).unwrap()]
            }
        };
        for (k, t) in tags.into_iter().enumerate() {
            let vr = match t {
                0x5000_3000 => VR::OB,
                0x6000_3000 => VR::OW,
                _ => dictionary_vr(t),
            };
            let idx = i * 2 + k;
            let (top, n1) = marker(vr, idx, 'T');
            let (nested, n2) = marker(vr, idx, 'N');
            out.push(Plant {
                row: row.clone(),
                tag: t,
                vr,
                top,
                nested,
                needles: [n1, n2].into_iter().flatten().collect(),
            });
        }
    }
    out
}

fn element(p: &Plant, value: &PrimitiveValue, loc: char, i: usize) -> InMemElement {
    if p.vr == VR::SQ {
        let inner = item(vec![el(TEXT_VALUE, VR::UT, format!("MK{i:04}{loc}S"))]);
        return seq(p.tag, vec![inner]);
    }
    el(p.tag, p.vr, value.clone())
}

/// The planted instance and the private markers.
fn planted() -> (InMemDicomObject, Vec<Plant>, Vec<Vec<u8>>) {
    let plants = plants();
    let mut top = mr("1.2.826.0.1.3680043.10.999.1", Vec::new());
    let mut inner = Vec::new();
    let mut private_needles = Vec::new();
    for (i, p) in plants.iter().enumerate() {
        top.put(element(p, &p.top, 'T', i));
        inner.push(element(p, &p.nested, 'N', i));
        // Private: 240 elements per group, creator in (gggg,0010).
        let group = 0x0009 + 2 * (i / 240) as u32;
        let creator = group << 16 | 0x0010;
        if top.get(tag(creator)).is_none() {
            top.put(el(creator, VR::LO, "PSEAL PLANT"));
        }
        let marker = format!("MK{i:04}P");
        private_needles.push(marker.clone().into_bytes());
        top.put(el(group << 16 | (0x1000 + (i % 240) as u32), VR::LO, marker));
    }
    top.put(seq(OUTER, vec![item(vec![seq(INNER, vec![item(inner)])])]));
    (top, plants, private_needles)
}

/// Whether an option switched on alone keeps the row's attribute unchanged.
fn kept_by(p: &Plant, option: Option<DeidOption>) -> bool {
    let Some(o) = option else { return false };
    let column = o.name().replace('-', "_");
    // Groups 0000, 0002 and 0004 never pass (docs/deidentification.md), whatever the table.
    let never = matches!(p.tag >> 16, 0x0000 | 0x0002 | 0x0004);
    p.row[&column] == "K" && !never
}

fn cleaned_sequence(p: &Plant, option: Option<DeidOption>) -> bool {
    let Some(o) = option else { return false };
    p.row[&o.name().replace('-', "_")] == "C"
}

fn same(e: &InMemElement, value: &PrimitiveValue) -> bool {
    match e.value() {
        Value::Primitive(v) => v.to_str() == value.to_str(),
        _ => false,
    }
}

fn check(option: Option<DeidOption>) -> Deidentified {
    let (ds, plants, private_needles) = planted();
    let options = option.map_or("none".to_string(), |o| o.name().to_string());
    let out = deidentify(file(ds), &profile(&options), &key()).unwrap();
    let bytes = to_bytes(&out.object);
    let back = reopen(&bytes);
    let mut failures = Vec::new();
    for (i, p) in plants.iter().enumerate() {
        let keep = kept_by(p, option);
        let name = format!("{} {} ({:?})", p.row["tag"], p.row["name"], p.vr);
        if p.vr == VR::SQ {
            for loc in ['T', 'N'] {
                if contains(&bytes, format!("MK{i:04}{loc}S").as_bytes()) {
                    failures.push(format!("{name}: item content survived at {loc}"));
                }
            }
            let present = back.get(tag(p.tag)).is_some();
            if (keep || cleaned_sequence(p, option)) && !present {
                failures.push(format!("{name}: kept sequence missing"));
            }
            if p.row["basic"] == "X" && !keep && !cleaned_sequence(p, option) && present {
                failures.push(format!("{name}: sequence not removed"));
            }
            continue;
        }
        for (path, value) in [(&[][..], &p.top), (&NESTED[..], &p.nested)] {
            let found = find(&back, path, p.tag);
            let survived = found.is_some_and(|e| same(e, value));
            if keep && !survived {
                failures.push(format!("{name}: kept value lost at depth {}", path.len()));
            }
            if !keep && survived {
                failures.push(format!("{name}: value survived at depth {}", path.len()));
            }
        }
        for needle in &p.needles {
            if !keep && contains(&bytes, needle) {
                failures.push(format!("{name}: marker bytes survived"));
            }
        }
    }
    for needle in &private_needles {
        if contains(&bytes, needle) {
            failures.push(format!("private marker {} survived", String::from_utf8_lossy(needle)));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures with {options}:\n{}",
        failures.len(),
        failures.join("\n")
    );
    out
}

#[test]
fn basic_profile_leaves_no_marker() {
    let out = check(None);
    assert!(out.captured.values.is_empty());
    assert!(out.captured.birth_date.is_none());
}

#[test]
fn retain_safe_private_alone() {
    check(Some(DeidOption::RetainSafePrivate));
}

#[test]
fn retain_uids_alone() {
    let out = check(Some(DeidOption::RetainUids));
    // Only UIDs whose row has no K under Retain UIDs (e.g. (0040,A124) UID) are still replaced.
    let plants = plants();
    assert!(!out.captured.uids.is_empty());
    for pair in &out.captured.uids {
        let p = plants
            .iter()
            .find(|p| [&p.top, &p.nested].iter().any(|v| v.to_str() == pair.original))
            .unwrap();
        assert_eq!(p.row["basic"], "U");
        assert_eq!(p.row["retain_uids"], "", "{}", p.row["name"]);
    }
}

#[test]
fn retain_device_identity_alone() {
    check(Some(DeidOption::RetainDeviceIdentity));
}

#[test]
fn retain_institution_identity_alone() {
    check(Some(DeidOption::RetainInstitutionIdentity));
}

#[test]
fn retain_patient_characteristics_alone() {
    let out = check(Some(DeidOption::RetainPatientCharacteristics));
    let birth = plants().into_iter().find(|p| p.tag == 0x0010_0030).unwrap();
    assert_eq!(out.captured.birth_date.as_deref(), Some(birth.top.to_str().as_ref()));
}

#[test]
fn retain_long_full_dates_alone() {
    let out = check(Some(DeidOption::RetainLongFullDates));
    assert!(out.captured.values.is_empty());
}

#[test]
fn retain_long_modified_dates_alone_captures_every_date_for_the_steward() {
    let out = check(Some(DeidOption::RetainLongModifiedDates));
    let nested_path: Vec<(u32, u32)> = NESTED.iter().map(|&(t, i)| (t, i as u32)).collect();
    let mut expected = 0;
    for p in plants() {
        if p.row["retain_long_modified_dates"] != "C" || !matches!(p.vr, VR::DA | VR::DT | VR::TM) {
            continue;
        }
        for (path, value) in [(Vec::new(), &p.top), (nested_path.clone(), &p.nested)] {
            expected += 1;
            assert!(
                out.captured
                    .values
                    .iter()
                    .any(|c| c.tag == p.tag && c.path == path && c.value == value.to_str() && c.vr == p.vr.to_string()),
                "{} not captured at {path:?}",
                p.row["name"]
            );
        }
    }
    assert_eq!(out.captured.values.len(), expected);
    assert!(expected > 200);
}

#[test]
fn clean_descriptors_alone() {
    check(Some(DeidOption::CleanDescriptors));
}

#[test]
fn clean_structured_content_alone() {
    check(Some(DeidOption::CleanStructuredContent));
}

#[test]
fn clean_graphics_alone() {
    check(Some(DeidOption::CleanGraphics));
}

#[test]
fn planted_instance_covers_every_single_tag_row() {
    let (_, plants, _) = planted();
    assert_eq!(plants.len(), 652 + 4);
    assert_eq!(pseal::deid::table_rows().len(), 656);
}
