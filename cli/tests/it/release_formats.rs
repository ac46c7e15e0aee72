//! Releases in both formats through the real binaries (issue 13): the BIDS release of the
//! synthetic cohort passes the BIDS validator, its images match the DICOM geometry, it leaks no
//! identifying value and no date, and it lists the series no rule matches; both formats open with
//! stock `age` and `tar` and carry README, participants and checksums; a release is reproducible;
//! `index.csv` has the columns researchers filter on, also for an archive made before them.
//!
//! Tests that need dcm2niix, the BIDS validator (`bids-validator-deno`), nibabel or the stock
//! tools say `SKIPPED:` and do what they can without them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Two sites, two patients each, two sessions, six series per study (T1, T1 after contrast, T2,
/// FLAIR, a diffusion trace the default rules exclude, and SWI, which no rule matches), exported
/// and imported.
fn imported_cohort() -> (World, pseal_fixtures::Cohort) {
    let world = World::new();
    let spec = pseal_fixtures::CohortSpec {
        series: 6,
        ..pseal_fixtures::CohortSpec::small()
    };
    let cohort = pseal_fixtures::generate(&spec, &world.dir.path().join("hospitals")).unwrap();
    for site in &cohort.sites {
        world.add_site(&site.site, true);
        let bundles = world.export(&site.site, &site.dir, &format!("out-{}", site.site));
        let out = world.import(&bundles);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    (world, cohort)
}

fn release(world: &World, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = cmd("pseal-central");
    for (k, v) in env {
        c.env(k, v);
    }
    c.arg("release")
        .arg("--store")
        .arg(world.store())
        .arg("--archive")
        .arg(world.archive())
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn researcher(world: &World) -> (PathBuf, String) {
    use age::secrecy::ExposeSecret;
    let id = age::x25519::Identity::generate();
    let key = world.dir.path().join("researcher.key");
    std::fs::write(&key, format!("{}\n", id.to_string().expose_secret())).unwrap();
    (key, id.to_public().to_string())
}

fn tsv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    lines
        .map(|l| {
            let fields: Vec<&str> = l.split('\t').collect();
            assert_eq!(fields.len(), header.len(), "{}: {l}", path.display());
            header
                .iter()
                .map(|h| h.to_string())
                .zip(fields.iter().map(|f| f.to_string()))
                .collect()
        })
        .collect()
}

fn index_rows(archive: &Path) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(archive.join("index.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            header
                .iter()
                .map(String::from)
                .zip(r.unwrap().iter().map(String::from))
                .collect()
        })
        .collect()
}

/// Decompressed content of a file (`.nii.gz` files are searched inside).
fn content(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    if path.to_string_lossy().ends_with(".gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        bytes
    }
}

/// Text with every run of 20 or more digits, letters a–f and dots blanked: UIDs and hashes, in
/// which an eight-digit date occurs by chance (archive UIDs are random in every run).
fn without_long_numbers(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut start = 0;
    let numeric = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'.';
    for i in 0..=out.len() {
        if i == out.len() || !numeric(out[i]) {
            if i - start >= 20 {
                out[start..i].fill(b' ');
            }
            start = i + 1;
        }
    }
    out
}

/// `sha256sum -c SHA256SUMS` in `dir`, which must list every other file.
fn checksums_cover_everything(dir: &Path) {
    let listed: BTreeSet<String> = std::fs::read_to_string(dir.join("SHA256SUMS"))
        .unwrap()
        .lines()
        .map(|l| l.split_once("  ").unwrap().1.to_string())
        .collect();
    let present: BTreeSet<String> = walkdir(dir)
        .iter()
        .map(|p| p.strip_prefix(dir).unwrap().to_string_lossy().into_owned())
        .filter(|p| p != "SHA256SUMS")
        .collect();
    assert_eq!(listed, present, "SHA256SUMS lists every file of {}", dir.display());
    if have("sha256sum") {
        let out = Command::new("sha256sum")
            .args(["-c", "--quiet", "SHA256SUMS"])
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }
}

