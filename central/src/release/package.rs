//! Where a release is written: one age-encrypted tar (optionally zstd-compressed inside the
//! encryption), or a plain folder. Either way every file goes through here once, so each gets a
//! line in the release's `SHA256SUMS`, tar headers carry nothing of the steward's machine, and
//! nothing appears under its final name before the whole release is complete and synced.

use pseal::atomic::{self, parent_of, Existing};
use pseal::bundle::writer::normalized_header;
use pseal::keys::StewardRecipient;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Name of the checksum file at the root of every release (`sha256sum -c SHA256SUMS`).
pub const CHECKSUMS_FILE: &str = "SHA256SUMS";

/// How the tar is compressed inside the encryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar: `age -d | tar -x`.
    None,
    /// zstd: `age -d | zstd -d | tar -x` (or `tar --zstd -x`).
    Zstd,
}

/// The byte stream under the tar: age, with or without zstd in between.
enum Chain {
    Plain(age::stream::StreamWriter<BufWriter<File>>),
    Zstd(pseal::bundle::writer::ZstdWriter<age::stream::StreamWriter<BufWriter<File>>>),
}

impl Write for Chain {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Chain::Plain(w) => w.write(buf),
            Chain::Zstd(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Chain::Plain(w) => w.flush(),
            Chain::Zstd(w) => w.flush(),
        }
    }
}

impl Chain {
    /// Ends the zstd frame (if any) and the age stream; gives back the file.
    fn finish(self) -> io::Result<File> {
        let age = match self {
            Chain::Plain(w) => w,
            Chain::Zstd(w) => pseal::bundle::Compressor::finish(w)?.0,
        };
        let mut buffered = age.finish()?;
        buffered.flush()?;
        buffered.into_inner().map_err(|e| e.into_error())
    }
}

enum Sink {
    Tar {
        builder: Box<tar::Builder<Chain>>,
        temp: tempfile::TempPath,
    },
    Folder {
        temp: PathBuf,
    },
}

/// A release being written.
pub struct Package {
    /// `None` once finished.
    sink: Option<Sink>,
    out: PathBuf,
    root: String,
    sums: BufWriter<File>,
    sums_path: PathBuf,
    files: u64,
    work: tempfile::TempDir,
}

/// What [`Package::finish`] wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// The package file or folder.
    pub out: PathBuf,
    /// Files in the release (`SHA256SUMS` included).
    pub files: u64,
    /// SHA-256 of the package file, or of `SHA256SUMS` for a folder (it pins every file).
    pub sha256: String,
}

/// Copies `reader` (exactly `size` bytes) into `out`, returning the SHA-256 of what was copied.
fn copy_hashed(reader: impl Read, size: u64, out: &mut dyn Write, what: &str) -> io::Result<String> {
    let mut hashing = Hashing {
        inner: reader.take(size),
        hasher: Sha256::new(),
    };
    let n = io::copy(&mut hashing, out)?;
    if n != size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{what} changed while it was released ({n} of {size} bytes read)"),
        ));
    }
    Ok(hex::encode(hashing.hasher.finalize()))
}

struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

