//! The steward passphrase rule: the passphrase protects the identity that opens every patient's
//! record, so `init` and `passphrase` refuse one an attacker with a copy of the identity file
//! could guess. Strength is estimated by zxcvbn (dictionary words, names, keyboard patterns,
//! dates, repeats); the rule asks for its top score, more than 10^10 guesses.
//!
//! ```
//! use pseal_central::strength::check;
//!
//! assert!(check("x").is_err());
//! assert!(check("tabby-unwed-recoil-glimpse-orchid-vantage").is_ok());
//! ```

use std::fmt;

/// Words that make a passphrase easier to guess here than elsewhere.
const CONTEXT: &[&str] = &["pseal", "steward", "central", "passphrase", "research", "network"];

/// A passphrase the rule refuses, with zxcvbn's reason and advice.
#[derive(Debug, Clone, PartialEq)]
pub struct WeakPassphrase {
    /// Roughly how many guesses would find it, as a power of ten.
    pub guesses_log10: f64,
    /// zxcvbn's warning, when it has one ("This is a top-10 common password.").
    pub warning: Option<String>,
    /// zxcvbn's suggestions.
    pub suggestions: Vec<String>,
}

impl fmt::Display for WeakPassphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the passphrase is too weak: about 10^{:.0} guesses would find it, and a strong one needs more than 10^10.",
            self.guesses_log10.max(0.0)
        )?;
        let sentence = |text: &str| {
            let text = text.trim();
            if text.ends_with('.') {
                format!(" {text}")
            } else {
                format!(" {text}.")
            }
        };
        if let Some(w) = &self.warning {
            f.write_str(&sentence(w))?;
        }
        for s in &self.suggestions {
            f.write_str(&sentence(s))?;
        }
        f.write_str(" Choose six or more random words, or 20 or more random characters.")
    }
}

impl std::error::Error for WeakPassphrase {}

/// Accepts a passphrase zxcvbn gives its top score (more than 10^10 guesses), refuses any other
/// with the reason.
pub fn check(passphrase: &str) -> Result<(), WeakPassphrase> {
    let estimate = zxcvbn::zxcvbn(passphrase, CONTEXT);
    if estimate.score() >= zxcvbn::Score::Four {
        return Ok(());
    }
    let (warning, suggestions) = match estimate.feedback() {
        Some(fb) => (
            fb.warning().map(|w| w.to_string()),
            fb.suggestions().iter().map(ToString::to_string).collect(),
        ),
        None => (
            None,
            vec!["Add another word or two. Uncommon words are better.".to_string()],
        ),
    };
    Err(WeakPassphrase {
        guesses_log10: estimate.guesses_log10(),
        warning,
        suggestions,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::check;

    #[test]
    fn weak_passphrases_are_refused_with_the_reason() {
        for weak in ["x", "password", "steward2026", "qwertyuiop", "correct horse"] {
            let e = check(weak).expect_err(weak);
            assert!(e.to_string().starts_with("the passphrase is too weak"), "{e}");
        }
        let e = check("password").unwrap_err();
        assert!(e.warning.is_some(), "a common password is named as such");
    }

    #[test]
    fn long_random_passphrases_pass() {
        check("tabby-unwed-recoil-glimpse-orchid-vantage").unwrap();
        check("x7#Qm9!vLp2@Zr4$Wt8&").unwrap();
    }
}