#[test]
fn a_bids_release_of_the_cohort_validates_matches_the_dicom_geometry_and_leaks_nothing() {
    if !have("dcm2niix") {
        say_skipped("dcm2niix is not installed (.ci/run installs the Debian package): the BIDS release was not made");
        return;
    }
    let (world, cohort) = imported_cohort();
    let out_dir = world.dir.path().join("release-bids");
    let stdout = ok(&release(
        &world,
        &["--all", "--format", "bids", "--out-dir", out_dir.to_str().unwrap()],
        &[],
    ));
    let root = out_dir.join("bids");
    let index = index_rows(&world.archive());

    // Every series of the archive is accounted for, once, and the known ones went where the
    // default rules send them.
    let series = tsv(&root.join("sourcedata/series.tsv"));
    let archived: BTreeSet<&str> = index.iter().map(|r| r["series_uid"].as_str()).collect();
    let listed: Vec<&str> = series.iter().map(|r| r["series_uid"].as_str()).collect();
    assert_eq!(listed.iter().copied().collect::<BTreeSet<_>>(), archived);
    assert_eq!(listed.len(), archived.len(), "each series listed once");
    let expected = [
        ("t1_mprage_sag", "converted", "_T1w.nii.gz"),
        ("t1_mprage_sag_KM", "converted", "_ce-gadolinium_T1w.nii.gz"),
        ("t2_tse_tra", "converted", "_T2w.nii.gz"),
        ("t2_flair_tra", "converted", "_FLAIR.nii.gz"),
        ("ep2d_diff_tra_TRACEW", "excluded", ""),
        ("swi_tra_SWI", "unmatched", ""),
    ];
    let sessions = cohort.patients().map(|p| p.studies.len()).sum::<usize>();
    for (description, outcome, file) in expected {
        let mine: Vec<_> = series
            .iter()
            .filter(|r| r["series_description"] == description)
            .collect();
        assert_eq!(mine.len(), sessions, "{description}: one per session");
        for r in mine {
            assert_eq!(r["outcome"], outcome, "{r:?}");
            if outcome == "converted" {
                let nii = r["files"].split(' ').find(|f| f.ends_with(".nii.gz")).unwrap();
                assert!(
                    nii.ends_with(&format!("{}_{}{file}", r["participant_id"], r["session_id"])),
                    "{nii}"
                );
                assert!(nii.starts_with(&format!("{}/{}/anat/", r["participant_id"], r["session_id"])));
                assert!(root.join(nii).is_file());
            }
        }
    }
    // The unmatched series are reported on the command's output too, never silently dropped.
    let unmatched_lines = stdout.lines().filter(|l| l.starts_with("unmatched: ")).count();
    assert_eq!(unmatched_lines, sessions, "{stdout}");
    assert!(stdout.contains("(swi_tra_SWI): no rule matched"), "{stdout}");

    // Participants and sessions: labels from pseudonyms, ages and sexes from the index, days
    // since the first session from the shifted dates.
    let participants = tsv(&root.join("participants.tsv"));
    assert_eq!(participants.len(), cohort.patients().count());
    for p in &participants {
        let pseudonym = &p["pseudonym"];
        assert_eq!(p["participant_id"], format!("sub-{}", pseudonym.replace('-', "")));
        let mine: Vec<_> = index.iter().filter(|r| &r["pseudonym"] == pseudonym).collect();
        let first = mine.iter().find(|r| r["session_index"] == "1").unwrap();
        assert_eq!(p["age"], first["patient_age"][..3].trim_start_matches('0'));
        assert_eq!(p["sex"], first["patient_sex"]);
        let sub = &p["participant_id"];
        let ses = tsv(&root.join(sub).join(format!("{sub}_sessions.tsv")));
        let dates: BTreeMap<String, String> = mine
            .iter()
            .map(|r| {
                (
                    format!("ses-{:02}", r["session_index"].parse::<u32>().unwrap()),
                    r["study_date"].clone(),
                )
            })
            .collect();
        assert_eq!(ses.len(), dates.len());
        let day = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y%m%d").unwrap();
        let first_date = day(dates.values().min().unwrap());
        for s in &ses {
            let expected = (day(&dates[&s["session_id"]]) - first_date).num_days();
            assert_eq!(s["days_since_first_session"], expected.to_string());
            let scans = tsv(&root
                .join(sub)
                .join(&s["session_id"])
                .join(format!("{sub}_{}_scans.tsv", s["session_id"])));
            assert_eq!(scans.len(), 4, "four converted images per session");
        }
    }

    // No identifying value of the fixtures, and no date at all (not even a shifted one), in any
    // file name or file (compressed NIfTI searched decompressed).
    let mut forbidden = cohort.identifying_values();
    forbidden.extend(index.iter().map(|r| r["study_date"].clone()));
    forbidden.sort();
    forbidden.dedup();
    let files = walkdir(&root);
    assert!(files.len() > 2 * 4 * sessions, "{} files", files.len());
    for file in &files {
        let name = file.strip_prefix(&root).unwrap().to_string_lossy().into_owned();
        let bytes = content(file);
        let text = without_long_numbers(&bytes);
        for v in &forbidden {
            assert!(!name.contains(v.as_str()), "{name} names {v:?}");
            let date = v.len() == 8 && v.bytes().all(|b| b.is_ascii_digit());
            let haystack = if date && !name.ends_with(".nii.gz") {
                &text
            } else {
                &bytes
            };
            assert!(!contains(haystack, v.as_bytes()), "{name} holds {v:?}");
        }
    }
    let sidecar: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            files
                .iter()
                .find(|f| f.to_string_lossy().ends_with("_T2w.json"))
                .unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    for key in sidecar.as_object().unwrap().keys() {
        assert!(
            !key.contains("Date") && !key.starts_with("Institution") && key != "StationName",
            "{key}"
        );
    }
    let description: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("dataset_description.json")).unwrap()).unwrap();
    let tools: Vec<&str> = description["GeneratedBy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["Name"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["pseal", "dcm2niix"]);
    checksums_cover_everything(&root);

    // The BIDS validator: no error (its warnings are printed).
    if have("bids-validator-deno") {
        let started = std::time::Instant::now();
        let v = Command::new("bids-validator-deno")
            .args(["--format", "json"])
            .arg(&root)
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&v.stdout)
            .unwrap_or_else(|e| panic!("validator output: {e}: {}", String::from_utf8_lossy(&v.stderr)));
        let issues = report["issues"]["issues"].as_array().unwrap();
        let mut by_kind: BTreeMap<(String, String), usize> = BTreeMap::new();
        for i in issues {
            let code = format!(
                "{} {}",
                i["code"].as_str().unwrap_or(""),
                i["subCode"].as_str().unwrap_or("")
            );
            *by_kind
                .entry((i["severity"].as_str().unwrap_or("").to_string(), code))
                .or_default() += 1;
        }
        use std::io::Write;
        let mut err = std::io::stderr();
        let _ = writeln!(
            err,
            "bids-validator-deno took {:.1} s:",
            started.elapsed().as_secs_f64()
        );
        for ((severity, code), n) in &by_kind {
            let _ = writeln!(err, "  {severity} {code} ×{n}");
        }
        let errors: Vec<_> = issues.iter().filter(|i| i["severity"] == "error").collect();
        assert!(errors.is_empty(), "the BIDS validator found errors: {errors:#?}");
    } else {
        say_skipped(
            "bids-validator-deno is not installed (pip install bids-validator-deno): the release was not validated",
        );
    }

    // Shape and orientation: every image's voxels are the DICOM pixels at the same place in space.
    let probe = Command::new("python3")
        .args(["-c", "import nibabel, pydicom, numpy"])
        .output();
    if probe.is_ok_and(|o| o.status.success()) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/release_support/check_nifti.py");
        let spec = &cohort.spec;
        let check = Command::new("python3")
            .arg(script)
            .arg(&root)
            .arg(world.archive())
            .args([spec.rows.to_string(), spec.columns.to_string(), spec.slices.to_string()])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&check.stdout);
        assert!(
            check.status.success(),
            "{said}\n{}",
            String::from_utf8_lossy(&check.stderr)
        );
        assert_eq!(said.lines().last(), Some(format!("ok {}", sessions * 4).as_str()));
    } else {
        say_skipped("python3 with nibabel, pydicom and numpy is not available: NIfTI geometry not checked");
    }
}

