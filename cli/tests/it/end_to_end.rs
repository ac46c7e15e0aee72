//! The whole flow through the real binaries: two sites, several patients, two timepoints.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use dicom_dictionary_std::tags;
use pseal_fixtures::{generate, CohortSpec};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn looks_like_date(s: &str) -> bool {
    s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Copies the instances of timepoint `tp` of every patient of `site` under `to`, keeping the
/// hospital's folder layout (whose names carry patient names: they must never travel).
fn timepoint_input(cohort: &pseal_fixtures::Cohort, site: &str, tp: usize, root: &Path, to: &Path) -> usize {
    let mut n = 0;
    for s in cohort.sites.iter().filter(|s| s.site == site) {
        for p in &s.patients {
            for series in &p.studies[tp].series {
                for inst in &series.instances {
                    let rel = inst.path.strip_prefix(root).unwrap();
                    let dest = to.join(rel);
                    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
                    std::fs::copy(&inst.path, &dest).unwrap();
                    n += 1;
                }
            }
        }
    }
    n
}

/// pseudonym → (site, local ID), through the audited re-identification command.
fn reidentify_all(world: &World, pseudonyms: &BTreeSet<String>) -> BTreeMap<String, (String, String)> {
    let mut map = BTreeMap::new();
    for p in pseudonyms {
        let out = cmd("pseal-central")
            .args(["reidentify", "--reason", "end-to-end test", "--json", "--store"])
            .arg(world.store())
            .arg(p)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        map.insert(
            p.clone(),
            (
                v["site"].as_str().unwrap().to_string(),
                v["local_id"].as_str().unwrap().to_string(),
            ),
        );
    }
    map
}

fn index_rows(archive: &Path) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(archive.join("index.csv")).unwrap();
    let headers = r.headers().unwrap().clone();
    for col in [
        "pseudonym",
        "study_uid",
        "series_uid",
        "sop_uid",
        "modality",
        "study_date",
        "series_description",
        "path",
    ] {
        assert!(headers.iter().any(|h| h == col), "index.csv lacks {col}");
    }
    r.records()
        .map(|rec| {
            headers
                .iter()
                .zip(rec.unwrap().iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

#[test]
fn two_sites_two_timepoints_end_to_end() {
    let world = World::new();
    let root = world.dir.path().join("hospitals");
    let spec = CohortSpec {
        shared_local_ids: 1,
        include_non_dicom: true,
        ..CohortSpec::small()
    };
    let cohort = generate(&spec, &root).unwrap();
    let sites: Vec<String> = cohort.sites.iter().map(|s| s.site.clone()).collect();
    assert_eq!(sites.len(), 2);
    for site in &sites {
        world.add_site(site, true);
    }

    // Timepoint 1 at both sites.
    let mut bundles = Vec::new();
    let mut expected = 0;
    for site in &sites {
        let input = world.dir.path().join(format!("tp1-{site}"));
        expected += timepoint_input(&cohort, site, 0, &root, &input);
        bundles.extend(world.export(site, &input, &format!("out-tp1-{site}")));
    }
    let out = world.import(&bundles);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = index_rows(&world.archive());
    assert_eq!(rows.len(), expected, "every instance of timepoint 1 is archived");
    let first: BTreeSet<String> = rows.iter().map(|r| r["pseudonym"].clone()).collect();
    let first_map = reidentify_all(&world, &first);

    // Timepoint 2, exported later.
    let mut bundles2 = Vec::new();
    for site in &sites {
        let input = world.dir.path().join(format!("tp2-{site}"));
        expected += timepoint_input(&cohort, site, 1, &root, &input);
        bundles2.extend(world.export(site, &input, &format!("out-tp2-{site}")));
    }
    let out = world.import(&bundles2);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = index_rows(&world.archive());
    assert_eq!(rows.len(), expected, "every instance of both timepoints is archived");
    let all: BTreeSet<String> = rows.iter().map(|r| r["pseudonym"].clone()).collect();
    assert_eq!(all, first, "the later timepoint lands on the same pseudonyms");
    let map = reidentify_all(&world, &all);
    assert_eq!(map, first_map);

    // One pseudonym per (site, local ID); the shared local ID gets two.
    let patients: Vec<(String, String)> = cohort
        .sites
        .iter()
        .flat_map(|s| s.patients.iter().map(|p| (p.site.clone(), p.local_id.clone())))
        .collect();
    let by_identity: BTreeMap<(String, String), String> = map.iter().map(|(p, id)| (id.clone(), p.clone())).collect();
    assert_eq!(by_identity.len(), patients.len(), "one pseudonym per patient");
    for key in &patients {
        assert!(by_identity.contains_key(key), "patient {key:?} has a pseudonym");
    }
    let shared = &cohort.sites[0].patients[0].local_id;
    assert_eq!(
        &cohort.sites[1].patients[0].local_id, shared,
        "the fixture shares a local ID across sites"
    );
    assert_ne!(
        by_identity[&(sites[0].clone(), shared.clone())],
        by_identity[&(sites[1].clone(), shared.clone())]
    );

    // Each patient's instances are all under their pseudonym, with both studies.
    for s in &cohort.sites {
        for p in &s.patients {
            let pseudonym = &by_identity[&(p.site.clone(), p.local_id.clone())];
            let mine: Vec<_> = rows.iter().filter(|r| &r["pseudonym"] == pseudonym).collect();
            let count: usize = p
                .studies
                .iter()
                .flat_map(|st| &st.series)
                .map(|se| se.instances.len())
                .sum();
            assert_eq!(mine.len(), count);
            let studies: BTreeSet<_> = mine.iter().map(|r| r["study_uid"].clone()).collect();
            assert_eq!(studies.len(), p.studies.len());
            // Dates are shifted, never the original.
            for r in &mine {
                assert!(
                    !p.studies.iter().any(|st| st.study_date == r["study_date"]),
                    "study date must be shifted"
                );
            }
        }
    }

    // Every archived file: PatientID and PatientName are the pseudonym of its folder.
    let identifying: Vec<String> = cohort.identifying_values();
    assert!(!identifying.is_empty());
    for row in &rows {
        let path = world.archive().join(&row["path"]);
        assert!(row["path"].starts_with(&format!("{}/", row["pseudonym"])));
        let obj = dicom_object::open_file(&path).unwrap();
        let get = |t| {
            obj.element(t)
                .unwrap()
                .to_str()
                .unwrap()
                .trim_end_matches(['\0', ' '])
                .to_string()
        };
        assert_eq!(get(tags::PATIENT_ID), row["pseudonym"]);
        assert_eq!(get(tags::PATIENT_NAME), row["pseudonym"]);
        assert_eq!(get(tags::SOP_INSTANCE_UID), row["sop_uid"]);
    }

    // No identifying fixture value anywhere in the archive (dates checked above, per patient,
    // because a shifted date may coincide with some other patient's true date).
    for file in walkdir(&world.archive()) {
        let bytes = std::fs::read(&file).unwrap();
        for v in identifying.iter().filter(|v| !looks_like_date(v)) {
            assert!(
                !contains(&bytes, v.as_bytes()),
                "{} holds the identifying value {v:?}",
                file.display()
            );
        }
    }

    // A stolen store reveals nothing either: no local ID, name or original UID in its files.
    for file in walkdir(&world.store()) {
        let bytes = std::fs::read(&file).unwrap();
        for v in identifying.iter().filter(|v| !looks_like_date(v)) {
            assert!(
                !contains(&bytes, v.as_bytes()),
                "the store file {} holds the identifying value {v:?}",
                file.display()
            );
        }
    }

    // Bundles: tar headers normalized and generated; nothing identifying outside identity.age.
    for bundle in bundles.iter().chain(&bundles2) {
        let name = bundle.file_name().unwrap().to_string_lossy().to_string();
        for v in &identifying {
            assert!(!name.contains(v.as_str()));
        }
        let plain = bundle_plaintext(&world.store(), bundle);
        let mut archive = tar::Archive::new(plain.as_slice());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let h = entry.header().clone();
            assert_eq!(h.mtime().unwrap(), 0);
            assert_eq!(h.uid().unwrap(), 0);
            assert_eq!(h.gid().unwrap(), 0);
            assert_eq!(h.username().unwrap().unwrap_or(""), "");
            assert_eq!(h.groupname().unwrap().unwrap_or(""), "");
            let path = entry.path().unwrap().to_string_lossy().to_string();
            let generated = path.starts_with("instances/")
                || ["identity.age", "manifest.cbor", "auth.cbor"].contains(&path.as_str());
            assert!(generated, "entry name {path} is not generated");
            let mut content = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
            if path == "identity.age" {
                continue;
            }
            let header_bytes = h.as_bytes().to_vec();
            for v in &identifying {
                assert!(
                    !contains(&content, v.as_bytes()),
                    "{path} in {name} holds the identifying value {v:?}"
                );
                assert!(!contains(&header_bytes, v.as_bytes()));
            }
        }
    }

    // The export report stays local and holds nothing read from inside a file.
    let report = std::fs::read_to_string(
        world
            .dir
            .path()
            .join(format!("out-tp1-{}/export-report.json", sites[0])),
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert!(v["counts"]["bundles"].as_u64().unwrap() >= 1);
    for id in identifying.iter().filter(|id| !looks_like_date(id)) {
        // Paths relative to the input may carry names from the hospital's own folders; values
        // read from inside files (IDs, UIDs) must not.
        if id.contains('^') || id.starts_with("1.2.") {
            assert!(!report.contains(id.as_str()), "report holds {id}");
        }
    }

    // Importing the same bundles again changes nothing.
    let before = snapshot(&world.archive());
    let out = world.import(&bundles);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("already imported"));
    assert_eq!(snapshot(&world.archive()), before);

    // The audit chain verifies.
    cmd("pseal-central")
        .arg("audit")
        .arg("--verify")
        .arg("--store")
        .arg(world.store())
        .assert()
        .success();
}

#[test]
fn bad_bundles_and_wrong_passphrase_change_nothing() {
    let (world, cohort) = one_site_world(1, 1, true);
    let good = world.export("SITE-A", &cohort.sites[0].dir, "out-a");
    assert_eq!(good.len(), 1);
    // An unenrolled workstation of the same site.
    std::fs::create_dir_all(world.dir.path().join("rogue")).unwrap();
    let out = cmd("pseal")
        .args(["init", "--site", "SITE-A", "--recipient", &world.recipient, "--config"])
        .arg(world.dir.path().join("rogue/pseal.toml"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let rogue_out = world.dir.path().join("out-rogue");
    cmd("pseal")
        .arg("export")
        .arg("--config")
        .arg(world.dir.path().join("rogue/pseal.toml"))
        .arg("--input")
        .arg(&cohort.sites[0].dir)
        .arg("--out")
        .arg(&rogue_out)
        .assert()
        .success();
    let rogue = bundles_in(&rogue_out);

    // One flipped byte in the middle of a good bundle.
    let mut bytes = std::fs::read(&good[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    let flipped: PathBuf = world.dir.path().join("flipped.pseal");
    std::fs::write(&flipped, &bytes).unwrap();

    // Make the archive exist so that "unchanged" compares real content.
    std::fs::create_dir_all(world.archive()).unwrap();
    let store_before = snapshot(&world.store());
    let archive_before = snapshot(&world.archive());

    // A refusal is a result: on standard output.
    let out = world.import(std::slice::from_ref(&flipped));
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("flipped.pseal") && said.contains("damaged or has been altered"),
        "{said}"
    );

    let out = world.import(&rogue);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("is not enrolled for site SITE-A"), "{said}");

    let out = world.import_with(&[], &[("PSEAL_PASSPHRASE", "not the passphrase")], &good);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wrong passphrase"), "{err}");

    assert_eq!(snapshot(&world.store()), store_before, "the store is unchanged");
    let after: Vec<_> = snapshot(&world.archive());
    assert_eq!(after, archive_before, "the archive is unchanged");

    // The good bundle still imports afterwards.
    let out = world.import(&good);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
