//! The entry point: de-identify one instance, or say why it is quarantined.

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_object::{DefaultDicomObject, InMemDicomObject};

use super::captured::Captured;
use super::conformance::{file_meta, insert_markers};
use super::iod::Iod;
use super::options::DeidOption;
use super::profile::Profile;
use super::quarantine::{self, QuarantineReason};
use super::references;
use super::report::ActionCounts;
use super::values::text_of;
use super::walk::{Scope, Walker};

pub use super::uids::UidPlaceholderKey;

const SOP_CLASS_UID: Tag = Tag(0x0008, 0x0016);
const SOP_INSTANCE_UID: Tag = Tag(0x0008, 0x0018);

/// A de-identified instance and what was taken out of it. Its `Debug` output shows counts
/// only, never a value, so that it is safe in logs.
pub struct Deidentified {
    /// The de-identified dataset with a regenerated file meta group: Media Storage SOP Class and
    /// Instance UIDs equal to the dataset's (new) SOP Class and Instance UIDs, the input's
    /// transfer syntax, pseal's Implementation Class UID and Version Name, and nothing else.
    /// dicom-object's `write_all` and `write_to_file` always write a 128-byte zero preamble and
    /// never the input's.
    pub object: DefaultDicomObject,
    /// What goes into the identity record sealed to the steward.
    pub captured: Captured,
    /// What was done to each attribute, for the review report.
    pub actions: ActionCounts,
    /// The IOD (PS3.3's name through highdicom, e.g. `mr-image`) whose attribute Types decided
    /// the combined codes and the attributes outside Table E.1-1 that the IOD requires; `None`
    /// when the SOP Class is not in pseal's IOD tables, and the combined codes took the
    /// alternative that conforms whatever the Type (D where D is among them, Z for X/Z).
    pub iod: Option<&'static str>,
}

impl std::fmt::Debug for Deidentified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deidentified")
            .field("elements", &self.object.iter().count())
            .field("captured_uids", &self.captured.uids.len())
            .field("captured_values", &self.captured.values.len())
            .field("captured_birth_date", &self.captured.birth_date.is_some())
            .field("iod", &self.iod)
            .finish_non_exhaustive()
    }
}

/// Why an instance was not de-identified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeidError {
    /// The file must not leave the hospital as it is.
    #[error("{0}")]
    Quarantined(QuarantineReason),
    /// The file lacks what a DICOM instance needs, or is built in a way pseal refuses. The
    /// reason never contains a value read from the file.
    #[error("cannot de-identify this file: {reason}")]
    Malformed {
        /// What is wrong, in words.
        reason: String,
    },
}

impl DeidError {
    fn malformed(reason: &str) -> DeidError {
        DeidError::Malformed {
            reason: reason.to_string(),
        }
    }
}

/// De-identify one instance (a whole file as `dicom_object::open_file` reads it) under a
/// profile, replacing UIDs with placeholders derived from the bundle's key. Pure: no I/O.
pub fn deidentify(
    object: DefaultDicomObject,
    profile: &Profile,
    uids: &UidPlaceholderKey,
) -> Result<Deidentified, DeidError> {
    let meta = object.meta();
    let clean = |s: &str| s.trim_end_matches(['\0', ' ']).to_string();
    let transfer_syntax = clean(meta.transfer_syntax());
    let meta_class = clean(meta.media_storage_sop_class_uid());
    let meta_instance = clean(meta.media_storage_sop_instance_uid());
    let dataset = object.into_inner();

    let text = |ds: &InMemDicomObject, tag: Tag| ds.get(tag).and_then(|e| text_of(e.value())).filter(|t| !t.is_empty());
    let sop_class = text(&dataset, SOP_CLASS_UID).unwrap_or(meta_class);
    if sop_class.is_empty() {
        return Err(DeidError::malformed("the file has no SOP Class UID"));
    }
    if transfer_syntax.is_empty() {
        return Err(DeidError::malformed("the file has no Transfer Syntax UID"));
    }
    if let Some(reason) = quarantine::check(&sop_class, &dataset, profile.allow_burned_in()) {
        return Err(DeidError::Quarantined(reason));
    }

    let iod = Iod::of(&sop_class);
    let top = iod.map(Iod::top);
    let scope = Scope {
        place: top.as_ref(),
        strict: false,
    };
    let mut walker = Walker::new(profile, uids);
    let mut out = walker.dataset(dataset, &mut Vec::new(), scope)?;

    let instance = match text(&out, SOP_INSTANCE_UID) {
        Some(uid) => uid,
        None if meta_instance.is_empty() => {
            return Err(DeidError::malformed("the file has no SOP Instance UID"));
        }
        None => {
            let uid = if profile.options().contains(DeidOption::RetainUids) {
                meta_instance
            } else {
                let placeholder = uids.placeholder(&meta_instance);
                walker.sink.uid(&placeholder, &meta_instance);
                placeholder
            };
            out.put(DataElement::new(
                SOP_INSTANCE_UID,
                VR::UI,
                PrimitiveValue::from(uid.as_str()),
            ));
            uid
        }
    };
    if text(&out, SOP_CLASS_UID).as_deref() != Some(sop_class.as_str()) {
        out.put(DataElement::new(
            SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(sop_class.as_str()),
        ));
    }
    references::prune_orphan_lists(&mut out, &mut walker.actions);
    insert_markers(&mut out, profile, &mut walker.actions);
    let meta = file_meta(&sop_class, &instance, &transfer_syntax)?;
    Ok(Deidentified {
        object: out.with_exact_meta(meta),
        captured: walker.sink.finish(),
        actions: walker.actions,
        iod: iod.map(Iod::name),
    })
}
