//! `pseal review` for the data-protection officer, and exports of real-world files nobody here wrote.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

fn tags_of(bytes: &[u8]) -> BTreeSet<(u16, u16)> {
    let obj = dicom_object::OpenFileOptions::new().from_reader(&bytes[128..]).unwrap();
    obj.iter().map(|e| (e.header().tag.0, e.header().tag.1)).collect()
}

#[test]
fn review_writes_what_export_would_send_with_reports() {
    let (world, cohort) = one_site_world(2, 1, true);
    let out = world.dir.path().join("review");
    let run = cmd("pseal")
        .arg("review")
        .arg("--config")
        .arg(world.config("SITE-A"))
        .arg("--input")
        .arg(&cohort.sites[0].dir)
        .arg("--out")
        .arg(&out)
        .arg("--json")
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    // --json: every stdout line is a JSON object, the last one the summary.
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&run.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.last().unwrap()["event"], "summary");

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("review-report.json")).unwrap()).unwrap();
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), cohort.spec.mr_instance_count());
    for f in files {
        let output = f["output"].as_str().unwrap();
        assert!(
            output.starts_with("patient-0") && output.contains("/instances/") && output.ends_with(".dcm"),
            "{output}"
        );
        assert!(out.join(output).exists());
        assert!(cohort.sites[0].dir.join(f["input"].as_str().unwrap()).exists());
    }
    let quarantined = report["quarantined"].as_array().unwrap();
    assert_eq!(quarantined.len(), 1, "the screenshot with burned-in text");
    assert!(quarantined[0]["reason"].as_str().unwrap().contains("allow_burned_in"));
    assert_eq!(report["sealed_identity"]["local_ids"], 2);
    assert!(report["sealed_identity"]["uids"].as_u64().unwrap() > 0);
    let md = std::fs::read_to_string(out.join("review-report.md")).unwrap();
    for needle in [
        "## What happened to each attribute",
        "(0010,0010)",
        "## Quarantined",
        "## What goes into the sealed record",
    ] {
        assert!(md.contains(needle), "review-report.md lacks {needle}");
    }

    // Nothing identifying in the reviewed files or the reports' values read from files.
    let identifying = cohort.identifying_values();
    for file in walkdir(&out)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
    {
        let bytes = std::fs::read(&file).unwrap();
        for v in &identifying {
            assert!(!contains(&bytes, v.as_bytes()), "{} holds {v}", file.display());
        }
    }

    // The same attributes as the instances export puts into a bundle.
    let bundles = world.export("SITE-A", &cohort.sites[0].dir, "outbox");
    let plain = bundle_plaintext(&world.store(), &bundles[0]);
    let mut archive = tar::Archive::new(plain.as_slice());
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    let mut in_bundle = Vec::new();
    entry.read_to_end(&mut in_bundle).unwrap();
    let reviewed = std::fs::read(out.join("patient-0001/instances/000001.dcm")).unwrap();
    assert_eq!(tags_of(&in_bundle), tags_of(&reviewed));
    // Same encoding; only the placeholder UIDs differ (another random key per run), and a
    // `2.25.` placeholder's decimal has 37 to 39 digits, so a UI value may differ by 2 bytes.
    let uids = tags_of(&reviewed).len();
    assert!(
        in_bundle.len().abs_diff(reviewed.len()) <= 2 * uids,
        "same encoding, only placeholder UIDs differ: {} vs {}",
        in_bundle.len(),
        reviewed.len()
    );
}

