//! The store's random secrets, sealed with age to the steward (and backup) recipients.

use hmac::{Hmac, Mac};
use pseal::keys::{StewardIdentity, StewardRecipient};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::io::{Read, Write};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Why the store's secrets, or a row sealed with them, could not be sealed or opened. The store
/// attaches the database's path (`StoreError::Secrets`) or the row it was reading.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsError {
    /// age could not set up encryption to the recipients.
    #[error("{0}")]
    Encrypt(#[from] age::EncryptError),
    /// age could not decrypt the secrets with this identity.
    #[error("{0}")]
    Decrypt(#[from] age::DecryptError),
    /// Reading or writing the age stream failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The secrets could not be encoded.
    #[error("{0}")]
    Encode(#[from] ciborium::ser::Error<std::io::Error>),
    /// The decrypted secrets are not a valid record.
    #[error("{0}")]
    Decode(#[from] ciborium::de::Error<std::io::Error>),
    /// Secrets written by a newer pseal.
    #[error("unsupported secrets version {0}")]
    Version(u32),
    /// A sealed row shorter than its nonce.
    #[error("sealed row too short")]
    RowTooShort,
    /// A sealed row that does not open with its row's identity.
    #[error("the sealed row does not open (altered, or moved from another row)")]
    RowAltered,
    /// The cipher refused to seal (it never does for in-memory rows).
    #[error("{0}")]
    Seal(chacha20poly1305::aead::Error),
}

/// Keys that never leave the store in clear.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct StoreSecrets {
    version: u32,
    /// Keys the blind index that finds a patient by (domain, site, local ID).
    blind_index_key: [u8; 32],
    /// Keys the mapping of original UIDs to archive UIDs.
    uid_key: [u8; 32],
    /// Keys the audit chain, so that an edited log cannot be re-chained without the passphrase.
    audit_key: [u8; 32],
    /// Seals each patient's (site, local ID) row with XChaCha20-Poly1305: as safe as sealing
    /// each row with age (the key itself is sealed to the steward recipients) and fast enough
    /// to mint tens of thousands of pseudonyms per second.
    identity_key: [u8; 32],
}

fn random32() -> [u8; 32] {
    let mut k = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut k);
    k
}

impl StoreSecrets {
    pub(crate) fn generate() -> StoreSecrets {
        StoreSecrets {
            version: 1,
            blind_index_key: random32(),
            uid_key: random32(),
            audit_key: random32(),
            identity_key: random32(),
        }
    }

    pub(crate) fn seal(&self, recipients: &[StewardRecipient]) -> Result<Vec<u8>, SecretsError> {
        let ages: Vec<age::x25519::Recipient> = recipients.iter().map(StewardRecipient::age_recipient).collect();
        let enc = age::Encryptor::with_recipients(ages.iter().map(|r| r as &dyn age::Recipient))?;
        let mut out = Vec::new();
        let mut w = enc.wrap_output(&mut out)?;
        let mut plain = zeroize::Zeroizing::new(Vec::new());
        ciborium::into_writer(self, &mut *plain)?;
        w.write_all(&plain)?;
        w.finish()?;
        Ok(out)
    }

    pub(crate) fn open(sealed: &[u8], identity: &StewardIdentity) -> Result<StoreSecrets, SecretsError> {
        let dec = age::Decryptor::new(sealed)?;
        let mut r = dec.decrypt(std::iter::once(identity.age_identity() as &dyn age::Identity))?;
        let mut plain = zeroize::Zeroizing::new(Vec::new());
        r.read_to_end(&mut plain)?;
        let s: StoreSecrets = ciborium::from_reader(plain.as_slice())?;
        if s.version != 1 {
            return Err(SecretsError::Version(s.version));
        }
        Ok(s)
    }

    fn mac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
        let mut m = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
            Ok(m) => m,
            Err(_) => return [0; 32],
        };
        for p in parts {
            m.update(&(p.len() as u64).to_be_bytes());
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }

    /// The blind index of a patient: HMAC over length-prefixed domain, site and local ID.
    pub fn blind_index(&self, domain: &str, site: &str, local_id: &str) -> [u8; 32] {
        Self::mac(
            &self.blind_index_key,
            &[
                b"pseal blind index v1",
                domain.as_bytes(),
                site.as_bytes(),
                local_id.as_bytes(),
            ],
        )
    }

    /// The keys of cross-site linkage (name filters, date tokens, blocking tokens), derived
    /// from the blind-index key with HKDF under their own labels, so a store made before linkage
    /// has them without a new secret.
    pub fn linkage_keys(&self) -> crate::linkage::LinkageKeys {
        crate::linkage::LinkageKeys::derive(&self.blind_index_key)
    }

    /// The archive UID for an original UID in a pseudonym domain: stable across re-exports, and
    /// different in every domain, so two projects cannot link their patients through UIDs.
    pub fn archive_uid(&self, domain: &str, original: &str) -> String {
        let original = original.trim_end_matches(['\0', ' ']);
        pseal::uid::derive_uid(&self.uid_key, &format!("{domain}\u{1f}{original}"))
    }

    /// Seals `plain` for the row identified by `aad` (random 24-byte nonce, prepended).
    pub fn seal_row(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, SecretsError> {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        let cipher = chacha20poly1305::XChaCha20Poly1305::new((&self.identity_key).into());
        let mut nonce = [0u8; 24];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        let ct = cipher
            .encrypt((&nonce).into(), Payload { msg: plain, aad })
            .map_err(SecretsError::Seal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens a row sealed by [`StoreSecrets::seal_row`] with the same `aad`.
    pub fn open_row(&self, aad: &[u8], sealed: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, SecretsError> {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        if sealed.len() < 24 {
            return Err(SecretsError::RowTooShort);
        }
        let cipher = chacha20poly1305::XChaCha20Poly1305::new((&self.identity_key).into());
        let (nonce, ct) = sealed.split_at(24);
        cipher
            .decrypt(nonce.into(), Payload { msg: ct, aad })
            .map(zeroize::Zeroizing::new)
            .map_err(|_| SecretsError::RowAltered)
    }

    /// The chained MAC of one audit entry.
    pub fn audit_mac(&self, prev: &str, seq: i64, at: i64, action: &str, detail: &str) -> String {
        hex::encode(Self::mac(
            &self.audit_key,
            &[
                b"pseal audit v1",
                prev.as_bytes(),
                &seq.to_be_bytes(),
                &at.to_be_bytes(),
                action.as_bytes(),
                detail.as_bytes(),
            ],
        ))
    }
}
