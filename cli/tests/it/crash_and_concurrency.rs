//! A killed import converges on re-run; two imports at once on one store are safe.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// A store with one enrolled site and bundles for two patients.
fn world_with_bundles() -> (World, Vec<PathBuf>, usize) {
    let (world, cohort) = one_site_world(2, 1, false);
    let bundles = world.export("SITE-A", &cohort.sites[0].dir, "out");
    assert_eq!(bundles.len(), 2);
    (world, bundles, cohort.spec.mr_instance_count())
}

/// The archive is exactly what the index lists, once each, with nothing left in staging, one
/// pseudonym per patient, and a valid audit chain.
fn assert_converged(world: &World, expected_instances: usize, expected_patients: usize) {
    let mut r = csv::Reader::from_path(world.archive().join("index.csv")).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), expected_instances);
    let listed: BTreeSet<PathBuf> = rows.iter().map(|row| world.archive().join(&row[7])).collect();
    assert_eq!(listed.len(), expected_instances, "no path twice");
    let pseudonyms: BTreeSet<&str> = rows.iter().map(|row| &row[0]).collect();
    assert_eq!(pseudonyms.len(), expected_patients, "one pseudonym per patient");
    let on_disk: BTreeSet<PathBuf> = walkdir(&world.archive())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    assert_eq!(on_disk, listed, "no orphan and no missing file");
    let staging = world.archive().join(".pseal-staging");
    assert!(!staging.exists(), "no temporary file left, and no empty staging folder");
    cmd("pseal-central")
        .arg("audit")
        .arg("--verify")
        .arg("--store")
        .arg(world.store())
        .assert()
        .success();
}

#[test]
fn an_import_killed_at_any_step_converges_on_rerun() {
    let cases: Vec<String> = [
        "verified",
        "minted",
        "archive-file:1",
        "archive-file:4",
        "archive-file:7",
        "archive-synced",
        "committed:1",
        "committed:2",
        "indexed",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for step in cases {
        let (world, bundles, instances) = world_with_bundles();
        let out = world.import_with(&[], &[("PSEAL_TEST_ABORT_AT", &step)], &bundles);
        assert!(!out.status.success(), "step {step}: the import should have been killed");
        let out = world.import(&bundles);
        assert!(
            out.status.success(),
            "step {step}: re-run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_converged(&world, instances, 2);
        // And a third run changes nothing.
        let before = snapshot(&world.archive());
        assert!(world.import(&bundles).status.success());
        assert_eq!(
            snapshot(&world.archive()),
            before,
            "step {step}: a further run changed the archive"
        );
    }
}

#[test]
fn two_imports_at_once_are_safe() {
    let (world, bundles, instances) = world_with_bundles();
    let spawn = |list: Vec<PathBuf>| {
        std::process::Command::new(bin("pseal-central"))
            .env("PSEAL_PASSPHRASE", PASSPHRASE)
            .arg("import")
            .arg("--store")
            .arg(world.store())
            .arg("--archive")
            .arg(world.archive())
            .args(list)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Overlapping sets, in opposite orders.
    let a = spawn(bundles.clone());
    let b = spawn(bundles.iter().rev().cloned().collect());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    assert_converged(&world, instances, 2);
}
