//! De-identifies one input file into the bytes that go into a bundle (or a review folder).

use crate::deid::{self, ActionCounts, Captured, DeidError, Profile, UidPlaceholderKey};
use std::fmt;
use std::path::Path;

/// One de-identified instance, ready to be written.
pub struct DoneInstance {
    /// The whole Part 10 file (zeroed preamble, regenerated meta).
    pub bytes: Vec<u8>,
    /// Originals for the sealed identity record.
    pub captured: Captured,
    /// What the profile did, for the report.
    pub actions: ActionCounts,
}

/// Why a file was left out. The text never holds a value read from the file.
#[derive(Debug)]
pub enum LeftOutReason {
    /// The DICOM parser refused the file.
    Unreadable(String),
    /// The de-identification engine quarantined it (burned-in text risk, DICOMDIR, …).
    Quarantined(String),
    /// The de-identified object could not be encoded.
    Unwritable(String),
}

impl fmt::Display for LeftOutReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeftOutReason::Unreadable(r) => write!(f, "unreadable DICOM: {r}"),
            LeftOutReason::Quarantined(r) => write!(f, "quarantined: {r}"),
            LeftOutReason::Unwritable(r) => write!(f, "could not be re-encoded after de-identification: {r}"),
        }
    }
}

/// Opens, de-identifies and re-encodes `path`.
pub fn deidentify_path(
    path: &Path,
    profile: &Profile,
    uids: &UidPlaceholderKey,
) -> Result<DoneInstance, LeftOutReason> {
    let object = dicom_object::OpenFileOptions::new()
        .open_file(path)
        .map_err(|e| LeftOutReason::Unreadable(parser_reason(&e)))?;
    let done = deid::deidentify(object, profile, uids).map_err(|e| match e {
        DeidError::Quarantined(reason) => LeftOutReason::Quarantined(reason.to_string()),
        other => LeftOutReason::Unreadable(other.to_string()),
    })?;
    let mut bytes = Vec::with_capacity(std::fs::metadata(path).map(|m| m.len() as usize).unwrap_or(0) + 1024);
    done.object
        .write_all(&mut bytes)
        .map_err(|e| LeftOutReason::Unwritable(parser_reason(&e)))?;
    Ok(DoneInstance {
        bytes,
        captured: done.captured,
        actions: done.actions,
    })
}

/// The parser's own words, stripped of anything that may quote the file's content.
///
/// dicom-rs errors name tags, offsets and encodings, not values; the message is still cut at the
/// first quote character in case a future version quotes a value.
pub fn parser_reason(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    match text.find(['"', '\'', '`']) {
        Some(i) => format!("{} …", &text[..i]),
        None => text,
    }
}
