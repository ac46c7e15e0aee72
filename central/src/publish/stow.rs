//! STOW-RS messages: a batch of instances as one multipart/related request body, and the server's
//! answer (PS3.18 §10.5.3): which instances it stored (Referenced SOP Sequence, with an optional
//! warning) and which it did not (Failed SOP Sequence, with a failure reason).

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use std::collections::HashMap;
use std::io::Read;

/// One instance inside a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Its path inside the release (`archive/<pseudonym>/<study>/<series>/<sop>.dcm`).
    pub path: String,
    /// Study Instance UID.
    pub study: String,
    /// SOP Instance UID.
    pub sop: String,
}

/// A STOW-RS request body being filled: instances in one multipart/related document.
pub struct Batch {
    writer: multipart_rs::MultipartWriter,
    parts: Vec<Part>,
    /// Where each part's bytes are in the body, to send them again one by one.
    ranges: Vec<std::ops::Range<usize>>,
    finished: bool,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("parts", &self.parts.len())
            .field("bytes", &self.writer.data.len())
            .finish()
    }
}

impl Default for Batch {
    fn default() -> Self {
        Batch::new()
    }
}

impl Batch {
    /// An empty batch with a fresh random boundary.
    pub fn new() -> Batch {
        Batch {
            writer: multipart_rs::MultipartWriter::new(),
            parts: Vec::new(),
            ranges: Vec::new(),
            finished: false,
        }
    }

    /// Adds one instance, reading its Part 10 bytes from `data` (`size` bytes expected).
    pub fn add(&mut self, part: Part, data: impl Read, size: u64) -> std::io::Result<()> {
        let before = self.writer.data.len();
        self.writer.data.reserve(usize::try_from(size).unwrap_or(0) + 256);
        let added = match self.writer.add(data, "Content-Type: application/dicom") {
            Ok(n) if n == size => Ok(()),
            Ok(n) => Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{}: {n} bytes instead of {size}", part.path),
            )),
            Err(e) => Err(e),
        };
        if added.is_err() {
            // Never leave half an instance in the body.
            self.writer.data.truncate(before);
        } else {
            let end = self.writer.data.len();
            self.ranges.push(end - size as usize..end);
            self.parts.push(part);
        }
        added
    }

    /// Closes the multipart document; call once, before sending.
    pub fn finish(&mut self) -> std::io::Result<()> {
        if !self.finished {
            self.writer.finish()?;
            self.finished = true;
        }
        Ok(())
    }

    /// Instances in the batch.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The bytes of the `index`-th instance as they stand in the body.
    pub fn data(&self, index: usize) -> Option<&[u8]> {
        self.ranges.get(index).map(|r| &self.writer.data[r.clone()])
    }

    /// The instances, giving up the body.
    pub fn into_parts(self) -> Vec<Part> {
        self.parts
    }

    /// One finished batch per instance, for a server that refused the batch as a whole without
    /// saying which instance it minded.
    pub fn split(&self) -> std::io::Result<Vec<Batch>> {
        let mut out = Vec::with_capacity(self.parts.len());
        for (part, range) in self.parts.iter().zip(&self.ranges) {
            let mut one = Batch::new();
            let bytes = &self.writer.data[range.clone()];
            one.add(part.clone(), bytes, bytes.len() as u64)?;
            one.finish()?;
            out.push(one);
        }
        Ok(out)
    }

    /// Number of instances.
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// True when the batch holds no instance.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Bytes of the request body so far.
    pub fn bytes(&self) -> usize {
        self.writer.data.len()
    }

    /// The request body.
    pub fn body(&self) -> &[u8] {
        &self.writer.data
    }

    /// The request's Content-Type.
    pub fn content_type(&self) -> String {
        format!(
            "multipart/related; type=\"application/dicom\"; boundary={}",
            self.writer.boundary
        )
    }
}

/// What the server said about one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Stored; with the warning reason when the server stored it with a change (PS3.18 Table
    /// 10.5.3-2: coercion of attributes, attributes discarded, data set mismatch).
    Stored(Option<u16>),
    /// Not stored, with the failure reason code (0 when the server gave none).
    Failed(u16),
}