impl Package {
    /// A tar at `out` (which must not exist), encrypted to `to`, whose entries all lie under
    /// `root/`.
    pub fn tar(out: &Path, to: &StewardRecipient, compression: Compression, root: &str) -> io::Result<Package> {
        if out.exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the release file already exists; choose a new name",
            ));
        }
        let dir = parent_of(out);
        let temp = atomic::temp_in(&dir, ".pseal-release-")?;
        let (file, temp) = temp.into_parts();
        let recipient = to.age_recipient();
        let enc = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .map_err(|e| io::Error::other(format!("cannot encrypt to the researcher: {e}")))?;
        let stream = enc.wrap_output(BufWriter::with_capacity(1 << 20, file))?;
        let chain = match compression {
            Compression::None => Chain::Plain(stream),
            Compression::Zstd => Chain::Zstd(pseal::bundle::Compressor::new()?.writer(stream)),
        };
        let sink = Sink::Tar {
            builder: Box::new(tar::Builder::new(chain)),
            temp,
        };
        Package::with_sink(sink, out, &dir, root)
    }

    /// A plain folder at `out` (which must not exist); files lie under `out/root/`.
    pub fn folder(out: &Path, root: &str) -> io::Result<Package> {
        if out.exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the release folder already exists; choose a new one",
            ));
        }
        let dir = parent_of(out);
        let temp = tempfile::Builder::new()
            .prefix(".pseal-release-")
            .tempdir_in(&dir)?
            .keep();
        Package::with_sink(Sink::Folder { temp }, out, &dir, root)
    }

    fn with_sink(sink: Sink, out: &Path, dir: &Path, root: &str) -> io::Result<Package> {
        let work = tempfile::Builder::new()
            .prefix(".pseal-release-work-")
            .tempdir_in(dir)?;
        let sums_path = work.path().join("sums");
        let sums = BufWriter::new(File::create(&sums_path)?);
        Ok(Package {
            sink: Some(sink),
            out: out.to_path_buf(),
            root: root.to_string(),
            sums,
            sums_path,
            files: 0,
            work,
        })
    }

    /// Scratch space for this release (same disk as the output; removed at the end).
    pub fn work_dir(&self) -> &Path {
        self.work.path()
    }

    /// Adds the file `src` as `rel` (relative to the release root, `/`-separated).
    pub fn add_path(&mut self, rel: &str, src: &Path) -> io::Result<()> {
        let file = File::open(src)?;
        let size = file.metadata()?.len();
        self.add_reader(rel, file, size)
    }

    /// Adds `bytes` as `rel`.
    pub fn add_bytes(&mut self, rel: &str, bytes: &[u8]) -> io::Result<()> {
        self.add_reader(rel, bytes, bytes.len() as u64)
    }

    fn add_reader(&mut self, rel: &str, reader: impl Read, size: u64) -> io::Result<()> {
        let name = format!("{}/{rel}", self.root);
        let sha = match self.sink.as_mut() {
            None => return Err(io::Error::other("the release is already finished")),
            Some(Sink::Tar { builder, .. }) => {
                let out = builder.get_mut();
                out.write_all(normalized_header(&name, size)?.as_bytes())?;
                let sha = copy_hashed(reader, size, out, rel)?;
                // tar pads every entry to 512-byte blocks.
                let pad = (512 - (size % 512)) % 512;
                out.write_all(&[0u8; 512][..pad as usize])?;
                sha
            }
            Some(Sink::Folder { temp }) => {
                let dest = temp.join(&name);
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let mut f = BufWriter::with_capacity(1 << 20, File::create(&dest)?);
                let sha = copy_hashed(reader, size, &mut f, rel)?;
                f.flush()?;
                sha
            }
        };
        writeln!(self.sums, "{sha}  {rel}")?;
        self.files += 1;
        Ok(())
    }

    /// Adds `SHA256SUMS` over every file added, then closes the tar (and the encryption) or the
    /// folder, makes it durable and moves it to its final name.
    pub fn finish(mut self) -> io::Result<Written> {
        self.sums.flush()?;
        let sums_path = self.sums_path.clone();
        self.add_path(CHECKSUMS_FILE, &sums_path)?;
        let files = self.files;
        let dir = parent_of(&self.out);
        let sha256 = match self.sink.take() {
            None => return Err(io::Error::other("the release is already finished")),
            Some(Sink::Tar { builder, temp }) => {
                let file = builder.into_inner()?.finish()?;
                let temp = tempfile::NamedTempFile::from_parts(file, temp);
                atomic::commit(temp, &self.out, Existing::Keep)?;
                let mut hasher = Sha256::new();
                io::copy(&mut File::open(&self.out)?, &mut hasher)?;
                hex::encode(hasher.finalize())
            }
            Some(Sink::Folder { temp }) => {
                // A folder, not a file: every file in it is flushed, then the folder renamed
                // into place and its parent flushed.
                sync_tree(&temp)?;
                if let Err(e) = std::fs::rename(&temp, &self.out) {
                    let _ = std::fs::remove_dir_all(&temp);
                    return Err(e);
                }
                atomic::sync_dir(&dir)?;
                let mut hasher = Sha256::new();
                io::copy(
                    &mut File::open(self.out.join(&self.root).join(CHECKSUMS_FILE))?,
                    &mut hasher,
                )?;
                hex::encode(hasher.finalize())
            }
        };
        Ok(Written {
            out: self.out.clone(),
            files,
            sha256,
        })
    }
}

impl Drop for Package {
    fn drop(&mut self) {
        // A release that failed half-way leaves nothing behind (the tar's temporary file removes
        // itself; the folder is ours to remove).
        if let Some(Sink::Folder { temp }) = &self.sink {
            let _ = std::fs::remove_dir_all(temp);
        }
    }
}

/// Makes every file under `dir` durable (one `syncfs` on Linux).
#[cfg(target_os = "linux")]
fn sync_tree(dir: &Path) -> io::Result<()> {
    rustix::fs::syncfs(File::open(dir)?).map_err(io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn sync_tree(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            sync_tree(&entry.path())?;
        } else {
            File::open(entry.path())?.sync_all()?;
        }
    }
    atomic::sync_dir(dir)
}
