//! The steward passphrase as an operator gives it: from an environment variable for unattended
//! use, else asked on the terminal (twice for a new one, which must also pass [`crate::strength`]).
//! Every command of every front end asks through here, so the rules (no empty passphrase, no
//! weak new one, no silent read from a pipe) are written once.

use crate::strength::{self, WeakPassphrase};
use pseal::keys::Passphrase;
use thiserror::Error;

/// Environment variable holding the steward passphrase for unattended use.
pub const PASSPHRASE_ENV: &str = "PSEAL_PASSPHRASE";
/// Environment variable holding the new passphrase for `pseal-central passphrase`.
pub const NEW_PASSPHRASE_ENV: &str = "PSEAL_NEW_PASSPHRASE";

/// Why no passphrase could be had.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PassphraseError {
    /// The variable is unset and there is no terminal to ask on.
    #[error("no passphrase: set {0} or run on a terminal")]
    NoTerminal(&'static str),
    /// The terminal could not be read.
    #[error("reading the passphrase")]
    Read(#[source] std::io::Error),
    /// The confirmation differs from the first entry.
    #[error("the two passphrases differ")]
    Differ,
    /// The passphrase is empty.
    #[error("the passphrase is empty; an empty passphrase protects nothing")]
    Empty,
    /// A new passphrase the strength rule refuses.
    #[error(transparent)]
    Weak(#[from] WeakPassphrase),
}

/// Reads a passphrase from `variable` or, on a terminal, asks for it (twice when `confirm`).
fn read(variable: &'static str, prompt: &str, confirm: bool) -> Result<String, PassphraseError> {
    use std::io::IsTerminal;
    if let Ok(text) = std::env::var(variable) {
        return Ok(text);
    }
    if !std::io::stdin().is_terminal() {
        return Err(PassphraseError::NoTerminal(variable));
    }
    let first = rpassword::prompt_password(format!("{prompt}: ")).map_err(PassphraseError::Read)?;
    if confirm {
        let second = zeroize::Zeroizing::new(
            rpassword::prompt_password("Repeat the passphrase: ").map_err(PassphraseError::Read)?,
        );
        if first != *second {
            return Err(PassphraseError::Differ);
        }
    }
    Ok(first)
}

/// The steward passphrase that opens an existing identity ([`PASSPHRASE_ENV`] or the terminal).
pub fn steward() -> Result<Passphrase, PassphraseError> {
    Passphrase::new(read(PASSPHRASE_ENV, "Steward passphrase", false)?).ok_or(PassphraseError::Empty)
}

/// A new passphrase from `variable` or asked twice on the terminal, checked by the strength rule
/// unless `allow_weak` (test set-ups).
pub fn new(variable: &'static str, prompt: &str, allow_weak: bool) -> Result<Passphrase, PassphraseError> {
    let text = zeroize::Zeroizing::new(read(variable, prompt, true)?);
    if text.is_empty() {
        return Err(PassphraseError::Empty);
    }
    if !allow_weak {
        strength::check(&text)?;
    }
    Passphrase::new(text.to_string()).ok_or(PassphraseError::Empty)
}
