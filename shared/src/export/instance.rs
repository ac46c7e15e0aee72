//! De-identifies one input file into the bytes that go into a bundle (or a review folder).
//!
//! Only the attributes before Pixel Data are parsed and re-encoded; the input's Pixel Data element
//! is copied after them as it is (see [`crate::part10`]), so memory does not grow with file size.

use crate::deid::{self, ActionCounts, Captured, DeidError, Profile, TakenAction, UidPlaceholderKey};
use crate::part10::{self, SplitInstance};
use std::fmt;
use std::path::Path;

/// Pixel Data (7FE0,0010), as the engine counts it when it keeps it.
const PIXEL_DATA: u32 = 0x7FE0_0010;

/// One de-identified instance, ready to be written, with what the profile took from it.
pub struct DoneInstance {
    /// The encoded instance: zeroed preamble, regenerated meta, de-identified attributes, then
    /// the input's Pixel Data element verbatim.
    pub encoded: SplitInstance,
    /// Originals for the sealed identity record.
    pub captured: Captured,
    /// What the profile did, for the report.
    pub actions: ActionCounts,
    /// The SOP Class UID when pseal's IOD tables do not hold it (the combined codes then took the
    /// Type-blind alternative; see `deid::Deidentified::iod`), for the review report.
    pub without_iod: Option<String>,
}

/// Why a file was left out. The text never holds a value read from the file.
#[derive(Debug)]
pub enum LeftOutReason {
    /// The DICOM parser refused the file.
    Unreadable(String),
    /// The de-identification engine quarantined it (burned-in text risk, DICOMDIR, …).
    Quarantined(deid::QuarantineReason),
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

/// Opens, de-identifies and re-encodes `path` (the attributes before Pixel Data; the pixel data
/// element is referenced, not read).
pub fn deidentify_path(
    path: &Path,
    profile: &Profile,
    uids: &UidPlaceholderKey,
) -> Result<DoneInstance, LeftOutReason> {
    deidentify_path_visiting(path, profile, uids, &mut |_| {})
}

/// [`deidentify_path`], handing the de-identified dataset (the attributes before Pixel Data) to
/// `visit` before it is encoded: the review reads the values that leave from it.
pub fn deidentify_path_visiting(
    path: &Path,
    profile: &Profile,
    uids: &UidPlaceholderKey,
    visit: &mut dyn FnMut(&dicom_object::InMemDicomObject),
) -> Result<DoneInstance, LeftOutReason> {
    let (object, pixel_data) = part10::open_split(path).map_err(|e| match e {
        part10::OpenError::Layout(part10::LayoutError::MediaDirectory) => {
            LeftOutReason::Quarantined(deid::QuarantineReason::MediaDirectory)
        }
        other => LeftOutReason::Unreadable(parser_reason(&other)),
    })?;
    let mut done = deid::deidentify(object, profile, uids).map_err(|e| match e {
        DeidError::Quarantined(reason) => LeftOutReason::Quarantined(reason),
        other => LeftOutReason::Unreadable(other.to_string()),
    })?;
    let capacity = match &pixel_data {
        Some(_) => 16 * 1024,
        None => std::fs::metadata(path).map(|m| m.len() as usize).unwrap_or(0) + 1024,
    };
    if pixel_data.is_some() {
        // The engine keeps Pixel Data (native or encapsulated OB/OW, a standard attribute outside
        // Table E.1-1) and counts it so; the split path keeps it too and must report the same.
        done.actions.add(PIXEL_DATA, TakenAction::OutsideTableKept);
    }
    visit(&done.object);
    let mut head = Vec::with_capacity(capacity);
    done.object
        .write_all(&mut head)
        .map_err(|e| LeftOutReason::Unwritable(parser_reason(&e)))?;
    let without_iod = done.iod.is_none().then(|| {
        let class = done
            .object
            .meta()
            .media_storage_sop_class_uid
            .trim_end_matches(['\0', ' ']);
        deid::displayable_uid(class)
    });
    Ok(DoneInstance {
        encoded: SplitInstance { head, pixel_data },
        captured: done.captured,
        actions: done.actions,
        without_iod,
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
