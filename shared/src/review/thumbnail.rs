//! Small PNG pictures of quarantined images, so that the data-protection officer sees the
//! burned-in text that kept a file at the hospital.
//!
//! Only uncompressed (native) pixel data is decoded, and only the first frame: 8- or 16-bit
//! monochrome (windowed to its own darkest and brightest pixel; MONOCHROME1 inverted), 8-bit RGB
//! (interleaved or planar) and YBR_FULL. Palette colour is shown as the grey levels of its
//! indices. Compressed pixel data (JPEG, JPEG 2000, RLE, …) is not decoded: the report says so
//! and names the transfer syntax, and the file is to be looked at in a DICOM viewer. The PNG is
//! written by the `png` crate.

use crate::part10;
use dicom_core::value::Value;
use dicom_core::Tag;
use dicom_object::InMemDicomObject;
use std::io::Read;
use std::path::Path;

/// The longest side of a thumbnail, in pixels.
pub const MAX_SIDE: u32 = 192;
/// Frames larger than this are not read for a thumbnail.
const MAX_FRAME_BYTES: u64 = 128 * 1024 * 1024;

/// A thumbnail: PNG bytes and the picture's size.
#[derive(Clone, Debug)]
pub struct Thumbnail {
    /// The PNG file.
    pub png: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Why a quarantined file has no thumbnail, in words for the report (never a value from the
/// file), each saying what to do instead where there is something to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NoThumbnail {
    /// The file could not be parsed (the parser's words, cut before any quote).
    #[error("no thumbnail: the file cannot be read: {0}")]
    Unreadable(String),
    /// There is no Pixel Data element.
    #[error("no thumbnail: the file holds no image (no Pixel Data)")]
    NoImage,
    /// The Pixel Data element was found in the header walk but not in the parsed object.
    #[error("no thumbnail: the file has no pixel data")]
    NoPixelData,
    /// Reading the pixel data failed.
    #[error("no thumbnail: the pixel data cannot be read: {0}")]
    Io(std::io::Error),
    /// The pixel data ends before the first frame does.
    #[error("no thumbnail: the pixel data is shorter than one frame")]
    Short,
    /// The Pixel Data element holds a sequence.
    #[error("no thumbnail: the pixel data is malformed")]
    Malformed,
    /// Encapsulated pixel data (the transfer syntax UID, or a note that it is not one).
    #[error(
        "no thumbnail: the pixel data is compressed (transfer syntax {0}); pseal decodes only \
         uncompressed images for thumbnails. Look at the file in a DICOM viewer"
    )]
    Compressed(String),
    /// An attribute the picture needs is missing or not a number.
    #[error("no thumbnail: the file has no usable {0}")]
    Missing(&'static str),
    /// Rows or Columns is zero.
    #[error("no thumbnail: the image has no pixels")]
    NoPixels,
    /// A sample layout thumbnails do not decode.
    #[error(
        "no thumbnail: {samples} {} of {bits} bits per pixel {} not decoded for thumbnails",
        if *samples == 1 { "sample" } else { "samples" },
        if *samples == 1 { "is" } else { "are" }
    )]
    Layout {
        /// Samples per pixel.
        samples: u32,
        /// Bits allocated.
        bits: u32,
    },
    /// The first frame is larger than a thumbnail reads.
    #[error("no thumbnail: the image is too large to decode for a thumbnail")]
    TooLarge,
    /// The PNG encoder failed.
    #[error("no thumbnail: encoding the PNG failed: {0}")]
    Png(#[from] png::EncodingError),
}

/// The thumbnail of the first frame of the image in `path`, or why there is none.
pub fn of_file(path: &Path) -> Result<Thumbnail, NoThumbnail> {
    let (object, tail) =
        part10::open_split(path).map_err(|e| NoThumbnail::Unreadable(crate::export::instance::parser_reason(&e)))?;
    let transfer_syntax = object
        .meta()
        .transfer_syntax()
        .trim_end_matches(['\0', ' '])
        .to_string();
    let dataset: &InMemDicomObject = &object;
    if tail.is_none() && dataset.get(Tag(0x7FE0, 0x0010)).is_none() {
        return Err(NoThumbnail::NoImage);
    }
    let image = Geometry::of(dataset)?;
    let frame = image.frame_bytes()?;
    let bytes = match tail {
        Some(tail) => {
            let mut reader = tail.reader().map_err(NoThumbnail::Io)?;
            if element_header_len(&mut reader, &transfer_syntax)? < frame {
                return Err(NoThumbnail::Short);
            }
            let mut buf = Vec::new();
            reader.take(frame).read_to_end(&mut buf).map_err(NoThumbnail::Io)?;
            buf
        }
        None => {
            let element = dataset.get(Tag(0x7FE0, 0x0010)).ok_or(NoThumbnail::NoPixelData)?;
            match element.value() {
                Value::PixelSequence(_) => return Err(compressed(&transfer_syntax)),
                // 8-bit samples in an OW element of a big-endian file come as 16-bit words whose
                // bytes are in file order only when written big-endian again.
                Value::Primitive(dicom_core::PrimitiveValue::U16(words))
                    if image.bits_allocated == 8 && transfer_syntax == "1.2.840.10008.1.2.2" =>
                {
                    let mut b: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
                    b.truncate(frame as usize);
                    b
                }
                Value::Primitive(p) => {
                    let mut b = p.to_bytes().into_owned();
                    b.truncate(frame as usize);
                    b
                }
                Value::Sequence(_) => return Err(NoThumbnail::Malformed),
            }
        }
    };
    if (bytes.len() as u64) < frame {
        return Err(NoThumbnail::Short);
    }
    image.render(&bytes)
}

