//! Values by VR: the dummies of action D, which VRs carry free text, the effective VR of an
//! element read as UN, and the checks that a kept value has the form its VR allows.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::header::Header;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;
use dicom_object::mem::InMemElement;

/// The dummy text of action D for string VRs (AE, CS, LO, LT, SH, ST, UC, UT): fits the 16
/// characters of AE, CS and SH and the CS character set.
pub const DUMMY_TEXT: &str = "ANONYMIZED";
/// The dummy of action D for PN.
pub const DUMMY_PN: &str = "ANONYMIZED";
/// The dummy of action D for DA.
pub const DUMMY_DA: &str = "19000101";
/// The dummy of action D for TM.
pub const DUMMY_TM: &str = "000000";
/// The dummy of action D for DT.
pub const DUMMY_DT: &str = "19000101000000";
/// The dummy of action D for AS.
pub const DUMMY_AS: &str = "000Y";
/// The dummy of action D for UR.
pub const DUMMY_UR: &str = "about:blank";

/// The VR to act by: the element's own, or for an element read as UN (implicit VR, unknown to
/// the reader) the standard dictionary's when it names exactly one.
pub(crate) fn effective_vr(element: &InMemElement) -> VR {
    let vr = element.vr();
    if vr != VR::UN {
        return vr;
    }
    let tag = element.tag();
    match StandardDataDictionary.by_tag(tag).map(|e| e.vr()) {
        Some(VirtualVr::Exact(v)) => v,
        _ => VR::UN,
    }
}

/// An element with VR UN (written by a tool that did not know the attribute) whose tag the
/// standard dictionary knows with one VR, read as that VR, so that the rules judge it, and keep
/// it, as the attribute it is: numbers as numbers, codes as codes. UN values are little endian
/// (PS3.5 6.2.2). `None` when the element is not such a value or its bytes do not fit the VR
/// (a length that is not a multiple of the value size); sequences are not reread here.
pub(crate) fn reinterpret_un(element: &InMemElement) -> Option<InMemElement> {
    if element.vr() != VR::UN {
        return None;
    }
    let vr = match StandardDataDictionary.by_tag(element.tag()).map(|e| e.vr()) {
        Some(VirtualVr::Exact(v)) if v != VR::UN && v != VR::SQ => v,
        _ => return None,
    };
    let bytes: &[u8] = match element.value() {
        Value::Primitive(PrimitiveValue::U8(bytes)) => bytes,
        Value::Primitive(PrimitiveValue::Empty) => &[],
        _ => return None,
    };
    let value = if bytes.is_empty() {
        PrimitiveValue::Empty
    } else {
        decode_le(vr, bytes)?
    };
    Some(InMemElement::new(element.tag(), vr, value))
}

/// A little-endian value of `vr` from its bytes.
fn decode_le(vr: VR, bytes: &[u8]) -> Option<PrimitiveValue> {
    fn chunks<const N: usize, T>(bytes: &[u8], f: fn([u8; N]) -> T) -> Option<Vec<T>> {
        if !bytes.len().is_multiple_of(N) {
            return None;
        }
        Some(
            bytes
                .chunks_exact(N)
                .map(|c| {
                    let mut a = [0u8; N];
                    a.copy_from_slice(c);
                    f(a)
                })
                .collect(),
        )
    }
    Some(match vr {
        VR::US => PrimitiveValue::U16(chunks(bytes, u16::from_le_bytes)?.into()),
        VR::SS => PrimitiveValue::I16(chunks(bytes, i16::from_le_bytes)?.into()),
        VR::UL => PrimitiveValue::U32(chunks(bytes, u32::from_le_bytes)?.into()),
        VR::SL => PrimitiveValue::I32(chunks(bytes, i32::from_le_bytes)?.into()),
        VR::UV => PrimitiveValue::U64(chunks(bytes, u64::from_le_bytes)?.into()),
        VR::SV => PrimitiveValue::I64(chunks(bytes, i64::from_le_bytes)?.into()),
        VR::FL => PrimitiveValue::F32(chunks(bytes, f32::from_le_bytes)?.into()),
        VR::FD => PrimitiveValue::F64(chunks(bytes, f64::from_le_bytes)?.into()),
        VR::AT => PrimitiveValue::Tags(
            chunks(bytes, |b: [u8; 4]| {
                Tag(u16::from_le_bytes([b[0], b[1]]), u16::from_le_bytes([b[2], b[3]]))
            })?
            .into(),
        ),
        VR::OB | VR::OW | VR::OF | VR::OD | VR::OL | VR::OV => PrimitiveValue::U8(bytes.to_vec().into()),
        _ => {
            // Text: UTF-8 when it is, otherwise each byte one character (ISO 8859-1, the usual
            // extended character set; a wrong guess only changes how a kept value is spelled).
            let text = match std::str::from_utf8(bytes) {
                Ok(t) => t.to_string(),
                Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
            };
            let text = text.trim_end_matches(['\0', ' ']);
            if matches!(vr, VR::LT | VR::ST | VR::UT | VR::UR) {
                PrimitiveValue::from(text)
            } else {
                PrimitiveValue::Strs(text.split('\\').map(str::to_string).collect())
            }
        }
    })
}

