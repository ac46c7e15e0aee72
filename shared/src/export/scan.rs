//! Finds the DICOM files under an input folder and groups them by local patient ID.
//!
//! Only headers are read here (up to Pixel Data). Files without the Part 10 `DICM` marker are
//! skipped and listed; files whose header cannot be parsed, or that carry no local ID, are
//! quarantined with the reason. The grouping holds paths only, never pixel data.

use super::report::LeftOut;
use super::ExportError;
use crate::identity::LocalId;
use crate::progress::{Event, Progress};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The result of scanning an input folder.
#[derive(Debug, Default)]
pub struct Scanned {
    /// Instances per patient, in path order.
    pub patients: BTreeMap<LocalId, Vec<PathBuf>>,
    /// Regular files seen.
    pub files_seen: u64,
    /// Files that are not DICOM Part 10, with the reason.
    pub skipped: Vec<LeftOut>,
    /// DICOM files left out at scan time (unreadable header, no local ID).
    pub quarantined: Vec<LeftOut>,
}

/// A path relative to the input folder, for reports (falls back to the file name).
pub fn relative(input: &Path, path: &Path) -> String {
    path.strip_prefix(input)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| path.to_string_lossy().into_owned())
}

/// True when the file carries the Part 10 marker `DICM` after a 128-byte preamble.
pub fn is_part10(path: &Path) -> std::io::Result<bool> {
    let mut head = [0u8; 132];
    let mut file = std::fs::File::open(path)?;
    let mut got = 0;
    while got < head.len() {
        let n = file.read(&mut head[got..])?;
        if n == 0 {
            return Ok(false);
        }
        got += n;
    }
    Ok(&head[128..132] == b"DICM")
}

/// Scans `input` recursively.
pub fn scan(input: &Path, local_id_tag: dicom_core::Tag, progress: &dyn Progress) -> Result<Scanned, ExportError> {
    let meta = std::fs::metadata(input).map_err(|e| ExportError::Input {
        path: input.to_path_buf(),
        reason: e.to_string(),
    })?;
    if !meta.is_dir() {
        return Err(ExportError::Input {
            path: input.to_path_buf(),
            reason: "not a folder".into(),
        });
    }
    progress.event(Event::Phase {
        name: "scan",
        total: None,
    });
    let mut scanned = Scanned::default();
    let walker = walkdir::WalkDir::new(input).follow_links(false).sort_by_file_name();
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = e.path().map(|p| relative(input, p)).unwrap_or_default();
                scanned.skipped.push(LeftOut {
                    path,
                    reason: format!(
                        "cannot be read: {}",
                        e.io_error()
                            .map(|e| e.to_string())
                            .unwrap_or_else(|| "loop or error".into())
                    ),
                });
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        scanned.files_seen += 1;
        progress.event(Event::Advance { n: 1 });
        let path = entry.path();
        let rel = relative(input, path);
        match is_part10(path) {
            Ok(true) => {}
            Ok(false) => {
                scanned.skipped.push(LeftOut {
                    path: rel,
                    reason: "not a DICOM Part 10 file (no DICM marker)".into(),
                });
                continue;
            }
            Err(e) => {
                scanned.skipped.push(LeftOut {
                    path: rel,
                    reason: format!("cannot be read: {e}"),
                });
                continue;
            }
        }
        let reason = match read_local_id(path, local_id_tag) {
            Ok(Some(id)) => {
                scanned.patients.entry(id).or_default().push(path.to_path_buf());
                continue;
            }
            Ok(None) => format!(
                "no local patient ID: attribute ({:04X},{:04X}) is absent or empty",
                local_id_tag.0, local_id_tag.1
            ),
            Err(reason) => format!("unreadable DICOM: {reason}"),
        };
        progress.event(Event::Quarantined {
            path: rel.clone(),
            reason: reason.clone(),
        });
        scanned.quarantined.push(LeftOut { path: rel, reason });
    }
    Ok(scanned)
}

fn read_local_id(path: &Path, tag: dicom_core::Tag) -> Result<Option<LocalId>, String> {
    let object = dicom_object::OpenFileOptions::new()
        .read_until(dicom_dictionary_std::tags::PIXEL_DATA)
        .open_file(path)
        .map_err(|e| super::instance::parser_reason(&e))?;
    let Ok(element) = object.element(tag) else {
        return Ok(None);
    };
    Ok(element.to_str().ok().and_then(|s| LocalId::new(&s)))
}
