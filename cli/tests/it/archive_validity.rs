//! Archived and reviewed files are valid DICOM for the readers researchers use: `dciodvfy` (the
//! DICOM standard editor's validator, dicom3tools) finds no error in any archived or reviewed file
//! of a synthetic cohort of MR, CT and multi-frame Enhanced MR series, under pseal's default profile
//! and the Basic Profile alone; dcmdump and pydicom read every one. On the real-world corpus, no
//! archived file has a dciodvfy error its source did not have, and no file that dcmdump reads is
//! left out as unreadable. Each tool that is missing makes its part say SKIPPED.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use dicom_core::value::Value;
use dicom_dictionary_std::tags;

/// Whether a tool runs here (`probe`: arguments it answers without reading a file).
fn have(tool: &str, probe: &[&str]) -> bool {
    Command::new(tool)
        .args(probe)
        .stdin(std::process::Stdio::null())
        .output()
        .is_ok()
}

fn have_pydicom() -> bool {
    Command::new("python3")
        .args(["-c", "import pydicom"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// dciodvfy's error and warning lines for a file.
fn dciodvfy(path: &Path) -> (Vec<String>, Vec<String>) {
    let out = Command::new("dciodvfy").arg(path).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = |prefix: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_string)
            .collect()
    };
    (lines("Error"), lines("Warning"))
}

/// A site with `options`, enrolled at the world's steward; returns its configuration.
fn site(world: &World, name: &str, options: &str) -> PathBuf {
    let config = world.config(name);
    let out = cmd("pseal")
        .args([
            "init",
            "--site",
            name,
            "--recipient",
            &world.recipient,
            "--options",
            options,
            "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = last_line(&out);
    cmd("pseal-central")
        .args(["enroll", "--site", name, "--key", &key, "--store"])
        .arg(world.store())
        .assert()
        .success();
    config
}

fn export(config: &Path, input: &Path, out: &Path) -> std::process::Output {
    cmd("pseal")
        .arg("export")
        .arg("--config")
        .arg(config)
        .arg("--input")
        .arg(input)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

fn dcm_files(dir: &Path) -> Vec<PathBuf> {
    walkdir(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect()
}

/// Every file has no dciodvfy error; prints the warnings by message (values masked) and returns
/// how many there were.
fn assert_no_dciodvfy_error(what: &str, files: &[PathBuf]) -> usize {
    let mut errors = Vec::new();
    let mut warnings: BTreeMap<String, usize> = BTreeMap::new();
    for f in files {
        let (e, w) = dciodvfy(f);
        errors.extend(e.into_iter().map(|e| format!("{}: {e}", f.display())));
        for line in w {
            *warnings.entry(mask(&line)).or_default() += 1;
        }
    }
    let total: usize = warnings.values().sum();
    println!(
        "{what}: {} files, {} dciodvfy errors, {total} warnings",
        files.len(),
        errors.len()
    );
    for (line, n) in &warnings {
        println!("  {n:>4} {line}");
    }
    assert!(errors.is_empty(), "{what}: dciodvfy errors:\n{}", errors.join("\n"));
    total
}

/// A dciodvfy line with the values it quotes masked, so that the same finding on different
/// values (UIDs remapped, names replaced) reads the same.
fn mask(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut close = None;
    for c in line.chars() {
        match (close, c) {
            (None, '<') => {
                close = Some('>');
                out.push('<');
            }
            (None, '[') => {
                close = Some(']');
                out.push('[');
            }
            (Some(end), c) if c == end => {
                close = None;
                out.push(c);
            }
            (Some(_), _) => {}
            (None, c) => out.push(c),
        }
    }
    out
}

fn assert_dcmdump_and_pydicom_read(what: &str, files: &[PathBuf]) {
    if have("dcmdump", &["--version"]) {
        for f in files {
            let out = Command::new("dcmdump").arg("-q").arg(f).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && !err.contains("E:"),
                "{what}: dcmdump on {}: {err}",
                f.display()
            );
        }
    } else {
        say_skipped("dcmdump (Debian package dcmtk) is not installed");
    }
    if have_pydicom() {
        let script = "import sys, warnings, pydicom\nwarnings.simplefilter('error')\nfor f in sys.argv[1:]:\n    ds = pydicom.dcmread(f)\n    [e for e in ds.iterall()]\n    ds.pixel_array if 'numpy' in sys.modules and 'PixelData' in ds else None\n";
        let out = Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(files)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{what}: pydicom: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        say_skipped("pydicom is not installed (pip install pydicom)");
    }
}

#[test]
fn archived_and_reviewed_files_of_mr_ct_and_enhanced_mr_are_valid() {
    let world = World::new();
    let spec = pseal_fixtures::CohortSpec {
        sites: vec!["SITE-A".into()],
        patients_per_site: 2,
        timepoints: 1,
        shared_local_ids: 0,
        include_ct: true,
        include_enhanced_mr: true,
        ..pseal_fixtures::CohortSpec::small()
    };
    let cohort = pseal_fixtures::generate(&spec, &world.dir.path().join("hospitals")).unwrap();
    let input = &cohort.sites[0].dir;
    let kinds: std::collections::HashSet<_> = cohort.files.iter().map(|f| f.kind).collect();
    assert!(kinds.contains(&pseal_fixtures::FileKind::Ct) && kinds.contains(&pseal_fixtures::FileKind::EnhancedMr));
    let exportable: Vec<PathBuf> = cohort
        .files
        .iter()
        .filter(|f| {
            matches!(
                f.kind,
                pseal_fixtures::FileKind::Mr | pseal_fixtures::FileKind::Ct | pseal_fixtures::FileKind::EnhancedMr
            )
        })
        .map(|f| f.path.clone())
        .collect();
    let validator = have("dciodvfy", &["-help"]);
    if validator {
        // The fixtures themselves are valid: what pseal writes is judged against valid input.
        assert_no_dciodvfy_error("generated MR, CT and Enhanced MR", &exportable);
    } else {
        say_skipped("dciodvfy (Debian package dicom3tools) is not installed; only dcmdump and pydicom check the files");
    }

    for (n, options) in ["default", "none"].into_iter().enumerate() {
        let name = format!("SITE-{}", n + 1);
        let config = site(&world, &name, options);
        let outbox = world.dir.path().join(format!("out-{n}"));
        let run = export(&config, input, &outbox);
        assert!(
            run.status.code() == Some(0) || run.status.code() == Some(1),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let imported = world.import(&bundles_in(&outbox));
        assert!(
            imported.status.success(),
            "{}",
            String::from_utf8_lossy(&imported.stderr)
        );
        assert!(
            !world.archive().join(".pseal-staging").exists(),
            "a finished import leaves no staging folder"
        );
        let review = world.dir.path().join(format!("review-{n}"));
        let out = cmd("pseal")
            .arg("review")
            .arg("--config")
            .arg(&config)
            .arg("--input")
            .arg(input)
            .arg("--out")
            .arg(&review)
            .output()
            .unwrap();
        assert!(out.status.code() == Some(0) || out.status.code() == Some(1));
        let reviewed = dcm_files(&review);
        assert_eq!(
            reviewed.len(),
            exportable.len(),
            "every MR, CT and Enhanced MR file is reviewed"
        );
        // The reviewed files name no SOP Class missing from the IOD tables.
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(review.join("review-report.json")).unwrap()).unwrap();
        assert_eq!(report["without_iod_data"], serde_json::json!([]), "{options}");
        if validator {
            assert_no_dciodvfy_error(&format!("reviewed with {options}"), &reviewed);
        }
        assert_dcmdump_and_pydicom_read(&format!("reviewed with {options}"), &reviewed);
    }
    let archived = dcm_files(&world.archive());
    assert_eq!(archived.len(), 2 * exportable.len());
    // Nothing identifying of the cohort (names, IDs, institution, device serials, UIDs of the new
    // series and their performed procedure steps...) in any archived or reviewed file; dates only
    // in reviewed files, since a shifted date may equal another patient's true one.
    let identifying = cohort.identifying_values();
    let is_date = |v: &str| v.len() == 8 && v.bytes().all(|b| b.is_ascii_digit());
    for n in 0..2 {
        for file in dcm_files(&world.dir.path().join(format!("review-{n}"))) {
            let bytes = without_random_uids(&std::fs::read(&file).unwrap());
            for v in &identifying {
                assert!(!contains(&bytes, v.as_bytes()), "{v:?} in {}", file.display());
            }
        }
    }
    for file in &archived {
        let bytes = std::fs::read(file).unwrap();
        for v in identifying.iter().filter(|v| !is_date(v)) {
            assert!(!contains(&bytes, v.as_bytes()), "{v:?} in {}", file.display());
        }
    }
    let classes: BTreeSet<String> = archived
        .iter()
        .map(|f| {
            let obj = dicom_object::open_file(f).unwrap();
            obj.element(tags::SOP_CLASS_UID)
                .unwrap()
                .to_str()
                .unwrap()
                .trim_end_matches('\0')
                .to_string()
        })
        .collect();
    assert_eq!(
        classes,
        [
            pseal_fixtures::CT_IMAGE_STORAGE,
            pseal_fixtures::MR_IMAGE_STORAGE,
            pseal_fixtures::ENHANCED_MR_IMAGE_STORAGE
        ]
        .into_iter()
        .map(str::to_string)
        .collect()
    );
    if validator {
        assert_no_dciodvfy_error("archived (default and none)", &archived);
    }
    assert_dcmdump_and_pydicom_read("archived", &archived);
}

/// The bytes with every `2.25.` UID's digits blanked: placeholders are random decimal numbers,
/// which hold any eight-digit date now and then.
fn without_random_uids(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut i = 0;
    while i + 5 <= out.len() {
        if &out[i..i + 5] == b"2.25." {
            let mut j = i + 5;
            while j < out.len() && out[j].is_ascii_digit() {
                out[j] = b'x';
                j += 1;
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// What identifies an instance across de-identification without reading an identifier: its SOP
/// Class and its pixel data (copied verbatim), else a few structural attributes.
fn fingerprint(obj: &dicom_object::DefaultDicomObject) -> String {
    let text = |tag| {
        obj.element(tag)
            .ok()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
            .unwrap_or_default()
    };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    match obj.element(tags::PIXEL_DATA).map(|e| e.value()) {
        Ok(Value::PixelSequence(seq)) => {
            for fragment in seq.fragments() {
                fragment.hash(&mut hasher);
            }
        }
        Ok(Value::Primitive(p)) => p.to_bytes().hash(&mut hasher),
        _ => {
            for tag in [
                tags::INSTANCE_NUMBER,
                tags::MODALITY,
                tags::ROWS,
                tags::NUMBER_OF_FRAMES,
            ] {
                text(tag).hash(&mut hasher);
            }
        }
    }
    // The meta group's class: a source may carry its SOP Class UID as UN, which pseal writes as UI.
    let class = obj.meta().media_storage_sop_class_uid.trim_end_matches(['\0', ' ']);
    format!("{class}:{:016x}", hasher.finish())
}

#[test]
fn real_world_files_gain_no_dciodvfy_error_and_none_dcmdump_reads_is_unreadable() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/realworld");
    if !source.exists() {
        say_skipped(format!(
            "{} is not present (it sits beside the checkout in CI)",
            source.display()
        ));
        return;
    }
    let world = World::new();
    let input = world.dir.path().join("realworld");
    copy_tree(&source, &input);
    let config = site(&world, "SITE-R", "default");
    let outbox = world.dir.path().join("outbox");
    let run = export(&config, &input, &outbox);
    assert!(run.status.code() == Some(0) || run.status.code() == Some(1));
    let imported = world.import(&bundles_in(&outbox));
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );

    // Left out as unreadable: only what dcmdump cannot read either.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(outbox.join("export-report.json")).unwrap()).unwrap();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for q in report["quarantined"]
        .as_array()
        .unwrap()
        .iter()
        .chain(report["skipped"].as_array().unwrap())
    {
        let reason = q["reason"].as_str().unwrap();
        let kind = reason.split([':', '(']).next().unwrap_or(reason).trim().to_string();
        *reasons.entry(kind).or_default() += 1;
        if reason.starts_with("unreadable") {
            if have("dcmdump", &["--version"]) {
                let path = input.join(q["path"].as_str().unwrap());
                let out = Command::new("dcmdump").arg("-q").arg(&path).output().unwrap();
                let clean = out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("E:");
                assert!(
                    !clean,
                    "{} is left out as unreadable ({reason}) but dcmdump reads it",
                    path.display()
                );
            } else {
                say_skipped("dcmdump (Debian package dcmtk) is not installed: unreadable files not cross-checked");
            }
        }
    }
    println!("left out, by reason: {reasons:?}");

    if !have("dciodvfy", &["-help"]) {
        say_skipped("dciodvfy (Debian package dicom3tools) is not installed");
        return;
    }
    let mut sources: HashMap<String, Vec<PathBuf>> = HashMap::new();
    for path in walkdir(&input) {
        if let Ok(obj) = pseal::part10::open_bytes(&std::fs::read(&path).unwrap()) {
            sources.entry(fingerprint(&obj)).or_default().push(path);
        }
    }
    let masked = |errors: Vec<String>| -> BTreeSet<String> { errors.iter().map(|e| mask(e)).collect() };
    let (mut before, mut after, mut added) = (0, 0, Vec::new());
    let archived = dcm_files(&world.archive());
    assert!(!archived.is_empty());
    for file in &archived {
        let obj = dicom_object::open_file(file).unwrap();
        let candidates = sources.get(&fingerprint(&obj)).cloned().unwrap_or_default();
        let print = fingerprint(&obj);
        let class = print.split(':').next().unwrap_or_default();
        let same_class: Vec<(&String, &Vec<PathBuf>)> = sources.iter().filter(|(k, _)| k.starts_with(class)).collect();
        assert!(
            !candidates.is_empty(),
            "no source found for {} ({print}); sources of the class: {same_class:?}",
            file.display()
        );
        let mine = masked(dciodvfy(file).0);
        // The source whose errors cover the archived file's best (several sources may share pixels).
        let best = candidates
            .iter()
            .map(|c| {
                let theirs = masked(dciodvfy(c).0);
                let extra: Vec<String> = mine.difference(&theirs).cloned().collect();
                (extra, theirs.len(), c.clone())
            })
            .min_by_key(|(extra, _, _)| extra.len())
            .unwrap();
        before += best.1;
        after += mine.len();
        if !best.0.is_empty() {
            added.push(format!("{} (from {}): {:?}", file.display(), best.2.display(), best.0));
        }
    }
    println!(
        "real world: {} archived files, dciodvfy errors {before} in their sources, {after} archived",
        archived.len()
    );
    assert!(
        added.is_empty(),
        "archived files with errors their source did not have:\n{}",
        added.join("\n")
    );
}

/// Instances of a SOP Class that pseal's IOD tables do not hold keep the Type-blind choice, and
/// the review report says so, per class.
#[test]
fn review_names_sop_classes_without_iod_data() {
    let world = World::new();
    let cohort = one_site_cohort(&world, 1, 1, false);
    // One MR file relabelled with a private SOP Class (pseal exports it: nothing quarantines it).
    const PRIVATE_CLASS: &str = "1.2.826.0.1.3680043.10.999.0.42";
    let file = cohort
        .files
        .iter()
        .find(|f| f.kind == pseal_fixtures::FileKind::Mr)
        .unwrap();
    let mut obj = dicom_object::open_file(&file.path).unwrap();
    obj.put(dicom_core::DataElement::new(
        tags::SOP_CLASS_UID,
        dicom_core::VR::UI,
        dicom_core::value::PrimitiveValue::from(PRIVATE_CLASS),
    ));
    obj.update_meta(|m| m.media_storage_sop_class_uid = PRIVATE_CLASS.to_string());
    obj.write_to_file(&file.path).unwrap();
    let config = site(&world, "SITE-A", "default");
    let review = world.dir.path().join("review");
    let out = cmd("pseal")
        .arg("review")
        .arg("--config")
        .arg(&config)
        .arg("--input")
        .arg(&cohort.sites[0].dir)
        .arg("--out")
        .arg(&review)
        .output()
        .unwrap();
    assert!(out.status.code() == Some(0) || out.status.code() == Some(1));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(review.join("review-report.json")).unwrap()).unwrap();
    assert_eq!(
        report["without_iod_data"],
        serde_json::json!([{ "sop_class_uid": PRIVATE_CLASS, "instances": 1 }])
    );
    let md = std::fs::read_to_string(review.join("review-report.md")).unwrap();
    assert!(
        md.contains(&format!(
            "1 instance of SOP Class {PRIVATE_CLASS} is not in pseal's IOD tables"
        )),
        "{md}"
    );
}
