//! Shared helpers for the end-to-end tests: the real binaries, a steward, sites, scans.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use std::process::Output;

pub const PASSPHRASE: &str = "correct horse battery staple for tests";

/// The path of a workspace binary, built (or found up to date) once per test process: a test
/// must never run a stale binary of another package.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        let package = if name == "pseal" { "pseal-cli" } else { name };
        let mut build = std::process::Command::new(env!("CARGO"));
        build.args(["build", "--quiet", "-p", package, "--bin", name]);
        if name == "pseal-central" {
            // The crash points (PSEAL_TEST_ABORT_AT) exist only with this feature, which
            // `cargo test --workspace` also unifies in (cli/Cargo.toml): same build, no rebuild.
            build.args(["--features", "fault-injection"]);
        }
        // Cargo gives this test process its package's variables (CARGO_PKG_NAME=pseal-cli, …).
        // Build scripts that watch them (ring's, under rustls) would see them change between this
        // build and the outer `cargo test` and rebuild ring, rustls, ureq and pseal-central each
        // time, minutes on a busy machine: build as the outer cargo did.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("CARGO_PKG_")
                || key.starts_with("CARGO_MANIFEST_")
                || key.starts_with("CARGO_BIN_")
                || ["CARGO_CRATE_NAME", "CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR"].contains(&key.as_ref())
            {
                build.env_remove(key.as_ref());
            }
        }
        if dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().unwrap();
        assert!(status.success(), "building {name}");
        built.push(name.to_string());
    }
    dir.join(name)
}

pub fn cmd(name: &str) -> Command {
    let mut c = Command::new(bin(name));
    c.env("PSEAL_PASSPHRASE", PASSPHRASE);
    c
}

pub fn last_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A steward store plus enrolled sites, in one temporary folder.
pub struct World {
    pub dir: tempfile::TempDir,
    pub recipient: String,
}

impl World {
    pub fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let out = cmd("pseal-central")
            .arg("init")
            .arg("--store")
            .arg(dir.path().join("store"))
            .assert()
            .success();
        let recipient = last_line(&out.get_output().clone());
        assert!(recipient.starts_with("age1"), "{recipient}");
        World { dir, recipient }
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn archive(&self) -> PathBuf {
        self.dir.path().join("archive")
    }

    pub fn config(&self, site: &str) -> PathBuf {
        self.dir.path().join(site).join("pseal.toml")
    }

    /// `pseal init` for a site; returns its public key. Enrols it when `enroll`.
    pub fn add_site(&self, site: &str, enroll: bool) -> String {
        let out = cmd("pseal")
            .args(["init", "--site", site, "--recipient", &self.recipient, "--config"])
            .arg(self.config(site))
            .assert()
            .success();
        let key = last_line(&out.get_output().clone());
        assert!(key.starts_with("psealsite1"), "{key}");
        if enroll {
            cmd("pseal-central")
                .args(["enroll", "--site", site, "--key", &key, "--store"])
                .arg(self.store())
                .assert()
                .success();
        }
        key
    }

    /// Exports `input` for `site` into a fresh outbox; returns the bundles written.
    pub fn export(&self, site: &str, input: &Path, outbox: &str) -> Vec<PathBuf> {
        let out = self.dir.path().join(outbox);
        cmd("pseal")
            .arg("export")
            .arg("--config")
            .arg(self.config(site))
            .arg("--input")
            .arg(input)
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        let bundles = bundles_in(&out);
        assert_export_folder_is_clean(&out, &bundles);
        bundles
    }

    pub fn import(&self, bundles: &[PathBuf]) -> Output {
        self.import_with(&[], &[], bundles)
    }

    /// `pseal-central import` of this world's store and archive with extra flags and environment.
    pub fn import_with(&self, flags: &[&str], env: &[(&str, &str)], bundles: &[PathBuf]) -> Output {
        let mut c = cmd("pseal-central");
        for (k, v) in env {
            c.env(k, v);
        }
        c.arg("import")
            .arg("--store")
            .arg(self.store())
            .arg("--archive")
            .arg(self.archive())
            .args(flags)
            .args(bundles)
            .output()
            .unwrap()
    }

    /// `pseal-central SUBCOMMAND --store STORE ARGS…` for this world.
    pub fn central(&self, subcommand: &str, args: &[&str]) -> Output {
        cmd("pseal-central")
            .arg(subcommand)
            .arg("--store")
            .arg(self.store())
            .args(args)
            .output()
            .unwrap()
    }
}

