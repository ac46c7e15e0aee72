//! The imported bundles and the `index.csv` freshness flag: what an import records when it
//! commits (the bundle, its instances and the audit entry, in one transaction), how a re-run
//! recognises a bundle it already imported, and whether `index.csv` must be rewritten.

use super::{audit, now, Store, StoreError};
use crate::archive::IndexRow;
use rusqlite::{params, OptionalExtension};

impl Store {
    /// The manifest digest (hex SHA-256) recorded for `bundle_id` in `domain`, when a bundle of
    /// that ID was imported there before.
    pub fn imported_manifest(&self, bundle_id: &str, domain: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT manifest_sha256 FROM bundles WHERE bundle_id = ?1 AND domain = ?2",
                params![bundle_id, domain],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.db_err(e))
    }

    /// Records an imported bundle, its instances and the audit entry in one transaction. The
    /// bundle belongs to `owner` (its site and local ID); its instances to `patient` (the owner,
    /// or the survivor it was merged into).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record_import(
        &mut self,
        bundle_id: &str,
        digest: &str,
        site: &str,
        (owner, patient_id): (i64, i64),
        rows: &[IndexRow],
        domain: &str,
        repairing: bool,
    ) -> Result<(), StoreError> {
        self.write_tx(|tx, secrets| {
            tx.execute(
                // A repair finds the bundle recorded already and keeps that record.
                "INSERT OR IGNORE INTO bundles (bundle_id, domain, manifest_sha256, site, patient_id, instances, imported_at) VALUES (?1, ?7, ?2, ?3, ?4, ?5, ?6)",
                params![bundle_id, digest, site, owner, rows.len() as i64, now(), domain],
            )?;
            super::instances::insert(tx, patient_id, bundle_id, rows)?;
            // index.csv is rewritten after the commit; until then it is stale, and a crash in between
            // must not leave it so: the flag makes the next import rewrite it.
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('index_dirty', '1') ON CONFLICT(key) DO UPDATE SET value = '1'",
                [],
            )?;
            let pseudonym = rows.first().map(|r| r.pseudonym.clone()).unwrap_or_default();
            let action = if repairing { "repair" } else { "import" };
            audit::append(tx, secrets, action, &serde_json::json!({ "bundle_id": bundle_id, "site": site, "domain": domain, "pseudonym": pseudonym, "instances": rows.len() }))?;
            Ok(())
        })
    }

    /// True when index.csv may be older than the store (an import committed since it was written).
    pub fn index_dirty(&self) -> Result<bool, StoreError> {
        let v: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'index_dirty'", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.db_err(e))?;
        Ok(v.as_deref() == Some("1"))
    }

    /// Records that index.csv is current.
    pub fn mark_index_clean(&mut self) -> Result<(), StoreError> {
        let path = self.db_path();
        self.conn
            .execute("UPDATE meta SET value = '0' WHERE key = 'index_dirty'", [])
            .map_err(|source| StoreError::Database { path, source })?;
        Ok(())
    }
}
