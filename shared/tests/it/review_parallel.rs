//! Review writes files on every core under pending names and renames them in input order: the
//! output must still be numbered contiguously per patient among the files not left out, in input
//! order, with nothing pending left behind and nothing identifying inside.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use pseal::config::{LocalIdSource, SiteConfig};
use pseal::deid::{DeidConfig, Options, Profile};
use pseal::export::ExportContext;
use pseal::keys::{SiteSecretKey, StewardIdentity};

fn instance(patient: &str, number: usize, burned_in: bool) -> Vec<u8> {
    let mut obj = dicom_object::from_reader(pseal_fixtures::sample::mr_instance(16).unwrap().as_slice()).unwrap();
    obj.put(DataElement::new(
        tags::PATIENT_ID,
        VR::LO,
        PrimitiveValue::from(patient),
    ));
    let uid = format!("1.2.826.0.1.3680043.10.999.7.{number}");
    obj.put(DataElement::new(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(uid.as_str()),
    ));
    obj.update_meta(|m| m.media_storage_sop_instance_uid = uid.clone());
    if burned_in {
        obj.put(DataElement::new(
            tags::BURNED_IN_ANNOTATION,
            VR::CS,
            PrimitiveValue::from("YES"),
        ));
    }
    let mut out = Vec::new();
    obj.write_all(&mut out).unwrap();
    out
}

#[test]
fn parallel_review_numbers_outputs_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    // 70 files of patient A (three chunks), one of them burned in; 5 of patient B; one non-DICOM.
    for i in 0..70 {
        std::fs::write(input.join(format!("a{i:03}.dcm")), instance("PID-A", i, i == 40)).unwrap();
    }
    for i in 0..5 {
        std::fs::write(input.join(format!("b{i:03}.dcm")), instance("PID-B", 100 + i, false)).unwrap();
    }
    std::fs::write(input.join("notes.txt"), b"not dicom").unwrap();
    let config = DeidConfig {
        options: Options::parse_list("default").unwrap(),
        ..DeidConfig::default()
    };
    let ctx = ExportContext {
        profile: Profile::new(&config),
        config: SiteConfig {
            site: "SITE-A".into(),
            site_key: "unused.site-key".into(),
            recipients: vec![StewardIdentity::generate().recipient()],
            local_id: LocalIdSource::default(),
            deid: config,
            linkage: Default::default(),
        },
        site_key: SiteSecretKey::generate(),
    };
    let out = dir.path().join("review");
    let report = pseal::review::review(&ctx, &input, &out, &pseal::progress::Silent).unwrap();
    assert_eq!(report.counts.reviewed, 74);
    assert_eq!(report.quarantined.len(), 1);
    assert_eq!(report.quarantined[0].path, "a040.dcm");
    let a: Vec<_> = report.files.iter().filter(|f| f.input.starts_with('a')).collect();
    assert_eq!(a.len(), 69);
    for (k, f) in a.iter().enumerate() {
        assert_eq!(f.output, format!("patient-0001/instances/{:06}.dcm", k + 1));
    }
    let inputs: Vec<&str> = a.iter().map(|f| f.input.as_str()).collect();
    let mut sorted = inputs.clone();
    sorted.sort();
    assert_eq!(inputs, sorted, "input order kept");
    assert_eq!(report.files.last().unwrap().output, "patient-0002/instances/000005.dcm");
    let mut count = 0;
    for dir in ["patient-0001/instances", "patient-0002/instances"] {
        for e in std::fs::read_dir(out.join(dir)).unwrap() {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(!name.starts_with(".pending"), "pending file left: {name}");
            let bytes = std::fs::read(&path).unwrap();
            assert!(!bytes.windows(10).any(|w| w == b"Mustermann"), "{name} holds the name");
            let obj = dicom_object::open_file(&path).unwrap();
            assert_eq!(
                obj.element(tags::PIXEL_DATA).unwrap().to_bytes().unwrap().len(),
                16 * 16 * 2
            );
            count += 1;
        }
    }
    assert_eq!(count, 74);
}
