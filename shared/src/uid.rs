//! Keyed UID derivation: `2.25.<UUIDv8 as decimal>` from HMAC-SHA256 of the original UID.
//!
//! Used twice: the hospital derives bundle-local placeholders under a random per-bundle key, and
//! the steward derives the archive's permanent UIDs under a store secret. Either way the same
//! original UID always maps to the same new UID under one key (so references stay consistent)
//! and nobody without the key can link the two.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Derives `2.25.<decimal>` from `original` under `key`.
///
/// The 128-bit value is the first 16 bytes of HMAC-SHA256(key, original) with the RFC 9562 version
/// (8, custom) and variant bits set, so it is a well-formed UUID as the 2.25 arc requires. At most
/// 44 characters, within the 64 allowed for a UI value.
pub fn derive_uid(key: &[u8; 32], original: &str) -> String {
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        // HMAC accepts keys of any length; this branch cannot be reached with a 32-byte key.
        Err(_) => return String::from("2.25.0"),
    };
    mac.update(original.trim_end_matches(['\0', ' ']).as_bytes());
    let out = mac.finalize().into_bytes();
    let mut b = [0u8; 16];
    b.copy_from_slice(&out[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    format!("2.25.{}", u128::from_be_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_per_key_and_distinct_across_keys() {
        let a = derive_uid(&[1; 32], "1.2.3.4");
        assert_eq!(a, derive_uid(&[1; 32], "1.2.3.4"));
        assert_eq!(a, derive_uid(&[1; 32], "1.2.3.4\0"), "padding is not part of the UID");
        assert_ne!(a, derive_uid(&[2; 32], "1.2.3.4"));
        assert_ne!(a, derive_uid(&[1; 32], "1.2.3.5"));
        assert!(a.starts_with("2.25.") && a.len() <= 64);
    }
}
