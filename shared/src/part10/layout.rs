//! A walk over a Part 10 file's element headers, made before dicom-rs parses the file.
//!
//! dicom-rs 0.10 reserves (and zero-fills) a value's *declared* length before reading it, so a
//! few hundred bytes that declare a 4 GB value cost 4 GB of memory — and export opens many files
//! at once (see `fuzz/known-issues/`). This walk follows the structure the way dicom-rs reads it
//! (explicit or implicit VR, little or big endian, deflated, sequences of defined or undefined
//! length, encapsulated pixel data, at any depth) and refuses a file as soon as a declared length
//! is more than the bytes left, or sequences nest deeper than any real file does. It reads
//! element headers only and seeks over values, so it costs a fraction of the parse that follows.
//!
//! The same walk finds where a trailing top-level Pixel Data element lies, so that the parse can
//! stop before it (see [`super::open_split`]).
//!
//! Export and import walk *leniently* ([`survey_lenient`]): what other readers (dcmtk, pydicom)
//! read but dicom-rs cannot is then not refused but recorded in [`Layout::repair`], and
//! [`super::repair`] rewrites the header for dicom-rs: a file meta group without its group length
//! or Transfer Syntax UID, sequences encoded as UN (CP-246: undefined length, content in implicit
//! VR little endian, or a defined-length UN value that holds items), and implicit-VR elements whose
//! dictionary VR is SQ but whose value is not a sequence (read as UN bytes). [`survey`] stays
//! strict: what it accepts, dicom-rs reads as it is. Both refuse a DICOMDIR-only file's walk never:
//! the lenient walk stops at the meta group of a DICOMDIR ([`LayoutError::MediaDirectory`]).
//!
//! Error messages name tags, byte offsets and lengths only, never a value.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};

const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
const EXPLICIT_VR_BE: &str = "1.2.840.10008.1.2.2";
/// Deflated transfer syntaxes: the data set after the file meta group is a raw deflate stream.
const DEFLATED: [&str; 3] = [
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.4.95",
    "1.2.840.10008.1.2.4.205",
];
const UNDEFINED: u32 = 0xFFFF_FFFF;
const ITEM: (u16, u16) = (0xFFFE, 0xE000);
const ITEM_END: (u16, u16) = (0xFFFE, 0xE00D);
const SEQUENCE_END: (u16, u16) = (0xFFFE, 0xE0DD);
const PIXEL_DATA: (u16, u16) = (0x7FE0, 0x0010);
/// Directory Record Sequence: what makes a data set a DICOMDIR, whatever its meta group says.
const DIRECTORY_RECORD_SEQUENCE: (u16, u16) = (0x0004, 0x1220);
/// Media Storage Directory Storage: a DICOMDIR.
const MEDIA_STORAGE_DIRECTORY: &str = "1.2.840.10008.1.3.10";
/// Explicit VR Little Endian, guessed when the meta group names no transfer syntax.
const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
/// Open sequences and items allowed at once. Real files nest a handful deep; dicom-rs builds
/// nested objects recursively, so an unbounded depth would be a way to exhaust its stack.
pub const MAX_NESTING: usize = 64;
/// Largest data set a deflated file may inflate to: dicom-rs reads such files whole, so without
/// a bound a small deflate bomb would be as costly as a huge declared length.
pub const MAX_INFLATED: u64 = 1 << 30;

/// What the walk learnt about a file that dicom-rs can be trusted to read within its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Transfer Syntax UID from the file meta group (padding removed).
    pub transfer_syntax: String,
    /// Offset and length (header included) of a top-level Pixel Data element that ends the file,
    /// when the parse may stop before it and the element be copied as it is: little endian,
    /// not deflated, OB/OW, an even length or encapsulated, and the first top-level element at
    /// or past (7FE0,0010).
    pub pixel_data: Option<(u64, u64)>,
    /// Offset of the data set's first byte (after the file meta group).
    pub data_set_start: u64,
    /// What must be rewritten before dicom-rs reads the file (lenient walk only; `None` when
    /// nothing must).
    pub repair: Option<Repair>,
}

/// What a lenient walk found that other readers read and dicom-rs does not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repair {
    /// The file meta group does not start with its group length (0002,0000).
    pub meta_group_length: bool,
    /// The file meta group has no Transfer Syntax UID; [`Layout::transfer_syntax`] is the one
    /// guessed from the data set's first element (explicit or implicit VR little endian).
    pub guessed_transfer_syntax: bool,
    /// Sequences encoded as UN (CP-246), or implicit-VR elements whose dictionary VR is SQ but
    /// whose value is not a sequence: the data set is rewritten (explicit VR little endian, the
    /// former as sequences, the latter as UN).
    pub data_set: bool,
}

