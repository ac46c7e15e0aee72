//! Rewrites, in memory, the header of a file that other readers read but dicom-rs does not (see
//! [`Repair`]), into a Part 10 stream dicom-rs reads: a file meta group with its group length
//! and a transfer syntax, and a data set in explicit VR little endian where sequences written as
//! UN (CP-246) are sequences again and implicit-VR elements whose dictionary VR is SQ but whose
//! value is not a sequence are UN bytes. Only the attributes before a trailing Pixel Data element
//! are rewritten; the pixels are still copied from the file as they are.
//!
//! The rewrite reads a byte slice with every length checked against what is left, and its
//! result is walked again ([`super::layout::survey`], strictly) before dicom-rs sees it.

use std::io::{Read, Seek, SeekFrom};

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

use super::layout::{Layout, LayoutError, Repair, MAX_NESTING};

const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
const UNDEFINED: u32 = 0xFFFF_FFFF;
const ITEM: (u16, u16) = (0xFFFE, 0xE000);
const ITEM_END: (u16, u16) = (0xFFFE, 0xE00D);
const SEQUENCE_END: (u16, u16) = (0xFFFE, 0xE0DD);
const PIXEL_DATA: (u16, u16) = (0x7FE0, 0x0010);
/// Largest header pseal rewrites in memory (a header, not pixels: real ones are kilobytes).
const MAX_HEADER: u64 = 256 << 20;

fn malformed(message: impl Into<String>) -> LayoutError {
    LayoutError::Malformed(message.into())
}

/// The repaired Part 10 stream of the attributes before Pixel Data (or of the whole file when
/// the layout splits none off): 128 zero bytes, `DICM`, a meta group with its length, then the
/// data set. Returns the stream and the transfer syntax it is written in (explicit VR little
/// endian when the data set was rewritten, else the file's own or the guessed one).
pub(crate) fn header<F: Read + Seek>(
    file: &mut F,
    size: u64,
    layout: &Layout,
    repair: &Repair,
) -> Result<(Vec<u8>, String), LayoutError> {
    let end = layout.pixel_data.map_or(size, |(offset, _)| offset);
    if end.saturating_sub(132) > MAX_HEADER {
        return Err(malformed(format!(
            "the header to rewrite is larger than {} MiB",
            MAX_HEADER >> 20
        )));
    }
    let mut bytes = vec![0u8; (end - 132) as usize];
    file.seek(SeekFrom::Start(132)).map_err(LayoutError::Io)?;
    file.read_exact(&mut bytes).map_err(LayoutError::Io)?;
    let split = usize::try_from(layout.data_set_start - 132).map_err(|_| malformed("meta group too long"))?;
    let (meta, data_set) = bytes.split_at(split);

    let (data_set, ts) = if repair.data_set {
        let explicit = layout.transfer_syntax != IMPLICIT_VR_LE;
        let mut out = Vec::with_capacity(data_set.len() + data_set.len() / 4);
        Transcoder { out: &mut out }.data_set(data_set, explicit, 0)?;
        (out, EXPLICIT_VR_LE.to_string())
    } else {
        (data_set.to_vec(), layout.transfer_syntax.clone())
    };

    let mut group = Vec::new();
    let mut pos = 0;
    while pos < meta.len() {
        let (tag, vr, len, header) = explicit_header(meta, pos)?;
        let value_end = pos + header + len as usize;
        let value = meta
            .get(pos + header..value_end)
            .ok_or_else(|| malformed("the meta group ends inside an element"))?;
        if tag != (0x0002, 0x0000) && tag != (0x0002, 0x0010) {
            write_explicit(&mut group, tag, vr, value);
        }
        pos = value_end;
    }
    let mut uid = ts.clone().into_bytes();
    if uid.len() % 2 == 1 {
        uid.push(0);
    }
    write_explicit(&mut group, (0x0002, 0x0010), VR::UI, &uid);
    // Meta elements in tag order: the rewritten transfer syntax went to the end.
    let mut elements = split_elements(&group)?;
    elements.sort_by_key(|(tag, _)| *tag);
    let group: Vec<u8> = elements.into_iter().flat_map(|(_, bytes)| bytes).collect();

    let mut stream = vec![0u8; 128];
    stream.extend_from_slice(b"DICM");
    stream.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0]);
    stream.extend_from_slice(&(group.len() as u32).to_le_bytes());
    stream.extend_from_slice(&group);
    stream.extend_from_slice(&data_set);
    Ok((stream, ts))
}

