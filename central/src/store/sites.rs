//! Enrolled site keys: which workstation keys may send bundles, for which site.

use super::{audit, now, Store, StoreError};
use pseal::keys::SitePublicKey;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

/// What the store knows about a (site, key) pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SiteStatus {
    /// Enrolled for this site and not revoked.
    Enrolled,
    /// Enrolled for this site, then revoked.
    Revoked,
    /// The key is enrolled for another site.
    OtherSite(String),
    /// The key is not enrolled.
    Unknown,
}

/// One enrolled key.
#[derive(Debug, Clone, Serialize)]
pub struct SiteKeyRow {
    /// The site.
    pub site: String,
    /// The key (`psealsite1…`).
    pub key: String,
    /// Unix time of enrolment.
    pub enrolled_at: i64,
    /// Unix time of revocation, if revoked.
    pub revoked_at: Option<i64>,
}

/// Why the store will not enrol or revoke a site key as asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyRefused {
    /// Enrolling a key that was revoked.
    #[error("key {key} was revoked for site {site}; a revoked key cannot be enrolled again (make a new key with `pseal init`)")]
    Revoked {
        /// The key (`psealsite1…`).
        key: String,
        /// The site asked for.
        site: String,
    },
    /// Enrolling a key another site holds.
    #[error("key {key} is already enrolled for site {other}; each workstation key belongs to one site")]
    EnrolledElsewhere {
        /// The key.
        key: String,
        /// The site that holds it.
        other: String,
    },
    /// Revoking a key for a site that does not hold it.
    #[error("key {key} belongs to site {other}, not {site}")]
    OfOtherSite {
        /// The key.
        key: String,
        /// The site that holds it.
        other: String,
        /// The site asked for.
        site: String,
    },
    /// Revoking a key that was never enrolled.
    #[error("key {key} is not enrolled for site {site}")]
    NotEnrolled {
        /// The key.
        key: String,
        /// The site asked for.
        site: String,
    },
}

impl Store {
    /// Enrols `key` for `site`. Returns false when it was already enrolled for that site.
    pub fn enroll(&mut self, site: &str, key: &SitePublicKey) -> Result<bool, StoreError> {
        pseal::config::validate_site_name(site)?;
        match self.site_status(site, key)? {
            SiteStatus::Enrolled => return Ok(false),
            SiteStatus::Revoked => {
                return Err(KeyRefused::Revoked {
                    key: key.to_string(),
                    site: site.to_string(),
                }
                .into())
            }
            SiteStatus::OtherSite(other) => {
                return Err(KeyRefused::EnrolledElsewhere {
                    key: key.to_string(),
                    other,
                }
                .into())
            }
            SiteStatus::Unknown => {}
        }
        self.write_tx(|tx, secrets| {
            tx.execute(
                "INSERT INTO sites (site_key, site, enrolled_at) VALUES (?1, ?2, ?3)",
                params![key.to_string(), site, now()],
            )?;
            audit::append(
                tx,
                secrets,
                "enroll",
                &serde_json::json!({ "site": site, "key": key.to_string() }),
            )?;
            Ok(true)
        })
    }

    /// Revokes `key` for `site`: later bundles made with it are refused.
    pub fn revoke(&mut self, site: &str, key: &SitePublicKey) -> Result<(), StoreError> {
        match self.site_status(site, key)? {
            SiteStatus::Enrolled => {}
            SiteStatus::Revoked => return Ok(()),
            SiteStatus::OtherSite(other) => {
                return Err(KeyRefused::OfOtherSite {
                    key: key.to_string(),
                    other,
                    site: site.to_string(),
                }
                .into())
            }
            SiteStatus::Unknown => {
                return Err(KeyRefused::NotEnrolled {
                    key: key.to_string(),
                    site: site.to_string(),
                }
                .into())
            }
        }
        self.write_tx(|tx, secrets| {
            tx.execute(
                "UPDATE sites SET revoked_at = ?1 WHERE site_key = ?2",
                params![now(), key.to_string()],
            )?;
            audit::append(
                tx,
                secrets,
                "revoke",
                &serde_json::json!({ "site": site, "key": key.to_string() }),
            )?;
            Ok(())
        })
    }

    /// The status of (site, key).
    pub fn site_status(&self, site: &str, key: &SitePublicKey) -> Result<SiteStatus, StoreError> {
        let row: Option<(String, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT site, revoked_at FROM sites WHERE site_key = ?1",
                params![key.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.db_err(e))?;
        Ok(match row {
            None => SiteStatus::Unknown,
            Some((s, _)) if s != site => SiteStatus::OtherSite(s),
            Some((_, Some(_))) => SiteStatus::Revoked,
            Some((_, None)) => SiteStatus::Enrolled,
        })
    }

    /// Every enrolled key.
    pub fn sites(&self) -> Result<Vec<SiteKeyRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT site, site_key, enrolled_at, revoked_at FROM sites ORDER BY site, enrolled_at")
            .map_err(|e| self.db_err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(SiteKeyRow {
                    site: r.get(0)?,
                    key: r.get(1)?,
                    enrolled_at: r.get(2)?,
                    revoked_at: r.get(3)?,
                })
            })
            .map_err(|e| self.db_err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.db_err(e))
    }
}
