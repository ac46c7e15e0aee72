//! Placeholder UIDs: keyed, consistent within a bundle, unlinkable to the originals without the key.

use std::fmt;

use rand::RngCore;
use zeroize::Zeroize;

/// A per-bundle random key from which placeholder UIDs are derived.
///
/// The placeholder of a UID is derived by [`crate::uid::derive_uid`]: `2.25.` and a UUIDv8 from
/// HMAC-SHA256(key, original UID). The same original gives the same
/// placeholder in every file of the bundle and at every depth, so references inside sequences
/// stay consistent without any shared mutable state between threads; without the key a
/// placeholder cannot be linked back to its original. The key bytes are zeroized on drop and
/// never printed.
pub struct UidPlaceholderKey([u8; 32]);

impl UidPlaceholderKey {
    /// A fresh key from the operating system's random number generator.
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        UidPlaceholderKey(bytes)
    }

    /// A key from given bytes (tests, or a key kept by the caller).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        UidPlaceholderKey(bytes)
    }

    /// The placeholder UID for `original` (trailing spaces and NULs are not part of a UID and
    /// are ignored).
    pub fn placeholder(&self, original: &str) -> String {
        crate::uid::derive_uid(&self.0, original)
    }
}

impl Drop for UidPlaceholderKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for UidPlaceholderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UidPlaceholderKey(..)")
    }
}
