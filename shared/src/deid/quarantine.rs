//! Files that must not leave the hospital as they are: burned-in annotation, screenshots,
//! ultrasound, photographs and video, encapsulated documents, DICOMDIR.

use std::fmt;

use dicom_core::Tag;
use dicom_object::InMemDicomObject;
use serde::Serialize;

/// Media Storage Directory Storage (DICOMDIR).
const MEDIA_STORAGE_DIRECTORY: &str = "1.2.840.10008.1.3.10";
/// Secondary Capture Image Storage and the four multi-frame secondary capture classes.
const SECONDARY_CAPTURE: [&str; 5] = [
    "1.2.840.10008.5.1.4.1.1.7",
    "1.2.840.10008.5.1.4.1.1.7.1",
    "1.2.840.10008.5.1.4.1.1.7.2",
    "1.2.840.10008.5.1.4.1.1.7.3",
    "1.2.840.10008.5.1.4.1.1.7.4",
];
/// Ultrasound Image, Enhanced US Volume, Ultrasound Multi-frame Image, and the retired
/// ultrasound classes.
const ULTRASOUND: [&str; 5] = [
    "1.2.840.10008.5.1.4.1.1.6.1",
    "1.2.840.10008.5.1.4.1.1.6.2",
    "1.2.840.10008.5.1.4.1.1.3.1",
    "1.2.840.10008.5.1.4.1.1.6",
    "1.2.840.10008.5.1.4.1.1.3",
];
/// Every visible-light class (photographs, video, endoscopy, microscopy, ophthalmic
/// photography) lives under this root.
const VISIBLE_LIGHT_ROOT: &str = "1.2.840.10008.5.1.4.1.1.77.1";
/// Encapsulated PDF, CDA, STL, OBJ and MTL live under this root.
const ENCAPSULATED_ROOT: &str = "1.2.840.10008.5.1.4.1.1.104";

/// Why a file is not exported. The messages name the SOP class UID (which identifies a kind of
/// object, not a patient) and say how a site can override, never any other value of the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum QuarantineReason {
    /// Burned In Annotation (0028,0301) is YES.
    BurnedInAnnotation {
        /// The SOP Class UID of the file.
        sop_class_uid: String,
    },
    /// A secondary capture (screenshot-like) without Burned In Annotation NO.
    SecondaryCaptureUndeclared {
        /// The SOP Class UID of the file.
        sop_class_uid: String,
    },
    /// An ultrasound image without Burned In Annotation NO.
    UltrasoundUndeclared {
        /// The SOP Class UID of the file.
        sop_class_uid: String,
    },
    /// A visible-light photograph or video, which may show a face or other visual features.
    VisibleLight {
        /// The SOP Class UID of the file.
        sop_class_uid: String,
    },
    /// An encapsulated document (PDF, CDA, 3D model), whose content cannot be de-identified.
    EncapsulatedDocument {
        /// The SOP Class UID of the file.
        sop_class_uid: String,
    },
    /// A DICOMDIR, which lists patient names and IDs; never exported, whatever the configuration.
    MediaDirectory,
}

impl QuarantineReason {
    /// A stable machine-readable code (`burned-in-annotation`, …) for reports and JSON output.
    pub fn code(&self) -> &'static str {
        match self {
            QuarantineReason::BurnedInAnnotation { .. } => "burned-in-annotation",
            QuarantineReason::SecondaryCaptureUndeclared { .. } => "secondary-capture-undeclared",
            QuarantineReason::UltrasoundUndeclared { .. } => "ultrasound-undeclared",
            QuarantineReason::VisibleLight { .. } => "visible-light",
            QuarantineReason::EncapsulatedDocument { .. } => "encapsulated-document",
            QuarantineReason::MediaDirectory => "media-directory",
        }
    }

    /// The SOP Class UID named in the reason, if any.
    pub fn sop_class_uid(&self) -> Option<&str> {
        match self {
            QuarantineReason::BurnedInAnnotation { sop_class_uid }
            | QuarantineReason::SecondaryCaptureUndeclared { sop_class_uid }
            | QuarantineReason::UltrasoundUndeclared { sop_class_uid }
            | QuarantineReason::VisibleLight { sop_class_uid }
            | QuarantineReason::EncapsulatedDocument { sop_class_uid } => Some(sop_class_uid),
            QuarantineReason::MediaDirectory => None,
        }
    }
}