/// A cohort at one site, `SITE-A`, under the world; `extras` adds the screenshot with burned-in
/// text and the non-DICOM files.
pub fn one_site_cohort(world: &World, patients: usize, timepoints: usize, extras: bool) -> pseal_fixtures::Cohort {
    let spec = pseal_fixtures::CohortSpec {
        sites: vec!["SITE-A".into()],
        patients_per_site: patients,
        timepoints,
        shared_local_ids: 0,
        include_burned_in: extras,
        include_non_dicom: extras,
        ..pseal_fixtures::CohortSpec::small()
    };
    pseal_fixtures::generate(&spec, &world.dir.path().join("hospitals")).unwrap()
}

/// A fresh world with `SITE-A` initialised and enrolled, and a one-site cohort of its patients: the
/// set-up most end-to-end tests start from.
pub fn one_site_world(patients: usize, timepoints: usize, extras: bool) -> (World, pseal_fixtures::Cohort) {
    let world = World::new();
    world.add_site("SITE-A", true);
    let cohort = one_site_cohort(&world, patients, timepoints, extras);
    (world, cohort)
}

/// The rows of the archive's index.csv.
pub fn index_records(archive: &Path) -> Vec<csv::StringRecord> {
    csv::Reader::from_path(archive.join("index.csv"))
        .unwrap()
        .records()
        .map(|r| r.unwrap())
        .collect()
}

pub fn bundles_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pseal"))
        .collect();
    v.sort();
    v
}

/// Every regular file under `dir` with its size and a hash of its bytes, sorted by path (for
/// "unchanged" checks; a hash keeps a failing comparison readable).
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, usize, u64)> {
    if !dir.exists() {
        return Vec::new();
    }
    let mut v: Vec<(PathBuf, usize, u64)> = walkdir(dir)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            // SQLite's shared-memory index and write-ahead log are transient.
            !name.ends_with("-shm") && !name.ends_with("-wal") && name != "store.lock"
        })
        .map(|p| {
            use std::hash::{Hash, Hasher};
            let b = std::fs::read(&p).unwrap();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            b.hash(&mut h);
            (p, b.len(), h.finish())
        })
        .collect();
    v.sort();
    v
}

pub fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// Files left in an archive's staging folder (none when the folder is gone, as a finished import
/// leaves it).
pub fn staging_left(archive: &Path) -> Vec<PathBuf> {
    let staging = archive.join(".pseal-staging");
    if staging.exists() {
        walkdir(&staging)
    } else {
        Vec::new()
    }
}

/// Copies a folder tree.
pub fn copy_tree(from: &Path, to: &Path) {
    for p in walkdir(from) {
        let rel = p.strip_prefix(from).unwrap();
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&p, &dest).unwrap();
    }
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Decrypts a bundle with the store's identity (library path) and returns the plaintext tar.
pub fn bundle_plaintext(store: &Path, bundle: &Path) -> Vec<u8> {
    use std::io::Read;
    let pass = pseal::keys::Passphrase::new(PASSPHRASE.into()).unwrap();
    let id = pseal::keys::StewardIdentity::read_encrypted(&store.join("steward-identity.age"), &pass).unwrap();
    let file = std::fs::File::open(bundle).unwrap();
    let dec = age::Decryptor::new_buffered(std::io::BufReader::new(file)).unwrap();
    let r = dec
        .decrypt(std::iter::once(id.age_identity() as &dyn age::Identity))
        .unwrap();
    let mut z = zstd::stream::read::Decoder::new(r).unwrap();
    let mut out = Vec::new();
    z.read_to_end(&mut out).unwrap();
    out
}

/// Says, visibly, that a test left part of its work out: libtest swallows `eprintln!` from a
/// passing test, but not a direct write to the process's standard error.
pub fn say_skipped(why: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

/// After a successful export, `out` holds the bundles and the report and nothing else (no
/// temporary bundle or identity record left behind by the threads that finish bundles), and the
/// report lists exactly the bundles in the folder, each once.
pub fn assert_export_folder_is_clean(out: &Path, bundles: &[PathBuf]) {
    let mut names: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected: Vec<String> = bundles
        .iter()
        .map(|b| b.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    expected.push("export-report.json".into());
    expected.sort();
    assert_eq!(names, expected, "only bundles and the report in {}", out.display());
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("export-report.json")).unwrap()).unwrap();
    let mut listed: Vec<String> = report["bundles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["file"].as_str().unwrap().to_string())
        .collect();
    listed.sort();
    let mut on_disk: Vec<String> = expected.into_iter().filter(|n| n.ends_with(".pseal")).collect();
    on_disk.sort();
    assert_eq!(listed, on_disk, "the report lists every bundle written, once");
}
