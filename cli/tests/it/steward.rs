//! The steward's side through the real binaries: re-keying (intervals, age, UIDs, references),
//! re-export idempotence, revocation, backup recovery, releases, archive validity.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use chrono::NaiveDate;
use dicom_dictionary_std::tags;
use pseal_fixtures::{generate, CohortSpec};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::process::Command;

fn one_patient(world: &World, timepoints: usize) -> pseal_fixtures::Cohort {
    one_site_cohort(world, 1, timepoints, false)
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y%m%d").unwrap()
}

fn text(obj: &dicom_object::DefaultDicomObject, tag: dicom_core::Tag) -> String {
    obj.element(tag)
        .map(|e| e.to_str().unwrap().trim_end_matches(['\0', ' ']).to_string())
        .unwrap_or_default()
}

fn rows(world: &World) -> Vec<csv::StringRecord> {
    csv::Reader::from_path(world.archive().join("index.csv"))
        .unwrap()
        .records()
        .map(|r| r.unwrap())
        .collect()
}

#[test]
fn rekeying_keeps_intervals_computes_age_and_keeps_uids_stable_across_reexport() {
    let world = World::new();
    let cohort = one_patient(&world, 3);
    world.add_site("SITE-A", true);
    let patient = &cohort.sites[0].patients[0];
    let bundles = world.export("SITE-A", &patient.dir, "out1");
    assert_eq!(bundles.len(), 1);
    assert!(world.import(&bundles).status.success());
    let index = rows(&world);
    assert_eq!(index.len(), cohort.spec.mr_instance_count());

    // Dates: every study shifted by the same whole number of days, so intervals are exact.
    let originals: Vec<NaiveDate> = patient.studies.iter().map(|s| date(&s.study_date)).collect();
    let mut shifted: Vec<NaiveDate> = index
        .iter()
        .map(|r| date(&r[5]))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    shifted.sort();
    let mut sorted_originals = originals.clone();
    sorted_originals.sort();
    assert_eq!(shifted.len(), originals.len());
    let offsets: BTreeSet<i64> = shifted
        .iter()
        .zip(&sorted_originals)
        .map(|(s, o)| (*s - *o).num_days())
        .collect();
    assert_eq!(offsets.len(), 1, "one offset per patient: {offsets:?}");
    let offset = *offsets.iter().next().unwrap();
    assert!(
        (-3652..=-366).contains(&offset),
        "offset {offset} outside the documented range"
    );

    // Age at scan from the sealed birth date and the original study date; 90+ capped.
    let birth = date(&patient.birth_date);
    for r in &index {
        let original = date(&r[5]) - chrono::TimeDelta::days(offset);
        let expected = pseal_central::rekey::format_age(birth, original);
        let obj = dicom_object::open_file(world.archive().join(&r[7])).unwrap();
        assert_eq!(text(&obj, tags::PATIENT_AGE), expected);
        assert_eq!(text(&obj, tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED), "MODIFIED");
        assert!(
            obj.element(tags::PATIENT_BIRTH_DATE)
                .map(|e| e.to_str().unwrap().trim().is_empty())
                .unwrap_or(true),
            "no birth date is written"
        );
        // UIDs are archive UIDs, never the hospital's.
        for uid in [&r[1], &r[2], &r[3]] {
            assert!(uid.starts_with("2.25."), "{uid}");
        }
        assert_eq!(text(&obj, tags::SOP_INSTANCE_UID), r[3].to_string());
        assert_eq!(obj.meta().media_storage_sop_instance_uid.trim_end_matches('\0'), &r[3]);
        // A reference inside a sequence maps like the instance it points to.
        if let Ok(seq) = obj.element(tags::REFERENCED_IMAGE_SEQUENCE) {
            for item in seq.items().unwrap() {
                let referenced = item
                    .element(tags::REFERENCED_SOP_INSTANCE_UID)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .trim_end_matches('\0')
                    .to_string();
                assert!(
                    index.iter().any(|x| x[3] == referenced),
                    "reference {referenced} does not resolve in the archive"
                );
            }
        }
    }

    // The same studies exported again (a new bundle, new placeholders) land on the same files.
    let before = snapshot(&world.archive());
    let again = world.export("SITE-A", &patient.dir, "out2");
    assert_ne!(again, bundles);
    let out = world.import(&again);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(rows(&world).len(), index.len(), "stored once");
    assert_eq!(snapshot(&world.archive()), before, "identical bytes at identical paths");
}

