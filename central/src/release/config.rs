//! The steward's release settings: what every release says about where it comes from (dataset
//! name, contact, how to cite, licence, authors). Read from `release.toml` in the store folder,
//! or the file given with `--release-config`; every field is optional, and a missing one shows as
//! a placeholder in the README that says which setting fills it.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// File name of the release settings inside the store folder.
pub const CONFIG_FILE: &str = "release.toml";

/// The release settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseConfig {
    /// Dataset name (BIDS `Name`), e.g. "Brain tumour imaging network, glioma cohort".
    pub name: Option<String>,
    /// Who researchers write to about the data (incidental findings, questions).
    pub contact: Option<String>,
    /// How to cite the data (BIDS `HowToAcknowledge`).
    pub how_to_cite: Option<String>,
    /// Licence or data use terms (BIDS `License`).
    pub license: Option<String>,
    /// Authors of the dataset (BIDS `Authors`).
    #[serde(default)]
    pub authors: Vec<String>,
    /// Funding sources (BIDS `Funding`).
    #[serde(default)]
    pub funding: Vec<String>,
    /// Ethics approvals (BIDS `EthicsApprovals`).
    #[serde(default)]
    pub ethics_approvals: Vec<String>,
}

/// Release settings that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseConfigError {
    /// The file could not be read.
    #[error("release settings {}: {source}", path.display())]
    Read {
        /// The settings file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or names an unknown setting.
    #[error("release settings {}: {message}", path.display())]
    Invalid {
        /// The settings file.
        path: PathBuf,
        /// toml's words, on one line.
        message: String,
    },
}

impl ReleaseConfig {
    /// Reads `explicit` (which must exist), else `store/release.toml` when present, else the
    /// empty settings. Returns the settings and the file they came from.
    pub fn load(explicit: Option<&Path>, store: &Path) -> Result<(ReleaseConfig, Option<PathBuf>), ReleaseConfigError> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let p = store.join(CONFIG_FILE);
                if !p.exists() {
                    return Ok((ReleaseConfig::default(), None));
                }
                p
            }
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(source) => return Err(ReleaseConfigError::Read { path, source }),
        };
        let config: ReleaseConfig = match toml::from_str(&text) {
            Ok(config) => config,
            Err(e) => {
                // toml's message spans lines (a caret under the column); one line reads better.
                let message = e.to_string().trim_end().replace('\n', " ");
                return Err(ReleaseConfigError::Invalid { path, message });
            }
        };
        Ok((config, Some(path)))
    }

    /// The contact line, or a placeholder naming the setting.
    pub fn contact_or_placeholder(&self) -> String {
        self.contact
            .clone()
            .unwrap_or_else(|| format!("[not configured: the steward sets `contact` in {CONFIG_FILE}]"))
    }

    /// How to cite, or a placeholder naming the setting.
    pub fn citation_or_placeholder(&self) -> String {
        self.how_to_cite
            .clone()
            .unwrap_or_else(|| format!("[not configured: the steward sets `how_to_cite` in {CONFIG_FILE}]"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn settings_are_optional_and_typos_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (c, from) = ReleaseConfig::load(None, dir.path()).unwrap();
        assert!(from.is_none());
        assert!(c.contact_or_placeholder().contains("`contact`"));
        std::fs::write(dir.path().join(CONFIG_FILE), "contact = \"steward@example.org\"\n").unwrap();
        let (c, from) = ReleaseConfig::load(None, dir.path()).unwrap();
        assert_eq!(c.contact_or_placeholder(), "steward@example.org");
        assert!(from.is_some());
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "contcat = \"x\"\n").unwrap();
        let err = ReleaseConfig::load(Some(&bad), dir.path()).unwrap_err().to_string();
        assert!(err.contains("bad.toml") && err.contains("contcat"), "{err}");
    }
}
