//! The DICOMweb client: QIDO-RS (which instances of a study the server holds) and STOW-RS (store a
//! batch), over ureq with rustls, the system's root certificates plus an optional CA file, and
//! HTTP basic or bearer authentication whose secrets never come from the command line.

use super::stow::{Batch, StowResponse};
use super::ServerError;
use base64::Engine as _;
use dicom_dictionary_std::tags;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// Environment variable holding the HTTP basic password (with `--user`).
pub const PASSWORD_ENV: &str = "PSEAL_DICOMWEB_PASSWORD";
/// Environment variable holding a bearer token.
pub const TOKEN_ENV: &str = "PSEAL_DICOMWEB_TOKEN";

/// Instances per QIDO-RS page: small enough for every server's cap (Azure's is 200 at the study
/// level, Google's 5,000 for instances), large enough that a study of a few hundred slices is a
/// few requests.
const QIDO_PAGE: usize = 200;
/// Largest QIDO-RS or STOW-RS response read, so a misbehaving server cannot exhaust memory.
const MAX_RESPONSE: u64 = 64 << 20;
/// Tries per request when the server or the network fails transiently (429, 502–504, resets).
const TRIES: u32 = 4;

/// How the client proves who it is.
pub enum Credentials {
    /// No authentication (a server on a trusted network, or one behind a proxy that adds it).
    None,
    /// HTTP basic.
    Basic {
        /// The user name (not secret; it appears in messages).
        user: String,
        /// The password.
        password: Zeroizing<String>,
    },
    /// An OAuth 2 / OpenID Connect bearer token (the cloud services).
    Bearer(Zeroizing<String>),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::None => f.write_str("Credentials::None"),
            Credentials::Basic { user, .. } => write!(f, "Credentials::Basic({user}, <redacted>)"),
            Credentials::Bearer(_) => f.write_str("Credentials::Bearer(<redacted>)"),
        }
    }
}

/// Where the secrets may come from, as the command line gathered them. Secrets are never
/// command-line arguments (other users of the machine can read those in the process list): only
/// the environment or a file.
#[derive(Default)]
pub struct CredentialSources {
    /// `--user`.
    pub user: Option<String>,
    /// `--password-file`.
    pub password_file: Option<PathBuf>,
    /// The value of `PSEAL_DICOMWEB_PASSWORD`, if set.
    pub password_env: Option<Zeroizing<String>>,
    /// `--token-file`.
    pub token_file: Option<PathBuf>,
    /// The value of `PSEAL_DICOMWEB_TOKEN`, if set.
    pub token_env: Option<Zeroizing<String>>,
}