#[test]
fn every_real_world_file_is_exported_or_left_out_with_a_reason() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/realworld");
    if !source.exists() {
        crate::common::say_skipped(format!(
            "{} is not present (it sits beside the checkout in CI)",
            source.display()
        ));
        return;
    }
    let world = World::new();
    let input = world.dir.path().join("realworld");
    copy_tree(&source, &input);
    world.add_site("SITE-A", true);
    let out = world.dir.path().join("outbox");
    let run = cmd("pseal")
        .arg("export")
        .arg("--config")
        .arg(world.config("SITE-A"))
        .arg("--input")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.code() == Some(0) || run.status.code() == Some(1),
        "export crashed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("export-report.json")).unwrap()).unwrap();
    let exported = report["counts"]["exported"].as_u64().unwrap();
    let quarantined = report["quarantined"].as_array().unwrap();
    let skipped = report["skipped"].as_array().unwrap();
    let seen = report["counts"]["files_seen"].as_u64().unwrap();
    println!(
        "real-world files: {seen} seen, {exported} exported, {} quarantined, {} not DICOM",
        quarantined.len(),
        skipped.len()
    );
    for q in quarantined.iter().chain(skipped) {
        let reason = q["reason"].as_str().unwrap();
        assert!(!reason.is_empty());
        println!("  left out {}: {reason}", q["path"].as_str().unwrap());
    }
    assert_eq!(
        exported + quarantined.len() as u64 + skipped.len() as u64,
        seen,
        "every file is accounted for"
    );
    assert!(exported > 0);
    // What was exported imports cleanly.
    let bundles = bundles_in(&out);
    let imported = world.import(&bundles);
    println!("{}", String::from_utf8_lossy(&imported.stderr));
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
}

/// A file that declares more bytes than it holds (the 546-byte input that once made dicom-rs
/// reserve 3.6 GB) and a truncated copy of a real instance, dropped among a site's files: export
/// and review leave them out, naming the file and the reason, and carry on with the rest.
#[test]
fn hostile_and_truncated_files_are_left_out_and_the_rest_goes_on() {
    let (world, cohort) = one_site_world(2, 1, false);
    let site_dir = &cohort.sites[0].dir;
    let mr_files: Vec<_> = cohort
        .files
        .iter()
        .filter(|f| f.path.extension().is_some_and(|e| e == "dcm"))
        .collect();
    let hostile =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/deid/dicom-rs-reserves-declared-length.dcm");
    let mut bytes = vec![0u8; 128];
    bytes.extend(std::fs::read(hostile).unwrap());
    std::fs::write(site_dir.join("hostile.dcm"), &bytes).unwrap();
    let whole = std::fs::read(&mr_files[0].path).unwrap();
    std::fs::write(site_dir.join("truncated.dcm"), &whole[..whole.len() - 1000]).unwrap();

    let out = world.dir.path().join("outbox");
    let run = cmd("pseal")
        .args(["export", "--json", "--config"])
        .arg(world.config("SITE-A"))
        .arg("--input")
        .arg(site_dir)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.code() == Some(0) || run.status.code() == Some(1), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("export-report.json")).unwrap()).unwrap();
    assert_eq!(report["counts"]["exported"].as_u64().unwrap(), mr_files.len() as u64);
    let left_out: Vec<(String, String)> = report["quarantined"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (
                q["path"].as_str().unwrap().to_string(),
                q["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (name, needle) in [
        // A CP-246 sequence that once made dicom-rs reserve 3.7 GB: read now as dcmdump reads it
        // (part10::repair), and left out because it names no patient.
        ("hostile.dcm", "no local patient ID"),
        ("truncated.dcm", "declares"),
    ] {
        let Some((_, reason)) = left_out.iter().find(|(p, _)| p.ends_with(name)) else {
            panic!("{name} not listed as left out: {left_out:?}");
        };
        assert!(reason.contains(needle), "{name}: {reason}");
        assert!(stdout.contains(name), "the JSON stream names {name}");
    }
    assert!(world.import(&bundles_in(&out)).status.success());

    let reviewed = world.dir.path().join("review");
    cmd("pseal")
        .args(["review", "--config"])
        .arg(world.config("SITE-A"))
        .arg("--input")
        .arg(site_dir)
        .arg("--out")
        .arg(&reviewed)
        .output()
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reviewed.join("review-report.json")).unwrap()).unwrap();
    assert_eq!(report["counts"]["reviewed"].as_u64().unwrap(), mr_files.len() as u64);
    assert_eq!(report["counts"]["quarantined"].as_u64().unwrap(), 2);
}
