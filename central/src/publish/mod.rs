//! Publishing a release into the network's database, a DICOMweb server (`pseal-central publish`).
//!
//! The release (`pseal-central release`: age → tar, or age → zstd → tar with `--compress zstd`) is read as a stream and its instances
//! go straight into STOW-RS requests, several in flight: no plaintext copy touches the disk. The
//! run is idempotent and resumable because the server is asked (QIDO-RS), study by study, which
//! instances it already holds, and only the others are sent; after sending, the server is asked
//! again (each series' instance count, and the instances themselves where a count is short) to
//! confirm that it holds what it acknowledged (Orthanc 1.10 with DICOMweb 1.7 reports an instance
//! its own filter discarded as stored). [`verify`] compares the server with the release's
//! `index.csv`.
//!
//! - [`dicomweb`]: the HTTP client (QIDO-RS, STOW-RS, authentication, TLS);
//! - [`stow`]: the multipart/related batch and the server's per-instance answer;
//! - [`release`]: the release stream and its `index.csv`;
//! - [`run`]: the pipeline (plan per study, batches, workers, confirmation);
//! - [`verify`]: the comparison with `index.csv`.

pub mod dicomweb;
pub mod release;
pub mod run;
pub mod stow;
pub mod verify;

pub use dicomweb::{Client, CredentialSources, Credentials, HeldInstance, Tls};
pub use run::{publish, Options};
pub use verify::VerifyReport;

use pseal::progress::Progress;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use thiserror::Error;

/// What a server must answer; [`Client`] is the real one, tests bring their own.
pub trait Server: Sync {
    /// Checks, before anything is read or sent, that the service answers and accepts the
    /// credentials.
    fn probe(&self) -> Result<(), ServerError> {
        Ok(())
    }
    /// Every instance of `study` the server holds.
    fn study_instances(&self, study: &str) -> Result<Vec<HeldInstance>, ServerError>;
    /// Sends one batch with STOW-RS.
    fn store(&self, batch: &stow::Batch) -> Result<stow::StowResponse, ServerError>;
    /// How many instances the server holds in each series of `study`, when it can say so more
    /// cheaply than by listing them (`None`: ask [`Server::study_instances`] instead).
    fn study_series_counts(&self, _study: &str) -> Result<Option<HashMap<String, u64>>, ServerError> {
        Ok(None)
    }
}

impl Server for Client {
    fn probe(&self) -> Result<(), ServerError> {
        Client::probe(self)
    }
    fn study_instances(&self, study: &str) -> Result<Vec<HeldInstance>, ServerError> {
        Client::study_instances(self, study)
    }
    fn store(&self, batch: &stow::Batch) -> Result<stow::StowResponse, ServerError> {
        Client::store(self, batch)
    }
    fn study_series_counts(&self, study: &str) -> Result<Option<HashMap<String, u64>>, ServerError> {
        Client::study_series_counts(self, study)
    }
}

/// Receives what a publish run finds, as it finds it (on the calling thread).
pub trait Observer: Progress {
    /// An instance was not stored.
    fn failed(&self, failure: &Failure);
    /// The server stored an instance with a warning (it may have changed attributes).
    fn warned(&self, warning: &Failure);
}

impl Observer for pseal::progress::Silent {
    fn failed(&self, _failure: &Failure) {}
    fn warned(&self, _warning: &Failure) {}
}

/// One instance the server did not store (or stored with a warning), and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Its path inside the release (pseudonym and archive UIDs only).
    pub path: String,
    /// Why, in words, with the server's reason code when it gave one.
    pub reason: String,
}

/// What a publish run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Instances sent and confirmed held by the server.
    pub sent: u64,
    /// Instances the server held before this run.
    pub already_present: u64,
    /// Instances not stored.
    pub failed: u64,
    /// Instances stored with a warning (counted in `sent` too).
    pub warnings: u64,
    /// Studies in the release.
    pub studies: u64,
    /// Every failure, in the order found.
    pub failures: Vec<Failure>,
    /// The comparison with `index.csv` (with `--verify`).
    pub verify: Option<VerifyReport>,
}