/// Why the credentials could not be put together.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// `--user` without a password.
    #[error("--user {0} needs a password: set {PASSWORD_ENV} or give --password-file FILE")]
    NoPassword(String),
    /// A password without `--user`.
    #[error("a password was given ({0}) but no --user; HTTP basic authentication needs both")]
    NoUser(&'static str),
    /// Both basic and bearer.
    #[error(
        "both a user and a bearer token were given; use either --user with a password or a token ({TOKEN_ENV} or --token-file)"
    )]
    Both,
    /// Both sources of the same secret.
    #[error("the {0} was given twice (environment and file); give it once")]
    Twice(&'static str),
    /// A secret file problem.
    #[error(transparent)]
    File(#[from] pseal::keys::KeyFileError),
    /// An empty secret.
    #[error("{0} is empty")]
    Empty(String),
}

impl CredentialSources {
    /// Puts the credentials together: basic when `--user` is given, bearer when a token is, none
    /// otherwise. Secret files must be owner-only, like key files.
    pub fn resolve(self) -> Result<Credentials, CredentialError> {
        let password = one_secret(
            self.password_env,
            self.password_file.as_deref(),
            PASSWORD_ENV,
            "password",
        )?;
        let token = one_secret(self.token_env, self.token_file.as_deref(), TOKEN_ENV, "bearer token")?;
        match (self.user, password, token) {
            (Some(_), _, Some(_)) => Err(CredentialError::Both),
            (Some(user), Some(password), None) => Ok(Credentials::Basic { user, password }),
            (Some(user), None, None) => Err(CredentialError::NoPassword(user)),
            (None, Some(_), _) => Err(CredentialError::NoUser(if self.password_file.is_some() {
                "--password-file"
            } else {
                PASSWORD_ENV
            })),
            (None, None, Some(token)) => Ok(Credentials::Bearer(token)),
            (None, None, None) => Ok(Credentials::None),
        }
    }
}

fn one_secret(
    env: Option<Zeroizing<String>>,
    file: Option<&Path>,
    env_name: &str,
    what: &'static str,
) -> Result<Option<Zeroizing<String>>, CredentialError> {
    match (env, file) {
        (Some(_), Some(_)) => Err(CredentialError::Twice(what)),
        (Some(v), None) if v.is_empty() => Err(CredentialError::Empty(env_name.to_string())),
        (Some(v), None) => Ok(Some(v)),
        (None, Some(path)) => {
            pseal::keys::check_private_permissions(path)?;
            let text =
                Zeroizing::new(
                    std::fs::read_to_string(path).map_err(|source| pseal::keys::KeyFileError::Io {
                        path: path.to_path_buf(),
                        source,
                    })?,
                );
            // One line; the newline an editor or `echo` adds is not part of the secret.
            let secret = Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_string());
            if secret.is_empty() {
                return Err(CredentialError::Empty(path.display().to_string()));
            }
            Ok(Some(secret))
        }
        (None, None) => Ok(None),
    }
}

/// The TLS trust: the system's roots, plus the certificates of an optional PEM file (a hospital's
/// or a test's own certificate authority).
#[derive(Debug, Default, Clone)]
pub struct Tls {
    /// `--ca-file`.
    pub ca_file: Option<PathBuf>,
}

/// One instance a server holds, as QIDO-RS lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HeldInstance {
    /// Series Instance UID (empty when the server leaves it out).
    pub series: String,
    /// SOP Instance UID.
    pub sop: String,
}

/// A DICOMweb service at one base URL (Orthanc: `http://host:8042/dicom-web`).
pub struct Client {
    agent: ureq::Agent,
    base: String,
    authorization: Option<Zeroizing<String>>,
    user: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("user", &self.user)
            .finish()
    }
}

