//! The bundle manifest: format version, origin, profile, and every entry's size and digest.

use crate::keys::{SitePublicKey, StewardRecipient};
use serde::{Deserialize, Serialize};

/// The bundle format version this library writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Largest manifest a reader accepts (bytes), so a hostile one cannot exhaust memory.
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024 * 1024;

/// The versioned manifest carried as `manifest.cbor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT_VERSION`].
    pub format: u32,
    /// 128 random bits, hex: names the bundle for idempotent import.
    pub bundle_id: String,
    /// The site name as enrolled at the steward.
    pub site: String,
    /// The site key that authenticated this bundle.
    pub site_key: SitePublicKey,
    /// The steward recipient the site tag is addressed to.
    pub steward: StewardRecipient,
    /// Producing tool and version, e.g. `pseal 0.1.0`.
    pub tool: String,
    /// The de-identification profile applied.
    pub profile: ProfileInfo,
    /// Every entry before the manifest, in tar order.
    pub entries: Vec<Entry>,
}

/// The de-identification profile and options a bundle was made with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileInfo {
    /// Canonical option names (see `deid::Options`).
    pub options: Vec<String>,
    /// The DeidentificationMethod text written into every instance.
    pub method: String,
}

/// What an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A de-identified DICOM instance.
    Instance,
    /// The sealed identity record.
    Identity,
}

/// One entry's name, kind, size and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The tar entry name.
    pub name: String,
    /// What it holds.
    pub kind: EntryKind,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content.
    #[serde(with = "crate::auth::serde_bytes_vec")]
    pub sha256: Vec<u8>,
}

/// Why `manifest.cbor` could not be decoded (the reader names the bundle and the entry).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ManifestError(#[from] ciborium::de::Error<std::io::Error>);

impl Manifest {
    /// Encodes as CBOR.
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Serializing plain structs into a Vec cannot fail.
        let _ = ciborium::into_writer(self, &mut out);
        out
    }

    /// Decodes CBOR.
    pub fn from_cbor(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        Ok(ciborium::from_reader(bytes)?)
    }

    /// Number of instance entries.
    pub fn instance_count(&self) -> usize {
        self.entries.iter().filter(|e| e.kind == EntryKind::Instance).count()
    }
}
