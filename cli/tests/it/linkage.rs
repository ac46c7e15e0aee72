//! Cross-site linkage through the real binaries: two sites with linkage on export the same
//! people under different local IDs, with the errors registries make; the steward's import links
//! them as the truth says, `links accept` merges (intervals kept, pseudonyms stable), `reject` and
//! `undo` work, a merge killed at any step converges, a site without linkage changes nothing,
//! and no name, birth date or local ID reaches the store, an archive file, a report or a log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use pseal_fixtures::population::Record;
use pseal_fixtures::{generate, CohortSpec};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

const UKB: &str = "UKB";
const AKH: &str = "AKH";

fn record(family: &str, given: &str, birth: &str, date: &str, sex: &str) -> Record {
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    Record {
        family_name: opt(family),
        given_names: opt(given),
        birth_name: opt(birth),
        birth_date: opt(date),
        sex: opt(sex),
    }
}

/// (UKB's record, AKH's record, the same person?) for patient i of each site.
fn cases() -> Vec<(Record, Record, bool)> {
    vec![
        // Umlaut spelling, capitals, hyphenated given names, day and month swapped.
        (
            record("Müller", "Anna Maria", "", "19650312", "F"),
            record("MUELLER", "ANNA-MARIA", "", "19651203", "F"),
            true,
        ),
        (
            record("Gruber", "Josef", "", "19480923", "M"),
            record("Gruber", "Josef", "", "19480923", "M"),
            true,
        ),
        // Married between the visits; the second site records the birth name.
        (
            record("Schmid", "Claudia", "", "19700101", "F"),
            record("Brandstätter", "Claudia", "Schmid", "19700101", "F"),
            true,
        ),
        // A typo in the family name: a possible match for review.
        (
            record("Wagner", "Thomas", "", "19600214", "M"),
            record("Wanger", "Thomas", "", "19600214", "M"),
            true,
        ),
        // Twins: same family and birth date, two people.
        (
            record("Steiner", "Lukas", "", "19800707", "M"),
            record("Steiner", "Lena", "", "19800707", "F"),
            false,
        ),
        (
            record("Keller", "Beat", "", "19510101", "M"),
            record("Zürcher", "Regula", "", "19871130", "F"),
            false,
        ),
    ]
}

fn add_linkage_site(world: &World, site: &str) {
    let out = cmd("pseal")
        .args([
            "init",
            "--site",
            site,
            "--linkage",
            "on",
            "--recipient",
            &world.recipient,
            "--config",
        ])
        .arg(world.config(site))
        .assert()
        .success();
    let key = last_line(&out.get_output().clone());
    let text = std::fs::read_to_string(world.config(site)).unwrap();
    assert!(text.contains("[linkage]\nenabled = true"), "{text}");
    cmd("pseal-central")
        .args(["enroll", "--site", site, "--key", &key, "--store"])
        .arg(world.store())
        .assert()
        .success();
}

struct Setup {
    world: World,
    cohort: pseal_fixtures::Cohort,
    akh: Vec<PathBuf>,
    outputs: Vec<Output>,
}

/// Both sites exported (linkage on) and UKB imported; AKH not yet.
fn setup() -> Setup {
    let world = World::new();
    let spec = CohortSpec {
        sites: vec![UKB.into(), AKH.into()],
        patients_per_site: cases().len(),
        timepoints: 2,
        series: 1,
        slices: 2,
        rows: 16,
        columns: 16,
        shared_local_ids: 0,
        include_burned_in: false,
        include_non_dicom: false,
        ..CohortSpec::small()
    };
    let cohort = generate(&spec, &world.dir.path().join("hospitals")).unwrap();
    for (i, (ukb, akh, _)) in cases().iter().enumerate() {
        let u = &cohort.sites[0].patients[i];
        let a = &cohort.sites[1].patients[i];
        pseal_fixtures::population::stamp::stamp(&u.dir, &u.local_id, ukb).unwrap();
        pseal_fixtures::population::stamp::stamp(&a.dir, &a.local_id, akh).unwrap();
    }
    add_linkage_site(&world, UKB);
    add_linkage_site(&world, AKH);
    let ukb = world.export(UKB, &cohort.sites[0].dir, "usb-ukb");
    let akh = world.export(AKH, &cohort.sites[1].dir, "usb-akh");
    assert_eq!((ukb.len(), akh.len()), (cases().len(), cases().len()));
    let out = world.import(&ukb);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Setup {
        world,
        cohort,
        akh,
        outputs: vec![out],
    }
}