#[test]
fn archive_files_are_valid_part10_for_dcmtk_and_pydicom() {
    let world = World::new();
    let cohort = one_patient(&world, 1);
    world.add_site("SITE-A", true);
    let bundles = world.export("SITE-A", &cohort.sites[0].dir, "out");
    assert!(world.import(&bundles).status.success());
    let files: Vec<_> = walkdir(&world.archive())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    assert!(!files.is_empty());
    if Command::new("dcmdump").arg("--version").output().is_ok() {
        for f in &files {
            let out = Command::new("dcmdump").arg("-q").arg(f).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "dcmdump failed on {}: {err}", f.display());
            assert!(
                !err.contains("W:") && !err.contains("E:"),
                "dcmdump warns on {}: {err}",
                f.display()
            );
        }
    } else {
        crate::common::say_skipped("dcmdump (Debian package dcmtk) is not installed");
    }
    let probe = Command::new("python3").args(["-c", "import pydicom"]).output();
    if probe.map(|o| o.status.success()).unwrap_or(false) {
        let script = "import sys, warnings, pydicom\nwarnings.simplefilter('error')\nfor f in sys.argv[1:]:\n    ds = pydicom.dcmread(f)\n    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID\n    ds.pixel_array if 'numpy' in sys.modules else None\nprint('ok', len(sys.argv) - 1)\n";
        let out = Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(&files)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pydicom: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        crate::common::say_skipped("pydicom is not installed (pip install pydicom)");
    }
}

#[test]
fn revoked_keys_are_refused_and_backup_identity_alone_recovers_bundles() {
    let dir = tempfile::tempdir().unwrap();
    let backup = age::x25519::Identity::generate();
    let backup_recipient = backup.to_public().to_string();
    let store = dir.path().join("store");
    let out = cmd("pseal-central")
        .arg("init")
        .arg("--store")
        .arg(&store)
        .args(["--backup-recipient", &backup_recipient])
        .assert()
        .success();
    let steward = last_line(&out.get_output().clone());
    let listed = cmd("pseal-central")
        .arg("recipient")
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    let listed: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(listed, [steward.clone(), backup_recipient.clone()]);

    let world = World {
        dir,
        recipient: steward.clone(),
    };
    let root = world.dir.path().join("hospitals");
    let cohort = generate(
        &CohortSpec {
            sites: vec!["SITE-A".into()],
            patients_per_site: 1,
            timepoints: 1,
            shared_local_ids: 0,
            ..CohortSpec::small()
        },
        &root,
    )
    .unwrap();
    // The site seals to the steward and the backup.
    let cfg = world.config("SITE-A");
    let out = cmd("pseal")
        .args([
            "init",
            "--site",
            "SITE-A",
            "--recipient",
            &steward,
            "--recipient",
            &backup_recipient,
            "--config",
        ])
        .arg(&cfg)
        .assert()
        .success();
    let key = last_line(&out.get_output().clone());
    cmd("pseal-central")
        .args(["enroll", "--site", "SITE-A", "--key", &key, "--store"])
        .arg(world.store())
        .assert()
        .success();
    let bundles = world.export("SITE-A", &cohort.sites[0].dir, "out");

    // Recovery: the backup identity alone opens the bundle and its identity record.
    let file = std::fs::File::open(&bundles[0]).unwrap();
    let dec = age::Decryptor::new_buffered(std::io::BufReader::new(file)).unwrap();
    let plain = dec.decrypt(std::iter::once(&backup as &dyn age::Identity)).unwrap();
    let mut tar_bytes = Vec::new();
    zstd::stream::read::Decoder::new(plain)
        .unwrap()
        .read_to_end(&mut tar_bytes)
        .unwrap();
    let mut found_identity = false;
    for entry in tar::Archive::new(tar_bytes.as_slice()).entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_string_lossy() == "identity.age" {
            let mut sealed = Vec::new();
            entry.read_to_end(&mut sealed).unwrap();
            let dec = age::Decryptor::new(sealed.as_slice()).unwrap();
            let mut r = dec.decrypt(std::iter::once(&backup as &dyn age::Identity)).unwrap();
            let mut plain = Vec::new();
            r.read_to_end(&mut plain).unwrap();
            assert!(contains(&plain, cohort.sites[0].patients[0].local_id.as_bytes()));
            found_identity = true;
        }
    }
    assert!(found_identity);

    // Revoke the key: its bundles are refused, nothing changes.
    cmd("pseal-central")
        .args(["revoke", "--site", "SITE-A", "--key", &key, "--store"])
        .arg(world.store())
        .assert()
        .success();
    let out = world.import(&bundles);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("was revoked"));
    assert!(!world.archive().join("index.csv").exists());

    // A further backup recipient can be added.
    let extra = age::x25519::Identity::generate().to_public().to_string();
    cmd("pseal-central")
        .args(["recipients", "add", "--store"])
        .arg(world.store())
        .arg(&extra)
        .assert()
        .success();
    let listed = cmd("pseal-central")
        .arg("recipient")
        .arg("--store")
        .arg(world.store())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&listed.stdout).lines().count(), 3);
}