impl fmt::Display for QuarantineReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            QuarantineReason::BurnedInAnnotation { .. } => {
                "Burned In Annotation (0028,0301) is YES: text that may identify the patient is \
                 part of the pixels"
            }
            QuarantineReason::SecondaryCaptureUndeclared { .. } => {
                "a secondary capture (screenshot-like image) without Burned In Annotation \
                 (0028,0301) NO may show identifying text in its pixels"
            }
            QuarantineReason::UltrasoundUndeclared { .. } => {
                "an ultrasound image without Burned In Annotation (0028,0301) NO usually shows \
                 the patient's name in its pixels"
            }
            QuarantineReason::VisibleLight { .. } => {
                "a visible-light photograph or video may show the patient's face or other \
                 recognizable features"
            }
            QuarantineReason::EncapsulatedDocument { .. } => {
                "an encapsulated document (PDF, CDA or 3D model) has content pseal cannot \
                 de-identify"
            }
            QuarantineReason::MediaDirectory => {
                return f.write_str(
                    "Not exported: this is a DICOMDIR (media directory), which lists patient \
                     names and IDs. It is never exported; the images it points to are exported \
                     on their own.",
                );
            }
        };
        let uid = self.sop_class_uid().unwrap_or_default();
        write!(
            f,
            "Not exported: {what}. If someone has checked that files of SOP class {uid} from \
             this site carry nothing identifying in their pixels or content, add \"{uid}\" to \
             allow_burned_in in the de-identification settings of the site configuration."
        )
    }
}

/// The SOP Class UID as it may appear in messages and reports: only when it has the form of a
/// UID (a class UID names a kind of object, not a patient), else `(not a valid UID)`.
pub fn displayable_uid(uid: &str) -> String {
    let ok = !uid.is_empty() && uid.len() <= 64 && uid.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if ok {
        uid.to_string()
    } else {
        "(not a valid UID)".to_string()
    }
}

/// Decide whether a file is quarantined, from its SOP class and top-level dataset.
/// `allowed` is the site's list of SOP classes checked and allowed despite the rules above
/// (it never lets a DICOMDIR through).
pub(crate) fn check(sop_class_uid: &str, dataset: &InMemDicomObject, allowed: &[String]) -> Option<QuarantineReason> {
    const DIRECTORY_RECORD_SEQUENCE: Tag = Tag(0x0004, 0x1220);
    if sop_class_uid == MEDIA_STORAGE_DIRECTORY || dataset.get(DIRECTORY_RECORD_SEQUENCE).is_some() {
        return Some(QuarantineReason::MediaDirectory);
    }
    if allowed.iter().any(|a| a.trim() == sop_class_uid) {
        return None;
    }
    let burned_in = dataset
        .get(Tag(0x0028, 0x0301))
        .and_then(|e| e.value().to_str().ok().map(|s| s.trim().to_ascii_uppercase()));
    let uid = displayable_uid(sop_class_uid);
    if burned_in.as_deref() == Some("YES") {
        return Some(QuarantineReason::BurnedInAnnotation { sop_class_uid: uid });
    }
    let declared_free = burned_in.as_deref() == Some("NO");
    if SECONDARY_CAPTURE.contains(&sop_class_uid) && !declared_free {
        return Some(QuarantineReason::SecondaryCaptureUndeclared { sop_class_uid: uid });
    }
    if ULTRASOUND.contains(&sop_class_uid) && !declared_free {
        return Some(QuarantineReason::UltrasoundUndeclared { sop_class_uid: uid });
    }
    if under_root(sop_class_uid, VISIBLE_LIGHT_ROOT) {
        return Some(QuarantineReason::VisibleLight { sop_class_uid: uid });
    }
    if under_root(sop_class_uid, ENCAPSULATED_ROOT) {
        return Some(QuarantineReason::EncapsulatedDocument { sop_class_uid: uid });
    }
    None
}

/// Whether `uid` is `root` or lies under it (`root.` + more components).
fn under_root(uid: &str, root: &str) -> bool {
    uid == root || uid.strip_prefix(root).is_some_and(|rest| rest.starts_with('.'))
}
