//! Reads and verifies a bundle before anything in it is trusted.
//!
//! The reader decrypts and decompresses as a stream and stages each entry to a temporary folder
//! while hashing it. Only when the stream has ended cleanly (age's final chunk authenticated), the
//! layout is exactly as specified, the site tag verifies over the manifest and every entry matches
//! its manifest size and digest does it hand back a [`VerifiedBundle`]. Any failure drops the
//! staging folder: nothing from a bad bundle survives.

use super::manifest::{Entry, EntryKind, Manifest, FORMAT_VERSION, MAX_MANIFEST_BYTES};
use super::writer::HashingReader;
use super::{instance_entry_name, AUTH_ENTRY, IDENTITY_ENTRY, MANIFEST_ENTRY};
use crate::auth::{self, SiteTag};
use crate::keys::StewardIdentity;
use sha2::Digest;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use tempfile::TempDir;
use thiserror::Error;

const MAX_AUTH_BYTES: u64 = 4096;

/// Why a bundle was refused. Every message names the bundle file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The file could not be read, or staging failed (e.g. a full disk).
    #[error("{path}: {}", crate::role::describe(source))]
    Io {
        /// The bundle, or the staging location.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Not an age file at all.
    #[error("{path} is not a pseal bundle (not an age-encrypted file): {reason}")]
    NotAge {
        /// The bundle.
        path: PathBuf,
        /// What the age parser said.
        reason: String,
    },
    /// Sealed, but not to this steward identity.
    #[error("{path} is not sealed to this steward: none of its recipients matches the store's identity (was it made with another steward's recipient?)")]
    NotForThisSteward {
        /// The bundle.
        path: PathBuf,
    },
    /// Decryption, decompression or the tar layout failed: damaged or tampered.
    #[error("{path} is damaged or has been altered: {reason}")]
    Corrupt {
        /// The bundle.
        path: PathBuf,
        /// What exactly failed.
        reason: String,
    },
    /// A format version this tool does not read.
    #[error("{path} uses bundle format version {version}; this pseal-central reads version {FORMAT_VERSION} (upgrade pseal-central)")]
    UnsupportedVersion {
        /// The bundle.
        path: PathBuf,
        /// Its version.
        version: u32,
    },
    /// The site tag is addressed to another steward key.
    #[error("{path} was authenticated for steward {addressed}, not for this store's steward {ours}")]
    WrongSteward {
        /// The bundle.
        path: PathBuf,
        /// The manifest's steward.
        addressed: String,
        /// This store's recipient.
        ours: String,
    },
    /// The site tag does not verify.
    #[error("{path}: {source}")]
    SiteTag {
        /// The bundle.
        path: PathBuf,
        /// Why.
        source: auth::AuthError,
    },
}

impl BundleError {
    /// A stable short name for the kind of refusal (used by `--json` output and the test vectors).
    pub fn kind(&self) -> &'static str {
        match self {
            BundleError::Io { .. } => "io",
            BundleError::NotAge { .. } => "not-age",
            BundleError::NotForThisSteward { .. } => "not-for-this-steward",
            BundleError::Corrupt { .. } => "corrupt",
            BundleError::UnsupportedVersion { .. } => "unsupported-version",
            BundleError::WrongSteward { .. } => "wrong-steward",
            BundleError::SiteTag { .. } => "site-tag",
        }
    }
}

/// A bundle that passed every check, with its entries staged on disk.
#[derive(Debug)]
pub struct VerifiedBundle {
    /// The bundle file.
    pub path: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// SHA-256 of the exact manifest bytes (what the site tag covers).
    pub manifest_digest: [u8; 32],
    staging: TempDir,
    instances: Vec<(String, PathBuf)>,
    identity: PathBuf,
}

impl VerifiedBundle {
    /// Staged instances: (entry name, staged file), in bundle order.
    pub fn instances(&self) -> &[(String, PathBuf)] {
        &self.instances
    }

    /// The staged identity record (still sealed).
    pub fn identity_path(&self) -> &Path {
        &self.identity
    }

    /// The staging folder (removed when this value is dropped).
    pub fn staging_dir(&self) -> &Path {
        self.staging.path()
    }
}

