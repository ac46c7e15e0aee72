//! `pseal init`: a new workstation's site configuration and site key.
//!
//! The CLI and the Python binding both call [`init_site`], so the checks, the defaults and the
//! order of writes (key first, mode 0600; then the configuration, never over an existing one)
//! live here once. The choices beyond the site and its recipients are [`InitOptions`]: the CLI
//! fills them from its flags, other callers from a map whose keys are the flags' names, so a new
//! choice is one new field here.

use crate::config::{validate_site_name, ConfigError, LinkageConfig, LocalIdSource, SiteConfig};
use crate::deid::{DeidConfig, Options, OptionsError};
use crate::keys::{KeyError, SiteSecretKey, StewardRecipient};
use serde::{Deserialize, Deserializer, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The choices of `pseal init` beyond the site and its recipients, with the CLI's defaults.
///
/// Read from a map (see [`InitOptions::from_map`]) the keys are the flags' names with `_` for
/// `-`: `options`, `local_id_attribute`, `linkage`. Values are taken as the flags take them and checked by
/// [`init_site`], so a mistake gets the message the CLI prints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InitOptions {
    /// `--options`: `default`, `none`, or a comma-separated list of option names (from a map,
    /// a list of names works too).
    #[serde(deserialize_with = "text_or_list")]
    pub options: String,
    /// `--local-id-attribute`: the attribute holding the local patient ID (keyword or
    /// `(gggg,eeee)`).
    pub local_id_attribute: String,
    /// `--linkage on`: seal the patient's names, birth date and sex for cross-site linkage
    /// (docs/linkage.md); off by default. From a map: `true`/`false` or `"on"`/`"off"`.
    #[serde(deserialize_with = "on_or_off")]
    pub linkage: bool,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            options: "default".into(),
            local_id_attribute: LocalIdSource::default().attribute,
            linkage: false,
        }
    }
}

impl InitOptions {
    /// Reads the choices from a JSON-like map; absent keys keep their defaults, unknown keys
    /// and values of the wrong type are refused.
    pub fn from_map(map: serde_json::Value) -> Result<InitOptions, InitError> {
        if map.is_null() {
            return Ok(InitOptions::default());
        }
        serde_json::from_value(map).map_err(|e| InitError::Choices(e.to_string()))
    }
}

/// A string, or a list of strings joined with `,` (how `--options` reads a list).
fn text_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum TextOrList {
        Text(String),
        List(Vec<String>),
    }
    Ok(match TextOrList::deserialize(d)? {
        TextOrList::Text(text) => text,
        TextOrList::List(names) => names.join(","),
    })
}

/// A switch as `--linkage` reads it (`on`/`off`), or a boolean.
fn on_or_off<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Switch {
        Bool(bool),
        Text(String),
    }
    match Switch::deserialize(d)? {
        Switch::Bool(b) => Ok(b),
        Switch::Text(t) if t == "on" => Ok(true),
        Switch::Text(t) if t == "off" => Ok(false),
        Switch::Text(t) => Err(serde::de::Error::custom(format!(
            "linkage must be \"on\" or \"off\", not {t:?}"
        ))),
    }
}

/// What `pseal init` wrote (`pseal init --json` prints it as its summary line).
#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    /// The site configuration file.
    pub config: String,
    /// The site key file (mode 0600).
    pub site_key: String,
    /// The site name.
    pub site: String,
    /// The site's public key (`psealsite1…`), for enrolment at the steward.
    pub public_key: String,
    /// True when the site seals linkage fields (`--linkage on`).
    pub linkage: bool,
}

