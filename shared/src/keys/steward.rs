//! The data steward's age identity (X25519) and the recipients every bundle is sealed to.
//!
//! The identity file is a standard age passphrase-encrypted identity file, so the reference `age`
//! CLI can use it (`age -d -i steward-identity.age`). The same X25519 key is the HPKE recipient key
//! for site authentication (see `auth`); the two uses are separated by HPKE's own labels.

use super::{decode_bech32_32, files, KeyError, Passphrase};
use age::secrecy::ExposeSecret;
use std::fmt;
use std::io::{Read, Write};
use std::path::Path;
use std::str::FromStr;
use zeroize::Zeroizing;

/// scrypt work factor (log2 N) of the steward identity file: 2^18, 256 MiB and about a second,
/// the reference age implementation's default for passphrase encryption.
pub const SCRYPT_WORK_FACTOR: u8 = 18;

/// Largest scrypt work factor accepted when opening an identity file (as the reference age CLI):
/// bounds the memory and time a damaged or hostile file can demand.
pub const MAX_SCRYPT_WORK_FACTOR: u8 = 22;

/// The steward's secret identity, unlocked with its passphrase. Zeroized on drop; never printed.
pub struct StewardIdentity {
    identity: age::x25519::Identity,
    secret: Zeroizing<[u8; 32]>,
}

/// An age X25519 recipient (`age1…`): the steward's or a backup key's public half.
#[derive(Clone, PartialEq, Eq)]
pub struct StewardRecipient {
    text: String,
    bytes: [u8; 32],
}

impl StewardIdentity {
    /// Draws a new identity from the OS random number generator.
    pub fn generate() -> StewardIdentity {
        let identity = age::x25519::Identity::generate();
        let secret = Self::secret_of(&identity);
        StewardIdentity { identity, secret }
    }

    fn secret_of(identity: &age::x25519::Identity) -> Zeroizing<[u8; 32]> {
        // A freshly generated or parsed identity always re-encodes to a valid key.
        Zeroizing::new(
            decode_bech32_32(identity.to_string().expose_secret(), "age-secret-key-", "age identity")
                .unwrap_or([0; 32]),
        )
    }

