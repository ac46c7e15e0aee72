//! Writes the fuzz seed corpora under `fuzz/corpus/<target>/` from the fixtures, pseal's own
//! writer and a handful of real-world files. Run it after a format change:
//! `cargo test -p pseal-cli --test it robust_fuzz_seeds:: -- --ignored`. The seeds are committed; the
//! replay test (`shared/tests/it/robust_fuzz_replay.rs`) runs every harness over them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::robust_support::*;
use pseal::bundle::{BundleWriter, ProfileInfo};
use pseal::config::{LocalIdSource, SiteConfig};
use pseal::deid::{Captured, CapturedValue, DeidConfig, Options, Profile, UidPair, UidPlaceholderKey};
use pseal::identity::{IdentityHeader, IdentitySealer, InstanceRecord, LocalId, IDENTITY_VERSION};
use pseal::keys::{SiteSecretKey, StewardIdentity};
use pseal_fixtures::{generate, CohortSpec};
use std::path::{Path, PathBuf};

/// Small real-world files (pydicom 3.0.2's test data, MIT; see fuzz/corpus/deid/SOURCE.md).
const REALWORLD: &[&str] = &[
    "test_files/MR_small.dcm",
    "test_files/nested_priv_SQ.dcm",
    "test_files/priv_SQ.dcm",
    "test_files/no_meta_group_length.dcm",
    "test_files/meta_missing_tsyntax.dcm",
    "test_files/UN_sequence.dcm",
    "test_files/image_dfl.dcm",
    "test_files/rtplan_truncated.dcm",
    "test_files/reportsi.dcm",
    "test_files/SC_rgb_rle.dcm",
    "test_files/SC_rgb_small_odd_big_endian.dcm",
    "test_files/JPEG2000.dcm",
    "test_files/empty_charset_LEI.dcm",
    "charset_files/chrH32.dcm",
    "charset_files/chrGerm.dcm",
];

