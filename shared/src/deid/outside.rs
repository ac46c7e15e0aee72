//! Attributes outside Table E.1-1, in the standard's "remove unless known safe" spirit: standard
//! attributes that cannot hold free text are kept, a short list of known-safe text attributes is
//! kept, sequences are kept and their items cleaned, everything else is removed.

use dicom_core::header::Header;
use dicom_core::value::Value;
use dicom_core::VR;
use dicom_object::mem::InMemElement;

use super::values::{conforms, is_standard, is_structural_vr};

/// Text attributes outside Table E.1-1 that pseal keeps: they name kinds of equipment, coils,
/// sequences, reconstruction kernels and coded concepts, not people, places or instances, and
/// multi-site brain MRI research needs them (harmonisation across scanners, sequence
/// identification). `(tag, keyword)`.
pub const RETAINED_TEXT: &[(u32, &str)] = &[
    (0x0008_0070, "Manufacturer"),
    (0x0008_1090, "ManufacturerModelName"),
    (0x0018_1020, "SoftwareVersions"),
    (0x0018_0024, "SequenceName"),
    (0x0018_9005, "PulseSequenceName"),
    (0x0018_1250, "ReceiveCoilName"),
    (0x0018_1251, "TransmitCoilName"),
    (0x0018_9041, "ReceiveCoilManufacturerName"),
    (0x0018_9047, "MultiCoilElementName"),
    (0x0018_9050, "TransmitCoilManufacturerName"),
    (0x0018_1210, "ConvolutionKernel"),
    (0x0018_1160, "FilterType"),
    (0x0028_1054, "RescaleType"),
    (0x0028_1055, "WindowCenterWidthExplanation"),
    (0x0028_3003, "LUTExplanation"),
    (0x0040_9210, "LUTLabel"),
    (0x0008_0100, "CodeValue"),
    (0x0008_0102, "CodingSchemeDesignator"),
    (0x0008_0103, "CodingSchemeVersion"),
    (0x0008_0104, "CodeMeaning"),
    (0x0008_0119, "LongCodeValue"),
    (0x0008_0120, "URNCodeValue"),
];

/// What happens to an even-group attribute that no row of Table E.1-1 covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutsideDecision {
    /// Kept as it is.
    Keep,
    /// A sequence kept, its items cleaned by the same rules.
    Recurse,
    /// Removed.
    Remove,
}

/// Decide an attribute outside Table E.1-1 (even group, not a group length, not group 0000,
/// 0002 or 0004, not an overlay or curve: those are handled before).
pub(crate) fn decide(element: &InMemElement) -> OutsideDecision {
    let tag = element.tag();
    if !is_standard(tag) {
        return OutsideDecision::Remove;
    }
    let vr = element.vr();
    match element.value() {
        Value::Sequence(_) => OutsideDecision::Recurse,
        Value::PixelSequence(_) => {
            // Encapsulated (compressed) pixel data. Burned-in text is handled by quarantine.
            if matches!(vr, VR::OB | VR::OW) {
                OutsideDecision::Keep
            } else {
                OutsideDecision::Remove
            }
        }
        value @ Value::Primitive(_) => {
            let packed = u32::from(tag.group()) << 16 | u32::from(tag.element());
            let known_safe_text = RETAINED_TEXT.iter().any(|&(t, _)| t == packed);
            if vr != VR::UN && (known_safe_text || (is_structural_vr(vr) && conforms(vr, value))) {
                OutsideDecision::Keep
            } else {
                OutsideDecision::Remove
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RETAINED_TEXT;
    use crate::deid::table::RowIndex;

    #[test]
    fn retained_text_attributes_are_not_in_table_e1_1() {
        let index = RowIndex::new();
        for &(tag, name) in RETAINED_TEXT {
            assert!(index.standard(tag).is_none(), "{name} is in Table E.1-1");
        }
    }
}
