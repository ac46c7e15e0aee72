//! Errors about files and folders, worded for the person at the keyboard: each names the role the
//! path plays (input folder, outbox, archive folder, report file, …) and says what is wrong in
//! plain words, never a temporary file's name.
//!
//! ```
//! use pseal::role::{PathError, Role};
//! use std::io;
//!
//! let e = PathError::new(Role::ReportFile, "outbox/export-report.json", io::Error::from(io::ErrorKind::ReadOnlyFilesystem));
//! assert_eq!(e.to_string(), "report file outbox/export-report.json: the file system is read-only");
//! ```

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What a path is to the command that uses it; named in every error about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// `pseal export --input`, `pseal review --input`.
    InputFolder,
    /// `pseal export --out`: where bundles and the export report go.
    Outbox,
    /// `pseal review --out`.
    ReviewFolder,
    /// `export-report.json`, `review-report.*`.
    ReportFile,
    /// `pseal-central … --archive`.
    ArchiveFolder,
    /// `pseal-central … --store`.
    StoreFolder,
    /// `pseal-central release --out`.
    ReleaseFile,
    /// `pseal-central release --out-dir`.
    ReleaseFolder,
    /// `pseal-central release --pseudonyms`.
    PseudonymsFile,
    /// A bundle given to `import` or `inspect`.
    Bundle,
    /// `pseal … --config`.
    ConfigFile,
}

impl Role {
    /// The words used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Role::InputFolder => "input folder",
            Role::Outbox => "outbox",
            Role::ReviewFolder => "review folder",
            Role::ReportFile => "report file",
            Role::ArchiveFolder => "archive folder",
            Role::StoreFolder => "store folder",
            Role::ReleaseFile => "release file",
            Role::ReleaseFolder => "release folder",
            Role::PseudonymsFile => "pseudonyms file",
            Role::Bundle => "bundle",
            Role::ConfigFile => "configuration file",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An I/O failure on a path with a role: `"{role} {path}: {what is wrong}"`.
#[derive(Debug, thiserror::Error)]
#[error("{role} {}: {}", path.display(), detail.clone().unwrap_or_else(|| describe(io)))]
pub struct PathError {
    /// What the path is.
    pub role: Role,
    /// The path as the user gave it (or the file inside it the command writes).
    pub path: PathBuf,
    /// The underlying error (its text may name a temporary file; the message never does, and it
    /// is not offered as the error's source, so that no caller prints it after the message).
    pub io: io::Error,
    /// Words that say more than the error's kind (e.g. which folder is missing).
    pub detail: Option<String>,
}

impl PathError {
    /// An error on `path` in `role`.
    pub fn new(role: Role, path: impl AsRef<Path>, io: io::Error) -> PathError {
        PathError {
            role,
            path: path.as_ref().to_path_buf(),
            io,
            detail: None,
        }
    }

    /// An error on `path` in `role` explained by `detail` instead of the error's kind.
    pub fn explained(role: Role, path: impl AsRef<Path>, io: io::Error, detail: impl Into<String>) -> PathError {
        PathError {
            detail: Some(detail.into()),
            ..PathError::new(role, path, io)
        }
    }

    /// A closure for `map_err`.
    pub fn at(role: Role, path: impl AsRef<Path>) -> impl Fn(io::Error) -> PathError {
        let path = path.as_ref().to_path_buf();
        move |io| PathError::new(role, &path, io)
    }
}

/// What is wrong, in plain words: the kind of failure for the common cases, else the operating
/// system's own message. Never a path: tempfile's errors add `at path "…/.pseal-…"`, which names a
/// file the user never asked for, so only the innermost operating-system error is used.
pub fn describe(e: &io::Error) -> String {
    use io::ErrorKind as K;
    let plain = match e.kind() {
        K::NotFound => "does not exist",
        K::PermissionDenied => "permission denied",
        K::AlreadyExists => "already exists",
        K::NotADirectory => "is not a folder (a file of that name exists)",
        K::IsADirectory => "is a folder, not a file",
        K::ReadOnlyFilesystem => "the file system is read-only",
        K::StorageFull => "the disk is full",
        K::QuotaExceeded => "the disk quota is exceeded",
        K::DirectoryNotEmpty => "the folder is not empty",
        K::InvalidFilename => "the name is too long or not allowed here",
        _ => return innermost(e),
    };
    plain.to_string()
}

/// The innermost error's text, so that wrappers that add a path (tempfile's) are left out.
fn innermost(e: &io::Error) -> String {
    let mut current: &(dyn std::error::Error + 'static) = match e.get_ref() {
        Some(inner) => inner,
        None => return e.to_string(),
    };
    while let Some(next) = current.source() {
        current = next;
    }
    if let Some(io) = current.downcast_ref::<io::Error>() {
        if io.get_ref().is_none() {
            return io.to_string();
        }
    }
    let text = current.to_string();
    match text.find(" at path ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Creates the folder `path` (and its parents) for `role`; a file in its place is said to be one.
pub fn ensure_dir(role: Role, path: &Path) -> Result<(), PathError> {
    match std::fs::create_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if path.exists() && !path.is_dir() => {
            Err(PathError::explained(role, path, e, "is a file, not a folder"))
        }
        Err(e) => Err(PathError::new(role, path, e)),
    }
}

/// Whether a folder exists and holds anything.
pub fn is_non_empty_dir(path: &Path) -> io::Result<bool> {
    match std::fs::read_dir(path) {
        Ok(mut entries) => Ok(entries.next().is_some()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_temporary_file_name_never_reaches_the_message() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nodir");
        let e = tempfile::Builder::new()
            .prefix(".pseal-release-")
            .tempfile_in(&missing)
            .unwrap_err();
        assert!(
            e.to_string().contains(".pseal-release-"),
            "tempfile names its file: {e}"
        );
        let message = PathError::new(Role::ReleaseFile, missing.join("r.tar.zst.age"), e).to_string();
        assert!(!message.contains(".pseal-"), "{message}");
        assert!(message.starts_with("release file "), "{message}");
        assert!(message.ends_with(": does not exist"), "{message}");
    }

    #[test]
    fn a_file_where_a_folder_is_needed_is_said_so() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("archfile");
        std::fs::write(&file, b"x").unwrap();
        let e = std::fs::create_dir_all(file.join("sub")).unwrap_err();
        let message = PathError::new(Role::ArchiveFolder, &file, e).to_string();
        assert!(message.starts_with("archive folder "), "{message}");
        assert!(message.contains("is not a folder"), "{message}");
    }
}
