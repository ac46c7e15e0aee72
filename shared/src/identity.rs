//! The sealed identity record: what the steward needs and researchers must never see.
//!
//! One record per bundle, age-encrypted to every steward recipient and carried as the bundle entry
//! `identity.age`. Its plaintext is a CBOR sequence: an [`IdentityHeader`] (local patient ID, the
//! bundle it belongs to), then one [`InstanceRecord`] per instance entry, in entry order (original
//! UIDs, dates and birth date captured by de-identification). It is written and read as a stream,
//! so its size never has to fit in memory.

use crate::deid::Captured;
use crate::keys::{StewardIdentity, StewardRecipient};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use thiserror::Error;

/// Version of the identity record plaintext.
pub const IDENTITY_VERSION: u32 = 1;

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
        if header.version != IDENTITY_VERSION {
            return Err(IdentityError::Malformed(format!(
                "unsupported version {}",
                header.version
            )));
        }
        Ok(IdentityOpener { reader, header })
    }

    /// The header (local ID and bundle ID).
    pub fn header(&self) -> &IdentityHeader {
        &self.header
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