fn compressed(transfer_syntax: &str) -> NoThumbnail {
    NoThumbnail::Compressed(
        if !transfer_syntax.is_empty() && transfer_syntax.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            transfer_syntax
        } else {
            "(not a valid UID)"
        }
        .to_string(),
    )
}

/// Reads the Pixel Data element's header from `reader` (leaving it at the value) and returns
/// its length; `Err` for encapsulated (compressed) pixel data.
fn element_header_len(reader: &mut impl Read, transfer_syntax: &str) -> Result<u64, NoThumbnail> {
    let io = NoThumbnail::Io;
    let mut tag = [0u8; 4];
    reader.read_exact(&mut tag).map_err(io)?;
    let implicit = transfer_syntax == "1.2.840.10008.1.2";
    let len = if implicit {
        let mut l = [0u8; 4];
        reader.read_exact(&mut l).map_err(io)?;
        u32::from_le_bytes(l)
    } else {
        let mut vr = [0u8; 4];
        reader.read_exact(&mut vr).map_err(io)?;
        let mut l = [0u8; 4];
        reader.read_exact(&mut l).map_err(io)?;
        u32::from_le_bytes(l)
    };
    if len == u32::MAX {
        return Err(compressed(transfer_syntax));
    }
    Ok(u64::from(len))
}

/// What is needed to read the first frame.
struct Geometry {
    rows: u32,
    columns: u32,
    samples: u32,
    bits_allocated: u32,
    bits_stored: u32,
    signed: bool,
    planar: bool,
    photometric: String,
}

