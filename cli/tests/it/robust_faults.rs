//! Faults: a full disk during export and during import (a small tmpfs mounted in the test; root
//! is needed, the test says SKIPPED otherwise), and two exports into one folder at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use pseal_fixtures::{generate, CohortSpec};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of `size` mounted at `dir`, unmounted when dropped (also when the test panics).
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir: dir.to_path_buf() }),
            Ok(o) => {
                crate::common::say_skipped(format!(
                    "cannot mount a tmpfs (needs root): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
                None
            }
            Err(e) => {
                crate::common::say_skipped(format!("cannot run mount: {e}"));
                None
            }
        }
    }

    fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remounting {} with {size}", self.dir.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

fn cohort(world: &World, patients: usize, rows: u16, slices: usize) -> (pseal_fixtures::Cohort, usize) {
    let root = world.dir.path().join("hospitals");
    let spec = CohortSpec {
        sites: vec!["SITE-A".into()],
        patients_per_site: patients,
        timepoints: 1,
        series: 2,
        slices,
        rows,
        columns: rows,
        shared_local_ids: 0,
        include_burned_in: false,
        include_non_dicom: false,
        ..CohortSpec::small()
    };
    (generate(&spec, &root).unwrap(), spec.mr_instance_count())
}

fn export_cmd(world: &World, input: &Path, out: &Path) -> std::process::Output {
    cmd("pseal")
        .arg("export")
        .arg("--config")
        .arg(world.config("SITE-A"))
        .arg("--input")
        .arg(input)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Every `*.pseal` in `dir` opens and verifies completely with the steward's key.
fn all_bundles_verify(world: &World, dir: &Path) -> usize {
    let pass = pseal::keys::Passphrase::new(PASSPHRASE.into()).unwrap();
    let id = pseal::keys::StewardIdentity::read_encrypted(&world.store().join("steward-identity.age"), &pass).unwrap();
    let staging = tempfile::tempdir().unwrap();
    let bundles = bundles_in(dir);
    for b in &bundles {
        pseal::bundle::BundleReader::new(&id)
            .open(b, staging.path())
            .unwrap_or_else(|e| panic!("{} does not verify: {e}", b.display()));
    }
    bundles.len()
}

#[test]
fn a_full_disk_during_export_leaves_no_partial_bundle_and_a_later_run_succeeds() {
    let world = World::new();
    world.add_site("SITE-A", true);
    // Three patients of about 1.3 MB of DICOM each: the 2 MiB folder fills during the second.
    let (cohort, instances) = cohort(&world, 3, 256, 5);
    let out = world.dir.path().join("outbox");
    let Some(fs) = Tmpfs::mount(&out, "2m") else { return };

    let run = export_cmd(&world, &cohort.sites[0].dir, &out);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert_ne!(run.status.code(), Some(0), "the export cannot have succeeded:\n{text}");
    assert!(
        text.contains(&out.display().to_string()) && text.contains("the disk is full"),
        "the error names the folder and the cause:\n{text}"
    );
    // Nothing half-written under a final name, and no temporary file left behind.
    let left = names(&out);
    for n in &left {
        assert!(
            n.ends_with(".pseal") || n == "export-report.json",
            "leftover {n} in the output folder: {left:?}"
        );
    }
    let complete = all_bundles_verify(&world, &out);
    assert!(complete < 3, "the disk was full: not every bundle can be there");

    // With space, the same export into the same folder succeeds.
    fs.resize("64m");
    let run = export_cmd(&world, &cohort.sites[0].dir, &out);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(all_bundles_verify(&world, &out), complete + 3);
    // And what reaches the steward imports: every patient, every instance, once.
    let out2 = world.import(&bundles_in(&out));
    assert!(out2.status.success(), "{}", String::from_utf8_lossy(&out2.stderr));
    let rows = csv::Reader::from_path(world.archive().join("index.csv"))
        .unwrap()
        .records()
        .count();
    assert_eq!(rows, instances);
}

#[test]
fn a_full_disk_during_import_is_refused_clearly_and_a_later_run_converges() {
    let world = World::new();
    world.add_site("SITE-A", true);
    // Three patients of 8 instances of 128×128 (about 270 KB each in the archive, as much again
    // staged while importing): a 1 MiB archive folder fills during the third.
    let (cohort, instances) = cohort(&world, 3, 128, 4);
    let bundles = world.export("SITE-A", &cohort.sites[0].dir, "out");
    assert_eq!(bundles.len(), 3);
    let Some(fs) = Tmpfs::mount(&world.archive(), "600k") else {
        return;
    };

    let out = world.import(&bundles);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    // Refusals are results: on standard output.
    let refused: Vec<&str> = stdout.lines().filter(|l| l.starts_with("REFUSED ")).collect();
    assert!(!refused.is_empty(), "{stdout}");
    eprintln!("{}", refused.join("\n"));
    for line in &refused {
        assert!(
            line.contains("the disk is full") && line.contains(&world.archive().display().to_string()),
            "the refusal names the archive folder and the cause: {line}"
        );
        assert!(
            bundles.iter().any(|b| line.contains(&b.display().to_string())),
            "the refusal names the bundle: {line}"
        );
    }
    // What was committed is complete: index.csv lists only files that exist; nothing is left in
    // staging; the audit chain verifies.
    let index = world.archive().join("index.csv");
    let committed: Vec<PathBuf> = if index.exists() {
        csv::Reader::from_path(&index)
            .unwrap()
            .records()
            .map(|r| world.archive().join(&r.unwrap()[7]))
            .collect()
    } else {
        Vec::new()
    };
    for p in &committed {
        assert!(p.is_file(), "{} is listed but missing", p.display());
    }
    assert!(committed.len() < instances);
    assert!(staging_left(&world.archive()).is_empty());
    let store_after_failure = snapshot(&world.store());
    cmd("pseal-central")
        .arg("audit")
        .arg("--verify")
        .arg("--store")
        .arg(world.store())
        .assert()
        .success();

    // Still no space: a re-run refuses again and commits nothing more.
    let again = world.import(&bundles);
    assert_eq!(again.status.code(), Some(1));
    let store_again = snapshot(&world.store());
    let db = |s: &[(PathBuf, usize, u64)]| s.iter().filter(|(p, _, _)| p.ends_with("store.sqlite")).count();
    assert_eq!(db(&store_again), db(&store_after_failure));

    // With space, a re-run converges on the state of an uninterrupted import.
    fs.resize("64m");
    let last = world.import(&bundles);
    assert!(last.status.success(), "{}", String::from_utf8_lossy(&last.stderr));
    let rows: Vec<csv::StringRecord> = csv::Reader::from_path(&index)
        .unwrap()
        .records()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(rows.len(), instances);
    let listed: BTreeSet<PathBuf> = rows.iter().map(|r| world.archive().join(&r[7])).collect();
    let on_disk: BTreeSet<PathBuf> = walkdir(&world.archive())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    assert_eq!(on_disk, listed, "no orphan and no missing file");
    let pseudonyms: BTreeSet<&str> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(pseudonyms.len(), 3, "one pseudonym per patient, none minted twice");
    assert!(staging_left(&world.archive()).is_empty());
    cmd("pseal-central")
        .arg("audit")
        .arg("--verify")
        .arg("--store")
        .arg(world.store())
        .assert()
        .success();
}

#[test]
fn two_exports_into_one_folder_at_once_write_bundles_that_all_verify() {
    let world = World::new();
    world.add_site("SITE-A", true);
    let (cohort, instances) = cohort(&world, 3, 64, 3);
    let out = world.dir.path().join("shared-outbox");
    let spawn = || {
        Command::new(bin("pseal"))
            .arg("export")
            .arg("--config")
            .arg(world.config("SITE-A"))
            .arg("--input")
            .arg(&cohort.sites[0].dir)
            .arg("--out")
            .arg(&out)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    assert_eq!(all_bundles_verify(&world, &out), 6, "three bundles from each export");
    let left = names(&out);
    assert!(
        // The export that finished second kept the first one's report under a dated name.
        left.iter().all(|n| n.ends_with(".pseal")
            || n == "export-report.json"
            || (n.starts_with("export-report-") && n.ends_with(".json"))),
        "{left:?}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("export-report.json")).unwrap()).unwrap();
    assert_eq!(report["counts"]["bundles"], 3, "the report is one whole report");
    let imported = world.import(&bundles_in(&out));
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let rows = csv::Reader::from_path(world.archive().join("index.csv"))
        .unwrap()
        .records()
        .count();
    assert_eq!(rows, instances, "the same patients twice land on the same files");
}
