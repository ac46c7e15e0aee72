//! The steward's passphrase: zeroized, never printed, never empty.

use age::secrecy::{ExposeSecret, SecretString};
use std::fmt;

/// A passphrase protecting the steward identity. Empty passphrases are refused at construction.
pub struct Passphrase(SecretString);

impl Passphrase {
    /// Wraps a passphrase; `None` when it is empty (an empty passphrase protects nothing).
    pub fn new(text: String) -> Option<Passphrase> {
        if text.is_empty() {
            None
        } else {
            Some(Passphrase(SecretString::from(text)))
        }
    }

    /// The secret for age's scrypt recipient and identity.
    pub(crate) fn secret(&self) -> SecretString {
        SecretString::from(self.0.expose_secret().to_owned())
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}