/// Why a file is refused before dicom-rs sees it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// The structure is damaged or hostile; the message says where.
    #[error("{0}")]
    Malformed(String),
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Io(#[source] io::Error),
    /// The meta group says the file is a DICOMDIR (Media Storage Directory Storage): the
    /// lenient walk goes no further (a DICOMDIR is never exported, however it is built).
    #[error("a DICOMDIR (media directory)")]
    MediaDirectory,
}

fn malformed(message: impl Into<String>) -> LayoutError {
    LayoutError::Malformed(message.into())
}

/// Walks a Part 10 file of `size` bytes from its first byte (the preamble), strictly: what it
/// accepts, dicom-rs reads as it is.
pub fn survey<R: BufRead + Seek>(reader: R, size: u64) -> Result<Layout, LayoutError> {
    survey_within(reader, size, MAX_INFLATED, None, false).map(|(layout, _)| layout)
}

/// [`survey`], leniently: what other readers read is recorded in [`Layout::repair`] instead of
/// refused, and a DICOMDIR is refused as [`LayoutError::MediaDirectory`] after its meta group.
/// With `capture`, also the raw value of that top-level attribute (see [`survey_capturing`]).
pub fn survey_lenient<R: BufRead + Seek>(
    reader: R,
    size: u64,
    capture: Option<(u16, u16)>,
) -> Result<(Layout, TopLevelValue), LayoutError> {
    let (layout, captured) = survey_within(reader, size, MAX_INFLATED, capture, true)?;
    Ok((layout, captured.unwrap_or(TopLevelValue::Absent)))
}

/// What [`survey_capturing`] found of the top-level attribute it was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopLevelValue {
    /// Not at the top level of the data set.
    Absent,
    /// The value bytes of its first top-level occurrence, as stored (padding included).
    Value(Vec<u8>),
    /// Present, but as a sequence, with an undefined or a long (over 1 KiB) value, or in a
    /// deflated data set: read it with dicom-rs instead.
    Unusual,
}

/// Longest value [`survey_capturing`] returns.
const MAX_CAPTURE: u32 = 1024;

/// [`survey`], also returning the raw value of the top-level attribute `tag` — so that a caller
/// needing one short attribute (the export scan's local patient ID) need not parse the file.
pub fn survey_capturing<R: BufRead + Seek>(
    reader: R,
    size: u64,
    tag: (u16, u16),
) -> Result<(Layout, TopLevelValue), LayoutError> {
    let (layout, captured) = survey_within(reader, size, MAX_INFLATED, Some(tag), false)?;
    Ok((layout, captured.unwrap_or(TopLevelValue::Absent)))
}

fn survey_within<R: BufRead + Seek>(
    reader: R,
    size: u64,
    max_inflated: u64,
    capture: Option<(u16, u16)>,
    lenient: bool,
) -> Result<(Layout, Option<TopLevelValue>), LayoutError> {
    let mut w = Walker::new(Seekable(reader), size, true);
    w.capture = capture;
    w.lenient = lenient;
    let mut preamble = [0u8; 132];
    w.read_exact(&mut preamble)
        .map_err(|_| malformed("the file is shorter than a DICOM preamble"))?;
    if &preamble[128..] != b"DICM" {
        return Err(malformed("no DICM prefix at byte 128"));
    }
    let transfer_syntax = w.meta_group()?;
    let data_set_start = w.pos;
    let ts = transfer_syntax.as_str();
    if DEFLATED.contains(&ts) {
        let start = w.pos;
        let mut file = w.src.0;
        survey_deflated(&mut file, start, max_inflated)?;
        let layout = Layout {
            transfer_syntax,
            pixel_data: None,
            data_set_start,
            repair: w.repair.take(),
        };
        return Ok((layout, capture.map(|_| TopLevelValue::Unusual)));
    }
    w.big = ts == EXPLICIT_VR_BE;
    w.explicit = ts != IMPLICIT_VR_LE;
    let pixel_data = w.data_set()?;
    if w.big && w.repair.as_ref().is_some_and(|r| r.data_set) {
        // The rewrite is little endian only; big endian is retired and rare.
        return Err(malformed(
            "the data set holds UN-encoded sequences in a big endian file, which pseal cannot rewrite",
        ));
    }
    let layout = Layout {
        pixel_data: if w.big { None } else { pixel_data },
        transfer_syntax,
        data_set_start,
        repair: w.repair.take(),
    };
    Ok((layout, w.captured.take()))
}

/// Whether the standard dictionary gives `tag` the VR SQ.
fn dictionary_sq(tag: (u16, u16)) -> bool {
    StandardDataDictionary
        .by_tag(Tag(tag.0, tag.1))
        .is_some_and(|entry| entry.vr().relaxed() == VR::SQ)
}

