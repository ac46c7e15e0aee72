//! Streams a bundle to disk: tar → zstd → age, under a temporary name until it is complete.
//!
//! Nothing is held in memory but the entry in hand and the entry list. The file only appears under
//! its final `.pseal` name after the last byte is written and synced, so a crash, a kill or a full
//! disk never leaves a partial bundle that looks finished.

use super::manifest::{Entry, EntryKind, Manifest, ProfileInfo, FORMAT_VERSION};
use super::{instance_entry_name, AUTH_ENTRY, EXTENSION, IDENTITY_ENTRY, MANIFEST_ENTRY};
use crate::atomic::Existing;
use crate::auth::{self, AuthError};
use crate::keys::{SiteSecretKey, StewardRecipient};
use sha2::Digest;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek};
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;
use thiserror::Error;

/// zstd level used for bundles: fast, and within a few percent of higher levels on MR pixel data.
pub const ZSTD_LEVEL: i32 = 3;

/// Bytes of input per multi-threaded zstd job. At level 3 zstd's own choice is 8 MiB: a
/// compressor then holds about 60 MiB of buffers, and a bundle's last job runs alone on one core
/// for about 80 ms. With 2 MiB jobs it holds about 20 MiB, the output is the same size (measured
/// on the bench cohort: 52.26 MB either way for one patient's 103 MB) and the CPU time the same.
pub const ZSTD_JOB_BYTES: u32 = 2 << 20;

/// The zstd compressor of a bundle or release — level [`ZSTD_LEVEL`], one worker per core, jobs
/// of [`ZSTD_JOB_BYTES`] — kept from one bundle to the next.
///
/// Its worker threads and buffers are made once instead of once per bundle: made and freed per
/// bundle, they left the allocator's heap fragmented, and an export's peak memory grew with the
/// number of bundles (61 MiB at 10 bundles, 95 MiB at 27).
pub struct Compressor(zstd::stream::raw::Encoder<'static>);

/// A zstd frame being written into `W` by a [`Compressor`].
pub type ZstdWriter<W> = zstd::stream::zio::Writer<W, zstd::stream::raw::Encoder<'static>>;

impl Compressor {
    /// A compressor with the bundle settings.
    pub fn new() -> io::Result<Compressor> {
        use zstd::zstd_safe::CParameter;
        let mut raw = zstd::stream::raw::Encoder::new(ZSTD_LEVEL)?;
        let workers = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1);
        if workers > 1 {
            raw.set_parameter(CParameter::NbWorkers(workers))?;
            raw.set_parameter(CParameter::JobSize(ZSTD_JOB_BYTES))?;
        }
        Ok(Compressor(raw))
    }

    /// Starts a zstd frame written into `inner`.
    pub fn writer<W: io::Write>(self, inner: W) -> ZstdWriter<W> {
        zstd::stream::zio::Writer::new(inner, self.0)
    }

    /// Ends the frame and gives back `inner` and the compressor, ready for the next frame.
    pub fn finish<W: io::Write>(mut frame: ZstdWriter<W>) -> io::Result<(W, Compressor)> {
        use zstd::stream::raw::Operation;
        frame.finish()?;
        let (inner, mut raw) = frame.into_inner();
        raw.reinit()?;
        Ok((inner, Compressor(raw)))
    }
}

type Sink = tar::Builder<ZstdWriter<age::stream::StreamWriter<BufWriter<NamedTempFile>>>>;

/// Why a bundle could not be written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum WriteError {
    /// An I/O error while writing (a full disk shows up here).
    #[error("writing a bundle into the outbox {}: {}", dir.display(), crate::role::describe(source))]
    Io {
        /// The output folder.
        dir: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Encryption could not be set up (e.g. no recipients).
    #[error("cannot encrypt the bundle: {0}")]
    Encrypt(String),
    /// The site tag could not be made.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// Writes one bundle.
pub struct BundleWriter {
    dir: PathBuf,
    site: String,
    bundle_id: String,
    steward: StewardRecipient,
    sink: Sink,
    entries: Vec<Entry>,
}

/// A normalized tar header: nothing from the hospital, nothing that varies between runs
/// (mode 0644, uid/gid 0, mtime 0, no user or group names).
pub fn normalized_header(name: &str, size: u64) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(name)?;
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_username("")?;
    h.set_groupname("")?;
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    Ok(h)
}

