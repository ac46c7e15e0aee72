//! The `.pseal` bundle: an age file whose plaintext is a zstd-compressed tar stream.
//!
//! Exactly one [`writer`] and one [`reader`]; the layout and processing rules are specified in
//! `docs/bundle-format.md`. Entries, in order: `instances/NNNNNN.dcm` (de-identified DICOM),
//! `identity.age` (the sealed identity record), `manifest.cbor` (sizes and SHA-256 of every entry
//! before it), `auth.cbor` (the site tag over the manifest's digest). Tar headers are normalized:
//! mtime 0, uid/gid 0, mode 0644, no user or group names, generated names only.

pub mod inspect;
pub mod manifest;
pub mod reader;
pub mod writer;

pub use manifest::{Entry, EntryKind, Manifest, ProfileInfo, FORMAT_VERSION};
pub use reader::{BundleError, BundleReader, VerifiedBundle};
pub use writer::{BundleWriter, Compressor};

/// Entry name of the sealed identity record.
pub const IDENTITY_ENTRY: &str = "identity.age";
/// Entry name of the CBOR manifest.
pub const MANIFEST_ENTRY: &str = "manifest.cbor";
/// Entry name of the site authentication tag.
pub const AUTH_ENTRY: &str = "auth.cbor";
/// File name extension of bundles.
pub const EXTENSION: &str = "pseal";

/// The entry name of the `index`-th instance (1-based).
pub fn instance_entry_name(index: u64) -> String {
    format!("instances/{index:06}.dcm")
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}