/// Inflates the data set twice (to learn its size, then to walk it); neither pass keeps it.
fn survey_deflated<R: Read + Seek>(file: &mut R, start: u64, max_inflated: u64) -> Result<(), LayoutError> {
    fn rewind<R: Read + Seek>(file: &mut R, start: u64) -> Result<impl Read + '_, LayoutError> {
        file.seek(SeekFrom::Start(start)).map_err(LayoutError::Io)?;
        Ok(flate2::read::DeflateDecoder::new(BufReader::new(file)))
    }
    let inflated = io::copy(&mut rewind(file, start)?.take(max_inflated + 1), &mut io::sink())
        .map_err(|e| malformed(format!("the deflated data set does not inflate ({e})")))?;
    if inflated > max_inflated {
        return Err(malformed(format!(
            "the deflated data set inflates past {} MiB",
            max_inflated >> 20
        )));
    }
    let mut w = Walker::new(Streamed(BufReader::new(rewind(file, start)?)), inflated, true);
    w.data_set().map(|_| ())
}

/// Where the walker gets bytes: it reads headers and skips values.
trait Source {
    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()>;
    fn skip(&mut self, n: u64) -> io::Result<()>;
}

/// A file (or any seekable buffered reader): values are skipped by seeking.
struct Seekable<R>(R);

impl<R: BufRead + Seek> Source for Seekable<R> {
    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.0.read_exact(buf)
    }

    fn skip(&mut self, n: u64) -> io::Result<()> {
        // Small values are consumed from the buffer; a large one costs one seek (a plain seek
        // would throw the buffer away every time).
        let available = self.0.fill_buf()?.len() as u64;
        if n <= available {
            self.0.consume(n as usize);
            return Ok(());
        }
        self.0.consume(available as usize);
        let rest = i64::try_from(n - available).map_err(|_| io::Error::other("skip too long"))?;
        self.0.seek(SeekFrom::Current(rest)).map(|_| ())
    }
}

/// A stream that cannot seek (an inflating reader): values are read and dropped.
struct Streamed<R>(R);

impl<R: Read> Source for Streamed<R> {
    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.0.read_exact(buf)
    }

    fn skip(&mut self, n: u64) -> io::Result<()> {
        let skipped = io::copy(&mut (&mut self.0).take(n), &mut io::sink())?;
        if skipped == n {
            Ok(())
        } else {
            Err(io::ErrorKind::UnexpectedEof.into())
        }
    }
}

/// An open sequence or item, as dicom-rs's data set reader keeps them.
#[derive(Clone, Copy)]
enum Frame {
    /// A data set sequence (or an undefined-length element read as one); `end` when defined.
    /// `restore`: the encoding to return to at its end, when its content is read in another
    /// (a CP-246 UN sequence, whose content is implicit VR).
    Sequence { end: Option<u64>, restore: Option<bool> },
    /// An item of a data set sequence.
    Item { end: Option<u64> },
    /// Encapsulated pixel data: items are fragments.
    Fragments { top_level_pixels: bool },
}

impl Frame {
    fn end(self) -> Option<u64> {
        match self {
            Frame::Sequence { end, .. } | Frame::Item { end } => end,
            Frame::Fragments { .. } => None,
        }
    }
}

struct Walker<S> {
    src: S,
    pos: u64,
    size: u64,
    explicit: bool,
    big: bool,
    /// A top-level attribute whose value to keep, and what was found of it.
    capture: Option<(u16, u16)>,
    captured: Option<TopLevelValue>,
    /// Record what other readers read instead of refusing it.
    lenient: bool,
    repair: Option<Repair>,
}

impl<R: BufRead + Seek> Walker<Seekable<R>> {
    /// Moves back `n` bytes (what was read to look at the next tag).
    fn unread(&mut self, n: u8) -> Result<(), LayoutError> {
        self.src
            .0
            .seek(SeekFrom::Current(-i64::from(n)))
            .map_err(LayoutError::Io)?;
        self.pos -= u64::from(n);
        Ok(())
    }