impl BundleWriter {
    /// Starts a bundle in `dir` for `site`, sealed to every recipient (the first is the steward the
    /// site tag is addressed to).
    pub fn create(dir: &Path, site: &str, recipients: &[StewardRecipient]) -> Result<BundleWriter, WriteError> {
        let compressor = Compressor::new().map_err(|source| WriteError::Io {
            dir: dir.to_path_buf(),
            source,
        })?;
        Self::create_with(dir, site, recipients, compressor)
    }

    /// Like [`create`](Self::create), compressing with `compressor` (one given back by
    /// [`finish_keeping_compressor`](Self::finish_keeping_compressor)).
    pub fn create_with(
        dir: &Path,
        site: &str,
        recipients: &[StewardRecipient],
        compressor: Compressor,
    ) -> Result<BundleWriter, WriteError> {
        let io_err = |source| WriteError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        let steward = recipients
            .first()
            .cloned()
            .ok_or_else(|| WriteError::Encrypt("no steward recipient configured".into()))?;
        let temp = tempfile::Builder::new()
            .prefix(".pseal-partial-")
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(io_err)?;
        let ages: Vec<age::x25519::Recipient> = recipients.iter().map(StewardRecipient::age_recipient).collect();
        let encryptor = age::Encryptor::with_recipients(ages.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| WriteError::Encrypt(e.to_string()))?;
        let stream = encryptor
            .wrap_output(BufWriter::with_capacity(1 << 20, temp))
            .map_err(io_err)?;
        let zstd = compressor.writer(stream);
        let mut id = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
        Ok(BundleWriter {
            dir: dir.to_path_buf(),
            site: site.to_string(),
            bundle_id: hex::encode(id),
            steward,
            sink: tar::Builder::new(zstd),
            entries: Vec::new(),
        })
    }

    /// The random bundle ID (also the identity record's binding).
    pub fn bundle_id(&self) -> &str {
        &self.bundle_id
    }

    /// Number of instances added so far.
    pub fn instance_count(&self) -> u64 {
        self.entries.iter().filter(|e| e.kind == EntryKind::Instance).count() as u64
    }

    fn io(&self, source: io::Error) -> WriteError {
        WriteError::Io {
            dir: self.dir.clone(),
            source,
        }
    }

    fn append(&mut self, name: &str, kind: EntryKind, bytes: &[u8]) -> Result<(), WriteError> {
        let h = normalized_header(name, bytes.len() as u64).map_err(|e| self.io(e))?;
        self.sink.append(&h, bytes).map_err(|e| self.io(e))?;
        self.entries.push(Entry {
            name: name.to_string(),
            kind,
            size: bytes.len() as u64,
            sha256: super::sha256(bytes).to_vec(),
        });
        Ok(())
    }

    /// Adds one de-identified instance (a whole Part 10 file) and returns its entry name.
    pub fn add_instance(&mut self, dicom: &[u8]) -> Result<String, WriteError> {
        let name = instance_entry_name(self.instance_count() + 1);
        self.append(&name, EntryKind::Instance, dicom)?;
        Ok(name)
    }

