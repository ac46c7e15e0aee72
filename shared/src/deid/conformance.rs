//! What pseal writes into every output: the conformance markers of PS3.15 (Patient Identity
//! Removed, De-identification Method and its code sequence, Longitudinal Temporal Information
//! Modified) and a file meta group of its own.

use dicom_core::header::Header;
use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_object::meta::{FileMetaTable, FileMetaTableBuilder};
use dicom_object::InMemDicomObject;

use super::engine::DeidError;
use super::options::DeidOption;
use super::profile::Profile;
use super::report::{ActionCounts, TakenAction};
use super::walk::packed;

/// pseal's Implementation Class UID (0002,0012): a UUID-derived UID (`2.25.`), fixed for pseal,
/// since pseal has no registered root of its own.
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.178635618277021271033617919479978125740";

/// pseal's Implementation Version Name (0002,0013): `PSEAL_<version>`, at most 16 characters.
pub fn implementation_version_name() -> String {
    let mut name = format!("PSEAL_{}", env!("CARGO_PKG_VERSION"));
    name.truncate(16);
    name
}

const PATIENT_IDENTITY_REMOVED: Tag = Tag(0x0012, 0x0062);
const DEIDENTIFICATION_METHOD: Tag = Tag(0x0012, 0x0063);
const DEIDENTIFICATION_METHOD_CODE_SEQUENCE: Tag = Tag(0x0012, 0x0064);
const LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED: Tag = Tag(0x0028, 0x0303);
const CODE_VALUE: Tag = Tag(0x0008, 0x0100);
const CODING_SCHEME_DESIGNATOR: Tag = Tag(0x0008, 0x0102);
const CODE_MEANING: Tag = Tag(0x0008, 0x0104);

/// Longitudinal Temporal Information Modified (0028,0303) for a profile: `MODIFIED` with
/// Modified Dates (the steward writes shifted dates), `UNMODIFIED` with Full Dates, `REMOVED`
/// otherwise (dates are removed, emptied or dummies).
pub fn longitudinal_temporal_information(profile: &Profile) -> &'static str {
    let options = profile.options();
    if options.contains(DeidOption::RetainLongModifiedDates) {
        "MODIFIED"
    } else if options.contains(DeidOption::RetainLongFullDates) {
        "UNMODIFIED"
    } else {
        "REMOVED"
    }
}

/// Insert (or overwrite) the conformance markers at the top level of a de-identified dataset.
pub(crate) fn insert_markers(dataset: &mut InMemDicomObject, profile: &Profile, actions: &mut ActionCounts) {
    let items: Vec<InMemDicomObject> = profile
        .cid7050_codes()
        .into_iter()
        .map(|(code, meaning)| {
            InMemDicomObject::from_element_iter([
                DataElement::new(CODE_VALUE, VR::SH, PrimitiveValue::from(code)),
                DataElement::new(CODING_SCHEME_DESIGNATOR, VR::SH, PrimitiveValue::from("DCM")),
                DataElement::new(CODE_MEANING, VR::LO, PrimitiveValue::from(meaning)),
            ])
        })
        .collect();
    let method: Vec<String> = profile.method_description_values();
    let markers = [
        DataElement::new(PATIENT_IDENTITY_REMOVED, VR::CS, PrimitiveValue::from("YES")),
        DataElement::new(DEIDENTIFICATION_METHOD, VR::LO, PrimitiveValue::Strs(method.into())),
        DataElement::new(
            DEIDENTIFICATION_METHOD_CODE_SEQUENCE,
            VR::SQ,
            Value::Sequence(DataSetSequence::new(items, Length::UNDEFINED)),
        ),
        DataElement::new(
            LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED,
            VR::CS,
            PrimitiveValue::from(longitudinal_temporal_information(profile)),
        ),
    ];
    for marker in markers {
        actions.add(packed(marker.tag()), TakenAction::Inserted);
        dataset.put(marker);
    }
}

/// A new file meta group: nothing of the original's but the transfer syntax.
pub(crate) fn file_meta(
    sop_class_uid: &str,
    sop_instance_uid: &str,
    transfer_syntax: &str,
) -> Result<FileMetaTable, DeidError> {
    // The meta group repeats the dataset's SOP Class and Instance UIDs, and readers (dicom-rs
    // among them, so the steward's import) refuse a meta group whose UIDs hold anything but
    // digits and dots: such an instance would be written, then make the whole bundle unreadable.
    for (uid, what) in [(sop_class_uid, "SOP Class UID"), (sop_instance_uid, "SOP Instance UID")] {
        if !readable_uid(uid) {
            return Err(DeidError::Malformed {
                reason: format!("its {what} is not a valid UID (only digits and dots are allowed)"),
            });
        }
    }
    FileMetaTableBuilder::new()
        .information_version([0, 1])
        .media_storage_sop_class_uid(sop_class_uid)
        .media_storage_sop_instance_uid(sop_instance_uid)
        .transfer_syntax(transfer_syntax)
        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(implementation_version_name())
        .build()
        .map_err(|_| DeidError::Malformed {
            reason: "the file meta information could not be rebuilt".to_string(),
        })
}

/// True when `uid` is a UID a file meta group can carry and be read back: digits and dots (and
/// the padding readers strip), not empty.
fn readable_uid(uid: &str) -> bool {
    let core = uid.trim_end_matches(['\0', ' ']);
    !core.is_empty() && core.chars().all(|c| c == '.' || c.is_ascii_digit())
}
