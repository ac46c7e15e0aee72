//! The audited look-ups that show an identity: re-identification (pseudonym → site and local ID)
//! and lookup (site and local ID → pseudonym).
//!
//! Both demand a reason and append it to the audit chain before they return anything, so no front
//! end (the `pseal-central` binary, the Python package, a future one) can show an identity that
//! the log does not record. The unaudited readers they build on stay private to the crate.

use super::pseudonyms::SealedIdentity;
use super::{Store, StoreError};
use pseal::identity::LocalId;
use pseal::pseudonym::Pseudonym;

/// What [`Store::reidentify`] reveals: the patient behind a pseudonym, and every (site, local ID)
/// merged into it.
#[derive(Debug, Clone)]
pub struct Reidentified {
    /// The pseudonym asked about.
    pub pseudonym: Pseudonym,
    /// Its research domain.
    pub domain: String,
    /// The (site, local ID) sealed with it.
    pub identity: SealedIdentity,
    /// The patients of other sites merged into it (same patient at two sites), oldest first, each
    /// with its own retired pseudonym.
    pub also: Vec<(Pseudonym, SealedIdentity)>,
    /// The pseudonym this one was itself merged into, when it was: its studies are under that one.
    pub merged_into: Option<String>,
}

/// What [`Store::lookup_audited`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookedUp {
    /// The pseudonym the patient's studies are under (a merged patient's survivor); `None` when
    /// the store knows no such patient.
    pub pseudonym: Option<Pseudonym>,
    /// The patient's own pseudonym, when the store knows the patient.
    pub own: Option<Pseudonym>,
    /// The pseudonym the patient was merged into (same patient at two sites), when it was.
    pub merged_into: Option<String>,
}

/// Refuses an audited look-up without a reason: the reason is what the audit entry is for.
pub fn check_reason(reason: &str) -> Result<(), StoreError> {
    if reason.trim().is_empty() {
        return Err(StoreError::NoReason);
    }
    Ok(())
}

impl Store {
    /// The identity behind `pseudonym`, with every identity merged into it. The `reason` is
    /// checked and the `reidentify` audit entry written (and committed) before anything is
    /// returned; an unknown pseudonym writes no entry.
    pub fn reidentify(&mut self, pseudonym: &Pseudonym, reason: &str) -> Result<Reidentified, StoreError> {
        check_reason(reason)?;
        let Some((domain, identity)) = self.open_identity(pseudonym)? else {
            return Err(StoreError::UnknownPseudonym(pseudonym.to_string()));
        };
        let mut also = Vec::new();
        for other in self.merged_rows(pseudonym)? {
            if let Some((_, m)) = self.open_identity(&other)? {
                also.push((other, m));
            }
        }
        let merged_into = Store::merged_into(self.dir(), &pseudonym.to_string())?;
        self.audit(
            "reidentify",
            &serde_json::json!({ "pseudonym": pseudonym.to_string(), "domain": domain, "reason": reason }),
        )?;
        Ok(Reidentified {
            pseudonym: pseudonym.clone(),
            domain,
            identity,
            also,
            merged_into,
        })
    }

    /// The pseudonym of (domain, site, local ID), never minting. The `reason` and the domain are
    /// checked, and the `lookup` audit entry (found or not) written and committed, before the
    /// answer is returned.
    pub fn lookup_audited(
        &mut self,
        domain: &str,
        site: &str,
        local_id: &LocalId,
        reason: &str,
    ) -> Result<LookedUp, StoreError> {
        check_reason(reason)?;
        self.check_domain(domain, false, false)?;
        let own = self.lookup(domain, site, local_id)?;
        let merged_into = match &own {
            Some(p) => Store::merged_into(self.dir(), &p.to_string())?,
            None => None,
        };
        let pseudonym = own.clone().map(|p| match &merged_into {
            Some(survivor) => survivor.parse().unwrap_or(p),
            None => p,
        });
        self.audit(
            "lookup",
            &serde_json::json!({ "site": site, "domain": domain, "found": pseudonym.as_ref().map(ToString::to_string), "reason": reason }),
        )?;
        Ok(LookedUp {
            pseudonym,
            own,
            merged_into,
        })
    }
}
