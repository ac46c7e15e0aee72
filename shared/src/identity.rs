//! The sealed identity record: what the steward needs and researchers must never see.
//!
//! One record per bundle, age-encrypted to every steward recipient and carried as the bundle entry
//! `identity.age`. Its plaintext is a CBOR sequence: an [`IdentityHeader`] (local patient ID, the
//! bundle it belongs to), then one [`InstanceRecord`] per instance entry, in entry order (original
//! UIDs, dates and birth date captured by de-identification). It is written and read as a stream,
//! so its size never has to fit in memory.
//!
//! A site with cross-site linkage on adds the patient's [`LinkageRecord`] to the header and writes
//! version [`IDENTITY_VERSION_LINKAGE`]; a site without it writes version [`IDENTITY_VERSION`],
//! byte for byte what it wrote before linkage existed (`docs/bundle-format.md` §5, §8).

use crate::deid::Captured;
use crate::keys::{StewardIdentity, StewardRecipient};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use thiserror::Error;

/// Version of the identity record plaintext without linkage fields.
pub const IDENTITY_VERSION: u32 = 1;

/// Version of the identity record plaintext whose header carries a [`LinkageRecord`]. A steward
/// that predates linkage refuses it ("unsupported version 2") instead of dropping the fields
/// unread.
pub const IDENTITY_VERSION_LINKAGE: u32 = 2;

pub use crate::linkage::LinkageRecord;

/// A hospital's local patient identifier. Never printed: `Debug` and `Display` are redacted.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LocalId(String);

impl LocalId {
    /// Wraps a local ID, trimming DICOM padding; `None` when nothing is left.
    pub fn new(raw: &str) -> Option<LocalId> {
        let t = raw.trim_matches(|c: char| c == '\0' || c.is_whitespace());
        (!t.is_empty()).then(|| LocalId(t.to_string()))
    }

    /// The identifier itself. Call sites must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LocalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocalId(<redacted>)")
    }
}

/// The first item of an identity record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityHeader {
    /// [`IDENTITY_VERSION`].
    pub version: u32,
    /// The bundle this record belongs to (manifest `bundle_id`), so a record cannot be moved
    /// into another bundle unnoticed.
    pub bundle_id: String,
    /// The patient's local ID at the site.
    pub local_id: LocalId,
    /// The linkage fields, from a site with linkage on (then `version` is
    /// [`IDENTITY_VERSION_LINKAGE`]); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linkage: Option<LinkageRecord>,
}

impl IdentityHeader {
    /// A header for `bundle_id` and `local_id`, with the version that matches `linkage`.
    pub fn new(bundle_id: String, local_id: LocalId, linkage: Option<LinkageRecord>) -> IdentityHeader {
        IdentityHeader {
            version: if linkage.is_some() {
                IDENTITY_VERSION_LINKAGE
            } else {
                IDENTITY_VERSION
            },
            bundle_id,
            local_id,
            linkage,
        }
    }
}

/// What was captured from one instance before de-identification removed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRecord {
    /// The instance's entry name in the bundle.
    pub entry: String,
    /// Original UIDs, dates and birth date.
    pub captured: Captured,
}

/// Why an identity record could not be written or read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Encryption setup failed (e.g. no recipients).
    #[error("cannot seal the identity record: {0}")]
    Seal(String),
    /// The record could not be decrypted with the steward identity.
    #[error("cannot open the identity record: {0}")]
    Open(String),
    /// The plaintext is not a valid record.
    #[error("the identity record is malformed: {0}")]
    Malformed(String),
    /// An I/O error.
    #[error("identity record I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Streams an identity record into an age-encrypted sink.
pub struct IdentitySealer<W: Write> {
    stream: age::stream::StreamWriter<W>,
    records: u64,
}

impl<W: Write> IdentitySealer<W> {
    /// Starts a record sealed to every recipient, beginning with `header`.
    pub fn new(out: W, recipients: &[StewardRecipient], header: &IdentityHeader) -> Result<Self, IdentityError> {
        let ages: Vec<age::x25519::Recipient> = recipients.iter().map(StewardRecipient::age_recipient).collect();
        let encryptor = age::Encryptor::with_recipients(ages.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| IdentityError::Seal(e.to_string()))?;
        let mut stream = encryptor.wrap_output(out)?;
        ciborium::into_writer(header, &mut stream).map_err(|e| IdentityError::Seal(e.to_string()))?;
        Ok(IdentitySealer { stream, records: 0 })
    }

    /// Appends one instance's record.
    pub fn add(&mut self, record: &InstanceRecord) -> Result<(), IdentityError> {
        ciborium::into_writer(record, &mut self.stream).map_err(|e| IdentityError::Seal(e.to_string()))?;
        self.records += 1;
        Ok(())
    }

    /// Finishes the age stream and returns the sink.
    pub fn finish(self) -> Result<W, IdentityError> {
        Ok(self.stream.finish()?)
    }
}