/// An explicit VR little endian element header at `pos`: tag, VR, value length, header size.
fn explicit_header(bytes: &[u8], pos: usize) -> Result<((u16, u16), VR, u32, usize), LayoutError> {
    let b = bytes
        .get(pos..pos + 8)
        .ok_or_else(|| malformed("an element header is cut short"))?;
    let tag = (u16::from_le_bytes([b[0], b[1]]), u16::from_le_bytes([b[2], b[3]]));
    let vr = VR::from_binary([b[4], b[5]]).unwrap_or(VR::UN);
    if short_length(vr) {
        Ok((tag, vr, u32::from(u16::from_le_bytes([b[6], b[7]])), 8))
    } else {
        let l = bytes
            .get(pos + 8..pos + 12)
            .ok_or_else(|| malformed("an element header is cut short"))?;
        Ok((tag, vr, u32::from_le_bytes([l[0], l[1], l[2], l[3]]), 12))
    }
}

/// An element's tag and its encoded bytes.
type Encoded = ((u16, u16), Vec<u8>);

/// The meta elements written by [`write_explicit`], each with its bytes.
fn split_elements(group: &[u8]) -> Result<Vec<Encoded>, LayoutError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < group.len() {
        let (tag, _, len, header) = explicit_header(group, pos)?;
        let end = pos + header + len as usize;
        out.push((tag, group[pos..end].to_vec()));
        pos = end;
    }
    Ok(out)
}

/// VRs whose explicit length field is two bytes.
fn short_length(vr: VR) -> bool {
    use VR::*;
    matches!(
        vr,
        AE | AS | AT | CS | DA | DS | DT | FL | FD | IS | LO | LT | PN | SH | SL | SS | ST | TM | UI | UL | US
    )
}

/// Writes an explicit VR little endian element (a short-length VR too long for its field is
/// written as UN).
fn write_explicit(out: &mut Vec<u8>, tag: (u16, u16), vr: VR, value: &[u8]) {
    let vr = if short_length(vr) && value.len() > 0xFFFF {
        VR::UN
    } else {
        vr
    };
    write_header(out, tag, vr, value.len() as u32);
    out.extend_from_slice(value);
}

