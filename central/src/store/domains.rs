//! Pseudonym domains (research projects): their names, which ones a store knows, and their size.
//!
//! A domain is known to a store once a patient was minted in it; `default` always is. Importing
//! into another name needs the caller's confirmation (`--new-domain`), so that a typo never
//! silently starts a new pseudonym namespace.

use super::pseudonyms::DEFAULT_DOMAIN;
use super::{Store, StoreError};
use serde::Serialize;

/// Longest domain name.
pub const MAX_LEN: usize = 64;

/// A domain name [`validate`] refuses; the message says what a name must be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("domain name '{}' must be 1–{MAX_LEN} lower-case letters, digits and hyphens, starting and ending with a letter or digit (for example glio-7)", .0.escape_default())]
pub struct BadDomainName(pub String);

/// Checks a domain name: 1–64 lower-case letters `a`–`z`, digits and hyphens, starting and ending
/// with a letter or digit. The message says what is wrong.
pub fn validate(name: &str) -> Result<(), BadDomainName> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.is_empty()
        || name.len() > MAX_LEN
        || !name.chars().all(ok_char)
        || !edge(name.chars().next())
        || !edge(name.chars().last())
    {
        return Err(BadDomainName(name.to_string()));
    }
    Ok(())
}

/// One domain of a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainInfo {
    /// The name.
    pub domain: String,
    /// Patients with a pseudonym in it.
    pub patients: u64,
    /// Instances archived under those pseudonyms.
    pub instances: u64,
}

/// A `--domain` the store does not have.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnknownDomain {
    /// A look-up or release in a domain the store does not have.
    #[error("this store has no domain '{domain}' (its domains: {known}); `pseal-central domains` lists them")]
    NotInStore {
        /// The domain asked for.
        domain: String,
        /// The store's domains, comma-separated.
        known: String,
    },
    /// An import into a new domain without `--new-domain`.
    #[error("this store has no domain '{domain}' yet (its domains: {known}); if you mean to start a new pseudonym domain, add --new-domain")]
    NewWithoutFlag {
        /// The domain asked for.
        domain: String,
        /// The store's domains, comma-separated.
        known: String,
    },
}

impl Store {
    /// Every domain of the store with its counts, `default` always included, by name.
    pub fn domains(&self) -> Result<Vec<DomainInfo>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT p.domain, COUNT(DISTINCT p.id), COUNT(i.path)
                 FROM patients p LEFT JOIN instances i ON i.patient_id = p.id
                 GROUP BY p.domain ORDER BY p.domain",
            )
            .map_err(|e| self.db_err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(DomainInfo {
                    domain: r.get(0)?,
                    patients: r.get::<_, i64>(1)?.max(0) as u64,
                    instances: r.get::<_, i64>(2)?.max(0) as u64,
                })
            })
            .map_err(|e| self.db_err(e))?;
        let mut out = rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.db_err(e))?;
        if !out.iter().any(|d| d.domain == DEFAULT_DOMAIN) {
            out.push(DomainInfo {
                domain: DEFAULT_DOMAIN.into(),
                patients: 0,
                instances: 0,
            });
            out.sort_by(|a, b| a.domain.cmp(&b.domain));
        }
        Ok(out)
    }

    /// Whether the store knows `domain` (`default`, or a domain with a patient).
    pub fn knows_domain(&self, domain: &str) -> Result<bool, StoreError> {
        if domain == DEFAULT_DOMAIN {
            return Ok(true);
        }
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM patients WHERE domain = ?1)",
                [domain],
                |r| r.get(0),
            )
            .map_err(|e| self.db_err(e))
    }

    /// Checks `--domain` for a command: a domain the store knows is accepted as it is (names made
    /// before the naming rule included); a new one must follow the rule and be confirmed with
    /// `new_domain` when `creating` (import), and is refused otherwise (look-ups, releases).
    pub fn check_domain(&self, domain: &str, creating: bool, new_domain: bool) -> Result<(), StoreError> {
        if self.knows_domain(domain)? {
            return Ok(());
        }
        validate(domain)?;
        let known = self
            .domains()?
            .into_iter()
            .map(|d| d.domain)
            .collect::<Vec<_>>()
            .join(", ");
        if !creating {
            return Err(UnknownDomain::NotInStore {
                domain: domain.to_string(),
                known,
            }
            .into());
        }
        if !new_domain {
            return Err(UnknownDomain::NewWithoutFlag {
                domain: domain.to_string(),
                known,
            }
            .into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::validate;

    #[test]
    fn domain_names_are_lower_case_letters_digits_and_hyphens() {
        for good in ["default", "glio-7", "a", "2027-study"] {
            validate(good).unwrap();
        }
        for bad in [
            "",
            "bad domain",
            "GLIO-7",
            "-glio",
            "glio-",
            "glio_7",
            "glio.7",
            &"a".repeat(65),
        ] {
            let e = validate(bad).unwrap_err().to_string();
            assert!(e.contains("lower-case letters, digits and hyphens"), "{e}");
        }
    }
}