/// A reader that reports the bytes read through it, in steps of about a MiB.
struct Counting<'r, R> {
    inner: R,
    read: &'r dyn Fn(u64),
    pending: u64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pending += n as u64;
        if self.pending >= 1 << 20 || (n == 0 && self.pending > 0) {
            (self.read)(self.pending);
            self.pending = 0;
        }
        Ok(n)
    }
}

/// Opens bundles for one steward identity.
pub struct BundleReader<'a> {
    identity: &'a StewardIdentity,
}

/// age's words for a header it cannot read, except where they would mislead an operator: for a
/// damaged header age says "Unknown age format; have you tried upgrading to the newest version?",
/// and upgrading is not the fix for a damaged bundle.
fn age_header_reason(e: &age::DecryptError) -> String {
    match e {
        age::DecryptError::UnknownFormat => "the age header is damaged, or this is not an age file".into(),
        other => other.to_string(),
    }
}

impl<'a> BundleReader<'a> {
    /// A reader for bundles sealed to `identity`.
    pub fn new(identity: &'a StewardIdentity) -> Self {
        BundleReader { identity }
    }

    /// Decrypts, stages and verifies `path`, staging under `staging_parent` (put it on the same
    /// file system as the destination so that files can be renamed into place).
    pub fn open(&self, path: &Path, staging_parent: &Path) -> Result<VerifiedBundle, BundleError> {
        self.open_counting(path, staging_parent, &|_| {})
    }

    /// [`open`](Self::open), telling `read` how many bytes of the bundle file were read, about
    /// every MiB (for a progress display).
    pub fn open_counting(
        &self,
        path: &Path,
        staging_parent: &Path,
        read: &dyn Fn(u64),
    ) -> Result<VerifiedBundle, BundleError> {
        let p = path.to_path_buf();
        let corrupt = |reason: String| BundleError::Corrupt {
            path: p.clone(),
            reason,
        };
        let file = File::open(path).map_err(|source| BundleError::Io {
            path: p.clone(),
            source,
        })?;
        let decryptor = age::Decryptor::new_buffered(BufReader::with_capacity(
            1 << 20,
            Counting {
                inner: file,
                read,
                pending: 0,
            },
        ))
        .map_err(|e| BundleError::NotAge {
            path: p.clone(),
            reason: age_header_reason(&e),
        })?;
        let plain = decryptor
            .decrypt(std::iter::once(self.identity.age_identity() as &dyn age::Identity))
            .map_err(|e| match e {
                age::DecryptError::NoMatchingKeys => BundleError::NotForThisSteward { path: p.clone() },
                other => corrupt(format!("age header: {}", age_header_reason(&other))),
            })?;
        self.verify_plaintext(path, plain, staging_parent)
    }