fn write_header(out: &mut Vec<u8>, tag: (u16, u16), vr: VR, len: u32) {
    out.extend_from_slice(&tag.0.to_le_bytes());
    out.extend_from_slice(&tag.1.to_le_bytes());
    out.extend_from_slice(&vr.to_bytes());
    if short_length(vr) {
        out.extend_from_slice(&(len as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&len.to_le_bytes());
    }
}

fn write_delimiter(out: &mut Vec<u8>, tag: (u16, u16)) {
    out.extend_from_slice(&tag.0.to_le_bytes());
    out.extend_from_slice(&tag.1.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
}

fn u16_at(bytes: &[u8], pos: usize) -> Result<u16, LayoutError> {
    bytes
        .get(pos..pos + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .ok_or_else(|| malformed(format!("the data set ends inside an element header at byte {pos}")))
}

fn u32_at(bytes: &[u8], pos: usize) -> Result<u32, LayoutError> {
    bytes
        .get(pos..pos + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| malformed(format!("the data set ends inside an element header at byte {pos}")))
}

/// The dictionary's VR of a tag read in implicit VR (UN when unknown).
fn dictionary_vr(tag: (u16, u16)) -> VR {
    if tag == PIXEL_DATA || (tag.0 >> 8 == 0x60 && tag.1 == 0x3000) {
        return VR::OW;
    }
    StandardDataDictionary
        .by_tag(Tag(tag.0, tag.1))
        .map(|entry| entry.vr().relaxed())
        .unwrap_or(VR::UN)
}

/// Reads little-endian data sets (explicit or implicit VR) and writes them explicit.
struct Transcoder<'o> {
    out: &'o mut Vec<u8>,
}

impl Transcoder<'_> {
    /// Transcodes the elements of `bytes` (a whole data set or one item's content).
    fn data_set(&mut self, bytes: &[u8], explicit: bool, depth: usize) -> Result<(), LayoutError> {
        let mut pos = 0;
        while pos < bytes.len() {
            pos = self.element(bytes, pos, explicit, depth)?.0;
        }
        Ok(())
    }

    /// Transcodes one element at `pos`; returns where the next starts, and whether it was an
    /// item delimiter (which ends an undefined-length item).
    fn element(
        &mut self,
        bytes: &[u8],
        pos: usize,
        explicit: bool,
        depth: usize,
    ) -> Result<(usize, bool), LayoutError> {
        if depth > MAX_NESTING {
            return Err(malformed("sequences nest too deep"));
        }
        let tag = (u16_at(bytes, pos)?, u16_at(bytes, pos + 2)?);
        if tag == ITEM_END {
            return Ok((pos + 8, true));
        }
        let (vr, len, mut at) = if explicit {
            let code = bytes
                .get(pos + 4..pos + 6)
                .ok_or_else(|| malformed("an element header is cut short"))?;
            let vr = VR::from_binary([code[0], code[1]]).unwrap_or(VR::UN);
            if short_length(vr) {
                (vr, u32::from(u16_at(bytes, pos + 6)?), pos + 8)
            } else {
                (vr, u32_at(bytes, pos + 8)?, pos + 12)
            }
        } else {
            (dictionary_vr(tag), u32_at(bytes, pos + 4)?, pos + 8)
        };
        let left = bytes.len() - at.min(bytes.len());
        if len != UNDEFINED && len as usize > left {
            return Err(malformed(format!(
                "({:04X},{:04X}) declares {len} bytes but only {left} are left",
                tag.0, tag.1
            )));
        }
        if len == UNDEFINED && tag == PIXEL_DATA {
            // Encapsulated pixel data inside the rewritten part: fragments copied as they are.
            write_header(self.out, tag, VR::OB, UNDEFINED);
            loop {
                let item = (u16_at(bytes, at)?, u16_at(bytes, at + 2)?);
                let n = u32_at(bytes, at + 4)?;
                if item == SEQUENCE_END {
                    write_delimiter(self.out, SEQUENCE_END);
                    return Ok((at + 8, false));
                }
                if item != ITEM || n == UNDEFINED || n as usize > bytes.len() - (at + 8).min(bytes.len()) {
                    return Err(malformed("a pixel data fragment is malformed"));
                }
                self.out.extend_from_slice(&bytes[at..at + 8 + n as usize]);
                at += 8 + n as usize;
            }
        }
        let value = |len: u32| &bytes[at..at + len as usize];
        let starts_with_item =
            |len: u32| len >= 8 && u16_at(bytes, at).ok() == Some(ITEM.0) && u16_at(bytes, at + 2).ok() == Some(ITEM.1);
        let sequence_content = match (vr, len) {
            (VR::SQ, UNDEFINED) => Some(explicit),
            (VR::SQ, 0) => Some(explicit),
            (VR::SQ, n) if starts_with_item(n) => Some(explicit),
            // CP-246: UN content is implicit VR little endian.
            (VR::UN, UNDEFINED) => Some(false),
            (VR::UN, n) if dictionary_vr(tag) == VR::SQ && starts_with_item(n) => Some(false),
            (_, UNDEFINED) => Some(explicit),
            _ => None,
        };
        let Some(inner_explicit) = sequence_content else {
            // A value: with its own VR, or the dictionary's in implicit VR; an implicit SQ whose
            // value is not a sequence becomes UN bytes.
            let vr = if vr == VR::SQ { VR::UN } else { vr };
            write_explicit(self.out, tag, vr, value(len));
            return Ok((at + len as usize, false));
        };
        write_header(self.out, tag, VR::SQ, UNDEFINED);
        let end = (len != UNDEFINED).then(|| at + len as usize);
        loop {
            if end.is_some_and(|end| at >= end) {
                break;
            }
            let item = (u16_at(bytes, at)?, u16_at(bytes, at + 2)?);
            let n = u32_at(bytes, at + 4)?;
            at += 8;
            match item {
                SEQUENCE_END if end.is_none() => break,
                ITEM => {
                    write_header_item(self.out);
                    if n == UNDEFINED {
                        loop {
                            let (next, closed) = self.element(bytes, at, inner_explicit, depth + 1)?;
                            at = next;
                            if closed {
                                break;
                            }
                        }
                    } else {
                        let item_end = at + n as usize;
                        let content = bytes
                            .get(at..item_end)
                            .filter(|_| end.is_none_or(|end| item_end <= end))
                            .ok_or_else(|| malformed("a sequence item declares more bytes than are left"))?;
                        self.data_set(content, inner_explicit, depth + 1)?;
                        at = item_end;
                    }
                    write_delimiter(self.out, ITEM_END);
                }
                _ => {
                    return Err(malformed(format!(
                        "({:04X},{:04X}) where a sequence item was expected",
                        item.0, item.1
                    )))
                }
            }
        }
        write_delimiter(self.out, SEQUENCE_END);
        Ok((at, false))
    }
}

/// An item of undefined length (closed by an item delimiter).
fn write_header_item(out: &mut Vec<u8>) {
    out.extend_from_slice(&ITEM.0.to_le_bytes());
    out.extend_from_slice(&ITEM.1.to_le_bytes());
    out.extend_from_slice(&UNDEFINED.to_le_bytes());
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn implicit(tag: (u16, u16), value: &[u8]) -> Vec<u8> {
        let mut out = tag.0.to_le_bytes().to_vec();
        out.extend(tag.1.to_le_bytes());
        out.extend((value.len() as u32).to_le_bytes());
        out.extend(value);
        out
    }

    #[test]
    fn a_un_sequence_of_undefined_length_becomes_a_sequence() {
        // (0008,1115) UN, undefined length, one item holding (0020,000E) in implicit VR.
        let mut data = vec![0x08, 0x00, 0x15, 0x11, b'U', b'N', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];
        data.extend([0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        data.extend(implicit((0x0020, 0x000E), b"1.2.3\0"));
        data.extend([0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        data.extend([0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        let mut out = Vec::new();
        Transcoder { out: &mut out }.data_set(&data, true, 0).unwrap();
        assert_eq!(&out[4..6], b"SQ");
        // The item's element is now explicit: tag, "UI", 2-byte length 6.
        let inner = out.windows(4).position(|w| w == [0x20, 0x00, 0x0E, 0x00]).unwrap();
        assert_eq!(&out[inner + 4..inner + 8], &[b'U', b'I', 6, 0]);
    }

    #[test]
    fn an_implicit_sq_that_holds_no_items_becomes_un() {
        // (0008,1115) is SQ in the dictionary; its value here is 4 plain bytes.
        let data = implicit((0x0008, 0x1115), b"ABCD");
        let mut out = Vec::new();
        Transcoder { out: &mut out }.data_set(&data, false, 0).unwrap();
        assert_eq!(&out[4..6], b"UN");
        assert_eq!(&out[out.len() - 4..], b"ABCD");
    }

    #[test]
    fn lengths_past_the_end_are_refused() {
        let mut data = implicit((0x0010, 0x0010), b"AB");
        data[4..8].copy_from_slice(&0x7FFF_0000u32.to_le_bytes());
        let mut out = Vec::new();
        let err = Transcoder { out: &mut out }.data_set(&data, false, 0).unwrap_err();
        assert!(err.to_string().contains("(0010,0010)"), "{err}");
    }
}