    /// Adds one de-identified instance of `size` bytes streamed from `data` (hashed on the way,
    /// never held whole) and returns its entry name. Fails when `data` does not yield exactly
    /// `size` bytes (the bundle is then unusable and must be dropped).
    pub fn add_instance_from(&mut self, size: u64, data: &mut dyn Read) -> Result<String, WriteError> {
        let name = instance_entry_name(self.instance_count() + 1);
        let h = normalized_header(&name, size).map_err(|e| self.io(e))?;
        let mut hashing = HashingReader::new(data);
        self.sink.append(&h, &mut hashing).map_err(|e| self.io(e))?;
        if hashing.count != size {
            return Err(self.io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "an instance changed size while it was written",
            )));
        }
        self.entries.push(Entry {
            name: name.clone(),
            kind: EntryKind::Instance,
            size,
            sha256: hashing.hasher.finalize().to_vec(),
        });
        Ok(name)
    }

    /// Adds the sealed identity record (streamed from a temporary file), the manifest and the site
    /// tag, then finishes every layer, syncs and moves the bundle to its final name.
    pub fn finish(self, identity: File, profile: ProfileInfo, site_key: &SiteSecretKey) -> Result<PathBuf, WriteError> {
        self.finish_keeping_compressor(identity, profile, site_key)
            .map(|(path, _)| path)
    }

    /// [`finish`](Self::finish), giving back the compressor for the next bundle.
    pub fn finish_keeping_compressor(
        mut self,
        mut identity: File,
        profile: ProfileInfo,
        site_key: &SiteSecretKey,
    ) -> Result<(PathBuf, Compressor), WriteError> {
        let size = identity.seek(io::SeekFrom::End(0)).map_err(|e| self.io(e))?;
        identity.rewind().map_err(|e| self.io(e))?;
        let h = normalized_header(IDENTITY_ENTRY, size).map_err(|e| self.io(e))?;
        let mut hashing = HashingReader::new(identity);
        self.sink.append(&h, &mut hashing).map_err(|e| self.io(e))?;
        if hashing.count != size {
            return Err(self.io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "identity record changed while writing",
            )));
        }
        self.entries.push(Entry {
            name: IDENTITY_ENTRY.into(),
            kind: EntryKind::Identity,
            size,
            sha256: hashing.hasher.finalize().to_vec(),
        });

        let manifest = Manifest {
            format: FORMAT_VERSION,
            bundle_id: self.bundle_id.clone(),
            site: self.site.clone(),
            site_key: site_key.public(),
            steward: self.steward.clone(),
            tool: crate::TOOL_VERSION.into(),
            profile,
            entries: std::mem::take(&mut self.entries),
        };
        let bytes = manifest.to_cbor();
        let digest = super::sha256(&bytes);
        let h = normalized_header(MANIFEST_ENTRY, bytes.len() as u64).map_err(|e| self.io(e))?;
        self.sink.append(&h, bytes.as_slice()).map_err(|e| self.io(e))?;
        let tag = auth::seal_tag(site_key, &self.steward, &digest)?;
        let mut tag_bytes = Vec::new();
        ciborium::into_writer(&tag, &mut tag_bytes).map_err(|e| WriteError::Encrypt(e.to_string()))?;
        let h = normalized_header(AUTH_ENTRY, tag_bytes.len() as u64).map_err(|e| self.io(e))?;
        self.sink.append(&h, tag_bytes.as_slice()).map_err(|e| self.io(e))?;

        let dir = self.dir.clone();
        let io_err = |source| WriteError::Io {
            dir: dir.clone(),
            source,
        };
        let zstd = self.sink.into_inner().map_err(io_err)?;
        let (stream, compressor) = Compressor::finish(zstd).map_err(io_err)?;
        let buffered = stream.finish().map_err(io_err)?;
        let temp = buffered.into_inner().map_err(|e| io_err(e.into_error()))?;
        let final_path = dir.join(format!(
            "{}-{}.{EXTENSION}",
            sanitize(&self.site),
            &self.bundle_id[..16]
        ));
        crate::atomic::commit(temp, &final_path, Existing::Keep).map_err(io_err)?;
        Ok((final_path, compressor))
    }
}

/// Keeps only characters safe in a file name; the site name is the hospital's own, not patient data.
fn sanitize(site: &str) -> String {
    site.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Hashes and counts what passes through.
pub(crate) struct HashingReader<R> {
    inner: R,
    pub(crate) hasher: sha2::Sha256,
    pub(crate) count: u64,
}

impl<R> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: sha2::Sha256::new(),
            count: 0,
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}