    /// Runs every check after decryption on `plain`, the age plaintext of the bundle at `path`
    /// (a zstd stream of the tar archive): layout, staging, end of stream, manifest, site tag and
    /// digests. [`BundleReader::open`] calls it on the decrypting reader; it is public so that the
    /// fuzzer and tests drive exactly this code with arbitrary plaintext. `path` only names the
    /// bundle in errors.
    pub fn verify_plaintext<R: Read>(
        &self,
        path: &Path,
        plain: R,
        staging_parent: &Path,
    ) -> Result<VerifiedBundle, BundleError> {
        let p = path.to_path_buf();
        let corrupt = |reason: String| BundleError::Corrupt {
            path: p.clone(),
            reason,
        };
        let zstd = zstd::stream::read::Decoder::new(plain).map_err(|e| corrupt(format!("zstd: {e}")))?;
        let staging = tempfile::Builder::new()
            .prefix(".pseal-staging-")
            .tempdir_in(staging_parent)
            .map_err(|source| BundleError::Io {
                path: staging_parent.to_path_buf(),
                source,
            })?;
        let mut archive = tar::Archive::new(zstd);
        let mut staged: Vec<Entry> = Vec::new();
        let mut instances = Vec::new();
        let mut manifest_bytes: Option<Vec<u8>> = None;
        let mut auth_bytes: Option<Vec<u8>> = None;
        let identity_path = staging.path().join("identity.age");
        let mut have_identity = false;

        let entries = archive.entries().map_err(|e| corrupt(format!("tar: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| corrupt(format!("tar: {e}")))?;
            if auth_bytes.is_some() {
                return Err(corrupt(format!("unexpected entry after {AUTH_ENTRY}")));
            }
            let h = entry.header();
            if h.entry_type() != tar::EntryType::Regular {
                return Err(corrupt("a tar entry is not a regular file".into()));
            }
            let name = String::from_utf8(entry.path_bytes().into_owned())
                .map_err(|_| corrupt("a tar entry name is not UTF-8".into()))?;
            normalized(entry.header()).map_err(|what| {
                corrupt(format!(
                    "the tar header of '{}' is not normalized: {what}",
                    name.escape_default()
                ))
            })?;
            let size = entry.size();
            let expected_instance = instance_entry_name(instances.len() as u64 + 1);
            if manifest_bytes.is_none() && !have_identity && name == expected_instance {
                let dest = staging.path().join(format!("{:06}.dcm", instances.len() + 1));
                let (sha, n) = stage(&mut entry, &dest).map_err(|e| stage_err(&p, &dest, e))?;
                staged.push(Entry {
                    name: name.clone(),
                    kind: EntryKind::Instance,
                    size: n,
                    sha256: sha,
                });
                instances.push((name, dest));
            } else if manifest_bytes.is_none() && !have_identity && name == IDENTITY_ENTRY {
                let (sha, n) = stage(&mut entry, &identity_path).map_err(|e| stage_err(&p, &identity_path, e))?;
                staged.push(Entry {
                    name,
                    kind: EntryKind::Identity,
                    size: n,
                    sha256: sha,
                });
                have_identity = true;
            } else if have_identity && manifest_bytes.is_none() && name == MANIFEST_ENTRY {
                manifest_bytes = Some(
                    read_bounded(&mut entry, size, MAX_MANIFEST_BYTES)
                        .map_err(|e| corrupt(format!("{MANIFEST_ENTRY}: {e}")))?,
                );
            } else if manifest_bytes.is_some() && name == AUTH_ENTRY {
                auth_bytes = Some(
                    read_bounded(&mut entry, size, MAX_AUTH_BYTES)
                        .map_err(|e| corrupt(format!("{AUTH_ENTRY}: {e}")))?,
                );
            } else {
                return Err(corrupt(format!(
                    "unexpected entry '{}' (entries must be instances in order, then {IDENTITY_ENTRY}, {MANIFEST_ENTRY}, {AUTH_ENTRY})",
                    name.escape_default()
                )));
            }
        }
        // Read to the very end so that age authenticates its final chunk: a truncated bundle
        // must fail here even when the tar stream looked complete.
        let mut rest = archive.into_inner();
        let mut tail = [0u8; 8192];
        loop {
            let n = rest
                .read(&mut tail)
                .map_err(|e| corrupt(format!("end of stream: {e}")))?;
            if n == 0 {
                break;
            }
            if tail[..n].iter().any(|&b| b != 0) {
                return Err(corrupt("data after the end of the tar archive".into()));
            }
        }
        let manifest_bytes =
            manifest_bytes.ok_or_else(|| corrupt(format!("no {MANIFEST_ENTRY}: the bundle is incomplete")))?;
        let auth_bytes = auth_bytes.ok_or_else(|| corrupt(format!("no {AUTH_ENTRY}: the bundle is incomplete")))?;
        if instances.is_empty() {
            return Err(corrupt(
                "the bundle holds no instance (a bundle carries at least one)".into(),
            ));
        }

        let manifest = Manifest::from_cbor(&manifest_bytes).map_err(|e| corrupt(format!("{MANIFEST_ENTRY}: {e}")))?;
        if manifest.format != FORMAT_VERSION {
            return Err(BundleError::UnsupportedVersion {
                path: p,
                version: manifest.format,
            });
        }
        let ours = self.identity.recipient();
        if manifest.steward != ours {
            return Err(BundleError::WrongSteward {
                path: p,
                addressed: manifest.steward.to_string(),
                ours: ours.to_string(),
            });
        }
        let tag: SiteTag =
            ciborium::from_reader(auth_bytes.as_slice()).map_err(|e| corrupt(format!("{AUTH_ENTRY}: {e}")))?;
        let digest: [u8; 32] = sha2::Sha256::digest(&manifest_bytes).into();
        auth::open_tag(self.identity, &manifest.site_key, &digest, &tag).map_err(|source| BundleError::SiteTag {
            path: p.clone(),
            source,
        })?;
        if manifest.entries != staged {
            return Err(corrupt(describe_mismatch(&manifest.entries, &staged)));
        }
        Ok(VerifiedBundle {
            path: p,
            manifest,
            manifest_digest: digest,
            staging,
            instances,
            identity: identity_path,
        })
    }
}

/// Format section 2: a ustar header of a regular file with mode 0644, uid and gid 0, mtime 0, no
/// user, group or link name, no prefix, device numbers 0. The site tag covers entry contents, not
/// tar headers, so a reader that let these fields vary would accept metadata nobody authenticated
/// (and would not notice a writer that put the hospital's user or time there). Says which field
/// is wrong, never its value.
fn normalized(h: &tar::Header) -> Result<(), &'static str> {
    let ustar = h.as_ustar().ok_or("not a ustar header")?;
    let zero_field = |field: &[u8]| field.iter().all(|&b| b == 0 || b == b'0' || b == b' ');
    let empty = |field: &[u8]| field.iter().all(|&b| b == 0);
    if !matches!(h.mode(), Ok(0o644)) {
        return Err("mode must be 0644");
    }
    if !matches!(h.uid(), Ok(0)) || !matches!(h.gid(), Ok(0)) {
        return Err("uid and gid must be 0");
    }
    if !matches!(h.mtime(), Ok(0)) {
        return Err("mtime must be 0");
    }
    if !empty(&ustar.uname) || !empty(&ustar.gname) {
        return Err("user and group names must be empty");
    }
    if !empty(&ustar.linkname) || !empty(&ustar.prefix) {
        return Err("link name and prefix must be empty");
    }
    if !zero_field(&ustar.dev_major) || !zero_field(&ustar.dev_minor) {
        return Err("device numbers must be 0");
    }
    Ok(())
}

/// Where staging failed: reading the bundle (damage) or writing the staged copy (e.g. a full disk).
enum StageError {
    Read(io::Error),
    Write(io::Error),
}

fn stage_err(bundle: &Path, dest: &Path, e: StageError) -> BundleError {
    match e {
        StageError::Read(e) => BundleError::Corrupt {
            path: bundle.to_path_buf(),
            reason: e.to_string(),
        },
        StageError::Write(source) => BundleError::Io {
            path: dest.to_path_buf(),
            source,
        },
    }
}

fn stage<R: Read>(entry: R, dest: &Path) -> Result<(Vec<u8>, u64), StageError> {
    use std::io::Write;
    let mut out = io::BufWriter::with_capacity(1 << 16, File::create(dest).map_err(StageError::Write)?);
    let mut hashing = HashingReader::new(entry);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match hashing.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(StageError::Read(e)),
        };
        out.write_all(&buf[..n]).map_err(StageError::Write)?;
    }
    out.into_inner().map_err(|e| StageError::Write(e.into_error()))?;
    Ok((hashing.hasher.finalize().to_vec(), hashing.count))
}

