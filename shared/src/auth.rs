//! Site authentication: proves to the steward which enrolled workstation produced a bundle.
//!
//! The SHA-256 digest of the exact manifest bytes is authenticated with HPKE (RFC 9180) in Auth
//! mode — DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305 — from the site's static key
//! to the steward's static key. Auth mode binds both public keys into the key schedule; the `info`
//! string binds the format version. The tag convinces only the steward: whoever holds the steward
//! key could have computed it too (it is deniable, not a signature), and a leaked steward key lets
//! its holder forge bundles from any site. `docs/bundle-format.md` states this.

use crate::keys::{SitePublicKey, SiteSecretKey, StewardIdentity, StewardRecipient};
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use serde::{Deserialize, Serialize};
use thiserror::Error;

type Kem = X25519HkdfSha256;

/// The HPKE `info` string: names the protocol and the bundle format version.
pub const AUTH_INFO: &[u8] = b"pseal bundle v1 site authentication";

/// The authentication tag a bundle carries (`auth.cbor`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteTag {
    /// The HPKE encapsulated key (32 bytes).
    #[serde(with = "serde_bytes_vec")]
    pub enc: Vec<u8>,
    /// The AEAD output over an empty plaintext with the manifest digest as associated data (16 bytes).
    #[serde(with = "serde_bytes_vec")]
    pub tag: Vec<u8>,
}

/// Why a site tag could not be made or was not accepted.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// The tag does not verify for this site key, steward key and manifest.
    #[error("the site authentication tag does not verify: the bundle was altered, or was not made by the site key it names for this steward")]
    BadTag,
    /// The tag is not well-formed.
    #[error("the site authentication tag is malformed")]
    Malformed,
    /// HPKE refused a key (e.g. an all-zero public key).
    #[error("HPKE refused the keys: {0}")]
    Hpke(String),
}

fn hpke_err(e: hpke::HpkeError) -> AuthError {
    AuthError::Hpke(e.to_string())
}

/// Authenticates `manifest_digest` from `site` to `steward`.
pub fn seal_tag(
    site: &SiteSecretKey,
    steward: &StewardRecipient,
    manifest_digest: &[u8; 32],
) -> Result<SiteTag, AuthError> {
    let sk_bytes = site.to_bytes();
    let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(&sk_bytes[..]).map_err(hpke_err)?;
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(site.public().as_bytes()).map_err(hpke_err)?;
    let recipient = <Kem as hpke::Kem>::PublicKey::from_bytes(steward.as_bytes()).map_err(hpke_err)?;
    let mut rng = rand_core_09::UnwrapErr(rand_core_09::OsRng);
    let (enc, ct) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem, _>(
        &OpModeS::Auth((sk, pk)),
        &recipient,
        AUTH_INFO,
        &[],
        manifest_digest,
        &mut rng,
    )
    .map_err(hpke_err)?;
    Ok(SiteTag {
        enc: enc.to_bytes().to_vec(),
        tag: ct,
    })
}

/// Checks that `tag` was made by `site` for the steward holding `steward` over `manifest_digest`.
pub fn open_tag(
    steward: &StewardIdentity,
    site: &SitePublicKey,
    manifest_digest: &[u8; 32],
    tag: &SiteTag,
) -> Result<(), AuthError> {
    let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(steward.secret_bytes()).map_err(hpke_err)?;
    let sender = <Kem as hpke::Kem>::PublicKey::from_bytes(site.as_bytes()).map_err(|_| AuthError::BadTag)?;
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&tag.enc).map_err(|_| AuthError::Malformed)?;
    let plain = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeR::Auth(sender),
        &sk,
        &enc,
        AUTH_INFO,
        &tag.tag,
        manifest_digest,
    )
    .map_err(|_| AuthError::BadTag)?;
    if plain.is_empty() {
        Ok(())
    } else {
        Err(AuthError::Malformed)
    }
}

/// Serializes `Vec<u8>` as a CBOR byte string rather than an array of integers.
pub(crate) mod serde_bytes_vec {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes bytes as a byte string.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    /// Reads a byte string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let b: ciborium::value::Value = Deserialize::deserialize(d)?;
        match b {
            ciborium::value::Value::Bytes(v) => Ok(v),
            _ => Err(serde::de::Error::custom("expected a byte string")),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tag_verifies_only_for_the_right_site_steward_and_digest() {
        let site = SiteSecretKey::generate();
        let steward = StewardIdentity::generate();
        let digest = [7u8; 32];
        let tag = seal_tag(&site, &steward.recipient(), &digest).unwrap();
        assert_eq!(open_tag(&steward, &site.public(), &digest, &tag), Ok(()));

        let other_site = SiteSecretKey::generate();
        assert_eq!(
            open_tag(&steward, &other_site.public(), &digest, &tag),
            Err(AuthError::BadTag)
        );
        let other_steward = StewardIdentity::generate();
        assert_eq!(
            open_tag(&other_steward, &site.public(), &digest, &tag),
            Err(AuthError::BadTag)
        );
        assert_eq!(
            open_tag(&steward, &site.public(), &[8u8; 32], &tag),
            Err(AuthError::BadTag)
        );
        let mut flipped = tag.clone();
        flipped.tag[0] ^= 1;
        assert_eq!(
            open_tag(&steward, &site.public(), &digest, &flipped),
            Err(AuthError::BadTag)
        );
    }
}
