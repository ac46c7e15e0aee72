//! The research pseudonym: random symbols from an alphabet without look-alikes, plus a check symbol.
//!
//! A pseudonym is 12 symbols drawn from the OS CSPRNG (60 bits) and one check symbol, written in
//! groups `XXXX-XXXX-XXXXX`. It is never derived from an identity. The alphabet drops `0 O 1 I`,
//! leaving 32 symbols. The check symbol is Damm's algorithm over the quasigroup
//! `x ∘ y = α·x + y` in GF(32) (α the field generator): this operation is totally anti-symmetric,
//! so every single-symbol error and every swap of two neighbouring symbols is detected (proved by
//! exhaustive tests below over the whole operation table).

use rand::RngCore;
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// The 32-symbol alphabet, in value order.
pub const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// Number of random symbols.
pub const RANDOM_SYMBOLS: usize = 12;
const LEN: usize = RANDOM_SYMBOLS + 1;

/// A well-formed pseudonym (canonical upper-case form, check symbol verified).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pseudonym([u8; LEN]);

/// Why a string is not a well-formed pseudonym.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PseudonymError {
    /// Wrong number of symbols.
    #[error("a pseudonym has {LEN} symbols (hyphens optional), this has {0}")]
    Length(usize),
    /// A character outside the alphabet.
    #[error("'{0}' is not a pseudonym symbol (the alphabet is {alphabet}; 0, O, 1 and I are never used)", alphabet = std::str::from_utf8(ALPHABET).unwrap_or_default())]
    Symbol(char),
    /// The check symbol does not match: a mistyped or swapped symbol.
    #[error("the check symbol does not match: a symbol is mistyped or two neighbours are swapped")]
    Check,
}

/// Multiplication in GF(32) modulo x^5 + x^2 + 1.
fn gf_mul(mut a: u8, mut b: u8) -> u8 {
    let mut r = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            r ^= a;
        }
        b >>= 1;
        a <<= 1;
        if a & 0x20 != 0 {
            a ^= 0x25;
        }
    }
    r & 0x1f
}

/// The quasigroup operation of the check: `x ∘ y = 2·x + y` in GF(32).
fn op(x: u8, y: u8) -> u8 {
    gf_mul(2, x) ^ y
}

fn interim(values: &[u8]) -> u8 {
    values.iter().fold(0, |acc, &v| op(acc, v))
}

fn value_of(c: u8) -> Option<u8> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u8)
}

impl Pseudonym {
    /// Draws a new pseudonym from the OS CSPRNG.
    pub fn random() -> Pseudonym {
        let mut values = [0u8; LEN];
        let mut bytes = [0u8; RANDOM_SYMBOLS];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        for (v, b) in values.iter_mut().zip(bytes) {
            *v = b & 0x1f;
        }
        // Appending d with interim(s)∘d = 0 requires d = 2·interim(s) (characteristic 2).
        values[RANDOM_SYMBOLS] = gf_mul(2, interim(&values[..RANDOM_SYMBOLS]));
        let mut out = [0u8; LEN];
        for (o, v) in out.iter_mut().zip(values) {
            *o = ALPHABET[v as usize];
        }
        Pseudonym(out)
    }

    /// The canonical text, `XXXX-XXXX-XXXXX`.
    pub fn as_string(&self) -> String {
        self.to_string()
    }
}

impl FromStr for Pseudonym {
    type Err = PseudonymError;
    /// Accepts any case and optional hyphens or spaces.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let symbols: Vec<char> = s
            .chars()
            .filter(|c| *c != '-' && *c != ' ')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if symbols.len() != LEN {
            return Err(PseudonymError::Length(symbols.len()));
        }
        let mut out = [0u8; LEN];
        let mut values = [0u8; LEN];
        for (i, c) in symbols.iter().enumerate() {
            let byte = u8::try_from(*c).map_err(|_| PseudonymError::Symbol(*c))?;
            values[i] = value_of(byte).ok_or(PseudonymError::Symbol(*c))?;
            out[i] = byte;
        }
        if interim(&values) != 0 {
            return Err(PseudonymError::Check);
        }
        Ok(Pseudonym(out))
    }
}

impl fmt::Display for Pseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = std::str::from_utf8(&self.0).map_err(|_| fmt::Error)?;
        write!(f, "{}-{}-{}", &s[0..4], &s[4..8], &s[8..])
    }
}

impl fmt::Debug for Pseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pseudonym({self})")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn random_pseudonyms_are_well_formed_and_round_trip() {
        for _ in 0..1000 {
            let p = Pseudonym::random();
            let text = p.to_string();
            assert_eq!(text.len(), 15);
            assert_eq!(text.parse::<Pseudonym>().unwrap(), p);
            assert_eq!(text.to_lowercase().replace('-', "").parse::<Pseudonym>().unwrap(), p);
        }
    }

    /// Exhaustive over the operation table: from any interim state, two different symbols lead to
    /// different states, and every later step is a bijection of the state, so a single wrong
    /// symbol anywhere changes the final check value.
    #[test]
    fn every_single_symbol_error_is_detected() {
        for state in 0..32u8 {
            for x in 0..32u8 {
                for y in 0..32u8 {
                    if x != y {
                        assert_ne!(op(state, x), op(state, y));
                    }
                }
            }
            let images: std::collections::HashSet<u8> = (0..32).map(|v| op(v, state)).collect();
            assert_eq!(images.len(), 32, "left translation must be a bijection");
        }
    }

    /// Exhaustive: (s∘x)∘y ≠ (s∘y)∘x for every state s and symbols x ≠ y (total anti-symmetry).
    #[test]
    fn every_swap_of_neighbours_is_detected() {
        for s in 0..32u8 {
            for x in 0..32u8 {
                for y in 0..32u8 {
                    if x != y {
                        assert_ne!(op(op(s, x), y), op(op(s, y), x));
                    }
                }
            }
        }
    }

    /// End to end on real strings: every single substitution and every adjacent swap of a sample
    /// of pseudonyms is refused.
    #[test]
    fn mutated_pseudonyms_are_refused() {
        for _ in 0..50 {
            let p = Pseudonym::random();
            let raw: Vec<u8> = p.0.to_vec();
            for i in 0..LEN {
                for &c in ALPHABET {
                    if c != raw[i] {
                        let mut m = raw.clone();
                        m[i] = c;
                        let s = String::from_utf8(m).unwrap();
                        assert_eq!(s.parse::<Pseudonym>(), Err(PseudonymError::Check));
                    }
                }
                if i + 1 < LEN && raw[i] != raw[i + 1] {
                    let mut m = raw.clone();
                    m.swap(i, i + 1);
                    let s = String::from_utf8(m).unwrap();
                    assert_eq!(s.parse::<Pseudonym>(), Err(PseudonymError::Check));
                }
            }
        }
    }

    #[test]
    fn look_alikes_are_not_in_the_alphabet() {
        for c in [b'0', b'O', b'1', b'I'] {
            assert!(!ALPHABET.contains(&c));
        }
        assert!(matches!(
            "0AAA-AAAA-AAAAA".parse::<Pseudonym>(),
            Err(PseudonymError::Symbol('0'))
        ));
    }
}