#[test]
fn releases_open_with_stock_age_and_are_audited() {
    let world = World::new();
    let cohort = one_patient(&world, 1);
    world.add_site("SITE-A", true);
    let bundles = world.export("SITE-A", &cohort.sites[0].dir, "out");
    assert!(world.import(&bundles).status.success());
    let pseudonym = rows(&world)[0][0].to_string();

    let researcher = age::x25519::Identity::generate();
    let key_file = world.dir.path().join("researcher.key");
    use age::secrecy::ExposeSecret;
    std::fs::write(&key_file, format!("{}\n", researcher.to_string().expose_secret())).unwrap();
    let list = world.dir.path().join("selection.txt");
    std::fs::write(&list, format!("# the cohort for project X\n{pseudonym}\n")).unwrap();
    let package = world.dir.path().join("release.age");
    cmd("pseal-central")
        .arg("release")
        .arg("--store")
        .arg(world.store())
        .arg("--archive")
        .arg(world.archive())
        .args(["--to", &researcher.to_public().to_string(), "--pseudonyms"])
        .arg(&list)
        .arg("--out")
        .arg(&package)
        .assert()
        .success();
    let audit = cmd("pseal-central")
        .args(["audit", "--verify", "--json", "--store"])
        .arg(world.store())
        .output()
        .unwrap();
    assert!(audit.status.success());
    let actions: BTreeMap<String, usize> =
        String::from_utf8_lossy(&audit.stdout)
            .lines()
            .fold(BTreeMap::new(), |mut m, l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                // One line per entry, then the summary every --json command ends with.
                if v["event"] == "audit_entry" {
                    *m.entry(v["action"].as_str().unwrap().to_string()).or_default() += 1;
                } else {
                    assert_eq!(v["event"], "summary", "{l}");
                    assert_eq!(v["verified"], true, "{l}");
                }
                m
            });
    assert_eq!(actions.get("release"), Some(&1));

    // An unknown pseudonym is refused.
    let bad = world.dir.path().join("bad.txt");
    std::fs::write(&bad, "2222-2222-22222\n").unwrap();
    let out = cmd("pseal-central")
        .arg("release")
        .arg("--store")
        .arg(world.store())
        .arg("--archive")
        .arg(world.archive())
        .args(["--to", &researcher.to_public().to_string(), "--pseudonyms"])
        .arg(&bad)
        .arg("--out")
        .arg(world.dir.path().join("nope.age"))
        .output()
        .unwrap();
    assert!(!out.status.success());

    if Command::new("age").arg("--version").output().is_err() {
        crate::common::say_skipped("the stock age CLI is not installed");
        return;
    }
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "age -d -i {} {} | tar -t",
            key_file.display(),
            package.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.lines().any(|l| l == "archive/index.csv"));
    assert_eq!(
        listing.lines().filter(|l| l.ends_with(".dcm")).count(),
        cohort.spec.mr_instance_count()
    );
    assert!(listing
        .lines()
        .all(|l| l.starts_with(&format!("archive/{pseudonym}/")) || is_release_document(l)));
}

/// The files a DICOM release holds beside the patients' folders (issue 13 added all but the index).
fn is_release_document(entry: &str) -> bool {
    [
        "archive/index.csv",
        "archive/index.json",
        "archive/participants.tsv",
        "archive/participants.json",
        "archive/README",
        "archive/CHANGES",
        "archive/SHA256SUMS",
    ]
    .contains(&entry)
}

