//! The site configuration (`pseal init` writes it, `pseal export` and `pseal review` read it).
//!
//! TOML, kept next to the workstation's site key. It names the site, the steward recipients every
//! bundle is sealed to, where the local patient ID comes from, the de-identification options, and
//! whether the site takes part in cross-site linkage.

use crate::deid::DeidConfig;
use crate::keys::{KeyError, SiteSecretKey, StewardRecipient};
pub use crate::linkage::LinkageConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The site configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// The site name, as enrolled at the steward (letters, digits, `-`, `_`, `.`).
    pub site: String,
    /// The site key file, relative to the configuration file's folder unless absolute.
    pub site_key: PathBuf,
    /// Steward recipients (`age1…`); the first is the steward the site tag is addressed to, the
    /// others are backup keys that can also decrypt every bundle.
    pub recipients: Vec<StewardRecipient>,
    /// Where the local patient identifier comes from.
    #[serde(default)]
    pub local_id: LocalIdSource,
    /// De-identification options and overrides.
    #[serde(default)]
    pub deid: DeidConfig,
    /// Cross-site linkage (`[linkage] enabled = true`): seal names, birth date and sex for the
    /// steward to link this site's patients with other sites'. Off by default, and then left out
    /// of the file.
    #[serde(default, skip_serializing_if = "LinkageConfig::is_off")]
    pub linkage: LinkageConfig,
}

/// Which attribute holds the identifier the steward links on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalIdSource {
    /// A top-level attribute, by keyword (`PatientID`, `OtherPatientIDs`, …) or as `(gggg,eeee)`.
    /// Default `PatientID`: the hospital information system's patient ID. A hospital that keeps
    /// its own research pseudonym in another attribute names that attribute here.
    pub attribute: String,
}

impl Default for LocalIdSource {
    fn default() -> Self {
        LocalIdSource {
            attribute: "PatientID".into(),
        }
    }
}

impl LocalIdSource {
    /// The attribute's tag.
    pub fn tag(&self) -> Result<dicom_core::Tag, ConfigError> {
        parse_tag(&self.attribute).ok_or_else(|| ConfigError::LocalIdAttribute(self.attribute.clone()))
    }
}

fn parse_tag(text: &str) -> Option<dicom_core::Tag> {
    use dicom_core::dictionary::DataDictionary;
    let t = text.trim();
    if let Some(inner) = t.strip_prefix('(').and_then(|s| s.strip_suffix(')')) {
        let (g, e) = inner.split_once(',')?;
        return Some(dicom_core::Tag(
            u16::from_str_radix(g.trim(), 16).ok()?,
            u16::from_str_radix(e.trim(), 16).ok()?,
        ));
    }
    dicom_dictionary_std::StandardDataDictionary
        .by_name(t)
        .map(|e| e.tag.inner())
}

/// A configuration problem, naming the file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The configuration file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("{path}: {reason}")]
    Invalid {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `local_id.attribute` names no attribute (before it is in a file).
    #[error("local_id.attribute '{0}' is neither a DICOM keyword nor (gggg,eeee)")]
    LocalIdAttribute(String),
    /// The configuration could not be written as TOML.
    #[error("{0}")]
    Encode(#[from] toml::ser::Error),
    /// The site key could not be read.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// A site name that breaks the rule of [`validate_site_name`] (the name is shown escaped).
#[derive(Debug, Error)]
#[error("site name '{}' must be 1–64 letters, digits, '-', '_' or '.', starting with a letter or digit", .0.escape_default())]
pub struct BadSiteName(pub String);

/// Checks a site name: 1–64 of letters, digits, `-`, `_`, `.`, starting with a letter or digit.
pub fn validate_site_name(site: &str) -> Result<(), BadSiteName> {
    let ok = !site.is_empty()
        && site.len() <= 64
        && site
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && site.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(BadSiteName(site.to_string()))
    }
}

impl SiteConfig {
    /// Reads and validates a configuration file.
    pub fn read(path: &Path) -> Result<SiteConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |reason: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let config: SiteConfig = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        validate_site_name(&config.site).map_err(|e| invalid(e.to_string()))?;
        if config.recipients.is_empty() {
            return Err(invalid("no recipients: add the steward's age1… recipient".into()));
        }
        config.local_id.tag().map_err(|e| match e {
            e @ ConfigError::LocalIdAttribute(_) => invalid(e.to_string()),
            other => other,
        })?;
        Ok(config)
    }

    /// Serializes to TOML.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        Ok(toml::to_string_pretty(self)?)
    }

    /// The site key path, resolved against the configuration file's folder.
    pub fn site_key_path(&self, config_path: &Path) -> PathBuf {
        if self.site_key.is_absolute() {
            self.site_key.clone()
        } else {
            config_path.parent().unwrap_or(Path::new(".")).join(&self.site_key)
        }
    }

    /// Reads the site key (refusing one other users can read).
    pub fn read_site_key(&self, config_path: &Path) -> Result<SiteSecretKey, ConfigError> {
        Ok(SiteSecretKey::read(&self.site_key_path(config_path))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_parse_by_keyword_and_number() {
        assert_eq!(parse_tag("PatientID"), Some(dicom_core::Tag(0x0010, 0x0020)));
        assert_eq!(parse_tag("(0010,1000)"), Some(dicom_core::Tag(0x0010, 0x1000)));
        assert_eq!(parse_tag("NoSuchKeyword"), None);
    }

    #[test]
    fn linkage_is_off_by_default_and_left_out_of_the_file_then() {
        let text = "site = \"A\"\nsite_key = \"k\"\nrecipients = []\n";
        let mut config: SiteConfig = toml::from_str(text).unwrap_or_else(|e| panic!("{e}"));
        assert!(!config.linkage.enabled);
        assert!(!config.to_toml().unwrap_or_default().contains("linkage"));
        config.linkage.enabled = true;
        let on = config.to_toml().unwrap_or_default();
        assert!(on.contains("[linkage]\nenabled = true"), "{on}");
        let back: SiteConfig = toml::from_str(&on).unwrap_or_else(|e| panic!("{e}"));
        assert!(back.linkage.enabled);
        assert!(toml::from_str::<SiteConfig>(&format!("{text}[linkage]\nenabled = true\nkey = 1\n")).is_err());
    }

    #[test]
    fn site_names_are_checked() {
        assert!(validate_site_name("UKB-Neuro_1").is_ok());
        assert!(validate_site_name("../etc").is_err());
        assert!(validate_site_name("").is_err());
    }
}