fn links(world: &World) -> Vec<serde_json::Value> {
    let out = cmd("pseal-central")
        .args(["links", "list", "--all", "--json", "--store"])
        .arg(world.store())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Pseudonym → (site, case index), from the store (library, passphrase).
fn pseudonyms(setup: &Setup) -> BTreeMap<String, (usize, usize)> {
    let pass = pseal::keys::Passphrase::new(PASSPHRASE.into()).unwrap();
    let mut store = pseal_central::Store::open(&setup.world.store(), &pass).unwrap();
    let mut out = BTreeMap::new();
    for (s, site) in [UKB, AKH].iter().enumerate() {
        for (i, p) in setup.cohort.sites[s].patients.iter().enumerate() {
            let id = pseal::identity::LocalId::new(&p.local_id).unwrap();
            let found = store.lookup_audited("default", site, &id, "test: who is who").unwrap();
            if let Some(pseudonym) = found.own {
                out.insert(pseudonym.to_string(), (s, i));
            }
        }
    }
    out
}

fn case_pair(link: &serde_json::Value, who: &BTreeMap<String, (usize, usize)>) -> (usize, usize) {
    let earlier = who[link["earlier"]["pseudonym"].as_str().unwrap()];
    let later = who[link["later"]["pseudonym"].as_str().unwrap()];
    assert_eq!((earlier.0, later.0), (0, 1), "earlier is UKB's, later AKH's");
    (earlier.1, later.1)
}

fn run(args: &[&str]) -> Output {
    cmd("pseal-central").args(args).output().unwrap()
}

fn accept(world: &World, id: i64, extra_env: &[(&str, &str)]) -> Output {
    let mut c = cmd("pseal-central");
    for (k, v) in extra_env {
        c.env(k, v);
    }
    c.args(["links", "accept", &id.to_string(), "--store"])
        .arg(world.store())
        .arg("--archive")
        .arg(world.archive())
        .arg("--bundles")
        .arg(world.dir.path().join("usb-ukb"))
        .arg("--bundles")
        .arg(world.dir.path().join("usb-akh"))
        .output()
        .unwrap()
}

fn undo(world: &World, id: i64) -> Output {
    cmd("pseal-central")
        .args(["links", "undo", &id.to_string(), "--store"])
        .arg(world.store())
        .arg("--archive")
        .arg(world.archive())
        .arg("--bundles")
        .arg(world.dir.path().join("usb-ukb"))
        .arg("--bundles")
        .arg(world.dir.path().join("usb-akh"))
        .output()
        .unwrap()
}

fn archive_snapshot(world: &World) -> Vec<(PathBuf, usize, u64)> {
    snapshot(&world.archive())
        .into_iter()
        .filter(|(p, _, _)| !p.starts_with(world.archive().join(".pseal-staging")))
        .collect()
}

/// The archive is exactly what index.csv lists, nothing in staging, the audit chain verifies.
fn assert_consistent(world: &World) {
    let rows = index_records(&world.archive());
    let listed: BTreeSet<PathBuf> = rows.iter().map(|r| world.archive().join(&r[7])).collect();
    assert_eq!(listed.len(), rows.len(), "no path twice");
    let on_disk: BTreeSet<PathBuf> = walkdir(&world.archive())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    assert_eq!(on_disk, listed, "no orphan and no missing file");
    // An import or merge removes its staging folder once it is empty.
    let staging = world.archive().join(".pseal-staging");
    assert!(!staging.exists() || walkdir(&staging).is_empty());
    cmd("pseal-central")
        .args(["audit", "--verify", "--store"])
        .arg(world.store())
        .assert()
        .success();
}

#[test]
fn two_sites_are_linked_as_the_truth_says_then_merged_rejected_and_undone() {
    let mut s = setup();
    let world = &s.world;
    // The lower threshold a little under its default, so that the twins come up for review too.
    let out = world.import_with(&["--auto-link", "--link-lower", "0.7"], &[], &s.akh);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("3 patients linked automatically, 2 links queued"),
        "{text}"
    );
    s.outputs.push(out);
    let who = pseudonyms(&s);
    let world = &s.world;

    // Proposed as the truth says: the clear matches linked, the typo and the twins queued, the
    // strangers not at all.
    let all = links(world);
    let by_case: BTreeMap<(usize, usize), &serde_json::Value> = all.iter().map(|l| (case_pair(l, &who), l)).collect();
    let status = |i: usize| by_case.get(&(i, i)).map(|l| l["status"].as_str().unwrap().to_string());
    assert_eq!(status(0).as_deref(), Some("linked"));
    assert_eq!(status(1).as_deref(), Some("linked"));
    assert_eq!(status(2).as_deref(), Some("linked"));
    assert_eq!(status(3).as_deref(), Some("queued"));
    assert_eq!(status(4).as_deref(), Some("queued"), "twins go to review");
    assert_eq!(by_case.len(), 5, "no other pair: {:?}", by_case.keys());
    for (i, (_, _, same)) in cases().iter().enumerate() {
        if !same {
            assert_ne!(
                status(i).as_deref(),
                Some("linked"),
                "case {i} must not be linked automatically"
            );
        }
    }
    assert!(by_case[&(2, 2)]["scores"]["birth_name_used"].as_bool().unwrap());
    assert_eq!(
        by_case[&(0, 0)]["scores"]["day"].as_f64(),
        Some(pseal_central::linkage::score::SWAPPED)
    );

    // The auto-linked patients' AKH studies are under UKB's pseudonym already.
    let rows = index_records(&world.archive());
    let under: BTreeSet<&str> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(under.len(), 6 + 3, "6 UKB patients + AKH's 3 unmatched ones");
    let retired_0 = by_case[&(0, 0)]["later"]["pseudonym"].as_str().unwrap().to_string();
    let survivor_0 = by_case[&(0, 0)]["earlier"]["pseudonym"].as_str().unwrap().to_string();
    assert!(!under.contains(retired_0.as_str()));
    let out = run(&["check", "--store", world.store().to_str().unwrap(), &retired_0]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("merged into {survivor_0}")));

    check_show(&s, by_case[&(0, 0)]["id"].as_i64().unwrap());
    let world = &s.world;

    // Accept the typo: AKH's studies move under UKB's pseudonym, intervals across both sites kept.
    let typo = by_case[&(3, 3)]["id"].as_i64().unwrap();
    check_missing_bundles(world, typo);
    let ukb_pseudonym = by_case[&(3, 3)]["earlier"]["pseudonym"].as_str().unwrap().to_string();
    let akh_pseudonym = by_case[&(3, 3)]["later"]["pseudonym"].as_str().unwrap().to_string();
    let before_accept = archive_snapshot(world);
    let index_before = index_records(&world.archive());
    let ukb_rows_before: Vec<_> = index_before
        .iter()
        .filter(|r| r[0] == *ukb_pseudonym)
        .cloned()
        .collect();
    let akh_ages_before: BTreeSet<String> = index_before
        .iter()
        .filter(|r| r[0] == *akh_pseudonym)
        .map(|r| r[8].to_string())
        .collect();
    let release_changes = |name: &str| -> String {
        let dir = world.dir.path().join(name);
        let out = run(&[
            "release",
            "--store",
            world.store().to_str().unwrap(),
            "--archive",
            world.archive().to_str().unwrap(),
            "--all",
            "--out-dir",
            dir.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // A DICOM release in a folder: its files under archive/.
        std::fs::read_to_string(dir.join("archive").join("CHANGES")).unwrap()
    };
    let before = release_changes("release-before-merge");
    assert!(!before.contains("merged into"), "{before}");
    let out = accept(world, typo, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{akh_pseudonym} merged into {ukb_pseudonym}")));
    // The next release tells researchers where the retired pseudonym's data went.
    let after = release_changes("release-after-merge");
    assert!(
        after.contains(&format!("{akh_pseudonym} merged into {ukb_pseudonym}")),
        "{after}"
    );
    s.outputs.push(out);
    let world = &s.world;
    assert_consistent(world);
    let index = index_records(&world.archive());
    assert!(
        !index.iter().any(|r| r[0] == *akh_pseudonym),
        "the retired pseudonym holds nothing"
    );
    let merged: Vec<_> = index.iter().filter(|r| r[0] == *ukb_pseudonym).collect();
    assert_eq!(
        merged.len(),
        2 * ukb_rows_before.len(),
        "both sites' studies under one pseudonym"
    );
    // Everything but the session columns: the merged patient's sessions are numbered again
    // over both sites' studies (session_index, days_since_first_session).
    let fixed = |r: &csv::StringRecord| -> Vec<String> {
        r.iter()
            .enumerate()
            .filter(|(i, _)| *i != 11 && *i != 12)
            .map(|(_, v)| v.to_string())
            .collect()
    };
    let ukb_fixed: Vec<Vec<String>> = ukb_rows_before.iter().map(&fixed).collect();
    let index_fixed: Vec<Vec<String>> = index.iter().map(&fixed).collect();
    for r in &ukb_fixed {
        assert!(index_fixed.contains(r), "UKB's rows are untouched");
    }
    let ages_after: BTreeSet<String> = merged
        .iter()
        .filter(|r| !ukb_fixed.contains(&fixed(r)))
        .map(|r| r[8].to_string())
        .collect();
    assert_eq!(
        ages_after, akh_ages_before,
        "age at scan stays what each site's birth date gives"
    );
    // Every study of the merged patient, from both sites, is shifted by the same offset.
    let pass = pseal::keys::Passphrase::new(PASSPHRASE.into()).unwrap();
    let store = pseal_central::Store::open(&world.store(), &pass).unwrap();
    let mut offsets = BTreeSet::new();
    for site in 0..2 {
        for study in &s.cohort.sites[site].patients[3].studies {
            let archived = store.secrets().archive_uid("default", &study.study_uid);
            let row = merged.iter().find(|r| r[1] == *archived).expect("study archived");
            let day = |t: &str| chrono::NaiveDate::parse_from_str(t, "%Y%m%d").unwrap();
            offsets.insert((day(&row[5]) - day(&study.study_date)).num_days());
        }
    }
    drop(store);
    assert_eq!(offsets.len(), 1, "one offset for both hospitals' studies: {offsets:?}");
    let out = run(&["check", "--store", world.store().to_str().unwrap(), &akh_pseudonym]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("merged into {ukb_pseudonym}")));
    // Accepting again changes nothing.
    let settled = archive_snapshot(world);
    assert!(accept(world, typo, &[]).status.success());
    assert_eq!(archive_snapshot(world), settled);

    // Reject the twins: nothing in the archive changes.
    let twins = by_case[&(4, 4)]["id"].as_i64().unwrap();
    let out = run(&[
        "links",
        "reject",
        &twins.to_string(),
        "--store",
        world.store().to_str().unwrap(),
        "--reason",
        "twins",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(archive_snapshot(world), settled);
    let out = run(&[
        "links",
        "undo",
        &twins.to_string(),
        "--store",
        world.store().to_str().unwrap(),
        "--archive",
        world.archive().to_str().unwrap(),
        "--bundles",
        ".",
    ]);
    assert_eq!(out.status.code(), Some(2), "a rejected link cannot be undone");
    assert!(String::from_utf8_lossy(&out.stderr).contains("only an accepted (linked) link can be undone"));

    // Undo the merge: the archive is again exactly what it was before.
    let out = undo(world, typo);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    s.outputs.push(out);
    let world = &s.world;
    assert_consistent(world);
    assert_eq!(
        archive_snapshot(world),
        before_accept,
        "undo restores every file and the index"
    );
    let out = run(&["check", "--store", world.store().to_str().unwrap(), &akh_pseudonym]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("merged"));

    // The audit chain has every step.
    let out = run(&["audit", "--store", world.store().to_str().unwrap()]);
    let audit = String::from_utf8_lossy(&out.stdout).to_string();
    for action in [
        "link-auto",
        "link-propose",
        "link-accept",
        "link-merge",
        "link-reject",
        "link-undo",
        "link-split",
    ] {
        assert!(audit.contains(action), "audit lacks {action}");
    }
    s.outputs.push(out);
    assert_nothing_identifying(&s);
}

/// `links show` of case 0's link: refused without a terminal (nothing audited), shown on one
/// (script(1) gives it a terminal) with both identities, and audited with its reason.
fn check_show(s: &Setup, link: i64) {
    let world = &s.world;
    let store = world.store();
    let args = |reason: &str| -> Vec<String> {
        vec![
            "links".into(),
            "show".into(),
            link.to_string(),
            "--store".into(),
            store.display().to_string(),
            "--bundles".into(),
            world.dir.path().join("usb-ukb").display().to_string(),
            "--bundles".into(),
            world.dir.path().join("usb-akh").display().to_string(),
            "--reason".into(),
            reason.into(),
        ]
    };
    let audit = |w: &World| {
        String::from_utf8_lossy(&run(&["audit", "--store", w.store().to_str().unwrap()]).stdout).to_string()
    };
    let out = cmd("pseal-central").args(args("case 1")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only on a terminal"));
    assert!(!audit(world).contains("link-show"));
    if std::process::Command::new("script").arg("--version").output().is_err() {
        say_skipped("script(1) is not installed; links show on a terminal was not run");
        return;
    }
    let line = std::iter::once(bin("pseal-central").display().to_string())
        .chain(args("incidental finding review 7"))
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let out = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("PSEAL_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    let (ukb, akh, _) = &cases()[0];
    for v in [&ukb.family_name, &akh.family_name, &ukb.birth_date, &akh.birth_date] {
        assert!(text.contains(v.as_deref().unwrap()), "{text}");
    }
    assert!(text.contains(&s.cohort.sites[0].patients[0].local_id));
    assert!(text.contains(&s.cohort.sites[1].patients[0].local_id));
    let log = audit(world);
    assert!(
        log.contains("link-show") && log.contains("incidental finding review 7"),
        "{log}"
    );
}

/// Accepting without the kept bundles names the files it needs and changes nothing.
fn check_missing_bundles(world: &World, queued: i64) {
    let before = archive_snapshot(world);
    let empty = world.dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = cmd("pseal-central")
        .args(["links", "accept", &queued.to_string(), "--store"])
        .arg(world.store())
        .arg("--archive")
        .arg(world.archive())
        .arg("--bundles")
        .arg(&empty)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bundles as received are needed") && err.contains("AKH-"),
        "{err}"
    );
    assert_eq!(archive_snapshot(world), before);
    assert!(links(world)
        .iter()
        .any(|l| l["id"] == queued && l["status"] == "queued"));
}

/// No name, birth date or local ID of the fixtures in the store folder, the archive, the export
/// folders (bundles are encrypted; reports must be clean) or any command's output.
fn assert_nothing_identifying(s: &Setup) {
    let mut values: BTreeSet<String> = BTreeSet::new();
    for (ukb, akh, _) in cases() {
        for r in [ukb, akh] {
            for v in r.values().into_iter().flatten() {
                if v.len() >= 4 {
                    values.insert(v.to_string());
                    values.insert(v.to_uppercase());
                }
            }
        }
    }
    for site in &s.cohort.sites {
        for p in &site.patients {
            values.insert(p.local_id.clone());
        }
    }
    let mut files: Vec<PathBuf> = walkdir(&s.world.store());
    files.extend(walkdir(&s.world.archive()));
    for outbox in ["usb-ukb", "usb-akh"] {
        files.extend(
            walkdir(&s.world.dir.path().join(outbox))
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "json")),
        );
    }
    assert!(files.len() > 20);
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        for v in &values {
            assert!(
                !contains(&bytes, v.as_bytes()),
                "{} holds an identifying value",
                f.display()
            );
        }
    }
    for out in &s.outputs {
        for v in &values {
            assert!(!contains(&out.stdout, v.as_bytes()) && !contains(&out.stderr, v.as_bytes()));
        }
    }
}

#[test]
fn a_merge_killed_at_any_step_converges_when_run_again() {
    let s = setup();
    assert!(s
        .world
        .import_with(&["--link-lower", "0.7"], &[], &s.akh)
        .status
        .success());
    let who = pseudonyms(&s);
    let typo = links(&s.world)
        .iter()
        .find(|l| case_pair(l, &who) == (3, 3))
        .map(|l| l["id"].as_i64().unwrap())
        .unwrap();
    // The end state of an uninterrupted merge, to compare every converged run with.
    let reference = copy_world(&s.world);
    assert!(accept(&reference, typo, &[]).status.success());
    let expected: Vec<Vec<String>> = index_records(&reference.archive())
        .iter()
        .map(|r| r.iter().map(str::to_string).collect())
        .collect();
    let steps = [
        "link-decided",
        "link-archive-file:2",
        "link-archive-synced",
        "link-committed",
        "link-cleaned",
        "indexed",
    ];
    for step in steps {
        let w = copy_world(&s.world);
        let out = accept(&w, typo, &[("PSEAL_TEST_ABORT_AT", step)]);
        assert!(!out.status.success(), "step {step}: the merge should have been killed");
        let out = accept(&w, typo, &[]);
        assert!(
            out.status.success(),
            "step {step}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_consistent(&w);
        let got: Vec<Vec<String>> = index_records(&w.archive())
            .iter()
            .map(|r| r.iter().map(str::to_string).collect())
            .collect();
        assert_eq!(got, expected, "step {step}: converged to another archive");
        assert_eq!(
            archive_snapshot_rel(&w),
            archive_snapshot_rel(&reference),
            "step {step}: other files"
        );
    }
    // An undo killed half-way converges too.
    let w = copy_world(&reference);
    let out = cmd("pseal-central")
        .env("PSEAL_TEST_ABORT_AT", "link-archive-synced")
        .args(["links", "undo", &typo.to_string(), "--store"])
        .arg(w.store())
        .arg("--archive")
        .arg(w.archive())
        .arg("--bundles")
        .arg(w.dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(undo(&w, typo).status.success());
    assert_consistent(&w);
    assert_eq!(archive_snapshot_rel(&w), archive_snapshot_rel(&copy_world(&s.world)));
}

fn copy_world(w: &World) -> World {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(w.dir.path(), dir.path());
    World {
        dir,
        recipient: w.recipient.clone(),
    }
}

fn archive_snapshot_rel(w: &World) -> Vec<(PathBuf, usize, u64)> {
    archive_snapshot(w)
        .into_iter()
        .map(|(p, n, h)| (p.strip_prefix(w.archive()).unwrap().to_path_buf(), n, h))
        .collect()
}

#[test]
fn a_site_without_linkage_changes_nothing() {
    let (world, cohort) = one_site_world(1, 1, false);
    let text = std::fs::read_to_string(world.config("SITE-A")).unwrap();
    assert!(!text.contains("linkage"), "{text}");
    let bundles = world.export("SITE-A", &cohort.sites[0].dir, "out");
    let report = std::fs::read_to_string(world.dir.path().join("out/export-report.json")).unwrap();
    assert!(!report.contains("linkage"));
    // The identity record is version 1 with exactly the three keys it always had.
    let plain = bundle_plaintext(&world.store(), &bundles[0]);
    let mut tar = tar::Archive::new(plain.as_slice());
    let mut sealed = Vec::new();
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy() == "identity.age" {
            std::io::Read::read_to_end(&mut e, &mut sealed).unwrap();
        }
    }
    let pass = pseal::keys::Passphrase::new(PASSPHRASE.into()).unwrap();
    let id = pseal::keys::StewardIdentity::read_encrypted(&world.store().join("steward-identity.age"), &pass).unwrap();
    let dec = age::Decryptor::new(sealed.as_slice()).unwrap();
    let mut r = dec
        .decrypt(std::iter::once(id.age_identity() as &dyn age::Identity))
        .unwrap();
    let header: ciborium::Value = ciborium::from_reader(&mut r).unwrap();
    let keys: Vec<String> = header
        .as_map()
        .unwrap()
        .iter()
        .map(|(k, _)| k.as_text().unwrap().to_string())
        .collect();
    assert_eq!(keys, ["version", "bundle_id", "local_id"]);
    assert_eq!(header.as_map().unwrap()[0].1.as_integer().map(i128::from), Some(1));
    assert!(world.import_with(&["--auto-link"], &[], &bundles).status.success());
    let conn = rusqlite::Connection::open(world.store().join("store.sqlite")).unwrap();
    for table in ["linkage_records", "linkage_blocks", "links", "aliases"] {
        let n: i64 = conn
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0, "{table}");
    }
}

#[test]
fn conflicting_values_in_a_patients_files_are_reported_without_values() {
    let world = World::new();
    let cohort = one_site_cohort(&world, 1, 2, false);
    add_linkage_site(&world, "SITE-A");
    let patient = &cohort.sites[0].patients[0];
    // The first study says Meier, the second Meyer (more files): Meyer is sealed.
    let studies: Vec<&Path> = patient.studies.iter().map(|s| s.dir.as_path()).collect();
    pseal_fixtures::population::stamp::stamp(
        studies[0],
        &patient.local_id,
        &record("Meier", "Ursula", "", "19590417", "F"),
    )
    .unwrap();
    pseal_fixtures::population::stamp::stamp(
        studies[1],
        &patient.local_id,
        &record("Meyer", "Ursula", "", "19590417", "F"),
    )
    .unwrap();
    let _ = world.export("SITE-A", &cohort.sites[0].dir, "out");
    let text = std::fs::read_to_string(world.dir.path().join("out/export-report.json")).unwrap();
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["linkage"]["sealed_fields"][0], "family name");
    assert_eq!(report["linkage"]["conflicts"][0]["patient"], 1);
    assert_eq!(report["linkage"]["conflicts"][0]["fields"]["family name"], 2);
    for v in ["Meier", "Meyer", "Ursula", "19590417"] {
        assert!(!text.contains(v), "the report holds {v}");
    }
    // The review report lists the sealed fields, never their values.
    let out = cmd("pseal")
        .args(["review", "--config"])
        .arg(world.config("SITE-A"))
        .arg("--input")
        .arg(&cohort.sites[0].dir)
        .arg("--out")
        .arg(world.dir.path().join("review"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let md = std::fs::read_to_string(world.dir.path().join("review/review-report.md")).unwrap();
    assert!(
        md.contains("family name, given names, birth name, birth date, sex"),
        "{md}"
    );
    let json = std::fs::read_to_string(world.dir.path().join("review/review-report.json")).unwrap();
    for v in ["Meier", "Meyer", "Ursula"] {
        assert!(!md.contains(v) && !json.contains(v));
    }
}
