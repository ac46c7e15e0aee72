//! What can be said about a bundle without the steward's key: it is an age file, how many
//! recipients it is sealed to and of which kind, and its size. Nothing inside is readable.

use serde::Serialize;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The outward facts of a bundle.
#[derive(Debug, Serialize)]
pub struct BundleInfo {
    /// The file.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// The age format line.
    pub format: String,
    /// Recipient stanzas by type, e.g. `X25519` → 2.
    pub recipients: Vec<(String, usize)>,
}

/// Why a file is not a readable bundle.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum InspectError {
    /// I/O error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Not an age file.
    #[error("{path} is not a pseal bundle: {reason}")]
    NotAge {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Reads the age header of `path`.
pub fn inspect(path: &Path) -> Result<BundleInfo, InspectError> {
    let io = |source| InspectError::Io {
        path: path.to_path_buf(),
        source,
    };
    let not_age = |reason: &str| InspectError::NotAge {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let mut reader = BufReader::new(file).take(64 * 1024);
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).map_err(io)?;
    let format = String::from_utf8_lossy(&line).trim_end().to_string();
    if format != "age-encryption.org/v1" {
        return Err(not_age("no age header (age-encryption.org/v1)"));
    }
    let mut recipients: Vec<(String, usize)> = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(io)? == 0 {
            return Err(not_age("the age header is truncated"));
        }
        let text = String::from_utf8_lossy(&line);
        if text.starts_with("---") {
            break;
        }
        if let Some(rest) = text.strip_prefix("-> ") {
            let kind = rest.split_whitespace().next().unwrap_or("?").to_string();
            // age adds a random "…-grease" stanza to keep parsers honest; it is no recipient.
            if kind.ends_with("-grease") {
                continue;
            }
            match recipients.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, n)) => *n += 1,
                None => recipients.push((kind, 1)),
            }
        }
    }
    Ok(BundleInfo {
        path: path.to_path_buf(),
        size,
        format,
        recipients,
    })
}

use std::io::Read as _;

impl fmt::Display for BundleInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: age-encrypted pseal bundle ({}), {} bytes",
            self.path.display(),
            self.format,
            self.size
        )?;
        for (kind, n) in &self.recipients {
            let noun = if *n == 1 { "recipient" } else { "recipients" };
            writeln!(f, "  sealed to {n} {kind} {noun}")?;
        }
        write!(
            f,
            "  contents (site, manifest, instances, identity) are readable only by the steward or a backup identity"
        )
    }
}