/// Why a small metadata entry (manifest, authenticator) was not read.
#[derive(Debug, thiserror::Error)]
enum BoundedReadError {
    /// Larger than any entry pseal writes: refused before reading.
    #[error("{size} bytes exceeds the limit of {max}")]
    TooLarge { size: u64, max: u64 },
    /// The decrypted stream failed mid-entry.
    #[error("{0}")]
    Read(#[from] io::Error),
}

fn read_bounded<R: Read>(entry: R, size: u64, max: u64) -> Result<Vec<u8>, BoundedReadError> {
    if size > max {
        return Err(BoundedReadError::TooLarge { size, max });
    }
    let mut out = Vec::with_capacity(size as usize);
    entry.take(max).read_to_end(&mut out)?;
    Ok(out)
}

fn describe_mismatch(claimed: &[Entry], found: &[Entry]) -> String {
    if claimed.len() != found.len() {
        return format!(
            "the manifest lists {} entries but the bundle holds {}",
            claimed.len(),
            found.len()
        );
    }
    for (c, f) in claimed.iter().zip(found) {
        if c.name != f.name || c.kind != f.kind {
            return format!("entry '{}' is not where the manifest says", f.name);
        }
        if c.size != f.size || c.sha256 != f.sha256 {
            return format!("entry '{}' does not match its size and SHA-256 in the manifest", f.name);
        }
    }
    "the entries do not match the manifest".into()
}