#[test]
fn both_formats_open_with_stock_age_and_tar_and_are_reproducible() {
    for tool in ["age", "tar", "zstd"] {
        if !have(tool) {
            say_skipped(format!("`{tool}` is not installed (.ci/run installs it)"));
            return;
        }
    }
    let (world, cohort) = imported_cohort();
    let (key, recipient) = researcher(&world);
    let bids = have("dcm2niix");
    if !bids {
        say_skipped("dcm2niix is not installed: only the DICOM format was opened");
    }
    let formats: &[(&str, &str)] = if bids {
        &[
            ("dicom", "age -d -i {key} {file} | tar -x"),
            ("bids", "age -d -i {key} {file} | tar -x"),
        ]
    } else {
        &[("dicom", "age -d -i {key} {file} | tar -x")]
    };
    let epoch = [("SOURCE_DATE_EPOCH", "1790000000")];
    for (format, open) in formats {
        let file = world.dir.path().join(format!("release-{format}.age"));
        ok(&release(
            &world,
            &[
                "--all",
                "--format",
                format,
                "--to",
                &recipient,
                "--out",
                file.to_str().unwrap(),
            ],
            &epoch,
        ));
        let into = world.dir.path().join(format!("opened-{format}"));
        std::fs::create_dir_all(&into).unwrap();
        let command = open
            .replace("{key}", &key.display().to_string())
            .replace("{file}", &file.display().to_string());
        let out = Command::new("sh")
            .arg("-c")
            .arg(&command)
            .current_dir(&into)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let root = into.join(if *format == "dicom" { "archive" } else { "bids" });
        let readme = std::fs::read_to_string(root.join("README")).unwrap();
        assert!(
            readme.contains("made with pseal") && readme.contains("2026-09-21"),
            "{readme}"
        );
        assert!(readme.contains("Contact: [not configured"), "{readme}");
        let participants = tsv(&root.join("participants.tsv"));
        assert_eq!(participants.len(), cohort.patients().count());
        assert!(root.join("participants.json").is_file());
        checksums_cover_everything(&root);
        if *format == "dicom" {
            // The DICOM layout as before, plus the documents; the index's dictionary describes
            // every column.
            let index = index_rows(&root);
            assert_eq!(index.len(), cohort.spec.mr_instance_count());
            let dictionary: serde_json::Value =
                serde_json::from_slice(&std::fs::read(root.join("index.json")).unwrap()).unwrap();
            for column in pseal_central::archive::INDEX_COLUMNS {
                assert!(dictionary[column]["Description"].is_string(), "{column}");
            }
            for r in &index {
                assert!(root.join(&r["path"]).is_file());
            }
        }

        // The same archive and selection give the same tar, byte for byte (the release date is
        // fixed by SOURCE_DATE_EPOCH; age encrypts each time with a new key, so compare inside).
        let again = world.dir.path().join(format!("again-{format}.age"));
        ok(&release(
            &world,
            &[
                "--all",
                "--format",
                format,
                "--to",
                &recipient,
                "--out",
                again.to_str().unwrap(),
            ],
            &epoch,
        ));
        let plain = |f: &Path| {
            let out = Command::new("age")
                .arg("-d")
                .arg("-i")
                .arg(&key)
                .arg(f)
                .output()
                .unwrap();
            assert!(out.status.success());
            out.stdout
        };
        assert!(plain(&file) == plain(&again), "{format}: two releases differ");
    }

    // The release is audited with its format and checksum.
    let audit = world.central("audit", &["--json"]);
    let releases: Vec<serde_json::Value> = String::from_utf8_lossy(&audit.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["action"] == "release")
        .collect();
    assert_eq!(releases.len(), formats.len() * 2);
    let detail: serde_json::Value = serde_json::from_str(releases[0]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["format"], "dicom");
    assert_eq!(detail["patients"], cohort.patients().count());
    assert_eq!(detail["sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn index_lists_sessions_and_scanner_columns_also_for_an_archive_made_before_them() {
    let (world, cohort) = one_site_world(1, 3, false);
    let bundles = world.export("SITE-A", &cohort.sites[0].dir, "out");
    assert!(world.import(&bundles).status.success());
    let patient = &cohort.sites[0].patients[0];
    let check = |rows: &[BTreeMap<String, String>]| {
        assert_eq!(rows.len(), cohort.spec.mr_instance_count());
        let mut dates: Vec<&str> = rows.iter().map(|r| r["study_date"].as_str()).collect();
        dates.sort();
        dates.dedup();
        let day = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y%m%d").unwrap();
        for r in rows {
            let session = dates.iter().position(|d| *d == r["study_date"]).unwrap() + 1;
            assert_eq!(r["session_index"], session.to_string(), "sessions in date order");
            assert_eq!(
                r["days_since_first_session"],
                (day(&r["study_date"]) - day(dates[0])).num_days().to_string()
            );
            let study = patient
                .studies
                .iter()
                .find(|s| s.series.iter().any(|x| x.description == r["series_description"]))
                .unwrap();
            let series = study
                .series
                .iter()
                .find(|x| x.description == r["series_description"])
                .unwrap();
            assert_eq!(r["series_number"], series.number.to_string());
            assert!(r["instance_number"].parse::<u32>().unwrap() >= 1);
            assert_eq!(r["manufacturer"], cohort.sites[0].institution.manufacturer);
            assert_eq!(r["model"], cohort.sites[0].institution.model);
            assert_eq!(r["field_strength"], cohort.sites[0].institution.field_strength);
            assert!(r["sequence_name"].starts_with('*'), "{r:?}");
            assert!(r["slice_thickness"].parse::<f64>().unwrap() > 0.0);
            assert_eq!(r["rows"], cohort.spec.rows.to_string());
            assert_eq!(r["columns"], cohort.spec.columns.to_string());
        }
        // The first eleven columns keep their names and order.
        let header = std::fs::read_to_string(world.archive().join("index.csv")).unwrap();
        assert!(header.starts_with(
            "pseudonym,study_uid,series_uid,sop_uid,modality,study_date,series_description,path,patient_age,patient_sex,domain,session_index,"
        ));
    };
    check(&index_rows(&world.archive()));

    // A store from before schema 2: the columns do not exist and the index lacks them. The next
    // import (here: of a bundle already imported) adds the columns, reads the details back from the
    // archived files and rewrites the index.
    {
        let conn = rusqlite::Connection::open(world.store().join("store.sqlite")).unwrap();
        conn.execute_batch("DROP INDEX instances_by_patient").unwrap();
        for c in [
            "study_time",
            "series_number",
            "instance_number",
            "manufacturer",
            "model",
            "field_strength",
            "sequence_name",
            "slice_thickness",
            "image_rows",
            "image_columns",
        ] {
            conn.execute_batch(&format!("ALTER TABLE instances DROP COLUMN {c}"))
                .unwrap();
        }
        conn.execute_batch(
            "UPDATE meta SET value = '1' WHERE key = 'schema_version'; DELETE FROM meta WHERE key = 'details_complete';",
        )
        .unwrap();
    }
    let old_header = "pseudonym,study_uid,series_uid,sop_uid,modality,study_date,series_description,path,patient_age,patient_sex,domain\n";
    std::fs::write(world.archive().join("index.csv"), old_header).unwrap();
    let out = world.import(&bundles);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    check(&index_rows(&world.archive()));
}

/// A release only reads the archive: it takes no store lock and must leave the staging folder, where
/// an import running beside it keeps its not-yet-committed files, alone.
#[test]
fn a_release_leaves_an_import_in_progress_alone_and_refuses_a_folder_that_is_not_the_archive() {
    let world = World::new();
    let cohort = one_site_cohort(&world, 1, 1, false);
    world.add_site("SITE-A", true);
    let bundles = world.export("SITE-A", &cohort.sites[0].dir, "out");
    assert!(world.import(&bundles).status.success());

    let staging = world.archive().join(".pseal-staging");
    std::fs::create_dir_all(&staging).unwrap();
    let in_flight = staging.join("import-in-progress.tmp");
    std::fs::write(&in_flight, b"an import's file not yet renamed into place").unwrap();
    let out_dir = world.dir.path().join("release-dicom");
    ok(&release(
        &world,
        &["--all", "--format", "dicom", "--out-dir", out_dir.to_str().unwrap()],
        &[],
    ));
    assert!(
        in_flight.exists(),
        "the release emptied the staging folder of a running import"
    );
    assert_eq!(
        index_rows(&out_dir.join("archive")).len(),
        cohort.spec.mr_instance_count(),
        "the release has every archived instance"
    );

    // A folder that is not this store's archive is refused and left as it was.
    let stranger = world.dir.path().join("not-an-archive");
    std::fs::create_dir_all(&stranger).unwrap();
    std::fs::write(stranger.join("notes.txt"), b"x").unwrap();
    let out = cmd("pseal-central")
        .arg("release")
        .arg("--store")
        .arg(world.store())
        .arg("--archive")
        .arg(&stranger)
        .args(["--all", "--format", "dicom", "--out-dir"])
        .arg(world.dir.path().join("release-2"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a pseal archive"), "{err}");
    assert!(
        !stranger.join(".pseal-staging").exists(),
        "a release created a staging folder"
    );
}

#[test]
fn a_bids_release_without_dcm2niix_says_how_to_install_it_and_writes_nothing() {
    let world = World::new();
    let out_dir = world.dir.path().join("release");
    // Found neither on PATH nor through the variable: checked before the store is opened.
    let out = cmd("pseal-central")
        .env("PATH", "/nonexistent")
        .env_remove("PSEAL_DCM2NIIX")
        .arg("release")
        .arg("--store")
        .arg(world.store())
        .arg("--archive")
        .arg(world.archive())
        .args(["--all", "--format", "bids", "--out-dir"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs dcm2niix, which was not found on PATH"), "{err}");
    assert!(
        err.contains("apt install dcm2niix") && err.contains("pip install dcm2niix"),
        "{err}"
    );
    assert!(!out_dir.exists());
    // A program named explicitly that is not dcm2niix.
    let out = release(
        &world,
        &[
            "--all",
            "--format",
            "bids",
            "--dcm2niix",
            "/bin/true",
            "--out-dir",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/bin/true does not report a dcm2niix version"));
    // A rule file with a mistake names the file, the rule and the reason.
    let rules = world.dir.path().join("my-rules.toml");
    std::fs::write(
        &rules,
        "format = 1\n[[rule]]\nname = \"t1\"\ndatatype = \"anat\"\nsuffix = \"T1 w\"\n",
    )
    .unwrap();
    let out = release(
        &world,
        &[
            "--all",
            "--format",
            "bids",
            "--bids-rules",
            rules.to_str().unwrap(),
            "--out-dir",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("my-rules.toml, rule 1 (t1): suffix 'T1 w'"), "{err}");
    assert!(!out_dir.exists());
}

#[test]
fn a_series_dcm2niix_cannot_convert_is_listed_with_its_reason_and_kept_as_dicom() {
    let (world, cohort) = one_site_world(1, 1, false);
    let bundles = world.export("SITE-A", &cohort.sites[0].dir, "out");
    assert!(world.import(&bundles).status.success());
    // A converter that reports a version but converts nothing (as dcm2niix does with files it
    // cannot read).
    let fake = world.dir.path().join("dcm2niix");
    std::fs::write(
        &fake,
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo \"Chris Rorden's dcm2niiX version v1.0.20990101\"; exit 3; fi\necho 'Error: Unable to convert this series'\nexit 2\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out_dir = world.dir.path().join("release");
    let stdout = ok(&release(
        &world,
        &[
            "--all",
            "--format",
            "bids",
            "--bids-keep-unconverted",
            "--out-dir",
            out_dir.to_str().unwrap(),
        ],
        &[("PSEAL_DCM2NIIX", fake.to_str().unwrap())],
    ));
    let root = out_dir.join("bids");
    let series = tsv(&root.join("sourcedata/series.tsv"));
    assert_eq!(series.len(), cohort.spec.series);
    for r in &series {
        assert_eq!(r["outcome"], "failed", "{r:?}");
        assert!(
            r["reason"].contains("dcm2niix wrote no image (exit status 2): Error: Unable to convert this series"),
            "{r:?}"
        );
        let kept = root.join(&r["files"]);
        assert_eq!(walkdir(&kept).len().to_string(), r["instances"], "kept as DICOM: {r:?}");
    }
    assert!(stdout.contains("failed: sub-"), "{stdout}");
    // Nothing converted: no participant in BIDS terms, and the README says why the series are kept.
    assert!(tsv(&root.join("participants.tsv")).is_empty());
    let readme = std::fs::read_to_string(root.join("README")).unwrap();
    assert!(
        readme.contains("failed to convert: 2") && readme.contains("sourcedata/dicom"),
        "{readme}"
    );
    checksums_cover_everything(&root);
    // No scratch folder or temporary file is left beside the release.
    let beside: Vec<String> = std::fs::read_dir(world.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".pseal-release"))
        .collect();
    assert!(beside.is_empty(), "{beside:?}");
    // --json: progress lines, then the summary with the series outcomes.
    let json_dir = world.dir.path().join("release-json");
    let stdout = ok(&release(
        &world,
        &[
            "--all",
            "--format",
            "bids",
            "--json",
            "--out-dir",
            json_dir.to_str().unwrap(),
        ],
        &[("PSEAL_DCM2NIIX", fake.to_str().unwrap())],
    ));
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let summary = &lines.last().unwrap()["release"];
    assert_eq!(summary["format"], "bids");
    assert_eq!(summary["series"]["failed"], cohort.spec.series);
    assert_eq!(summary["not_converted"].as_array().unwrap().len(), cohort.spec.series);
    assert_eq!(summary["not_converted"][0]["outcome"], "failed");
    assert!(lines.iter().any(|l| l["event"] == "phase" && l["name"] == "release"));

    // An existing output is never overwritten.
    let out = release(
        &world,
        &["--all", "--format", "bids", "--out-dir", out_dir.to_str().unwrap()],
        &[("PSEAL_DCM2NIIX", fake.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));

    // An archive file gone missing: the release stops with the file named, and leaves nothing.
    let index = index_rows(&world.archive());
    let lost = world.archive().join(&index[index.len() / 2]["path"]);
    std::fs::remove_file(&lost).unwrap();
    for format in ["dicom", "bids"] {
        let target = world.dir.path().join(format!("damaged-{format}"));
        let out = release(
            &world,
            &["--all", "--format", format, "--out-dir", target.to_str().unwrap()],
            &[("PSEAL_DCM2NIIX", fake.to_str().unwrap())],
        );
        assert_eq!(out.status.code(), Some(2), "{format}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&lost.display().to_string()), "{format}: {err}");
        assert!(!err.contains(".pseal-release"), "{format}: no temporary name in {err}");
        assert!(!target.exists());
    }
    let beside: Vec<String> = std::fs::read_dir(world.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".pseal-release"))
        .collect();
    assert!(beside.is_empty(), "a failed release leaves nothing: {beside:?}");
}