    /// Reads the file meta group (explicit VR little endian, led by its group length) and
    /// returns the transfer syntax. Leniently, a group without its length ends at the first
    /// element of another group, and a missing transfer syntax is guessed from the data set; a
    /// DICOMDIR stops the walk.
    fn meta_group(&mut self) -> Result<String, LayoutError> {
        let first = self.tag()?;
        let start = self.pos - 4;
        let (_, len) = self.header(first)?;
        let end = if first == (0x0002, 0x0000) && len == 4 {
            let group_length = self.u32()?;
            Some(self.pos + u64::from(group_length))
        } else if self.lenient && first.0 == 0x0002 {
            self.repair().meta_group_length = true;
            // Back to the first element, which the loop reads again.
            let read = u8::try_from(self.pos - start).unwrap_or(12);
            self.unread(read)?;
            None
        } else {
            return Err(malformed(
                "the file meta group does not start with its group length (0002,0000)",
            ));
        };
        let mut transfer_syntax = None;
        let mut sop_class = None;
        loop {
            match end {
                Some(end) if self.pos >= end => break,
                None if self.pos + 4 > self.size => break,
                None => {
                    let next = self.tag()?;
                    self.unread(4)?;
                    if next.0 != 0x0002 {
                        break;
                    }
                }
                Some(_) => {}
            }
            let tag = self.tag()?;
            let (_, len) = self.header(tag)?;
            if len == UNDEFINED {
                return Err(malformed(format!(
                    "file meta element ({:04X},{:04X}) has an undefined length",
                    tag.0, tag.1
                )));
            }
            if tag == (0x0002, 0x0010) || tag == (0x0002, 0x0002) {
                self.check(tag, len)?;
                let mut uid = vec![0u8; len.min(64) as usize];
                self.read_exact(&mut uid).map_err(|_| self.ends_early())?;
                self.skip(tag, len - uid.len() as u32)?;
                let text = String::from_utf8_lossy(&uid).trim_end_matches(['\0', ' ']).to_string();
                if tag == (0x0002, 0x0010) {
                    transfer_syntax = Some(text).filter(|t| !t.is_empty());
                } else {
                    sop_class = Some(text);
                }
            } else {
                self.skip(tag, len)?;
            }
        }
        if self.lenient && sop_class.as_deref() == Some(MEDIA_STORAGE_DIRECTORY) {
            return Err(LayoutError::MediaDirectory);
        }
        match transfer_syntax {
            Some(ts) => Ok(ts),
            None if self.lenient => {
                self.repair().guessed_transfer_syntax = true;
                self.guess_transfer_syntax()
            }
            None => Err(malformed("the file meta group has no Transfer Syntax UID (0002,0010)")),
        }
    }

    /// Explicit VR little endian when the data set's first element has a VR after its tag, as
    /// dcmtk guesses; implicit otherwise.
    fn guess_transfer_syntax(&mut self) -> Result<String, LayoutError> {
        if self.pos + 6 > self.size {
            return Ok(EXPLICIT_VR_LE.to_string());
        }
        let mut head = [0u8; 6];
        self.read_exact(&mut head).map_err(|_| self.ends_early())?;
        self.unread(6)?;
        let code = [head[4], head[5]];
        let explicit = code.iter().all(u8::is_ascii_uppercase) && VR::from_binary(code).is_some();
        Ok(if explicit { EXPLICIT_VR_LE } else { IMPLICIT_VR_LE }.to_string())
    }
}

impl<S: Source> Walker<S> {
    fn new(src: S, size: u64, explicit: bool) -> Self {
        Walker {
            src,
            pos: 0,
            size,
            explicit,
            big: false,
            capture: None,
            captured: None,
            lenient: false,
            repair: None,
        }
    }

    fn repair(&mut self) -> &mut Repair {
        self.repair.get_or_insert_with(Repair::default)
    }

