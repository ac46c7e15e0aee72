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
//! Pixel Data (trailing padding, digital signatures) — makes [`open_split`] read the whole file
//! instead: correct first, fast when it is safe. A file whose structure declares more bytes than
//! it holds is refused by [`layout`] before dicom-rs reads (and reserves memory for) any of it.
//! A file that other readers read but dicom-rs does not (UN-encoded sequences, a meta group
//! without its length or transfer syntax, ...: see [`Repair`]) has its header rewritten in
//! memory first ([`repair`]).

pub mod layout;
mod repair;

pub use layout::{survey, survey_capturing, survey_lenient, Layout, LayoutError, Repair, TopLevelValue};

use dicom_dictionary_std::tags;
use dicom_object::{file::ReadPreamble, DefaultDicomObject, OpenFileOptions, ReadError};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

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

/// An instance ready to be written: its encoded attributes up to Pixel Data, then the source
/// file's Pixel Data element copied as it is. Export, review and the steward's re-keying all write
/// this, so an instance is never held whole in memory.
#[derive(Debug)]
pub struct SplitInstance {
    /// The encoded Part 10 file (preamble, meta group, attributes) up to Pixel Data; the whole
    /// file when `pixel_data` is `None`.
    pub head: Vec<u8>,
    /// The source file's trailing Pixel Data element, copied verbatim after `head`.
    pub pixel_data: Option<PixelTail>,
}

impl SplitInstance {
    /// Size of the encoded instance in bytes.
    pub fn len(&self) -> u64 {
        self.head.len() as u64 + self.pixel_data.as_ref().map_or(0, PixelTail::len)
    }

