//! Atomic, durable file writes: the one place that knows the order a crash-safe write needs.
//!
//! A file is written under a temporary name in the same file system as its final name, flushed to
//! disk, renamed into place, and then the folder that holds it is flushed, so that after a crash
//! the final name shows either the old content, or the whole new content — and once the call
//! returns, the new content even if the power goes the next second (without the folder flush the
//! rename itself may be lost, and a report the operator was told was written with it).
//!
//! Every single-file write of pseal and pseal-central goes through here (export and review
//! reports, bundles, the archive's `index.csv`, encrypted releases). Errors are plain
//! [`io::Error`]s; callers attach the path's role ([`crate::role`]), and must not print the
//! error's own text when it may name the temporary file.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// What to do when the final name already exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// Replace it (reports, the archive index).
    Replace,
    /// Refuse with [`io::ErrorKind::AlreadyExists`] and leave it untouched (bundles, releases).
    Keep,
}

/// The two flushes a durable write needs. [`Disk`] is the real one; tests put a recorder in its
/// place to see that the folder is flushed after the rename.
pub trait Flush {
    /// Makes a file's content durable.
    fn file(&self, file: &File) -> io::Result<()>;
    /// Makes the entries of a folder (a rename into it) durable.
    fn folder(&self, dir: &Path) -> io::Result<()>;
}

/// Flushes to the disk (`fsync`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Disk;

impl Flush for Disk {
    fn file(&self, file: &File) -> io::Result<()> {
        file.sync_all()
    }

    fn folder(&self, dir: &Path) -> io::Result<()> {
        sync_dir(dir)
    }
}

/// Makes the entries of the folder `dir` durable (a rename or a new file in it). On systems where
/// a folder cannot be opened as a file (Windows), renames are durable by themselves and this does
/// nothing.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The folder holding `path` (`.` for a bare file name).
pub fn parent_of(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// A new temporary file in `dir` (which must be on the file system of the final name), named
/// `<prefix>…`, to be filled and then passed to [`commit`].
pub fn temp_in(dir: &Path, prefix: &str) -> io::Result<NamedTempFile> {
    tempfile::Builder::new().prefix(prefix).tempfile_in(dir)
}

/// Writes `path` atomically and durably: `fill` writes the content into a temporary file beside
/// it (named `<prefix>…`), which is then flushed, renamed to `path` (replacing what is there) and
/// the folder flushed.
pub fn write_atomically(path: &Path, prefix: &str, fill: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    write_atomically_via(&parent_of(path), path, prefix, fill)
}

/// As [`write_atomically`], with the temporary file in `staging` (a folder on the same file system
/// as `path`, such as the archive's staging folder, so that an interrupted write leaves its
/// temporary file where the next run cleans up).
pub fn write_atomically_via(
    staging: &Path,
    path: &Path,
    prefix: &str,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let mut temp = temp_in(staging, prefix)?;
    fill(temp.as_file_mut())?;
    temp.as_file_mut().flush()?;
    commit(temp, path, Existing::Replace)
}

/// Finishes an atomic write of a filled temporary file: flushes it, renames it to `path` (see
/// [`Existing`]) and flushes the folder of `path`. On failure the temporary file is removed.
pub fn commit(temp: NamedTempFile, path: &Path, existing: Existing) -> io::Result<()> {
    commit_with(&Disk, temp, path, existing)
}

/// [`commit`] with the flushes done by `flush`.
pub fn commit_with(flush: &impl Flush, temp: NamedTempFile, path: &Path, existing: Existing) -> io::Result<()> {
    flush.file(temp.as_file())?;
    match existing {
        Existing::Replace => temp.persist(path),
        Existing::Keep => temp.persist_noclobber(path),
    }
    .map_err(|e| e.error)?;
    flush.folder(&parent_of(path))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]
    use super::*;
    use std::cell::RefCell;

    /// Records each flush, and whether the final file existed when its folder was flushed.
    struct Recorder<'a> {
        path: &'a Path,
        log: RefCell<Vec<String>>,
    }

    impl Flush for Recorder<'_> {
        fn file(&self, file: &File) -> io::Result<()> {
            file.sync_all()?;
            self.log.borrow_mut().push("file".into());
            Ok(())
        }

        fn folder(&self, dir: &Path) -> io::Result<()> {
            sync_dir(dir)?;
            let renamed = self.path.exists();
            self.log
                .borrow_mut()
                .push(format!("folder {} renamed={renamed}", dir.display()));
            Ok(())
        }
    }

    #[test]
    fn the_file_is_flushed_then_renamed_then_its_folder_flushed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("export-report.json");
        let rec = Recorder {
            path: &path,
            log: RefCell::new(Vec::new()),
        };
        let mut temp = temp_in(dir.path(), ".pseal-test-").expect("temp file");
        temp.write_all(b"{}\n").expect("write");
        commit_with(&rec, temp, &path, Existing::Replace).expect("commit");
        assert_eq!(
            rec.log.into_inner(),
            vec![
                "file".to_string(),
                format!("folder {} renamed=true", dir.path().display())
            ]
        );
        assert_eq!(std::fs::read(&path).expect("read"), b"{}\n");
    }

    #[test]
    fn write_atomically_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("index.csv");
        std::fs::write(&path, b"old").expect("write");
        write_atomically(&path, ".pseal-test-", |f| f.write_all(b"new")).expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("index.csv")]);
    }

    #[test]
    fn a_failed_fill_leaves_the_old_file_and_no_temporary_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("report.json");
        std::fs::write(&path, b"old").expect("write");
        let err = write_atomically(&path, ".pseal-test-", |f| {
            f.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        })
        .expect_err("fill fails");
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(std::fs::read(&path).expect("read"), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
    }

    #[test]
    fn keep_refuses_an_existing_file_and_leaves_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("site-0123.pseal");
        std::fs::write(&path, b"first").expect("write");
        let mut temp = temp_in(dir.path(), ".pseal-test-").expect("temp file");
        temp.write_all(b"second").expect("write");
        let err = commit(temp, &path, Existing::Keep).expect_err("exists");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).expect("read"), b"first");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn flushing_a_folder_that_is_not_there_fails() {
        // The real folder flush opens the folder: it must not silently succeed on a bad path.
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(sync_dir(&dir.path().join("missing")).is_err());
        assert!(sync_dir(dir.path()).is_ok());
    }

    #[test]
    fn a_bare_file_name_lives_in_the_current_folder() {
        assert_eq!(parent_of(Path::new("report.json")), PathBuf::from("."));
        assert_eq!(parent_of(Path::new("out/report.json")), PathBuf::from("out"));
    }
}