/// Whether the standard dictionary knows the tag (including repeating groups).
pub(crate) fn is_standard(tag: Tag) -> bool {
    StandardDataDictionary.by_tag(tag).is_some()
}

/// VRs the Clean Descriptors vocabulary rule judges (free text other than person names).
pub(crate) fn is_descriptor_vr(vr: VR) -> bool {
    matches!(
        vr,
        VR::AE | VR::CS | VR::LO | VR::LT | VR::SH | VR::ST | VR::UC | VR::UT
    )
}

/// VRs kept for standard attributes outside Table E.1-1: numbers, codes, tags, UIDs and
/// binary data, which cannot hold free text.
pub(crate) fn is_structural_vr(vr: VR) -> bool {
    matches!(
        vr,
        VR::US
            | VR::UL
            | VR::UV
            | VR::SS
            | VR::SL
            | VR::SV
            | VR::FL
            | VR::FD
            | VR::DS
            | VR::IS
            | VR::CS
            | VR::AT
            | VR::UI
            | VR::OB
            | VR::OW
            | VR::OF
            | VR::OD
            | VR::OL
            | VR::OV
    )
}

/// The text of a primitive value: strings as they are (padding removed, multiple values joined
/// by `\`), raw bytes (UN) decoded as text. `None` for values that are not text.
pub(crate) fn text_of(
    value: &Value<dicom_object::InMemDicomObject, dicom_object::mem::InMemFragment>,
) -> Option<String> {
    match value {
        Value::Primitive(PrimitiveValue::U8(bytes)) => {
            Some(String::from_utf8_lossy(bytes).trim_end_matches(['\0', ' ']).to_string())
        }
        Value::Primitive(p) => Some(p.to_str().trim_end_matches(['\0', ' ']).to_string()),
        _ => None,
    }
}

/// The separate values of a text value.
pub(crate) fn text_values(text: &str) -> impl Iterator<Item = &str> {
    text.split('\\').map(|v| v.trim_matches(['\0', ' ']))
}

/// The non-zero-length dummy value of action D for a VR.
pub(crate) fn dummy(vr: VR) -> PrimitiveValue {
    match vr {
        VR::PN => PrimitiveValue::from(DUMMY_PN),
        VR::DA => PrimitiveValue::from(DUMMY_DA),
        VR::TM => PrimitiveValue::from(DUMMY_TM),
        VR::DT => PrimitiveValue::from(DUMMY_DT),
        VR::AS => PrimitiveValue::from(DUMMY_AS),
        VR::UR => PrimitiveValue::from(DUMMY_UR),
        VR::DS | VR::IS => PrimitiveValue::from("0"),
        VR::US | VR::OW => PrimitiveValue::from(0u16),
        VR::SS => PrimitiveValue::from(0i16),
        VR::UL | VR::OL => PrimitiveValue::from(0u32),
        VR::SL => PrimitiveValue::from(0i32),
        VR::UV | VR::OV => PrimitiveValue::from(0u64),
        VR::SV => PrimitiveValue::from(0i64),
        VR::FL | VR::OF => PrimitiveValue::from(0f32),
        VR::FD | VR::OD => PrimitiveValue::from(0f64),
        VR::AT => PrimitiveValue::Tags(vec![Tag(0, 0)].into()),
        VR::OB | VR::UN => PrimitiveValue::U8(vec![0, 0].into()),
        _ => PrimitiveValue::from(DUMMY_TEXT),
    }
}

/// Whether a kept value of a structural VR has the form the VR allows, so that a malformed
/// file cannot smuggle words through a number or code field: DS and IS hold numbers, UI holds
/// digits and dots, CS holds upper-case letters, digits, space and underscore.
pub(crate) fn conforms(
    vr: VR,
    value: &Value<dicom_object::InMemDicomObject, dicom_object::mem::InMemFragment>,
) -> bool {
    let allowed: fn(u8) -> bool = match vr {
        VR::DS => |b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E' | b' ' | b'\\'),
        VR::IS => |b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b' ' | b'\\'),
        VR::UI => |b| b.is_ascii_digit() || matches!(b, b'.' | b'\0' | b'\\'),
        VR::CS => |b| b.is_ascii_uppercase() || b.is_ascii_digit() || matches!(b, b' ' | b'_' | b'\\'),
        _ => return true,
    };
    match value {
        Value::Primitive(PrimitiveValue::Empty) => true,
        Value::Primitive(PrimitiveValue::Str(s)) => s.bytes().all(allowed),
        Value::Primitive(PrimitiveValue::Strs(list)) => list.iter().all(|s| s.bytes().all(allowed)),
        // Parsed numbers (DS/IS read as F64/I32) cannot hold text.
        Value::Primitive(PrimitiveValue::F64(_) | PrimitiveValue::I32(_) | PrimitiveValue::I64(_)) => true,
        _ => false,
    }
}