impl Geometry {
    fn of(ds: &InMemDicomObject) -> Result<Geometry, NoThumbnail> {
        let number = |tag: Tag, name: &'static str| -> Result<u32, NoThumbnail> {
            ds.get(tag)
                .and_then(|e| e.value().to_int::<u32>().ok())
                .ok_or(NoThumbnail::Missing(name))
        };
        let optional = |tag: Tag, default: u32| {
            ds.get(tag)
                .and_then(|e| e.value().to_int::<u32>().ok())
                .unwrap_or(default)
        };
        let g = Geometry {
            rows: number(Tag(0x0028, 0x0010), "Rows")?,
            columns: number(Tag(0x0028, 0x0011), "Columns")?,
            samples: optional(Tag(0x0028, 0x0002), 1),
            bits_allocated: number(Tag(0x0028, 0x0100), "Bits Allocated")?,
            bits_stored: optional(Tag(0x0028, 0x0101), 0),
            signed: optional(Tag(0x0028, 0x0103), 0) == 1,
            planar: optional(Tag(0x0028, 0x0006), 0) == 1,
            photometric: ds
                .get(Tag(0x0028, 0x0004))
                .and_then(|e| e.value().to_str().ok())
                .map(|s| s.trim_matches(['\0', ' ']).to_ascii_uppercase())
                .unwrap_or_else(|| "MONOCHROME2".into()),
        };
        if g.rows == 0 || g.columns == 0 {
            return Err(NoThumbnail::NoPixels);
        }
        if !matches!((g.samples, g.bits_allocated), (1, 8) | (1, 16) | (3, 8)) {
            return Err(NoThumbnail::Layout {
                samples: g.samples,
                bits: g.bits_allocated,
            });
        }
        Ok(g)
    }

    fn frame_bytes(&self) -> Result<u64, NoThumbnail> {
        let n = u64::from(self.rows)
            * u64::from(self.columns)
            * u64::from(self.samples)
            * u64::from(self.bits_allocated / 8);
        if n > MAX_FRAME_BYTES {
            return Err(NoThumbnail::TooLarge);
        }
        Ok(n)
    }

    /// The size of the thumbnail: the image scaled down to at most [`MAX_SIDE`], never up.
    fn thumbnail_size(&self) -> (u32, u32) {
        let longest = self.rows.max(self.columns);
        if longest <= MAX_SIDE {
            return (self.columns, self.rows);
        }
        let scale = |n: u32| ((u64::from(n) * u64::from(MAX_SIDE)) / u64::from(longest)).max(1) as u32;
        (scale(self.columns), scale(self.rows))
    }

    /// Samples the frame (nearest pixel) and encodes a PNG: grey for monochrome and palette, RGB
    /// for colour.
    fn render(&self, frame: &[u8]) -> Result<Thumbnail, NoThumbnail> {
        let (w, h) = self.thumbnail_size();
        let source = |x: u32, y: u32| -> (u32, u32) {
            (
                ((u64::from(x) * u64::from(self.columns)) / u64::from(w)) as u32,
                ((u64::from(y) * u64::from(self.rows)) / u64::from(h)) as u32,
            )
        };
        let pixels = (self.rows as usize) * (self.columns as usize);
        let colour = self.samples == 3;
        let mut out = Vec::with_capacity((w * h * if colour { 3 } else { 1 }) as usize);
        if colour {
            let ybr = self.photometric.starts_with("YBR_FULL");
            for y in 0..h {
                for x in 0..w {
                    let (sx, sy) = source(x, y);
                    let i = (sy as usize) * (self.columns as usize) + sx as usize;
                    let at = |s: usize| {
                        let k = if self.planar { s * pixels + i } else { i * 3 + s };
                        frame.get(k).copied().unwrap_or(0)
                    };
                    let (a, b, c) = (at(0), at(1), at(2));
                    let rgb = if ybr { ybr_to_rgb(a, b, c) } else { [a, b, c] };
                    out.extend_from_slice(&rgb);
                }
            }
        } else {
            let value = |i: usize| -> i64 {
                let raw = if self.bits_allocated == 8 {
                    u32::from(frame.get(i).copied().unwrap_or(0))
                } else {
                    let lo = frame.get(2 * i).copied().unwrap_or(0);
                    let hi = frame.get(2 * i + 1).copied().unwrap_or(0);
                    u32::from(u16::from_le_bytes([lo, hi]))
                };
                let stored = if self.bits_stored == 0 || self.bits_stored >= self.bits_allocated {
                    self.bits_allocated
                } else {
                    self.bits_stored
                };
                let masked = raw & ((1u32 << stored) - 1);
                if self.signed && masked >> (stored - 1) & 1 == 1 {
                    i64::from(masked) - (1i64 << stored)
                } else {
                    i64::from(masked)
                }
            };
            let mut samples = Vec::with_capacity((w * h) as usize);
            for y in 0..h {
                for x in 0..w {
                    let (sx, sy) = source(x, y);
                    samples.push(value((sy as usize) * (self.columns as usize) + sx as usize));
                }
            }
            let (lo, hi) = samples
                .iter()
                .fold((i64::MAX, i64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            let span = (hi - lo).max(1);
            let invert = self.photometric == "MONOCHROME1";
            for v in samples {
                let g = (((v - lo) * 255) / span).clamp(0, 255) as u8;
                out.push(if invert { 255 - g } else { g });
            }
        }
        encode_png(&out, w, h, colour)
    }
}

/// ITU-R BT.601 full-range YCbCr to RGB, as YBR_FULL defines it.
fn ybr_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let (y, cb, cr) = (f64::from(y), f64::from(cb) - 128.0, f64::from(cr) - 128.0);
    let c = |v: f64| v.round().clamp(0.0, 255.0) as u8;
    [
        c(y + 1.402 * cr),
        c(y - 0.344_136 * cb - 0.714_136 * cr),
        c(y + 1.772 * cb),
    ]
}

fn encode_png(pixels: &[u8], width: u32, height: u32, colour: bool) -> Result<Thumbnail, NoThumbnail> {
    let mut png_bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png_bytes, width, height);
        encoder.set_color(if colour {
            png::ColorType::Rgb
        } else {
            png::ColorType::Grayscale
        });
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(pixels)?;
    }
    Ok(Thumbnail {
        png: png_bytes,
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_large_monochrome_image_is_scaled_to_the_longest_side() {
        let g = Geometry {
            rows: 128,
            columns: 256,
            samples: 1,
            bits_allocated: 8,
            bits_stored: 8,
            signed: false,
            planar: false,
            photometric: "MONOCHROME2".into(),
        };
        let mut frame = vec![0u8; 128 * 256];
        frame[..256].fill(255);
        let t = g.render(&frame).expect("thumbnail");
        assert_eq!((t.width, t.height), (192, 96));
        assert_eq!(&t.png[1..4], b"PNG");
    }
}