#[test]
fn a_store_and_its_archive_stay_paired() {
    let world = World::new();
    let cohort = one_patient(&world, 1);
    world.add_site("SITE-A", true);
    let bundles = world.export("SITE-A", &cohort.sites[0].dir, "out");
    assert!(world.import(&bundles).status.success());
    // The same store into another folder: refused, nothing written there.
    let elsewhere = world.dir.path().join("elsewhere");
    let out = cmd("pseal-central")
        .arg("import")
        .arg("--store")
        .arg(world.store())
        .arg("--archive")
        .arg(&elsewhere)
        .args(&bundles)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not its archive"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(walkdir(&elsewhere).is_empty());
    // Another store into this archive: refused.
    let other = World::new();
    other.add_site("SITE-A", true);
    let out = cmd("pseal-central")
        .arg("import")
        .arg("--store")
        .arg(other.store())
        .arg("--archive")
        .arg(world.archive())
        .args(&bundles)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("belongs to another pseal store"));
}

#[test]
fn domains_get_unrelated_pseudonyms_and_uids_and_releases_stay_within_one() {
    let world = World::new();
    let cohort = one_patient(&world, 1);
    world.add_site("SITE-A", true);
    let bundles = world.export("SITE-A", &cohort.sites[0].dir, "out");
    assert!(world.import(&bundles).status.success());
    let out = world.import_with(&["--domain", "glioma-2027", "--new-domain"], &[], &bundles);
    assert!(
        out.status.success(),
        "the same bundle imports into a second domain: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let index = rows(&world);
    let by_domain = |d: &str| -> Vec<&csv::StringRecord> { index.iter().filter(|r| &r[10] == d).collect() };
    let (a, b) = (by_domain("default"), by_domain("glioma-2027"));
    assert_eq!(a.len(), cohort.spec.mr_instance_count());
    assert_eq!(b.len(), a.len());
    assert_ne!(a[0][0], b[0][0], "unrelated pseudonyms");
    let uids_a: BTreeSet<&str> = a.iter().flat_map(|r| [&r[1], &r[2], &r[3]]).collect();
    assert!(
        b.iter()
            .all(|r| !uids_a.contains(&r[1]) && !uids_a.contains(&r[2]) && !uids_a.contains(&r[3])),
        "no UID links the two domains"
    );

    // A release holds one domain only.
    let researcher = age::x25519::Identity::generate();
    let package = world.dir.path().join("glioma.age");
    cmd("pseal-central")
        .arg("release")
        .arg("--store")
        .arg(world.store())
        .arg("--archive")
        .arg(world.archive())
        .args([
            "--to",
            &researcher.to_public().to_string(),
            "--domain",
            "glioma-2027",
            "--all",
            "--out",
        ])
        .arg(&package)
        .assert()
        .success();
    let file = std::fs::File::open(&package).unwrap();
    let dec = age::Decryptor::new_buffered(std::io::BufReader::new(file)).unwrap();
    let mut plain = dec.decrypt(std::iter::once(&researcher as &dyn age::Identity)).unwrap();
    // A release is a plain tar inside age unless --compress zstd is asked for.
    let mut tar_bytes = Vec::new();
    plain.read_to_end(&mut tar_bytes).unwrap();
    let names: Vec<String> = tar::Archive::new(tar_bytes.as_slice())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().to_string())
        .collect();
    assert_eq!(names.iter().filter(|n| n.ends_with(".dcm")).count(), b.len());
    assert!(names
        .iter()
        .all(|n| is_release_document(n) || n.starts_with(&format!("archive/{}/", &b[0][0]))));
}