    /// Pops the innermost frame, returning to the encoding a CP-246 sequence left.
    fn pop(&mut self, stack: &mut Vec<Frame>) {
        if let Some(Frame::Sequence {
            restore: Some(explicit),
            ..
        }) = stack.pop()
        {
            self.explicit = explicit;
        }
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.src.read_exact(buf)?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn ends_early(&self) -> LayoutError {
        malformed(format!("the file ends inside an element header at byte {}", self.pos))
    }

    fn u16(&mut self) -> Result<u16, LayoutError> {
        let mut b = [0u8; 2];
        self.read_exact(&mut b).map_err(|_| self.ends_early())?;
        Ok(if self.big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32(&mut self) -> Result<u32, LayoutError> {
        let mut b = [0u8; 4];
        self.read_exact(&mut b).map_err(|_| self.ends_early())?;
        Ok(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn tag(&mut self) -> Result<(u16, u16), LayoutError> {
        Ok((self.u16()?, self.u16()?))
    }

    /// Checks that `len` bytes are left after the current position (the check dicom-rs lacks).
    fn check(&self, tag: (u16, u16), len: u32) -> Result<(), LayoutError> {
        let left = self.size.saturating_sub(self.pos);
        if u64::from(len) > left {
            return Err(malformed(format!(
                "({:04X},{:04X}) at byte {} declares {len} bytes but only {left} are left",
                tag.0,
                tag.1,
                self.pos.saturating_sub(8)
            )));
        }
        Ok(())
    }

    fn skip(&mut self, tag: (u16, u16), len: u32) -> Result<(), LayoutError> {
        self.check(tag, len)?;
        self.src.skip(u64::from(len)).map_err(LayoutError::Io)?;
        self.pos += u64::from(len);
        Ok(())
    }

    /// VR and length of an element whose tag was read, decoded as dicom-rs decodes them.
    fn header(&mut self, tag: (u16, u16)) -> Result<(VR, u32), LayoutError> {
        if tag.0 == 0xFFFE {
            // Item and delimiter tags carry a length and no VR in every transfer syntax.
            return Ok((VR::UN, self.u32()?));
        }
        if !self.explicit {
            let vr = if tag == PIXEL_DATA || (tag.0 >> 8 == 0x60 && tag.1 == 0x3000) {
                VR::OW
            } else {
                StandardDataDictionary
                    .by_tag(Tag(tag.0, tag.1))
                    .map(|entry| entry.vr().relaxed())
                    .unwrap_or(VR::UN)
            };
            return Ok((vr, self.u32()?));
        }
        let mut code = [0u8; 2];
        self.read_exact(&mut code).map_err(|_| self.ends_early())?;
        let vr = VR::from_binary(code).unwrap_or(VR::UN);
        use VR::*;
        let short = matches!(
            vr,
            AE | AS | AT | CS | DA | DS | DT | FL | FD | IS | LO | LT | PN | SH | SL | SS | ST | TM | UI | UL | US
        );
        let len = if short {
            u32::from(self.u16()?)
        } else {
            self.u16()?;
            self.u32()?
        };
        Ok((vr, len))
    }

    /// An implicit-VR element whose dictionary VR is SQ, with a defined non-zero length: walked
    /// as a sequence when its value starts with an item, otherwise recorded for the rewrite (its
    /// value becomes UN bytes, as a writer with an older dictionary meant).
    fn implicit_sequence(&mut self, tag: (u16, u16), len: u32, stack: &mut Vec<Frame>) -> Result<(), LayoutError> {
        let value_end = self.pos + u64::from(len);
        if len < 8 {
            self.skip(tag, len)?;
            self.repair().data_set = true;
            return Ok(());
        }
        let first = self.tag()?;
        if first != ITEM {
            self.skip(tag, len - 4)?;
            self.repair().data_set = true;
            return Ok(());
        }
        let item_len = self.u32()?;
        stack.push(Frame::Sequence {
            end: Some(value_end),
            restore: None,
        });
        if item_len != UNDEFINED {
            self.check(ITEM, item_len)?;
        }
        let end = (item_len != UNDEFINED).then(|| self.pos + u64::from(item_len));
        stack.push(Frame::Item { end });
        Ok(())
    }

    /// Walks the data set to its end. Returns the trailing top-level Pixel Data element's
    /// offset and length when it may be split off (little-endian callers only use it).
    fn data_set(&mut self) -> Result<Option<(u64, u64)>, LayoutError> {
        let mut stack: Vec<Frame> = Vec::new();
        // The first top-level element at or past Pixel Data: its start, and whether it is a
        // Pixel Data element that may be copied as it is.
        let mut past_pixel: Option<(u64, bool)> = None;
        let mut pixel_end = None;
        loop {
            while let Some(frame) = stack.last().copied() {
                match frame.end() {
                    Some(end) if self.pos >= end => self.pop(&mut stack),
                    _ => break,
                }
            }
            if stack.len() > MAX_NESTING {
                return Err(malformed(format!(
                    "sequences nest deeper than {} levels at byte {}",
                    MAX_NESTING / 2,
                    self.pos
                )));
            }
            if stack.is_empty() && self.pos >= self.size {
                break;
            }
            if self.pos >= self.size {
                return Err(malformed("the file ends inside a sequence"));
            }
            let start = self.pos;
            let tag = self.tag()?;
            match stack.last().copied() {
                Some(Frame::Sequence { .. }) => {
                    let len = self.u32()?;
                    match tag {
                        ITEM => {
                            if len != UNDEFINED {
                                self.check(tag, len)?;
                            }
                            let end = (len != UNDEFINED).then(|| self.pos + u64::from(len));
                            stack.push(Frame::Item { end });
                        }
                        SEQUENCE_END => self.pop(&mut stack),
                        _ => {
                            return Err(malformed(format!(
                                "({:04X},{:04X}) at byte {start} where a sequence item was expected",
                                tag.0, tag.1
                            )))
                        }
                    }
                }
                Some(Frame::Fragments { top_level_pixels }) => {
                    let len = self.u32()?;
                    match tag {
                        ITEM if len != UNDEFINED => self.skip(tag, len)?,
                        SEQUENCE_END => {
                            stack.pop();
                            if top_level_pixels {
                                pixel_end = Some(self.pos);
                            }
                        }
                        _ => {
                            return Err(malformed(format!(
                                "({:04X},{:04X}) at byte {start} where a pixel data fragment was expected",
                                tag.0, tag.1
                            )))
                        }
                    }
                }
                frame => {
                    let top_level = frame.is_none();
                    if top_level && self.lenient && tag == DIRECTORY_RECORD_SEQUENCE {
                        return Err(LayoutError::MediaDirectory);
                    }
                    let (vr, len) = self.header(tag)?;
                    if top_level && past_pixel.is_none() && tag >= PIXEL_DATA {
                        let copyable = tag == PIXEL_DATA && (!self.explicit || matches!(vr, VR::OB | VR::OW));
                        past_pixel = Some((start, copyable && (len == UNDEFINED || len % 2 == 0)));
                    }
                    let wanted = top_level && self.capture == Some(tag) && self.captured.is_none();
                    if wanted {
                        if vr == VR::SQ || len == UNDEFINED || len > MAX_CAPTURE {
                            self.captured = Some(TopLevelValue::Unusual);
                        } else {
                            self.check(tag, len)?;
                            let mut value = vec![0u8; len as usize];
                            self.read_exact(&mut value).map_err(|_| self.ends_early())?;
                            self.captured = Some(TopLevelValue::Value(value));
                            continue;
                        }
                    }
                    if tag == ITEM_END {
                        // Ends the open item; outside one dicom-rs ignores it.
                        if let Some(Frame::Item { .. }) = frame {
                            stack.pop();
                        }
                    } else if vr == VR::SQ {
                        if len != UNDEFINED {
                            self.check(tag, len)?;
                        }
                        if self.lenient && !self.explicit && len != UNDEFINED && len > 0 {
                            // Implicit VR: SQ by the dictionary, but is the value a sequence?
                            self.implicit_sequence(tag, len, &mut stack)?;
                            continue;
                        }
                        let end = (len != UNDEFINED).then(|| self.pos + u64::from(len));
                        stack.push(Frame::Sequence { end, restore: None });
                    } else if len == UNDEFINED && tag == PIXEL_DATA {
                        stack.push(Frame::Fragments {
                            top_level_pixels: top_level,
                        });
                    } else if len == UNDEFINED && self.lenient && self.explicit && vr == VR::UN {
                        // CP-246: a sequence written as UN has its content in implicit VR
                        // little endian, whatever the file's encoding.
                        self.repair().data_set = true;
                        stack.push(Frame::Sequence {
                            end: None,
                            restore: Some(true),
                        });
                        self.explicit = false;
                    } else if len == UNDEFINED {
                        // dicom-rs reads any other undefined length as a sequence in the same
                        // encoding.
                        stack.push(Frame::Sequence {
                            end: None,
                            restore: None,
                        });
                    } else if self.lenient && self.explicit && vr == VR::UN && len >= 8 && dictionary_sq(tag) {
                        // CP-246 with a defined length: the items are bytes to dicom-rs, which
                        // the rewrite turns back into a sequence.
                        self.check(tag, len)?;
                        let first = self.tag()?;
                        self.skip(tag, len - 4)?;
                        if first == ITEM {
                            self.repair().data_set = true;
                        }
                    } else {
                        self.skip(tag, len)?;
                        if top_level && tag == PIXEL_DATA {
                            pixel_end = Some(self.pos);
                        }
                    }
                }
            }
        }
        Ok(match (past_pixel, pixel_end) {
            (Some((start, true)), Some(end)) if end == self.size => Some((start, end - start)),
            _ => None,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn file(transfer_syntax: &str, data_set: &[u8]) -> Vec<u8> {
        let mut ts = transfer_syntax.as_bytes().to_vec();
        if ts.len() % 2 == 1 {
            ts.push(0);
        }
        let mut meta = vec![0x02, 0x00, 0x10, 0x00, b'U', b'I'];
        meta.extend((ts.len() as u16).to_le_bytes());
        meta.extend(&ts);
        let mut out = vec![0u8; 128];
        out.extend(b"DICM");
        out.extend([0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0]);
        out.extend((meta.len() as u32).to_le_bytes());
        out.extend(meta);
        out.extend(data_set);
        out
    }

    fn run(bytes: &[u8]) -> Result<Layout, LayoutError> {
        survey(Cursor::new(bytes), bytes.len() as u64)
    }

    fn explicit(tag: (u16, u16), vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut out = tag.0.to_le_bytes().to_vec();
        out.extend(tag.1.to_le_bytes());
        out.extend(vr);
        out.extend((value.len() as u16).to_le_bytes());
        out.extend(value);
        out
    }

    #[test]
    fn a_declared_length_past_the_end_is_refused_before_any_allocation() {
        // (0008,1115) as OB declaring 0xE000FFFE bytes: what the UN-sequence file makes dicom-rs see.
        let mut data = vec![0x08, 0x00, 0x15, 0x11, b'O', b'B', 0, 0];
        data.extend(0xE000_FFFEu32.to_le_bytes());
        data.extend([0u8; 16]);
        let err = run(&file("1.2.840.10008.1.2.1", &data)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("(0008,1115)") && text.contains("3758161918"), "{text}");
    }

    #[test]
    fn lengths_inside_defined_length_items_are_checked_too() {
        let mut inner = vec![0x10, 0x00, 0x10, 0x00, b'U', b'T', 0, 0];
        inner.extend(0x7FFF_FFF0u32.to_le_bytes());
        let mut item = vec![0xFE, 0xFF, 0x00, 0xE0];
        item.extend((inner.len() as u32).to_le_bytes());
        item.extend(&inner);
        let mut data = vec![0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0];
        data.extend((item.len() as u32).to_le_bytes());
        data.extend(&item);
        let err = run(&file("1.2.840.10008.1.2.1", &data)).unwrap_err();
        assert!(err.to_string().contains("(0010,0010)"), "{err}");
    }

    #[test]
    fn big_endian_lengths_are_read_big_endian() {
        let mut data = vec![0x00, 0x10, 0x00, 0x10, b'P', b'N', 0x00, 0x04];
        data.extend(b"ABCD");
        assert!(run(&file(EXPLICIT_VR_BE, &data)).is_ok());
        let mut data = vec![0x00, 0x10, 0x00, 0x10, b'P', b'N', 0x04, 0x00];
        data.extend(b"ABCD");
        assert!(run(&file(EXPLICIT_VR_BE, &data)).is_err());
    }

    #[test]
    fn implicit_vr_sequences_are_found_in_the_dictionary() {
        // (0008,1115) Referenced Series Sequence, defined length, one empty item.
        let mut data = vec![0x08, 0x00, 0x15, 0x11, 8, 0, 0, 0];
        data.extend([0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0]);
        data.extend([0xE0, 0x7F, 0x10, 0x00, 4, 0, 0, 0, 1, 2, 3, 4]);
        let layout = run(&file(IMPLICIT_VR_LE, &data)).unwrap();
        let at = (file(IMPLICIT_VR_LE, &[]).len() + 16) as u64;
        assert_eq!(layout.pixel_data, Some((at, 12)));
    }

    #[test]
    fn nesting_is_bounded() {
        let mut data = Vec::new();
        for _ in 0..MAX_NESTING {
            data.extend([0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
            data.extend([0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        }
        let err = run(&file("1.2.840.10008.1.2.1", &data)).unwrap_err();
        assert!(err.to_string().contains("nest deeper"), "{err}");
    }

    #[test]
    fn a_deflate_bomb_is_refused() {
        use std::io::Write;
        let mut data = vec![0x09, 0x00, 0x10, 0x00, b'U', b'N', 0, 0];
        data.extend(0xFFFF_FFF0u32.to_le_bytes());
        let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&data).unwrap();
        encoder.write_all(&vec![0u8; 3 << 20]).unwrap();
        let bytes = file(DEFLATED[0], &encoder.finish().unwrap());
        assert!(bytes.len() < 20_000);
        let err = survey_within(Cursor::new(&bytes), bytes.len() as u64, 2 << 20, None, false).unwrap_err();
        assert!(err.to_string().contains("inflates past"), "{err}");
    }

    #[test]
    fn a_small_deflated_file_is_walked() {
        use std::io::Write;
        let data = explicit((0x0010, 0x0010), b"PN", b"ABCD");
        let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&data).unwrap();
        let layout = run(&file(DEFLATED[0], &encoder.finish().unwrap())).unwrap();
        assert_eq!(layout.pixel_data, None);
        assert_eq!(layout.transfer_syntax, DEFLATED[0]);
    }

    #[test]
    fn a_top_level_value_is_captured_and_nested_ones_are_not() {
        // A nested (0010,0020) inside a sequence item, then the top-level one.
        let nested = explicit((0x0010, 0x0020), b"LO", b"INNER ");
        let mut data = vec![0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0];
        data.extend(((nested.len() + 8) as u32).to_le_bytes());
        data.extend([0xFE, 0xFF, 0x00, 0xE0]);
        data.extend((nested.len() as u32).to_le_bytes());
        data.extend(&nested);
        data.extend(explicit((0x0010, 0x0020), b"LO", b"ID-42 "));
        let bytes = file("1.2.840.10008.1.2.1", &data);
        let (_, captured) = survey_capturing(Cursor::new(&bytes), bytes.len() as u64, (0x0010, 0x0020)).unwrap();
        assert_eq!(captured, TopLevelValue::Value(b"ID-42 ".to_vec()));
        let (_, captured) = survey_capturing(Cursor::new(&bytes), bytes.len() as u64, (0x0010, 0x0021)).unwrap();
        assert_eq!(captured, TopLevelValue::Absent);
        let (_, captured) = survey_capturing(Cursor::new(&bytes), bytes.len() as u64, (0x0008, 0x1115)).unwrap();
        assert_eq!(captured, TopLevelValue::Unusual);
    }

    fn lenient(bytes: &[u8]) -> Result<Layout, LayoutError> {
        survey_lenient(Cursor::new(bytes), bytes.len() as u64, None).map(|(layout, _)| layout)
    }

    /// (4453,100C) UN of undefined length holding one item with (0008,1115) SQ, in implicit VR:
    /// the shape of pydicom's UN_sequence.dcm.
    fn cp246() -> Vec<u8> {
        let mut data = vec![0x53, 0x44, 0x0C, 0x10, b'U', b'N', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];
        data.extend([0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        data.extend([0x08, 0x00, 0x15, 0x11, 0xFF, 0xFF, 0xFF, 0xFF]);
        data.extend([0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        data.extend([0x20, 0x00, 0x0E, 0x00, 6, 0, 0, 0]);
        data.extend(b"1.2.3\0");
        data.extend([0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0, 0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        data.extend([0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0, 0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        data.extend(explicit((0x0010, 0x0020), b"LO", b"ID42"));
        data
    }

    #[test]
    fn a_un_sequence_is_refused_strictly_and_recorded_leniently() {
        let bytes = file("1.2.840.10008.1.2.1", &cp246());
        assert!(run(&bytes).is_err(), "dicom-rs would read its items as explicit VR");
        let layout = lenient(&bytes).unwrap();
        assert!(layout.repair.unwrap().data_set);
    }

    #[test]
    fn an_implicit_sq_holding_bytes_is_recorded_leniently() {
        // (0008,1115) is SQ in the dictionary; here its value is 4 plain bytes.
        let mut data = vec![0x08, 0x00, 0x15, 0x11, 4, 0, 0, 0];
        data.extend(b"ABCD");
        let bytes = file(IMPLICIT_VR_LE, &data);
        assert!(run(&bytes).is_err());
        assert!(lenient(&bytes).unwrap().repair.unwrap().data_set);
        // A real sequence needs no repair.
        let mut data = vec![0x08, 0x00, 0x15, 0x11, 8, 0, 0, 0];
        data.extend([0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0]);
        assert_eq!(lenient(&file(IMPLICIT_VR_LE, &data)).unwrap().repair, None);
    }

    #[test]
    fn a_meta_group_without_length_or_transfer_syntax_is_read_leniently() {
        let mut out = vec![0u8; 128];
        out.extend(b"DICM");
        out.extend(explicit((0x0002, 0x0002), b"UI", b"1.2.840.10008.5.1.4.1.1.4\0"));
        out.extend(explicit((0x0002, 0x0003), b"UI", b"1.2.3.4\0"));
        let start = out.len() as u64;
        out.extend(explicit((0x0010, 0x0020), b"LO", b"ID42"));
        assert!(run(&out).is_err());
        let layout = lenient(&out).unwrap();
        let repair = layout.repair.unwrap();
        assert!(repair.meta_group_length && repair.guessed_transfer_syntax);
        assert_eq!(layout.transfer_syntax, EXPLICIT_VR_LE);
        assert_eq!(layout.data_set_start, start);
    }

    #[test]
    fn a_dicomdir_stops_the_lenient_walk_at_its_meta_group() {
        let mut meta = explicit((0x0002, 0x0002), b"UI", b"1.2.840.10008.1.3.10");
        meta.extend(explicit((0x0002, 0x0010), b"UI", b"1.2.840.10008.1.2.1\0"));
        let mut out = vec![0u8; 128];
        out.extend(b"DICM");
        out.extend([0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0]);
        out.extend((meta.len() as u32).to_le_bytes());
        out.extend(meta);
        // A truncated record after it: irrelevant, the walk stops before.
        out.extend([0x04, 0x00, 0x20, 0x12, b'S', b'Q', 0, 0, 0xF0, 0, 0, 0]);
        assert!(matches!(lenient(&out), Err(LayoutError::MediaDirectory)));
    }
}