/// The server's answer to one STOW-RS request.
#[derive(Debug, Clone, Default)]
pub struct StowResponse {
    /// The HTTP status.
    pub status: u16,
    /// Verdicts by SOP Instance UID, when the answer carried the two sequences.
    pub verdicts: Option<HashMap<String, Verdict>>,
    /// The start of the body when it was not a STOW-RS answer (for a message).
    pub text: String,
}

impl StowResponse {
    /// Reads an answer. Orthanc answers 400 with the sequences and no Content-Type when some
    /// instances failed, so the body is tried as DICOM JSON whatever the headers say.
    pub fn parse(status: u16, body: &[u8]) -> StowResponse {
        let verdicts = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| dicom_json::from_value::<dicom_object::InMemDicomObject>(v).ok())
            .and_then(|obj| verdicts_of(&obj));
        StowResponse {
            status,
            verdicts,
            text: String::from_utf8_lossy(&body[..body.len().min(300)])
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

fn verdicts_of(obj: &dicom_object::InMemDicomObject) -> Option<HashMap<String, Verdict>> {
    let referenced = obj.element(tags::REFERENCED_SOP_SEQUENCE).ok();
    let failed = obj.element(tags::FAILED_SOP_SEQUENCE).ok();
    if referenced.is_none() && failed.is_none() {
        return None;
    }
    let mut out = HashMap::new();
    let items = |e: Option<&dicom_object::mem::InMemElement>| -> Vec<dicom_object::InMemDicomObject> {
        e.and_then(|e| e.items()).map(|i| i.to_vec()).unwrap_or_default()
    };
    let uid = |item: &dicom_object::InMemDicomObject| {
        item.element(tags::REFERENCED_SOP_INSTANCE_UID)
            .ok()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
    };
    let code =
        |item: &dicom_object::InMemDicomObject, tag: Tag| item.element(tag).ok().and_then(|e| e.to_int::<u16>().ok());
    for item in items(referenced) {
        if let Some(sop) = uid(&item) {
            out.insert(sop, Verdict::Stored(code(&item, tags::WARNING_REASON)));
        }
    }
    // A failure overrides a success for the same instance (sent twice in one batch).
    for item in items(failed) {
        if let Some(sop) = uid(&item) {
            out.insert(sop, Verdict::Failed(code(&item, tags::FAILURE_REASON).unwrap_or(0)));
        }
    }
    Some(out)
}

/// The meaning of a STOW-RS failure reason (PS3.18 Table 10.5.3-3 and the storage statuses of
/// PS3.4 Annex B it refers to).
pub fn failure_text(code: u16) -> String {
    let meaning = match code {
        0x0110 => "processing failure",
        0x0111 => "duplicate SOP Instance",
        0x0117 => "invalid object instance",
        0x0122 => "SOP Class not supported",
        0x0124 => "not authorized",
        0x0210 => "duplicate invocation",
        0x0211 => "unrecognized operation",
        0x0212 => "mistyped argument",
        0xA700..=0xA7FF => "out of resources",
        0xA900..=0xA9FF => "data set does not match SOP Class",
        0xC122 => "transfer syntax not supported",
        0xC000..=0xCFFF => "cannot understand",
        0 => "no reason given",
        _ => "unknown failure reason",
    };
    format!("{meaning} (failure reason {code:04X}H)")
}

/// The meaning of a STOW-RS warning reason (PS3.18 Table 10.5.3-2).
pub fn warning_text(code: u16) -> String {
    let meaning = match code {
        0xB000 => "coercion of data elements: the server changed attributes",
        0xB006 => "elements discarded",
        0xB007 => "data set does not match SOP Class",
        _ => "warning",
    };
    format!("{meaning} (warning reason {code:04X}H)")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Orthanc 1.10 with DICOMweb 1.7, one instance stored and one refused for a missing
    /// mandatory tag: HTTP 400, no Content-Type, both sequences.
    const ORTHANC_PARTIAL: &str = r#"{"00080005":{"Value":["ISO_IR 100"],"vr":"CS"},
      "00081190":{"Value":["http://127.0.0.1:18042/dicom-web/studies/2.25.9"],"vr":"UR"},
      "00081198":{"Value":[{"00081150":{"Value":["1.2.840.10008.5.1.4.1.1.4"],"vr":"UI"},
        "00081155":{"Value":["2.25.1"],"vr":"UI"},"00081197":{"Value":[49152],"vr":"US"}}],"vr":"SQ"},
      "00081199":{"Value":[{"00081150":{"Value":["1.2.840.10008.5.1.4.1.1.4"],"vr":"UI"},
        "00081155":{"Value":["2.25.2"],"vr":"UI"},
        "00081190":{"Value":["http://127.0.0.1:18042/dicom-web/studies/2.25.9/series/2.25.8/instances/2.25.2"],"vr":"UR"}}],"vr":"SQ"}}"#;

    #[test]
    fn failed_and_referenced_sequences_give_a_verdict_per_instance() {
        let r = StowResponse::parse(400, ORTHANC_PARTIAL.as_bytes());
        let v = r.verdicts.unwrap();
        assert_eq!(v.get("2.25.1"), Some(&Verdict::Failed(0xC000)));
        assert_eq!(v.get("2.25.2"), Some(&Verdict::Stored(None)));
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn an_empty_failed_sequence_and_a_warning_are_read() {
        let body = r#"{"00081198":{"vr":"SQ"},"00081199":{"vr":"SQ","Value":[
            {"00081155":{"vr":"UI","Value":["2.25.3"]},"00081196":{"vr":"US","Value":[45056]}}]}}"#;
        let v = StowResponse::parse(202, body.as_bytes()).verdicts.unwrap();
        assert_eq!(v.get("2.25.3"), Some(&Verdict::Stored(Some(0xB000))));
    }

    #[test]
    fn a_body_that_is_not_a_stow_answer_has_no_verdicts() {
        assert!(StowResponse::parse(413, b"<html>Request Entity Too Large</html>")
            .verdicts
            .is_none());
        assert!(StowResponse::parse(400, b"").verdicts.is_none());
        assert!(
            StowResponse::parse(200, b"{\"00080005\":{\"vr\":\"CS\",\"Value\":[\"ISO_IR 100\"]}}")
                .verdicts
                .is_none()
        );
    }

    #[test]
    fn reasons_read_as_words_with_their_code() {
        assert_eq!(failure_text(0xC000), "cannot understand (failure reason C000H)");
        assert_eq!(failure_text(0x0110), "processing failure (failure reason 0110H)");
        assert_eq!(failure_text(0xA702), "out of resources (failure reason A702H)");
        assert!(warning_text(0xB000).contains("changed attributes"));
    }

    #[test]
    fn a_batch_is_one_multipart_related_document() {
        let mut b = Batch::new();
        let part = |sop: &str| Part {
            path: format!("archive/P/1/2/{sop}.dcm"),
            study: "1".into(),
            sop: sop.into(),
        };
        b.add(part("3"), &b"first"[..], 5).unwrap();
        b.add(part("4"), &b"second"[..], 6).unwrap();
        assert!(b.add(part("5"), &b"short"[..], 9).is_err(), "a short read is refused");
        b.finish().unwrap();
        let ct = b.content_type();
        let boundary = ct.rsplit("boundary=").next().unwrap().to_string();
        assert!(ct.starts_with("multipart/related; type=\"application/dicom\"; boundary="));
        let expected = format!(
            "--{boundary}\r\nContent-Type: application/dicom\r\n\r\nfirst\r\n--{boundary}\r\nContent-Type: application/dicom\r\n\r\nsecond\r\n--{boundary}--\r\n"
        );
        assert_eq!(String::from_utf8_lossy(b.body()), expected);
        assert_eq!(b.len(), 2);
        let singles = b.split().unwrap();
        assert_eq!(singles.len(), 2);
        let body = String::from_utf8_lossy(singles[1].body()).into_owned();
        assert!(
            body.contains("\r\n\r\nsecond\r\n--") && !body.contains("first"),
            "{body}"
        );
        assert_eq!(singles[1].parts()[0].sop, "4");
    }
}
