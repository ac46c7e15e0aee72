//! Real-world files (pydicom's test corpus, under `../shared/data/realworld` next to the
//! workspace, or `PSEAL_REALWORLD_DIR`): every file that dicom-object opens is exported or
//! quarantined with a reason, never a panic; exported files write, re-open, and no longer hold
//! the patient's name or ID. Skipped with a message when the folder is absent.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::Duration;

use dicom_core::VR;
use dicom_object::OpenFileOptions;
use pseal::deid::{deidentify, DeidError};

use crate::deid_support::*;

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("PSEAL_REALWORLD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/realworld"));
    dir.is_dir().then_some(dir)
}

/// Open with dicom-object on a thread, giving up after a while: dicom-object 0.10 needs tens of
/// seconds on some malformed files (UN_sequence.dcm), which is not pseal's to test.
fn open(path: PathBuf) -> Result<dicom_object::DefaultDicomObject, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let opened = catch_unwind(|| OpenFileOptions::new().open_file(&path));
        let _ = tx.send(opened);
    });
    match rx.recv_timeout(Duration::from_secs(3)) {
        Ok(Ok(Ok(object))) => Ok(object),
        Ok(Ok(Err(e))) => Err(format!("not opened by dicom-object ({e})")),
        Ok(Err(_)) => Err("dicom-object panicked while opening (not pseal)".to_string()),
        Err(_) => Err("dicom-object took more than 3 s to open it; skipped".to_string()),
    }
}

/// The original Patient's Name and Patient ID, when long enough to search for.
fn identifiers(obj: &dicom_object::DefaultDicomObject) -> Vec<Vec<u8>> {
    [0x0010_0010, 0x0010_0020]
        .into_iter()
        .filter_map(|t| obj.get(tag(t)))
        .map(|e| text(e).into_bytes())
        .filter(|v| v.len() >= 5)
        .collect()
}

#[test]
fn real_world_files_are_exported_or_quarantined_never_a_panic() {
    let Some(dir) = corpus() else {
        say_skipped("no real-world corpus at ../shared/data/realworld (or set PSEAL_REALWORLD_DIR)");
        return;
    };
    let (profile, key) = (profile("default"), key());
    let mut panics = Vec::new();
    let mut leaks = Vec::new();
    let (mut exported, mut quarantined, mut refused, mut unreadable) = (0, 0, 0, 0);
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(&dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    files.sort();
    for path in files {
        let name = path.strip_prefix(&dir).unwrap_or(&path).display().to_string();
        let object = match open(path.clone()) {
            Ok(object) => object,
            Err(why) => {
                unreadable += 1;
                println!("{name}: {why}");
                continue;
            }
        };
        let originals = identifiers(&object);
        let result = catch_unwind(AssertUnwindSafe(|| deidentify(object, &profile, &key)));
        match result {
            Err(_) => {
                println!("{name}: PANIC in deidentify");
                panics.push(name);
            }
            Ok(Err(DeidError::Quarantined(reason))) => {
                quarantined += 1;
                println!("{name}: quarantined: {}", reason.code());
            }
            Ok(Err(e)) => {
                refused += 1;
                println!("{name}: refused: {e}");
            }
            Ok(Ok(out)) => {
                let mut bytes = Vec::new();
                match out.object.write_all(&mut bytes) {
                    Ok(()) => {
                        exported += 1;
                        let reopened = catch_unwind(|| reopen(&bytes)).is_ok();
                        println!(
                            "{name}: exported ({} bytes, re-opens: {reopened}, {} UIDs and {} dates captured)",
                            bytes.len(),
                            out.captured.uids.len(),
                            out.captured.values.len()
                        );
                        for id in &originals {
                            if contains(&bytes, id) {
                                leaks.push(name.clone());
                            }
                        }
                    }
                    Err(e) => {
                        refused += 1;
                        println!("{name}: de-identified but not writable by dicom-object: {e}");
                    }
                }
            }
        }
    }
    println!("exported {exported}, quarantined {quarantined}, refused {refused}, unreadable {unreadable}");
    assert!(panics.is_empty(), "deidentify panicked on {panics:?}");
    assert!(leaks.is_empty(), "patient name or ID left in {leaks:?}");
    assert!(exported > 0);
}

/// The pre-parse walk (`part10::survey`) follows dicom-rs's reading: on files nobody here wrote it
/// refuses none that dicom-object reads whole within reason, and where dicom-object needs more
/// than a few seconds (it reserves a declared length first) the walk refuses the file.
#[test]
fn the_walk_refuses_no_real_world_file_that_dicom_object_reads() {
    let Some(dir) = corpus() else {
        say_skipped("no real-world corpus at ../shared/data/realworld (or set PSEAL_REALWORLD_DIR)");
        return;
    };
    let mut wrongly_refused = Vec::new();
    let (mut both, mut walked_only, mut refused) = (0, 0, 0);
    for entry in walkdir::WalkDir::new(&dir).into_iter().filter_map(Result::ok) {
        let path = entry.path();
        if !entry.file_type().is_file() || !pseal::export::scan::is_part10(path).unwrap_or(false) {
            continue;
        }
        let name = path.strip_prefix(&dir).unwrap_or(path).display().to_string();
        let file = std::fs::File::open(path).unwrap();
        let size = file.metadata().unwrap().len();
        let walked = pseal::part10::survey(std::io::BufReader::new(file), size);
        match (walked, open(path.to_path_buf())) {
            (Ok(_), Ok(object)) => {
                both += 1;
                // The scan reads the local ID from the walk when it is plain ASCII: same answer as
                // dicom-object's text. (Where the file gives Patient ID a binary VR, dicom-object's
                // text is the bytes as numbers, "105\\100\\…"; the scan keeps the characters.)
                let element = object.element(tag(0x0010_0020)).ok();
                if let Some(vr) = element
                    .map(|e| e.vr())
                    .filter(|vr| !matches!(vr, VR::LO | VR::SH | VR::CS | VR::LT | VR::ST | VR::UT | VR::UC))
                {
                    println!("{name}: Patient ID has VR {vr:?}; the scan reads its characters");
                    continue;
                }
                let by_parse = element
                    .and_then(|e| e.to_str().ok())
                    .and_then(|s| pseal::identity::LocalId::new(&s));
                let by_scan = match pseal::export::scan::local_id_of(path, tag(0x0010_0020)) {
                    Ok(id) => id,
                    // The scan leaves DICOMDIRs out as such before looking for a local ID.
                    Err(e) => {
                        let why = pseal::export::instance::parser_reason(&e);
                        if why.contains("DICOMDIR") {
                            continue;
                        }
                        panic!("{name}: {why}");
                    }
                };
                assert_eq!(
                    by_scan.as_ref().map(|i| i.expose()),
                    by_parse.as_ref().map(|i| i.expose()),
                    "{name}: the scan's local ID differs from dicom-object's"
                );
            }
            (Ok(_), Err(why)) => {
                walked_only += 1;
                println!("{name}: walked; dicom-object: {why}");
            }
            (Err(e), Ok(_)) => {
                println!("{name}: REFUSED by the walk ({e}) but read by dicom-object");
                wrongly_refused.push(name);
            }
            (Err(e), Err(_)) => {
                refused += 1;
                println!("{name}: refused by both ({e})");
            }
        }
    }
    println!("read by both {both}, walked but unreadable {walked_only}, refused by both {refused}");
    assert!(
        wrongly_refused.is_empty(),
        "the walk refuses readable files: {wrongly_refused:?}"
    );
    assert!(both > 0);
}