#[test]
fn a_backup_added_later_can_open_the_store_secrets() {
    let world = World::new();
    let backup = age::x25519::Identity::generate();
    cmd("pseal-central")
        .args(["recipients", "add", "--store"])
        .arg(world.store())
        .arg(backup.to_public().to_string())
        .assert()
        .success();
    let conn = rusqlite::Connection::open(world.store().join("store.sqlite")).unwrap();
    let sealed: String = conn
        .query_row("SELECT value FROM meta WHERE key = 'secrets'", [], |r| r.get(0))
        .unwrap();
    let sealed = hex_decode(&sealed);
    let dec = age::Decryptor::new(sealed.as_slice()).unwrap();
    let mut plain = Vec::new();
    dec.decrypt(std::iter::once(&backup as &dyn age::Identity))
        .unwrap()
        .read_to_end(&mut plain)
        .unwrap();
    assert!(plain.len() > 100, "the backup identity opens the store secrets");
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn a_hospital_age_over_89_is_capped_when_no_birth_date_travels() {
    let world = World::new();
    let cohort = one_patient(&world, 1);
    world.add_site("SITE-A", true);
    // Every file of the patient: no birth date, a stated age of 95.
    for file in walkdir(&cohort.sites[0].dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
    {
        let Ok(mut obj) = dicom_object::open_file(&file) else {
            continue;
        };
        obj.remove_element(tags::PATIENT_BIRTH_DATE);
        obj.put(dicom_core::DataElement::new(
            tags::PATIENT_AGE,
            dicom_core::VR::AS,
            dicom_core::PrimitiveValue::from("095Y"),
        ));
        obj.write_to_file(&file).unwrap();
    }
    let bundles = world.export("SITE-A", &cohort.sites[0].dir, "out");
    assert!(world.import(&bundles).status.success());
    for r in rows(&world) {
        assert_eq!(&r[8], "090Y");
        let obj = dicom_object::open_file(world.archive().join(&r[7])).unwrap();
        assert_eq!(text(&obj, tags::PATIENT_AGE), "090Y");
    }
}

#[test]
fn a_lost_archive_is_rebuilt_from_the_bundles_with_repair() {
    let world = World::new();
    let cohort = one_patient(&world, 2);
    world.add_site("SITE-A", true);
    let bundles = world.export("SITE-A", &cohort.sites[0].dir, "out");
    assert!(world.import(&bundles).status.success());
    let before: Vec<_> = snapshot(&world.archive())
        .into_iter()
        .map(|(p, n, h)| (p.strip_prefix(world.archive()).unwrap().to_path_buf(), n, h))
        .collect();
    std::fs::remove_dir_all(world.archive()).unwrap();
    // Without --repair, a new folder is refused; with it, the archive comes back identical.
    assert_eq!(world.import(&bundles).status.code(), Some(2));
    let out = world.import_with(&["--repair"], &[], &bundles);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let after: Vec<_> = snapshot(&world.archive())
        .into_iter()
        .map(|(p, n, h)| (p.strip_prefix(world.archive()).unwrap().to_path_buf(), n, h))
        .collect();
    assert_eq!(after, before);
    let audit = cmd("pseal-central")
        .args(["audit", "--verify", "--store"])
        .arg(world.store())
        .output()
        .unwrap();
    assert!(audit.status.success());
    assert!(String::from_utf8_lossy(&audit.stdout).contains("repair"));
}

#[test]
fn sites_lookup_and_passphrase_change() {
    let world = World::new();
    let cohort = one_patient(&world, 1);
    let key = world.add_site("SITE-A", true);
    let bundles = world.export("SITE-A", &cohort.sites[0].dir, "out");
    assert!(world.import(&bundles).status.success());
    let pseudonym = rows(&world)[0][0].to_string();

    let sites = cmd("pseal-central")
        .args(["sites", "--store"])
        .arg(world.store())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&sites.stdout).contains(&key));

    let local = &cohort.sites[0].patients[0].local_id;
    let found = cmd("pseal-central")
        .args([
            "lookup",
            "--site",
            "SITE-A",
            "--local-id",
            local,
            "--reason",
            "consent withdrawn, case 7",
            "--store",
        ])
        .arg(world.store())
        .output()
        .unwrap();
    assert!(found.status.success());
    assert_eq!(String::from_utf8_lossy(&found.stdout).trim(), pseudonym);
    let missing = cmd("pseal-central")
        .args([
            "lookup",
            "--site",
            "SITE-A",
            "--local-id",
            "0000000000",
            "--reason",
            "check",
            "--store",
        ])
        .arg(world.store())
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    let audit = cmd("pseal-central")
        .args(["audit", "--store"])
        .arg(world.store())
        .output()
        .unwrap();
    let audit = String::from_utf8_lossy(&audit.stdout);
    assert_eq!(audit.matches("lookup").count(), 2);
    assert!(!audit.contains(local.as_str()), "the audit log never holds a local ID");

    cmd("pseal-central")
        .env("PSEAL_NEW_PASSPHRASE", "a brand new passphrase")
        .args(["passphrase", "--store"])
        .arg(world.store())
        .assert()
        .success();
    let old = cmd("pseal-central")
        .args(["audit", "--store"])
        .arg(world.store())
        .output()
        .unwrap();
    assert_eq!(old.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&old.stderr).contains("wrong passphrase"));
    cmd("pseal-central")
        .env("PSEAL_PASSPHRASE", "a brand new passphrase")
        .args(["audit", "--verify", "--store"])
        .arg(world.store())
        .assert()
        .success();
}