/// Why a site could not be set up. Nothing was written, except for [`InitError::Write`]
/// (the key was written, the configuration not).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum InitError {
    /// The site name is not allowed.
    #[error(transparent)]
    Site(#[from] crate::config::BadSiteName),
    /// No recipient was given.
    #[error("at least one --recipient age1… (the steward's) is required")]
    NoRecipient,
    /// A recipient is not an age recipient.
    #[error("--recipient {text}")]
    Recipient {
        /// The recipient as given.
        text: String,
        /// Why it was refused.
        #[source]
        source: KeyError,
    },
    /// The de-identification options are not valid.
    #[error("--options")]
    Options(#[source] OptionsError),
    /// The choices could not be read (an unknown key, a value of the wrong type).
    #[error("init options: {0}")]
    Choices(String),
    /// The configuration file exists already.
    #[error("{} already exists; refusing to overwrite a site configuration", .0.display())]
    Exists(PathBuf),
    /// The local-ID attribute is not valid.
    #[error("--local-id-attribute")]
    LocalIdAttribute(#[source] ConfigError),
    /// The configuration's folder could not be made.
    #[error("creating {}", .path.display())]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The site key could not be written.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The configuration could not be written.
    #[error("writing {}", .path.display())]
    Write {
        /// The configuration file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration could not be serialized.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Sets up a workstation: checks everything, writes a new site key beside `config_path`
/// (`<stem>.site-key`, mode 0600, never overwriting) and then the configuration (never over an
/// existing one). `recipients`: the steward's, then any backup recipients.
pub fn init_site(
    config_path: &Path,
    site: &str,
    recipients: &[String],
    choices: &InitOptions,
) -> Result<InitReport, InitError> {
    validate_site_name(site).map_err(InitError::Site)?;
    if recipients.is_empty() {
        return Err(InitError::NoRecipient);
    }
    let recipients = recipients
        .iter()
        .map(|r| {
            r.parse::<StewardRecipient>().map_err(|source| InitError::Recipient {
                text: r.clone(),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let options = Options::parse_list(&choices.options).map_err(InitError::Options)?;
    if config_path.exists() {
        return Err(InitError::Exists(config_path.to_path_buf()));
    }
    let key_name = format!(
        "{}.site-key",
        config_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "pseal".into())
    );
    let config = SiteConfig {
        site: site.to_string(),
        site_key: key_name.into(),
        recipients,
        local_id: LocalIdSource {
            attribute: choices.local_id_attribute.clone(),
        },
        deid: DeidConfig {
            options,
            ..DeidConfig::default()
        },
        linkage: LinkageConfig {
            enabled: choices.linkage,
        },
    };
    config.local_id.tag().map_err(InitError::LocalIdAttribute)?;
    if let Some(dir) = config_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| InitError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let key_path = config.site_key_path(config_path);
    let key = SiteSecretKey::generate();
    key.write_new(&key_path, site)?;
    let text = config.to_toml()?;
    let write_err = |source| InitError::Write {
        path: config_path.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(config_path)
        .map_err(write_err)?;
    file.write_all(text.as_bytes()).map_err(write_err)?;
    file.sync_all().map_err(write_err)?;
    Ok(InitReport {
        config: config_path.to_string_lossy().into_owned(),
        site_key: key_path.to_string_lossy().into_owned(),
        site: site.to_string(),
        public_key: key.public().to_string(),
        linkage: choices.linkage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_from_a_map_keep_defaults_and_refuse_unknown_keys() {
        let c = InitOptions::from_map(serde_json::json!({"local_id_attribute": "(0012,0040)"})).unwrap_or_default();
        assert_eq!(c.options, "default");
        assert_eq!(c.local_id_attribute, "(0012,0040)");
        let c = InitOptions::from_map(serde_json::json!({"options": ["clean-descriptors", "retain-uids"]}))
            .unwrap_or_default();
        assert_eq!(c.options, "clean-descriptors,retain-uids");
        assert!(
            InitOptions::from_map(serde_json::json!({"linkage": "on"}))
                .unwrap_or_default()
                .linkage
        );
        assert!(
            !InitOptions::from_map(serde_json::json!({"linkage": false}))
                .unwrap_or_default()
                .linkage
        );
        assert!(InitOptions::from_map(serde_json::json!({"linkage": "yes"})).is_err());
        let e = InitOptions::from_map(serde_json::json!({"site_key": "x"}))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.starts_with("init options: unknown field `site_key`"), "{e}");
        assert!(InitOptions::from_map(serde_json::json!({"options": 3})).is_err());
    }
}