impl Client {
    /// A client for the service at `base`. A URL with a user or password in it is refused: the
    /// command line is readable by every user of the machine.
    pub fn new(base: &str, credentials: Credentials, tls: &Tls) -> Result<Client, ServerError> {
        let base = base.trim_end_matches('/').to_string();
        let uri: ureq::http::Uri = base.parse().map_err(|e| ServerError::BadUrl {
            url: base.clone(),
            reason: format!("{e}"),
        })?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(ServerError::BadUrl {
                    url: base,
                    reason: "it must start with http:// or https://".into(),
                })
            }
        };
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(ServerError::BadUrl {
                url: "(not shown: it holds credentials)".into(),
                reason: format!(
                    "a user or password in the URL is visible to every user of this machine; use --user with {PASSWORD_ENV} or --password-file"
                ),
            });
        }
        let mut tls_config = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()));
        if https {
            tls_config = tls_config.root_certs(root_certificates(tls)?);
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls_config.build())
            // Statuses are answers to read (a STOW-RS 400 or 409 carries the per-instance
            // failures), not errors.
            .http_status_as_error(false)
            // A redirect would turn a POST into a GET and send credentials elsewhere: say so.
            .max_redirects(0)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(600)))
            .timeout_recv_body(Some(Duration::from_secs(600)))
            .user_agent(concat!("pseal-central/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let (authorization, user) = match credentials {
            Credentials::None => (None, None),
            Credentials::Basic { user, password } => {
                let pair = Zeroizing::new(format!("{user}:{}", password.as_str()));
                let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(pair.as_bytes()));
                (Some(Zeroizing::new(format!("Basic {}", encoded.as_str()))), Some(user))
            }
            Credentials::Bearer(token) => (Some(Zeroizing::new(format!("Bearer {}", token.as_str()))), None),
        };
        Ok(Client {
            agent,
            base,
            authorization,
            user,
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn authorize<B>(&self, mut request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        if let Some(value) = &self.authorization {
            if let Ok(mut v) = ureq::http::HeaderValue::from_str(value) {
                v.set_sensitive(true);
                request = request.header(ureq::http::header::AUTHORIZATION, v);
            }
        }
        request
    }

    /// Runs `call` up to [`TRIES`] times while the failure is transient, waiting 1, 2, 4 s.
    fn with_retries<T>(&self, mut call: impl FnMut() -> Result<T, ServerError>) -> Result<T, ServerError> {
        let mut wait = Duration::from_secs(1);
        let mut tries = 1;
        loop {
            match call() {
                Err(e) if e.is_transient() && tries < TRIES => {
                    std::thread::sleep(wait);
                    wait *= 2;
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    fn transport(&self, url: &str, e: ureq::Error) -> ServerError {
        let reason = match &e {
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                format!("cannot connect ({io}); is the server running, and is the URL's port right?")
            }
            // rustls reports a refused certificate as invalid data.
            ureq::Error::Io(io)
                if io.kind() == std::io::ErrorKind::InvalidData && io.to_string().contains("certificate") =>
            {
                format!(
                    "{io}; the server's certificate is not one this system trusts for this name: give its certificate authority with --ca-file, or check the URL's host name"
                )
            }
            ureq::Error::HostNotFound => "host not found; check the URL".to_string(),
            other => other.to_string(),
        };
        let transient = match &e {
            ureq::Error::Io(io) => io.kind() != std::io::ErrorKind::InvalidData,
            ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed | ureq::Error::Protocol(_) => true,
            _ => false,
        };
        ServerError::Transport {
            url: url.to_string(),
            reason,
            transient,
        }
    }

    fn status_error(&self, url: &str, status: u16, body: &[u8]) -> ServerError {
        match status {
            401 | 403 => ServerError::Unauthorized {
                url: url.to_string(),
                status,
                user: self.user.clone(),
                sent_credentials: self.authorization.is_some(),
            },
            _ => ServerError::Status {
                url: url.to_string(),
                status,
                body: excerpt(body),
            },
        }
    }

    /// Checks that the URL answers QIDO-RS and accepts the credentials (one study at most).
    pub fn probe(&self) -> Result<(), ServerError> {
        let url = format!("{}/studies", self.base);
        self.with_retries(|| {
            let mut response = self
                .authorize(self.agent.get(&url))
                .query("limit", "1")
                .header("Accept", "application/dicom+json")
                .call()
                .map_err(|e| self.transport(&url, e))?;
            let status = response.status().as_u16();
            let body = read_body(&mut response, &url)?;
            match status {
                200 | 204 => Ok(()),
                404 => Err(ServerError::NoService { url: self.base.clone() }),
                s => Err(self.status_error(&url, s, &body)),
            }
        })
    }

    /// Every instance of `study` the server holds (QIDO-RS, paged).
    pub fn study_instances(&self, study: &str) -> Result<Vec<HeldInstance>, ServerError> {
        let url = format!("{}/studies/{study}/instances", self.base);
        let mut out: Vec<HeldInstance> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        loop {
            let offset = out.len();
            let page = self.with_retries(|| self.qido_page(&url, offset))?;
            let got = page.len();
            let mut new = 0;
            for held in page {
                if seen.insert(held.sop.clone()) {
                    out.push(held);
                    new += 1;
                }
            }
            // A short page is the last; a page of nothing new means the server ignores `offset`.
            if got < QIDO_PAGE || new == 0 {
                return Ok(out);
            }
        }
    }

    /// How many instances the server holds in each series of `study` (QIDO-RS at the series
    /// level with Number of Series Related Instances), or `None` when the answer cannot say (a
    /// count left out, or a study of more series than one page). Servers answer this from their
    /// index; at the instance level Orthanc 1.10 reads every instance's file.
    pub fn study_series_counts(&self, study: &str) -> Result<Option<HashMap<String, u64>>, ServerError> {
        let url = format!("{}/studies/{study}/series", self.base);
        self.with_retries(|| {
            let mut response = self
                .authorize(self.agent.get(&url))
                .query("includefield", "00201209")
                .query("limit", QIDO_PAGE.to_string())
                .header("Accept", "application/dicom+json")
                .call()
                .map_err(|e| self.transport(&url, e))?;
            let status = response.status().as_u16();
            let body = read_body(&mut response, &url)?;
            match status {
                204 | 404 => Ok(Some(HashMap::new())),
                200 if body.iter().all(u8::is_ascii_whitespace) => Ok(Some(HashMap::new())),
                200 => parse_series_counts(&body).map_err(|e| ServerError::BadResponse {
                    url: url.clone(),
                    reason: e.to_string(),
                }),
                s => Err(self.status_error(&url, s, &body)),
            }
        })
    }

    fn qido_page(&self, url: &str, offset: usize) -> Result<Vec<HeldInstance>, ServerError> {
        let mut response = self
            .authorize(self.agent.get(url))
            .query("includefield", "0020000E")
            .query("limit", QIDO_PAGE.to_string())
            .query("offset", offset.to_string())
            .header("Accept", "application/dicom+json")
            .call()
            .map_err(|e| self.transport(url, e))?;
        let status = response.status().as_u16();
        let body = read_body(&mut response, url)?;
        match status {
            // No match: servers answer 204, an empty array, or (some) 404 for an unknown study.
            204 | 404 => Ok(Vec::new()),
            200 if body.iter().all(u8::is_ascii_whitespace) => Ok(Vec::new()),
            200 => parse_instances(&body).map_err(|e| ServerError::BadResponse {
                url: url.to_string(),
                reason: e.to_string(),
            }),
            s => Err(self.status_error(url, s, &body)),
        }
    }

    /// Sends one batch with STOW-RS and reads the server's per-instance answer. A status that
    /// carries a DICOM JSON response (200, 202, and the 4xx of partial or total failure) is an
    /// answer; any other is an error.
    pub fn store(&self, batch: &Batch) -> Result<StowResponse, ServerError> {
        let url = format!("{}/studies", self.base);
        self.with_retries(|| {
            let mut response = self
                .authorize(self.agent.post(&url))
                .header("Content-Type", batch.content_type())
                .header("Accept", "application/dicom+json")
                .send(batch.body())
                .map_err(|e| self.transport(&url, e))?;
            let status = response.status().as_u16();
            let body = read_body(&mut response, &url)?;
            match status {
                401 | 403 | 404 | 405 | 415 => Err(self.status_error(&url, status, &body)),
                s if s == 429 || s >= 500 => Err(self.status_error(&url, s, &body)),
                s if (300..400).contains(&s) => Err(ServerError::Redirected {
                    url: url.clone(),
                    status: s,
                    to: response
                        .headers()
                        .get("location")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string(),
                }),
                s => Ok(StowResponse::parse(s, &body)),
            }
        })
    }
}

fn read_body(response: &mut ureq::http::Response<ureq::Body>, url: &str) -> Result<Vec<u8>, ServerError> {
    response
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE)
        .read_to_vec()
        .map_err(|e| ServerError::Transport {
            url: url.to_string(),
            reason: format!("reading the response: {e}"),
            transient: matches!(e, ureq::Error::Io(_) | ureq::Error::Timeout(_)),
        })
}

/// The first line or so of a response body, for an error message.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Why a QIDO-RS answer could not be read (the server's fault; the message quotes no value).
#[derive(Debug, thiserror::Error)]
pub enum QidoAnswerError {
    /// The body is not a JSON array.
    #[error("not a DICOM JSON array: {0}")]
    NotArray(serde_json::Error),
    /// An element of the array is not a DICOM JSON object.
    #[error("not a DICOM JSON object: {0}")]
    NotObject(serde_json::Error),
    /// An instance without its SOP Instance UID.
    #[error("an instance without SOPInstanceUID (0008,0018)")]
    NoSopInstanceUid,
    /// A series without its Series Instance UID.
    #[error("a series without SeriesInstanceUID (0020,000E)")]
    NoSeriesInstanceUid,
}

/// A UID attribute of a QIDO-RS answer's object, without its padding.
fn uid_of(obj: &dicom_object::InMemDicomObject, tag: dicom_core::Tag) -> Option<String> {
    obj.element(tag)
        .ok()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
}

/// The instances of a QIDO-RS answer (an array of DICOM JSON objects).
pub fn parse_instances(body: &[u8]) -> Result<Vec<HeldInstance>, QidoAnswerError> {
    let items: Vec<serde_json::Value> = serde_json::from_slice(body).map_err(QidoAnswerError::NotArray)?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let obj: dicom_object::InMemDicomObject = dicom_json::from_value(item).map_err(QidoAnswerError::NotObject)?;
        let Some(sop) = uid_of(&obj, tags::SOP_INSTANCE_UID) else {
            return Err(QidoAnswerError::NoSopInstanceUid);
        };
        out.push(HeldInstance {
            series: uid_of(&obj, tags::SERIES_INSTANCE_UID).unwrap_or_default(),
            sop,
        });
    }
    Ok(out)
}

/// Reads a series-level QIDO-RS answer into instances per Series Instance UID; `None` when a
/// series has no Number of Series Related Instances (0020,1209) or the page is full (more series
/// may follow).
pub fn parse_series_counts(body: &[u8]) -> Result<Option<HashMap<String, u64>>, QidoAnswerError> {
    let items: Vec<serde_json::Value> = serde_json::from_slice(body).map_err(QidoAnswerError::NotArray)?;
    if items.len() >= QIDO_PAGE {
        return Ok(None);
    }
    let mut out = HashMap::with_capacity(items.len());
    for item in items {
        let obj: dicom_object::InMemDicomObject = dicom_json::from_value(item).map_err(QidoAnswerError::NotObject)?;
        let Some(series) = uid_of(&obj, tags::SERIES_INSTANCE_UID) else {
            return Err(QidoAnswerError::NoSeriesInstanceUid);
        };
        let Some(count) = obj
            .element(tags::NUMBER_OF_SERIES_RELATED_INSTANCES)
            .ok()
            .and_then(|e| e.to_int::<u64>().ok())
        else {
            return Ok(None);
        };
        out.insert(series, count);
    }
    Ok(Some(out))
}

/// The system's root certificates and those of `tls.ca_file`.
fn root_certificates(tls: &Tls) -> Result<ureq::tls::RootCerts, ServerError> {
    let mut certs: Vec<ureq::tls::Certificate<'static>> = Vec::new();
    let native = rustls_native_certs::load_native_certs();
    for c in native.certs {
        certs.push(ureq::tls::Certificate::from_der(c.as_ref()).to_owned());
    }
    if let Some(path) = &tls.ca_file {
        let bad = |reason: String| ServerError::CaFile {
            path: path.clone(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let before = certs.len();
        for item in ureq::tls::parse_pem(&pem) {
            if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| bad(e.to_string()))? {
                certs.push(c);
            }
        }
        if certs.len() == before {
            return Err(bad("it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into()));
        }
    } else if certs.is_empty() {
        return Err(ServerError::NoRootCertificates {
            reason: native
                .errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    Ok(ureq::tls::RootCerts::new_with_certs(&certs))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sources() -> CredentialSources {
        CredentialSources::default()
    }

    #[test]
    fn credentials_need_a_user_and_a_password_or_a_token_never_both() {
        assert!(matches!(sources().resolve(), Ok(Credentials::None)));
        let basic = CredentialSources {
            user: Some("pseal".into()),
            password_env: Some(Zeroizing::new("s3cret".into())),
            ..sources()
        };
        assert!(matches!(basic.resolve(), Ok(Credentials::Basic { .. })));
        let no_password = CredentialSources {
            user: Some("pseal".into()),
            ..sources()
        };
        let err = no_password.resolve().unwrap_err().to_string();
        assert!(err.contains(PASSWORD_ENV) && err.contains("--password-file"), "{err}");
        let no_user = CredentialSources {
            password_env: Some(Zeroizing::new("s3cret".into())),
            ..sources()
        };
        assert!(matches!(no_user.resolve(), Err(CredentialError::NoUser(_))));
        let both = CredentialSources {
            user: Some("pseal".into()),
            password_env: Some(Zeroizing::new("s3cret".into())),
            token_env: Some(Zeroizing::new("tok".into())),
            ..sources()
        };
        assert!(matches!(both.resolve(), Err(CredentialError::Both)));
        let bearer = CredentialSources {
            token_env: Some(Zeroizing::new("tok".into())),
            ..sources()
        };
        let c = bearer.resolve().unwrap();
        assert!(matches!(c, Credentials::Bearer(_)));
        assert!(!format!("{c:?}").contains("tok"), "{c:?}");
    }

    #[cfg(unix)]
    #[test]
    fn secret_files_are_owner_only_and_lose_their_trailing_newline() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "s3cret\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let open = CredentialSources {
            user: Some("pseal".into()),
            password_file: Some(file.clone()),
            ..sources()
        };
        let err = open.resolve().unwrap_err().to_string();
        assert!(err.contains("readable by other users"), "{err}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let ok = CredentialSources {
            user: Some("pseal".into()),
            password_file: Some(file),
            ..sources()
        };
        match ok.resolve().unwrap() {
            Credentials::Basic { password, .. } => assert_eq!(password.as_str(), "s3cret"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_url_with_credentials_or_another_scheme_is_refused() {
        let err = Client::new(
            "http://pseal:s3cret@127.0.0.1:8042/dicom-web",
            Credentials::None,
            &Tls::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("--user") && !err.contains("s3cret"), "{err}");
        assert!(Client::new("ftp://host/dicom-web", Credentials::None, &Tls::default()).is_err());
        assert!(Client::new("http://127.0.0.1:8042/dicom-web/", Credentials::None, &Tls::default()).is_ok());
    }

    #[test]
    fn qido_answers_give_series_and_instance_uids() {
        let body = br#"[{"00080018":{"vr":"UI","Value":["2.25.1"]},"0020000E":{"vr":"UI","Value":["2.25.9"]},
            "00100010":{"vr":"PN","Value":[{"Alphabetic":"7AXS-8YVA-9EQ8Y"}]},"00080050":{"vr":"SH"},
            "00200013":{"vr":"IS","Value":[1]}},
            {"00080018":{"vr":"UI","Value":["2.25.2"]}}]"#;
        let held = parse_instances(body).unwrap();
        assert_eq!(
            held,
            vec![
                HeldInstance {
                    series: "2.25.9".into(),
                    sop: "2.25.1".into()
                },
                HeldInstance {
                    series: String::new(),
                    sop: "2.25.2".into()
                }
            ]
        );
        assert!(parse_instances(b"[]").unwrap().is_empty());
        assert!(parse_instances(b"<html>").is_err());
        assert!(parse_instances(br#"[{"0020000E":{"vr":"UI","Value":["2.25.9"]}}]"#).is_err());
    }
}