/// Why a publish run could not go on.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The release could not be opened or read.
    #[error("{path}: {reason}")]
    Release {
        /// The release file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The release is encrypted to someone else.
    #[error(
        "{path} is not encrypted to the identity {identity} (its recipient {recipient}); use the key the release was made for (pseal-central release --to)"
    )]
    NotForThisKey {
        /// The release file.
        path: PathBuf,
        /// The identity file.
        identity: PathBuf,
        /// The identity's recipient.
        recipient: String,
    },
    /// `index.csv` is missing or unreadable (needed by `--verify`).
    #[error("{path}: {reason}")]
    Index {
        /// The release file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The server could not be used at all.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The server or the release failed part-way; what was done before stays done.
    #[error(
        "{reason} — stopped after {sent} sent, {already_present} already present and {failed} failed; run the same command again to send the rest"
    )]
    Stopped {
        /// What went wrong.
        reason: String,
        /// Instances sent and confirmed before stopping.
        sent: u64,
        /// Instances found already present.
        already_present: u64,
        /// Instances that failed.
        failed: u64,
    },
}

/// A DICOMweb server problem that is not about one instance.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServerError {
    /// `--dicomweb` is not a usable URL.
    #[error("--dicomweb {url}: {reason}")]
    BadUrl {
        /// The URL (or a placeholder when it held credentials).
        url: String,
        /// Why.
        reason: String,
    },
    /// The CA file could not be used.
    #[error("--ca-file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The system has no root certificates and no CA file was given.
    #[error("no root certificates found on this system ({reason}); install ca-certificates or give --ca-file")]
    NoRootCertificates {
        /// What the loader reported.
        reason: String,
    },
    /// Nothing answers QIDO-RS at the URL.
    #[error(
        "no DICOMweb service answers at {url} (HTTP 404 for a study query); check --dicomweb (Orthanc's is http://HOST:8042/dicom-web)"
    )]
    NoService {
        /// The base URL.
        url: String,
    },
    /// The server refused the credentials (401) or the action (403).
    #[error("{}", unauthorized_text(.url, *.status, .user.as_deref(), *.sent_credentials))]
    Unauthorized {
        /// The request URL.
        url: String,
        /// 401 or 403.
        status: u16,
        /// The basic-authentication user, if any.
        user: Option<String>,
        /// Whether credentials were sent at all.
        sent_credentials: bool,
    },
    /// Any other unexpected status.
    #[error("{url}: HTTP {status}{}{}", if body.is_empty() { "" } else { ": " }, body)]
    Status {
        /// The request URL.
        url: String,
        /// The status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The server answers with a redirect.
    #[error("{url}: the server redirects (HTTP {status}) to {to}; give that address to --dicomweb")]
    Redirected {
        /// The request URL.
        url: String,
        /// The status.
        status: u16,
        /// The Location header.
        to: String,
    },
    /// The connection failed (refused, reset, TLS, timeout).
    #[error("{url}: {reason}")]
    Transport {
        /// The request URL.
        url: String,
        /// Why.
        reason: String,
        /// Whether trying again may help.
        transient: bool,
    },
    /// The answer could not be read.
    #[error("{url}: the answer is not DICOMweb: {reason}")]
    BadResponse {
        /// The request URL.
        url: String,
        /// Why.
        reason: String,
    },
}

impl ServerError {
    /// True when the same request may succeed a moment later.
    pub fn is_transient(&self) -> bool {
        match self {
            ServerError::Transport { transient, .. } => *transient,
            ServerError::Status { status, .. } => *status == 429 || *status == 502 || *status == 503 || *status == 504,
            _ => false,
        }
    }
}

fn unauthorized_text(url: &str, status: u16, user: Option<&str>, sent: bool) -> String {
    match (status, user, sent) {
        (403, _, _) => format!(
            "{url}: HTTP 403 Forbidden: the server refuses these credentials for this request: a wrong or expired token, or an account without permission to query and store (ask the database's administrator)"
        ),
        (_, Some(user), _) => format!(
            "{url}: HTTP {status} Unauthorized: the server refused user {user} with this password; check --user and the password ({} or --password-file)",
            dicomweb::PASSWORD_ENV
        ),
        (_, None, true) => format!(
            "{url}: HTTP {status} Unauthorized: the server refused the bearer token; it may have expired (cloud tokens last about an hour): get a new one into {} or --token-file",
            dicomweb::TOKEN_ENV
        ),
        (_, None, false) => format!(
            "{url}: HTTP {status} Unauthorized: the server asks for credentials; give --user with {} (or --password-file), or a bearer token ({} or --token-file)",
            dicomweb::PASSWORD_ENV,
            dicomweb::TOKEN_ENV
        ),
    }
}