    /// True when the encoding is empty (never for a real instance).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A reader of the whole encoded instance.
    pub fn reader(&self) -> io::Result<Box<dyn Read + '_>> {
        Ok(match &self.pixel_data {
            Some(tail) => Box::new(self.head.as_slice().chain(tail.reader()?)),
            None => Box::new(self.head.as_slice()),
        })
    }

    /// Writes the encoded instance to `out`.
    pub fn write_to(&self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(&self.head)?;
        match &self.pixel_data {
            Some(tail) => tail.copy_to(out),
            None => Ok(()),
        }
    }

    /// Writes the encoded instance to a file (the pixel data is copied in the kernel).
    pub fn write_to_file(&self, out: &mut File) -> io::Result<()> {
        out.write_all(&self.head)?;
        match &self.pixel_data {
            Some(tail) => tail.copy_to_file(out),
            None => Ok(()),
        }
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

/// Why a file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Refused by the walk before parsing (a declared length past the end, and the like).
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// dicom-rs could not parse it.
    #[error(transparent)]
    Parse(#[from] ReadError),
}

/// A file that passed the walk (see [`layout`]), open and ready for dicom-rs: whatever dicom-rs
/// parses from it has had every length checked first.
pub struct Walked {
    file: File,
    size: u64,
    /// Where the walk found the trailing Pixel Data, and the transfer syntax.
    pub layout: Layout,
    /// The top-level attribute [`walk`] was asked to keep ([`TopLevelValue::Absent`] if none).
    pub value: TopLevelValue,
}

/// Opens `path` and walks every element header; with `keep`, also keeps the raw value of that
/// top-level attribute, so a caller needing one short attribute need not parse the file.
pub fn walk(path: &Path, keep: Option<dicom_core::Tag>) -> Result<Walked, OpenError> {
    walk_file(File::open(path).map_err(LayoutError::Io)?, keep)
}

/// [`walk`] of a file already open (at any position: the walk starts from the beginning).
pub fn walk_file(file: File, keep: Option<dicom_core::Tag>) -> Result<Walked, OpenError> {
    (&file).seek(SeekFrom::Start(0)).map_err(LayoutError::Io)?;
    let size = file.metadata().map_err(LayoutError::Io)?.len();
    let reader = BufReader::with_capacity(8 * 1024, &file);
    let (layout, value) = layout::survey_lenient(reader, size, keep.map(|t| (t.group(), t.element())))?;
    Ok(Walked {
        file,
        size,
        layout,
        value,
    })
}

impl Walked {
    /// The attributes up to (not including) `stop`.
    pub fn parse_until(&self, stop: dicom_core::Tag) -> Result<DefaultDicomObject, OpenError> {
        if let Some(repair) = &self.layout.repair {
            let mut object = self.repaired(repair)?;
            let later: Vec<dicom_core::Tag> = object.iter().map(|e| e.header().tag).filter(|&t| t >= stop).collect();
            for tag in later {
                object.remove_element(tag);
            }
            return Ok(object);
        }
        (&self.file).seek(SeekFrom::Start(0)).map_err(LayoutError::Io)?;
        Ok(OpenFileOptions::new()
            .read_preamble(ReadPreamble::Always)
            .read_until(stop)
            .from_reader(&self.file)?)
    }

    /// The attributes before a trailing Pixel Data element (or all of them), from the header
    /// rewritten for dicom-rs, with the file's own (or guessed) transfer syntax in its meta group
    /// again, so that the output is written as the input was.
    fn repaired(&self, repair: &Repair) -> Result<DefaultDicomObject, OpenError> {
        parse_repaired(&mut &self.file, self.size, &self.layout, repair)
    }

    /// The attributes before a trailing Pixel Data element and that element's place, or (when
    /// splitting is not safe) the whole object and `None`.
    pub fn split(self) -> Result<(DefaultDicomObject, Option<PixelTail>), OpenError> {
        if let Some(repair) = &self.layout.repair {
            let object = self.repaired(repair)?;
            let tail = self.layout.pixel_data.map(|(offset, len)| PixelTail {
                file: self.file,
                offset,
                len,
            });
            return Ok((object, tail));
        }
        (&self.file).seek(SeekFrom::Start(0)).map_err(LayoutError::Io)?;
        let options = OpenFileOptions::new().read_preamble(ReadPreamble::Always);
        match self.layout.pixel_data {
            Some((offset, len)) => {
                let header = options.read_until(tags::PIXEL_DATA).from_reader(&self.file)?;
                Ok((
                    header,
                    Some(PixelTail {
                        file: self.file,
                        offset,
                        len,
                    }),
                ))
            }
            None => Ok((options.from_reader(&self.file)?, None)),
        }
    }
}

/// The object of a file whose header [`repair`] rewrites: the rewritten stream passes the strict
/// walk before dicom-rs reads it, and the object's meta group names the file's own (or guessed)
/// transfer syntax again, so that it is written as the input was.
fn parse_repaired<F: Read + Seek>(
    file: &mut F,
    size: u64,
    layout: &Layout,
    repair: &Repair,
) -> Result<DefaultDicomObject, OpenError> {
    let (stream, _) = repair::header(file, size, layout, repair)?;
    layout::survey(std::io::Cursor::new(&stream), stream.len() as u64)?;
    let mut object = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Always)
        .from_reader(stream.as_slice())?;
    object.meta_mut().transfer_syntax = layout.transfer_syntax.clone();
    object.meta_mut().update_information_group_length();
    Ok(object)
}

/// A whole Part 10 file held in memory, walked (leniently) and, where needed, repaired, as
/// [`open_split`] reads a file: for the fuzz harness and tests, which have bytes, not paths.
pub fn open_bytes(bytes: &[u8]) -> Result<DefaultDicomObject, OpenError> {
    let size = bytes.len() as u64;
    let (layout, _) = layout::survey_lenient(std::io::Cursor::new(bytes), size, None)?;
    match &layout.repair {
        Some(repair) => {
            let whole = Layout {
                pixel_data: None,
                ..layout.clone()
            };
            parse_repaired(&mut std::io::Cursor::new(bytes), size, &whole, repair)
        }
        None => Ok(OpenFileOptions::new()
            .read_preamble(ReadPreamble::Always)
            .from_reader(bytes)?),
    }
}

/// Opens `path`: the attributes before a trailing Pixel Data element and that element's place, or
/// (when splitting is not safe) the whole object and `None`. The file is walked first (see
/// [`layout`]), so dicom-rs never sees a length it would reserve memory for in vain.
pub fn open_split(path: &Path) -> Result<(DefaultDicomObject, Option<PixelTail>), OpenError> {
    walk(path, None)?.split()
}