    /// Parses `AGE-SECRET-KEY-1…` text (comment lines start with `#`).
    pub fn parse(text: &str) -> Result<StewardIdentity, KeyError> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or(KeyError::Malformed {
                kind: "age identity",
                reason: "no key line found".into(),
            })?;
        let identity = age::x25519::Identity::from_str(line).map_err(|e| KeyError::Malformed {
            kind: "age identity",
            reason: e.to_string(),
        })?;
        let secret = Zeroizing::new(decode_bech32_32(line, "age-secret-key-", "age identity")?);
        Ok(StewardIdentity { identity, secret })
    }

    /// The recipient (`age1…`) sites seal to.
    pub fn recipient(&self) -> StewardRecipient {
        let text = self.identity.to_public().to_string();
        let bytes = decode_bech32_32(&text, "age", "age recipient").unwrap_or([0; 32]);
        StewardRecipient { text, bytes }
    }

    /// The age identity, for decrypting bundles and sealed records.
    pub fn age_identity(&self) -> &age::x25519::Identity {
        &self.identity
    }

    /// The raw X25519 secret, for the HPKE recipient key.
    pub(crate) fn secret_bytes(&self) -> &[u8; 32] {
        &self.secret
    }

    /// Writes the identity as an age passphrase-encrypted identity file (mode 0600, never overwriting).
    pub fn write_encrypted(&self, path: &Path, passphrase: &Passphrase) -> Result<(), KeyError> {
        let plain = Zeroizing::new(format!(
            "# pseal steward identity (age X25519)\n# public key: {}\n{}\n",
            self.recipient(),
            self.identity.to_string().expose_secret()
        ));
        let mut out = Vec::new();
        let locked = |reason: String| KeyError::IdentityLocked {
            path: path.to_path_buf(),
            reason,
        };
        // A fixed work factor, not age's one-second calibration: calibrating on a busy machine
        // silently gave a weaker file (and a faster one a file slower machines refused).
        let mut recipient = age::scrypt::Recipient::new(passphrase.secret());
        recipient.set_work_factor(SCRYPT_WORK_FACTOR);
        let encryptor = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .map_err(|e| locked(e.to_string()))?;
        let mut writer = encryptor.wrap_output(&mut out).map_err(|e| locked(e.to_string()))?;
        writer.write_all(plain.as_bytes()).map_err(|e| locked(e.to_string()))?;
        writer.finish().map_err(|e| locked(e.to_string()))?;
        files::write_private_file(path, &out)?;
        Ok(())
    }

    /// Opens an identity file written by [`StewardIdentity::write_encrypted`] or by `age -p`.
    pub fn read_encrypted(path: &Path, passphrase: &Passphrase) -> Result<StewardIdentity, KeyError> {
        files::check_private_permissions(path)?;
        let locked = |reason: String| KeyError::IdentityLocked {
            path: path.to_path_buf(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(|e| locked(e.to_string()))?;
        let decryptor =
            age::Decryptor::new_buffered(std::io::BufReader::new(file)).map_err(|e| locked(e.to_string()))?;
        if !decryptor.is_scrypt() {
            return Err(locked("it is not passphrase-protected".into()));
        }
        let mut scrypt = age::scrypt::Identity::new(passphrase.secret());
        // age's default ceiling is "about 16 seconds on this machine", measured by timing one
        // small scrypt run: under load the measurement drops and a good identity file is refused
        // as "excessive work". Use a fixed ceiling instead, as the reference age CLI does.
        scrypt.set_max_work_factor(MAX_SCRYPT_WORK_FACTOR);
        let mut reader = decryptor
            .decrypt(std::iter::once(&scrypt as &dyn age::Identity))
            .map_err(|e| match e {
                age::DecryptError::DecryptionFailed | age::DecryptError::NoMatchingKeys => {
                    locked("wrong passphrase".into())
                }
                other => locked(other.to_string()),
            })?;
        let mut text = Zeroizing::new(String::new());
        reader
            .read_to_string(&mut text)
            .map_err(|e| locked(format!("damaged identity file: {e}")))?;
        StewardIdentity::parse(&text)
    }

    /// Opens an age identity file of either kind: passphrase-protected (`age -p`, as the store's
    /// steward identity) or plain (`age-keygen -o`, as a researcher's or a database host's key).
    /// `passphrase` is called only for a protected file. Both kinds are refused when other users
    /// can read them.
    pub fn read_file(
        path: &Path,
        passphrase: impl FnOnce() -> Result<Passphrase, KeyError>,
    ) -> Result<StewardIdentity, KeyError> {
        files::check_private_permissions(path)?;
        let io = |source| files::KeyFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut head = [0u8; AGE_MAGIC.len()];
        let mut file = std::fs::File::open(path).map_err(io)?;
        let n = read_up_to(&mut file, &mut head).map_err(io)?;
        drop(file);
        if head[..n] == *AGE_MAGIC {
            return StewardIdentity::read_encrypted(path, &passphrase()?);
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
        StewardIdentity::parse(&text).map_err(|e| match e {
            KeyError::Malformed { kind, reason } => KeyError::Malformed {
                kind,
                reason: format!(
                    "{reason} in {} (expected AGE-SECRET-KEY-1… or an age -p file)",
                    path.display()
                ),
            },
            other => other,
        })
    }
}

/// The first bytes of every binary age file.
const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";

/// Fills as much of `buf` as the file holds.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

impl fmt::Debug for StewardIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StewardIdentity(recipient: {})", self.recipient())
    }
}

impl StewardRecipient {
    /// The age recipient, for encrypting.
    pub fn age_recipient(&self) -> age::x25519::Recipient {
        // `text` was validated by `from_str` or produced by age itself.
        age::x25519::Recipient::from_str(&self.text).unwrap_or_else(|_| age::x25519::Identity::generate().to_public())
    }

    /// The raw X25519 public key, for HPKE site authentication.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }
}

impl FromStr for StewardRecipient {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        age::x25519::Recipient::from_str(s).map_err(|e| KeyError::Malformed {
            kind: "age recipient",
            reason: e.to_string(),
        })?;
        let bytes = decode_bech32_32(s, "age", "age recipient")?;
        Ok(StewardRecipient {
            text: s.to_ascii_lowercase(),
            bytes,
        })
    }
}

impl fmt::Display for StewardRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for StewardRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StewardRecipient({})", self.text)
    }
}

impl serde::Serialize for StewardRecipient {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for StewardRecipient {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}
