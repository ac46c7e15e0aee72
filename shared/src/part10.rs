//! Part 10 files split into a parsed header and a verbatim Pixel Data tail, so that neither export
//! nor import holds an instance's pixels in memory.
//!
//! Profile actions and re-keying only touch attributes before Pixel Data; the pixels are kept
//! as they are (PS3.15 keeps native and encapsulated Pixel Data; burned-in text is quarantined
//! before). When the file's last top-level element is Pixel Data, [`open_split`] parses only the
//! attributes before it and returns where the element's bytes lie; writers copy those bytes
//! after the encoded header. The result is byte-for-byte what encoding the whole object would
//! give (tested in `tests/part10_split.rs`), because the output keeps the input's transfer syntax
//! and dicom-object writes a kept Pixel Data element exactly as it read it.
//!
//! Anything unusual — deflated or big-endian transfer syntaxes, an odd length, elements after
//! Pixel Data (trailing padding, digital signatures), a structure the walker does not follow —
//! makes [`open_split`] read the whole file instead: correct first, fast when it is safe.

use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, OpenFileOptions, ReadError};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
const DEFLATED: [&str; 3] = [
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.4.95",
    "1.2.840.10008.1.2.4.205",
];
const EXPLICIT_VR_BE: &str = "1.2.840.10008.1.2.2";
const UNDEFINED: u32 = 0xFFFF_FFFF;
const ITEM: (u16, u16) = (0xFFFE, 0xE000);
const ITEM_END: (u16, u16) = (0xFFFE, 0xE00D);
const SEQUENCE_END: (u16, u16) = (0xFFFE, 0xE0DD);
/// Deepest sequence nesting the walker follows before giving up (and reading the whole file).
const MAX_DEPTH: usize = 32;

/// The Pixel Data element at the end of a file: its bytes (header and value) are copied as they are.
#[derive(Debug)]
pub struct PixelTail {
    file: File,
    offset: u64,
    len: u64,
}

impl PixelTail {
    /// Bytes of the element (its header included).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Never true: a Pixel Data element has at least its header.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A reader of exactly the element's bytes (each call starts at the element).
    pub fn reader(&self) -> io::Result<impl Read + '_> {
        let mut f = &self.file;
        f.seek(SeekFrom::Start(self.offset))?;
        Ok(Exact {
            inner: f.take(self.len),
            left: self.len,
        })
    }

    /// Copies the element to `out` (in the kernel when `out` is a file) and checks its length.
    pub fn copy_to_file(&self, out: &mut File) -> io::Result<()> {
        let mut f = &self.file;
        f.seek(SeekFrom::Start(self.offset))?;
        let n = io::copy(&mut f.take(self.len), out)?;
        check_len(n, self.len)
    }

    /// Copies the element to any writer.
    pub fn copy_to(&self, out: &mut dyn Write) -> io::Result<()> {
        let n = io::copy(&mut self.reader()?, out)?;
        check_len(n, self.len)
    }
}

fn check_len(got: u64, want: u64) -> io::Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the file changed while its pixel data was copied",
        ))
    }
}

/// `Take` that fails instead of ending early when the file was truncated meanwhile.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file changed while its pixel data was copied",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Opens `path`: the attributes before a trailing Pixel Data element and that element's place, or
/// (when splitting is not safe) the whole object and `None`.
pub fn open_split(path: &Path) -> Result<(DefaultDicomObject, Option<PixelTail>), ReadError> {
    let located = File::open(path).ok().and_then(|file| {
        let size = file.metadata().ok()?.len();
        let (offset, len) = locate_pixel_data(BufReader::with_capacity(16 * 1024, &file), size).ok()??;
        Some(PixelTail { file, offset, len })
    });
    match located {
        Some(tail) => {
            let mut f = &tail.file;
            // A failed rewind shows up as a parse error below.
            let _ = f.seek(SeekFrom::Start(0));
            let header = OpenFileOptions::new()
                .read_until(tags::PIXEL_DATA)
                .from_reader(&tail.file)?;
            Ok((header, Some(tail)))
        }
        None => Ok((OpenFileOptions::new().open_file(path)?, None)),
    }
}

