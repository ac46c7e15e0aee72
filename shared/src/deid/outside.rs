//! Attributes outside Table E.1-1, in the standard's "remove unless known safe" spirit: standard
//! attributes that cannot hold free text are kept, a short list of text attributes that name
//! equipment and coded concepts is kept when it passes the descriptor rule, sequences are kept
//! and their items cleaned, everything else is removed (or, where the instance's IOD requires
//! it, emptied or replaced by a dummy: the walk decides that).

use dicom_core::header::Header;
use dicom_core::value::Value;
use dicom_core::VR;
use dicom_object::mem::InMemElement;

use super::values::{conforms, is_standard, is_structural_vr};

/// Text attributes outside Table E.1-1 that pseal keeps: they name kinds of equipment, coils,
/// sequences, reconstruction kernels and coded concepts, not people, places or instances, and
/// multi-site brain MRI research needs them (harmonisation across scanners, sequence
/// identification). Code values and coding scheme designators ([`CODES`]) are kept as they are;
/// every other value must pass the descriptor rule ([`super::vocabulary::passes`]) or is replaced
/// by a dummy. `(tag, keyword)`.
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

/// The members of [`RETAINED_TEXT`] that are codes (Code Value, Coding Scheme Designator and
/// Version, Long and URN Code Value): kept as they are, since a code stands for a concept
/// whatever words would spell it.
pub(crate) const CODES: [u32; 5] = [0x0008_0100, 0x0008_0102, 0x0008_0103, 0x0008_0119, 0x0008_0120];

/// What happens to an even-group attribute that no row of Table E.1-1 covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutsideDecision {
    /// Kept as it is.
    Keep,
    /// A [`RETAINED_TEXT`] description: kept when every value passes the descriptor rule,
    /// otherwise replaced by a dummy.
    Describe,
    /// A sequence kept, its items cleaned by the same rules.
    Recurse,
    /// Removed, unless the instance's IOD requires it.
    Remove,
}

/// Decide an attribute outside Table E.1-1 (even group, not a group length, not group 0000,
/// 0002 or 0004, not an overlay or curve: those are handled before). `strict` (inside a
/// sequence that Table E.1-1 replaces by a dummy) keeps no text, not even [`RETAINED_TEXT`].
pub(crate) fn decide(element: &InMemElement, strict: bool) -> OutsideDecision {
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
            let retained = !strict && RETAINED_TEXT.iter().any(|&(t, _)| t == packed);
            if vr == VR::UN {
                OutsideDecision::Remove
            } else if retained && CODES.contains(&packed) {
                OutsideDecision::Keep
            } else if retained {
                OutsideDecision::Describe
            } else if is_structural_vr(vr) && conforms(vr, value) {
                OutsideDecision::Keep
            } else {
                OutsideDecision::Remove
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{CODES, RETAINED_TEXT};
    use crate::deid::table::RowIndex;

    #[test]
    fn codes_are_retained_text() {
        for code in CODES {
            assert!(RETAINED_TEXT.iter().any(|&(t, _)| t == code), "{code:08X}");
        }
    }

    #[test]
    fn retained_text_attributes_are_not_in_table_e1_1() {
        let index = RowIndex::new();
        for &(tag, name) in RETAINED_TEXT {
            assert!(index.standard(tag).is_none(), "{name} is in Table E.1-1");
        }
    }
}
