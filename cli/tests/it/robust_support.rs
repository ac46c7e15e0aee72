//! Helpers for the robustness tests: take a real bundle apart (age layout, zstd plaintext, tar
//! entries) and put a changed one back together with stock tools, as a forger who knows only the
//! steward's public recipient (or, for insider cases, also a site key) would.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read, Write};
use std::path::Path;

/// Size of an age payload chunk (plaintext); each chunk carries a 16-byte tag.
pub const AGE_CHUNK: usize = 64 * 1024;

/// Where the parts of an age file are: header end (just past the `--- mac` line), the 16-byte
/// payload nonce, and the start of each encrypted payload chunk.
pub struct AgeLayout {
    pub header_end: usize,
    pub nonce: usize,
    pub chunks: Vec<std::ops::Range<usize>>,
}

pub fn age_layout(file: &[u8]) -> AgeLayout {
    let mac = file.windows(4).position(|w| w == b"\n---").unwrap() + 1;
    let header_end = mac + file[mac..].iter().position(|&b| b == b'\n').unwrap() + 1;
    let nonce = header_end;
    let mut chunks = Vec::new();
    let mut start = nonce + 16;
    while start < file.len() {
        let end = (start + AGE_CHUNK + 16).min(file.len());
        chunks.push(start..end);
        start = end;
    }
    AgeLayout {
        header_end,
        nonce,
        chunks,
    }
}

/// The age plaintext (zstd stream) of a bundle.
pub fn decrypt(identity: &pseal::keys::StewardIdentity, file: &[u8]) -> Vec<u8> {
    let dec = age::Decryptor::new_buffered(file).unwrap();
    let mut r = dec
        .decrypt(std::iter::once(identity.age_identity() as &dyn age::Identity))
        .unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    out
}

/// Seals `plain` to the recipients with the stock age crate.
pub fn seal(recipients: &[pseal::keys::StewardRecipient], plain: &[u8]) -> Vec<u8> {
    let ages: Vec<age::x25519::Recipient> = recipients.iter().map(|r| r.age_recipient()).collect();
    let enc = age::Encryptor::with_recipients(ages.iter().map(|r| r as &dyn age::Recipient)).unwrap();
    let mut out = Vec::new();
    let mut w = enc.wrap_output(&mut out).unwrap();
    w.write_all(plain).unwrap();
    w.finish().unwrap();
    out
}

pub fn unzstd(z: &[u8]) -> Vec<u8> {
    zstd::decode_all(z).unwrap()
}

pub fn zstd(tar: &[u8]) -> Vec<u8> {
    zstd::encode_all(tar, 3).unwrap()
}

/// One tar entry: its 512-byte header and content.
#[derive(Clone)]
pub struct TarEntry {
    pub header: tar::Header,
    pub name: String,
    pub content: Vec<u8>,
}

pub fn tar_entries(tar: &[u8]) -> Vec<TarEntry> {
    let mut out = Vec::new();
    for entry in tar::Archive::new(tar).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().to_string();
        let header = entry.header().clone();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        out.push(TarEntry { header, name, content });
    }
    out
}

/// A tar stream of `entries`, each header adjusted to its content's size (checksum recomputed).
pub fn build_tar(entries: &[TarEntry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = e.header.clone();
        h.set_size(e.content.len() as u64);
        h.set_cksum();
        b.append(&h, e.content.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

/// A normalized header like the writer's, for an entry named `name`.
pub fn header_for(name: &str, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_path(name).unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_username("").unwrap();
    h.set_groupname("").unwrap();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    h
}

/// Byte offset of each entry's header in a tar stream.
pub fn header_offsets(tar: &[u8]) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().to_string();
        // raw_header_position is the offset of this entry's header.
        out.push((name, entry.raw_header_position() as usize));
    }
    out
}

/// The offset of each entry's content in a tar stream.
pub fn content_offsets(tar: &[u8]) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().to_string();
        out.push((name, entry.raw_file_position() as usize, entry.size() as usize));
    }
    out
}

/// Re-tags a manifest with `site_key` for `steward` and returns the new `auth.cbor` bytes.
pub fn retag(
    site_key: &pseal::keys::SiteSecretKey,
    steward: &pseal::keys::StewardRecipient,
    manifest_bytes: &[u8],
) -> Vec<u8> {
    let digest = pseal::bundle::sha256(manifest_bytes);
    let tag = pseal::auth::seal_tag(site_key, steward, &digest).unwrap();
    let mut out = Vec::new();
    ciborium::into_writer(&tag, &mut out).unwrap();
    out
}

pub fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}