/// Where the trailing top-level Pixel Data element starts and how long it is, when the file is a
/// little-endian Part 10 file whose last element it is. `Ok(None)` for every other case.
pub fn locate_pixel_data<R: BufRead>(reader: R, size: u64) -> io::Result<Option<(u64, u64)>> {
    let mut w = Walker { r: reader, pos: 0 };
    let mut preamble = [0u8; 132];
    w.read_exact(&mut preamble)?;
    if &preamble[128..] != b"DICM" {
        return Ok(None);
    }
    // File meta information: explicit VR little endian, group 0002 only.
    let mut transfer_syntax = None;
    let first = loop {
        if w.pos >= size {
            return Ok(None);
        }
        let start = w.pos;
        let (group, element) = w.tag()?;
        if group != 0x0002 {
            break ((group, element), start);
        }
        let (_, len) = w.explicit_header()?;
        if len == UNDEFINED {
            return Ok(None);
        }
        if element == 0x0010 {
            let mut uid = vec![0u8; len.min(64) as usize];
            w.read_exact(&mut uid)?;
            w.skip(u64::from(len) - uid.len() as u64)?;
            transfer_syntax = Some(String::from_utf8_lossy(&uid).trim_end_matches(['\0', ' ']).to_string());
        } else {
            w.skip(u64::from(len))?;
        }
    };
    let Some(ts) = transfer_syntax else {
        return Ok(None);
    };
    if DEFLATED.contains(&ts.as_str()) || ts == EXPLICIT_VR_BE {
        return Ok(None);
    }
    let explicit = ts != IMPLICIT_VR_LE;
    // Top-level elements, in file order, up to the first at or past Pixel Data (where
    // dicom-object's `read_until` stops too).
    let mut next = Some(first);
    loop {
        let (tag, start) = match next.take() {
            Some(t) => t,
            None => {
                if w.pos >= size {
                    return Ok(None);
                }
                let start = w.pos;
                (w.tag()?, start)
            }
        };
        let (vr, len) = if explicit {
            w.explicit_header()?
        } else {
            (*b"  ", w.u32()?)
        };
        if tag < (0x7FE0, 0x0010) {
            if len == UNDEFINED {
                w.undefined_value(explicit && &vr != b"UN", 0)?;
            } else {
                w.skip(u64::from(len))?;
            }
            continue;
        }
        if tag != (0x7FE0, 0x0010) || (explicit && &vr != b"OB" && &vr != b"OW") {
            return Ok(None);
        }
        if len == UNDEFINED {
            // Encapsulated: items of fragments up to the sequence delimiter.
            w.undefined_value(explicit, 0)?;
        } else {
            if len % 2 != 0 {
                return Ok(None);
            }
            w.skip(u64::from(len))?;
        }
        return Ok((w.pos == size).then_some((start, size - start)));
    }
}

/// A forward-only reader that counts its position.
struct Walker<R> {
    r: R,
    pos: u64,
}

impl<R: BufRead> Walker<R> {
    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.r.read_exact(buf)?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        while n > 0 {
            let available = self.r.fill_buf()?.len();
            if available == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let step = available.min(usize::try_from(n).unwrap_or(usize::MAX));
            self.r.consume(step);
            self.pos += step as u64;
            n -= step as u64;
        }
        Ok(())
    }

    fn u16(&mut self) -> io::Result<u16> {
        let mut b = [0u8; 2];
        self.read_exact(&mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    fn u32(&mut self) -> io::Result<u32> {
        let mut b = [0u8; 4];
        self.read_exact(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn tag(&mut self) -> io::Result<(u16, u16)> {
        Ok((self.u16()?, self.u16()?))
    }

    /// VR and length of an explicit-VR element whose tag was consumed.
    fn explicit_header(&mut self) -> io::Result<([u8; 2], u32)> {
        let mut vr = [0u8; 2];
        self.read_exact(&mut vr)?;
        let long = matches!(
            &vr,
            b"OB" | b"OD" | b"OF" | b"OL" | b"OV" | b"OW" | b"SQ" | b"SV" | b"UC" | b"UN" | b"UR" | b"UT" | b"UV"
        );
        let len = if long {
            self.skip(2)?;
            self.u32()?
        } else {
            u32::from(self.u16()?)
        };
        Ok((vr, len))
    }

    /// Skips the items of an undefined-length value up to and including its sequence delimiter.
    fn undefined_value(&mut self, explicit: bool, depth: usize) -> io::Result<()> {
        if depth > MAX_DEPTH {
            return Err(io::Error::other("sequences nested too deep"));
        }
        loop {
            let tag = self.tag()?;
            let len = self.u32()?;
            match tag {
                SEQUENCE_END => return Ok(()),
                ITEM if len == UNDEFINED => self.item_elements(explicit, depth + 1)?,
                ITEM => self.skip(u64::from(len))?,
                _ => return Err(io::Error::other("unexpected tag inside a sequence")),
            }
        }
    }

    /// Skips the elements of an undefined-length item up to and including its delimiter.
    fn item_elements(&mut self, explicit: bool, depth: usize) -> io::Result<()> {
        loop {
            let tag = self.tag()?;
            if tag == ITEM_END {
                self.skip(4)?;
                return Ok(());
            }
            let (vr, len) = if explicit {
                self.explicit_header()?
            } else {
                (*b"  ", self.u32()?)
            };
            if len == UNDEFINED {
                // An undefined-length UN holds implicit VR little endian (PS3.5 6.2.2).
                self.undefined_value(explicit && &vr != b"UN", depth)?;
            } else {
                self.skip(u64::from(len))?;
            }
        }
    }
}
