//! The workstation's site key: an X25519 static key whose public half is enrolled at the steward.

use super::{decode_bech32_32, encode_bech32, files, KeyError};
use std::fmt;
use std::path::Path;
use x25519_dalek::{PublicKey, StaticSecret};

const PUBLIC_HRP: &str = "psealsite";
const SECRET_HRP: &str = "pseal-site-secret-key-";

/// A workstation's secret site key. Zeroized on drop; never printed.
pub struct SiteSecretKey(StaticSecret);

/// The public half of a site key, written `psealsite1…` (bech32) for enrolment.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SitePublicKey([u8; 32]);

impl SiteSecretKey {
    /// Draws a new site key from the OS random number generator.
    pub fn generate() -> SiteSecretKey {
        SiteSecretKey(StaticSecret::random_from_rng(rand::rngs::OsRng))
    }

    /// The public half, to be enrolled at the steward.
    pub fn public(&self) -> SitePublicKey {
        SitePublicKey(PublicKey::from(&self.0).to_bytes())
    }

    /// The raw secret scalar, for the HPKE sender key.
    pub(crate) fn to_bytes(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.0.to_bytes())
    }

    /// Parses the key-file text (comment lines start with `#`).
    pub fn parse(text: &str) -> Result<SiteSecretKey, KeyError> {
        let line = key_line(text).ok_or(KeyError::Malformed {
            kind: "site key file",
            reason: "no key line found".into(),
        })?;
        let bytes = zeroize::Zeroizing::new(decode_bech32_32(line, SECRET_HRP, "site key file")?);
        Ok(SiteSecretKey(StaticSecret::from(*bytes)))
    }

    /// Writes a new key file at `path` (mode 0600, never overwriting).
    pub fn write_new(&self, path: &Path, site: &str) -> Result<(), KeyError> {
        let secret = zeroize::Zeroizing::new(encode_bech32(SECRET_HRP, &self.0.to_bytes()).to_uppercase());
        let text = zeroize::Zeroizing::new(format!(
            "# pseal site key for site {site}. Keep it on this workstation only.\n# public key: {}\n{}\n",
            self.public(),
            secret.as_str()
        ));
        files::write_private_file(path, text.as_bytes())?;
        Ok(())
    }

    /// Reads a key file, refusing one that other users can read.
    pub fn read(path: &Path) -> Result<SiteSecretKey, KeyError> {
        files::check_private_permissions(path)?;
        let text =
            zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|source| files::KeyFileError::Io {
                path: path.to_path_buf(),
                source,
            })?);
        SiteSecretKey::parse(&text).map_err(|e| match e {
            KeyError::Malformed { kind, reason } => KeyError::Malformed {
                kind,
                reason: format!("{reason} in {}", path.display()),
            },
            other => other,
        })
    }
}

fn key_line(text: &str) -> Option<&str> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
}

impl fmt::Debug for SiteSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SiteSecretKey(public: {})", self.public())
    }
}

impl SitePublicKey {
    /// The raw X25519 public key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Wraps raw public-key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> SitePublicKey {
        SitePublicKey(bytes)
    }
}

impl std::str::FromStr for SitePublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode_bech32_32(s, PUBLIC_HRP, "site public key").map(SitePublicKey)
    }
}

impl fmt::Display for SitePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encode_bech32(PUBLIC_HRP, &self.0))
    }
}

impl fmt::Debug for SitePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SitePublicKey({self})")
    }
}

impl serde::Serialize for SitePublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for SitePublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn key_file_round_trip_is_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site.key");
        let key = SiteSecretKey::generate();
        key.write_new(&path, "SITE-A").unwrap();
        let back = SiteSecretKey::read(&path).unwrap();
        assert_eq!(key.public(), back.public());
        assert!(key.write_new(&path, "SITE-A").is_err(), "must not overwrite");
    }

    #[cfg(unix)]
    #[test]
    fn world_readable_key_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site.key");
        SiteSecretKey::generate().write_new(&path, "S").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = SiteSecretKey::read(&path).unwrap_err().to_string();
        assert!(err.contains("readable by other users"), "{err}");
    }

    #[test]
    fn public_key_text_round_trip() {
        let public = SiteSecretKey::generate().public();
        let text = public.to_string();
        assert!(text.starts_with("psealsite1"));
        assert_eq!(text.parse::<SitePublicKey>().unwrap(), public);
        assert!("age1qqq".parse::<SitePublicKey>().is_err());
    }
}
