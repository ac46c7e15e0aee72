//! Key material: the steward's age identity and recipients, and each workstation's site key.
//!
//! Secrets live in wrapper types that zeroize on drop and never print their bytes; key files are
//! written owner-only (0600) and refused when other users can read them.

mod files;
mod passphrase;
mod site;
mod steward;

pub use files::{check_private_permissions, write_private_file, KeyFileError};
pub use passphrase::Passphrase;
pub use site::{SitePublicKey, SiteSecretKey};
pub use steward::{StewardIdentity, StewardRecipient, MAX_SCRYPT_WORK_FACTOR, SCRYPT_WORK_FACTOR};

use thiserror::Error;

/// A key could not be parsed or created.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is not a key of the expected kind.
    #[error("not a valid {kind}: {reason}")]
    Malformed {
        /// Which kind of key was expected (e.g. "age recipient").
        kind: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// A key file problem (permissions, I/O).
    #[error(transparent)]
    File(#[from] KeyFileError),
    /// The steward identity file could not be decrypted.
    #[error("cannot open the steward identity {path}: {reason}")]
    IdentityLocked {
        /// The identity file.
        path: std::path::PathBuf,
        /// Why, e.g. a wrong passphrase.
        reason: String,
    },
}

/// Decodes a bech32 string with the given human-readable part into exactly 32 bytes.
fn decode_bech32_32(s: &str, hrp: &str, kind: &'static str) -> Result<[u8; 32], KeyError> {
    let malformed = |reason: &str| KeyError::Malformed {
        kind,
        reason: reason.to_string(),
    };
    let (got_hrp, mut data) = bech32::decode(s.trim()).map_err(|_| malformed("bad bech32 encoding"))?;
    if !got_hrp.as_str().eq_ignore_ascii_case(hrp) {
        return Err(malformed(&format!("expected a key starting with {hrp}1")));
    }
    let out: Result<[u8; 32], _> = data.as_slice().try_into();
    zeroize::Zeroize::zeroize(&mut data);
    out.map_err(|_| malformed("wrong key length"))
}

/// Encodes 32 bytes as lower-case bech32 with the given human-readable part.
fn encode_bech32(hrp: &str, bytes: &[u8]) -> String {
    // The HRPs used here are fixed ASCII constants, so parsing and encoding cannot fail.
    match bech32::Hrp::parse(hrp) {
        Ok(h) => bech32::encode_lower::<bech32::Bech32>(h, bytes).unwrap_or_default(),
        Err(_) => String::new(),
    }
}