fn corpus(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A Part 10 file as the deid harness reads it: without the 128-byte preamble.
fn without_preamble(bytes: &[u8]) -> Vec<u8> {
    if bytes.len() > 132 && &bytes[128..132] == b"DICM" {
        bytes[128..].to_vec()
    } else {
        bytes.to_vec()
    }
}

#[test]
#[ignore = "writes the committed fuzz seeds; run by hand after a format change"]
fn write_fuzz_seeds() {
    let tmp = tempfile::tempdir().unwrap();
    let steward = StewardIdentity::parse(crate::harness::FUZZ_STEWARD_KEY).unwrap();
    let recipients = vec![steward.recipient()];

    // deid: fixture files (an MR image and a burned-in secondary capture), tiny.
    let cohort = generate(
        &CohortSpec {
            sites: vec!["SITE-A".into()],
            patients_per_site: 1,
            timepoints: 1,
            series: 1,
            slices: 1,
            rows: 8,
            columns: 8,
            shared_local_ids: 0,
            include_non_dicom: false,
            include_burned_in: true,
            ..CohortSpec::small()
        },
        tmp.path(),
    )
    .unwrap();
    let mut fixture_files: Vec<PathBuf> = walk(&cohort.sites[0].dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    fixture_files.sort();
    assert!(fixture_files.len() >= 2);
    let mut mr = None;
    for (i, f) in fixture_files.iter().enumerate() {
        let bytes = without_preamble(&std::fs::read(f).unwrap());
        std::fs::write(corpus("deid").join(format!("fixture-{i}.dcm")), &bytes).unwrap();
        if mr.is_none() {
            mr = Some(std::fs::read(f).unwrap());
        }
    }
    let realworld = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/realworld/pydicom-3.0.2");
    if realworld.is_dir() {
        for rel in REALWORLD {
            let bytes = std::fs::read(realworld.join(rel)).unwrap();
            let name = format!("pydicom-{}", Path::new(rel).file_name().unwrap().to_string_lossy());
            std::fs::write(corpus("deid").join(name), without_preamble(&bytes)).unwrap();
        }
    } else {
        crate::common::say_skipped("../shared/data/realworld is not there; only fixture seeds for deid");
    }

    // A de-identified instance, as bundles carry them.
    let profile = Profile::new(&DeidConfig::default());
    let object = dicom_object::OpenFileOptions::new()
        .from_reader(&without_preamble(&mr.unwrap())[..])
        .unwrap();
    let done = pseal::deid::deidentify(object, &profile, &UidPlaceholderKey::from_bytes([1; 32])).unwrap();
    let mut instance = Vec::new();
    done.object.write_all(&mut instance).unwrap();

    // Bundles sealed to the fuzz steward: one with two instances, one minimal.
    let site = SiteSecretKey::generate();
    for (label, instances) in [
        ("two", vec![instance.clone(), b"tiny".to_vec()]),
        ("one", vec![vec![0u8; 3]]),
    ] {
        let out = tmp.path().join(format!("out-{label}"));
        std::fs::create_dir_all(&out).unwrap();
        let mut writer = BundleWriter::create(&out, "SITE-A", &recipients).unwrap();
        let identity_file = tempfile::tempfile().unwrap();
        let header = IdentityHeader {
            version: IDENTITY_VERSION,
            bundle_id: writer.bundle_id().into(),
            local_id: LocalId::new("FUZZ-0001").unwrap(),
            linkage: None,
        };
        let mut sealer = IdentitySealer::new(identity_file.try_clone().unwrap(), &recipients, &header).unwrap();
        for bytes in &instances {
            let entry = writer.add_instance(bytes).unwrap();
            let captured = if label == "two" {
                done.captured.clone()
            } else {
                Captured {
                    uids: vec![UidPair {
                        placeholder: "2.25.1".into(),
                        original: "1.2.3".into(),
                    }],
                    values: vec![CapturedValue {
                        path: vec![(0x0008_1111, 0)],
                        tag: 0x0008_0020,
                        vr: "DA".into(),
                        value: "20200101".into(),
                    }],
                    birth_date: Some("19700101".into()),
                }
            };
            sealer.add(&InstanceRecord { entry, captured }).unwrap();
        }
        sealer.finish().unwrap();
        let profile_info = ProfileInfo {
            options: Options::default_profile()
                .names()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            method: "fuzz seed".into(),
        };
        let path = writer.finish(identity_file, profile_info, &site).unwrap();
        let file = std::fs::read(&path).unwrap();
        let z = decrypt(&steward, &file);
        let tar = unzstd(&z);
        let mut seed = vec![0u8];
        seed.extend_from_slice(&tar);
        std::fs::write(corpus("bundle_plaintext").join(format!("{label}-tar")), &seed).unwrap();
        let mut seed = vec![1u8];
        seed.extend_from_slice(&z);
        std::fs::write(corpus("bundle_plaintext").join(format!("{label}-zstd")), &seed).unwrap();
        std::fs::write(corpus("bundle_file").join(format!("{label}.pseal")), &file).unwrap();
        for e in tar_entries(&tar) {
            match e.name.as_str() {
                "manifest.cbor" | "auth.cbor" => {
                    std::fs::write(corpus("manifest").join(format!("{label}-{}", e.name)), &e.content).unwrap()
                }
                "identity.age" => {
                    let plain = decrypt(&steward, &e.content);
                    std::fs::write(corpus("identity").join(format!("{label}.cbor")), &plain).unwrap();
                }
                _ => {}
            }
        }
    }

    // Site configurations and key texts.
    let config = SiteConfig {
        site: "UKB-NEURO".into(),
        site_key: "pseal.site-key".into(),
        recipients: recipients.clone(),
        local_id: LocalIdSource::default(),
        deid: DeidConfig::default(),
        linkage: Default::default(),
    };
    std::fs::write(corpus("config").join("init.toml"), config.to_toml().unwrap()).unwrap();
    let config = SiteConfig {
        local_id: LocalIdSource {
            attribute: "(0010,1000)".into(),
        },
        deid: DeidConfig {
            options: Options::none(),
            allow_burned_in: vec!["1.2.840.10008.5.1.4.1.1.7".into()],
        },
        recipients: vec![steward.recipient(), StewardIdentity::generate().recipient()],
        ..config
    };
    std::fs::write(corpus("config").join("options.toml"), config.to_toml().unwrap()).unwrap();
    let key_path = tmp.path().join("site.key");
    site.write_new(&key_path, "SITE-A").unwrap();
    std::fs::write(corpus("keys").join("site-key-file"), std::fs::read(&key_path).unwrap()).unwrap();
    std::fs::write(corpus("keys").join("age-identity"), crate::harness::FUZZ_STEWARD_KEY).unwrap();
    std::fs::write(corpus("keys").join("site-public"), site.public().to_string()).unwrap();
    std::fs::write(corpus("keys").join("recipient"), steward.recipient().to_string()).unwrap();
    std::fs::write(
        corpus("keys").join("pseudonym"),
        pseal::pseudonym::Pseudonym::random().to_string(),
    )
    .unwrap();

    // Every seed passes its harness.
    for (target, run) in harness_table() {
        for entry in std::fs::read_dir(corpus(target)).unwrap() {
            let p = entry.unwrap().path();
            if p.file_name().unwrap() != "SOURCE.md" {
                run(&std::fs::read(&p).unwrap());
            }
        }
    }
}

/// A fuzz target's name and its harness.
type Target = (&'static str, fn(&[u8]));

fn harness_table() -> Vec<Target> {
    vec![
        ("deid", crate::harness::deid),
        ("bundle_plaintext", crate::harness::bundle_plaintext),
        ("bundle_file", crate::harness::bundle_file),
        ("manifest", crate::harness::manifest),
        ("identity", crate::harness::identity),
        ("config", crate::harness::config),
        ("keys", crate::harness::keys),
    ]
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