/// Reads an identity record back: the header first, then instance records in order.
pub struct IdentityOpener<R: Read> {
    reader: BufReader<age::stream::StreamReader<R>>,
    header: IdentityHeader,
}

impl<R: Read> IdentityOpener<R> {
    /// Decrypts with the steward identity and reads the header.
    pub fn open(input: R, identity: &StewardIdentity) -> Result<Self, IdentityError> {
        let decryptor = age::Decryptor::new(input).map_err(|e| IdentityError::Open(e.to_string()))?;
        let stream = decryptor
            .decrypt(std::iter::once(identity.age_identity() as &dyn age::Identity))
            .map_err(|e| IdentityError::Open(e.to_string()))?;
        let mut reader = BufReader::new(stream);
        let header: IdentityHeader =
            ciborium::from_reader(&mut reader).map_err(|e| IdentityError::Malformed(e.to_string()))?;
        match (header.version, header.linkage.is_some()) {
            (IDENTITY_VERSION, false) | (IDENTITY_VERSION_LINKAGE, true) => {}
            (IDENTITY_VERSION, true) => {
                return Err(IdentityError::Malformed(
                    "a version 1 record carries linkage fields (only version 2 may)".into(),
                ))
            }
            (IDENTITY_VERSION_LINKAGE, false) => {
                return Err(IdentityError::Malformed(
                    "a version 2 record lacks its linkage fields".into(),
                ))
            }
            (v, _) => return Err(IdentityError::Malformed(format!("unsupported version {v}"))),
        }
        Ok(IdentityOpener { reader, header })
    }

    /// The header (local ID and bundle ID).
    pub fn header(&self) -> &IdentityHeader {
        &self.header
    }

    /// Takes the linkage fields out of the header, so the caller can encode them and drop them
    /// at once instead of holding them for the whole import.
    pub fn take_linkage(&mut self) -> Option<LinkageRecord> {
        self.header.linkage.take()
    }

    /// The next instance record, or `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<InstanceRecord>, IdentityError> {
        if self.reader.fill_buf()?.is_empty() {
            return Ok(None);
        }
        ciborium::from_reader(&mut self.reader)
            .map(Some)
            .map_err(|e| IdentityError::Malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sealed(header: &IdentityHeader, identity: &StewardIdentity) -> Vec<u8> {
        let sealer = IdentitySealer::new(Vec::new(), &[identity.recipient()], header).unwrap();
        sealer.finish().unwrap()
    }

    fn record() -> LinkageRecord {
        LinkageRecord {
            family_name: Some("Müller".into()),
            given_names: Some("Anna Maria".into()),
            birth_name: None,
            birth_date: Some("19600229".into()),
            sex: Some("F".into()),
            conflicts: [("family name".to_string(), 2)].into(),
        }
    }

    #[test]
    fn a_header_without_linkage_is_version_1_and_encodes_as_before() {
        let header = IdentityHeader::new("ab".into(), LocalId::new("42").unwrap(), None);
        assert_eq!(header.version, IDENTITY_VERSION);
        let mut bytes = Vec::new();
        ciborium::into_writer(&header, &mut bytes).unwrap();
        // The three keys of version 1, nothing else.
        #[derive(Serialize)]
        struct V1<'a> {
            version: u32,
            bundle_id: &'a str,
            local_id: &'a str,
        }
        let mut v1 = Vec::new();
        ciborium::into_writer(
            &V1 {
                version: 1,
                bundle_id: "ab",
                local_id: "42",
            },
            &mut v1,
        )
        .unwrap();
        assert_eq!(bytes, v1);
    }

    #[test]
    fn linkage_round_trips_in_a_version_2_header() {
        let identity = StewardIdentity::generate();
        let header = IdentityHeader::new("ab".into(), LocalId::new("42").unwrap(), Some(record()));
        assert_eq!(header.version, IDENTITY_VERSION_LINKAGE);
        let bytes = sealed(&header, &identity);
        let opened = IdentityOpener::open(bytes.as_slice(), &identity).unwrap();
        assert_eq!(opened.header(), &header);
        assert_eq!(
            opened.header().linkage.as_ref().unwrap().conflicts.get("family name"),
            Some(&2)
        );
    }

    #[test]
    fn versions_and_linkage_must_agree() {
        let identity = StewardIdentity::generate();
        let mut v1_with = IdentityHeader::new("ab".into(), LocalId::new("42").unwrap(), Some(record()));
        v1_with.version = IDENTITY_VERSION;
        let mut v2_without = IdentityHeader::new("ab".into(), LocalId::new("42").unwrap(), None);
        v2_without.version = IDENTITY_VERSION_LINKAGE;
        let mut v3 = v2_without.clone();
        v3.version = 3;
        for (header, expected) in [
            (v1_with, "version 1 record carries linkage"),
            (v2_without, "version 2 record lacks"),
            (v3, "unsupported version 3"),
        ] {
            let bytes = sealed(&header, &identity);
            let err = IdentityOpener::open(bytes.as_slice(), &identity)
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains(expected), "{err}");
        }
    }
}
