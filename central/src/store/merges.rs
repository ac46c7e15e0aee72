//! The store's side of carrying out a linkage decision (`links accept`, `undo`, `reject`): the
//! bundles recorded for a patient, the clusters a decision would make, the decision committed
//! with its audit entry, the instance rows moved to another patient, and the list of archive
//! files to remove afterwards. `linkage::merge` orders these steps; the SQL is here.

use super::{audit, links, now, Store, StoreError};
use crate::archive::IndexRow;
use rusqlite::{params, OptionalExtension};
use std::collections::{BTreeMap, BTreeSet};

/// A bundle the store imported, as recorded.
#[derive(Debug, Clone)]
pub struct RecordedBundle {
    /// The bundle ID.
    pub bundle_id: String,
    /// The hex SHA-256 of its manifest.
    pub digest: String,
    /// The site that sent it.
    pub site: String,
    /// The patient row it belongs to (its site and local ID).
    pub owner: i64,
}

/// One bundle whose instance rows move from one patient to another, with its re-keyed rows.
#[derive(Debug, Clone, Copy)]
pub struct MovedBundle<'a> {
    /// The bundle ID.
    pub bundle_id: &'a str,
    /// The patient its instances are under now.
    pub from: i64,
    /// The patient they go under.
    pub to: i64,
    /// Its instances as written under the new pseudonym.
    pub rows: &'a [IndexRow],
}

impl Store {
    /// The bundles recorded in `domain` for each patient row of `rows`, per row oldest first.
    pub fn recorded_bundles(&self, domain: &str, rows: &BTreeSet<i64>) -> Result<Vec<RecordedBundle>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT bundle_id, manifest_sha256, site FROM bundles WHERE patient_id = ?1 AND domain = ?2 ORDER BY imported_at, bundle_id",
            )
            .map_err(|e| self.db_err(e))?;
        let mut out = Vec::new();
        for &owner in rows {
            let found: Vec<(String, String, String)> = stmt
                .query_map(params![owner, domain], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(|e| self.db_err(e))?
                .collect::<Result<_, _>>()
                .map_err(|e| self.db_err(e))?;
            out.extend(found.into_iter().map(|(bundle_id, digest, site)| RecordedBundle {
                bundle_id,
                digest,
                site,
                owner,
            }));
        }
        Ok(out)
    }

    /// The clusters around `seeds` as they would be with `edge` counted as linked and link
    /// `without` as not: member row → survivor row.
    pub fn clusters_around(
        &self,
        seeds: &[i64],
        edge: Option<(i64, i64)>,
        without: Option<i64>,
    ) -> Result<BTreeMap<i64, i64>, StoreError> {
        let affected = links::affected_rows(&self.conn, seeds).map_err(|e| self.db_err(e))?;
        links::clusters_with(&self.conn, &affected, edge, without).map_err(|e| self.db_err(e))
    }

    /// The survivor row patient row `row` is under now (itself when not merged).
    pub fn current_survivor(&self, row: i64) -> Result<i64, StoreError> {
        links::current_survivor(&self.conn, row).map_err(|e| self.db_err(e))
    }

    /// The sites of the linkage records of every patient in `row`'s cluster.
    pub fn cluster_sites(&self, row: i64) -> Result<BTreeSet<String>, StoreError> {
        let members = links::cluster_members(&self.conn, row).map_err(|e| self.db_err(e))?;
        let mut sites = BTreeSet::new();
        for m in members {
            let site: Option<String> = self
                .conn
                .query_row(
                    "SELECT site FROM linkage_records WHERE patient_id = ?1",
                    params![m],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| self.db_err(e))?;
            sites.extend(site);
        }
        Ok(sites)
    }

    /// The pseudonym (text) of patient row `row`.
    pub fn row_pseudonym(&self, row: i64) -> Result<String, StoreError> {
        self.conn
            .query_row("SELECT pseudonym FROM patients WHERE id = ?1", params![row], |r| {
                r.get(0)
            })
            .map_err(|e| self.db_err(e))
    }

    /// The links an interrupted command left work pending on (`merge`, `split`, `cleanup`).
    pub fn pending_links(&self) -> Result<Vec<(i64, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, pending FROM links WHERE pending IS NOT NULL ORDER BY id")
            .map_err(|e| self.db_err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.db_err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.db_err(e))?;
        Ok(rows)
    }

    /// Commits the acceptance of link `id` (merging `from` into `into`, pending the re-keying)
    /// with its `link-accept` audit entry.
    pub fn accept_link(
        &mut self,
        id: i64,
        from: &str,
        into: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.decide(
            "UPDATE links SET status = 'linked', pending = 'merge', decided_at = ?2, undone_at = NULL, merged_from = ?3, merged_into = ?4 WHERE id = ?1",
            params![id, now(), from, into],
            "link-accept",
            detail,
        )
    }

    /// Commits the undoing of link `id` (pending the split) with its `link-undo` audit entry.
    pub fn undo_link(&mut self, id: i64, detail: &serde_json::Value) -> Result<(), StoreError> {
        self.decide(
            "UPDATE links SET status = 'undone', pending = 'split', undone_at = ?2 WHERE id = ?1",
            params![id, now()],
            "link-undo",
            detail,
        )
    }

    /// Commits the rejection of link `id` with its `link-reject` audit entry.
    pub fn reject_link(&mut self, id: i64, detail: &serde_json::Value) -> Result<(), StoreError> {
        self.decide(
            "UPDATE links SET status = 'rejected', decided_at = ?2 WHERE id = ?1",
            params![id, now()],
            "link-reject",
            detail,
        )
    }

    /// Commits a decision (one statement on the link) with its audit entry.
    fn decide(
        &mut self,
        sql: &str,
        values: impl rusqlite::Params,
        action: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.write_tx(|tx, secrets| {
            tx.execute(sql, values)?;
            audit::append(tx, secrets, action, detail)?;
            Ok(())
        })
    }

    /// In one transaction: moves the instance rows of each bundle in `moved`, records the paths
    /// they leave for removal, recomputes the aliases of `seeds`' clusters, marks link `id`'s
    /// cleanup (or done) and `index.csv` stale, and writes the `link-merge` or `link-split` audit
    /// entry. Returns (bundles, instances) moved.
    pub fn commit_moves(
        &mut self,
        id: i64,
        domain: &str,
        seeds: &[i64],
        moved: &[MovedBundle<'_>],
    ) -> Result<(usize, usize), StoreError> {
        self.write_tx(|tx, secrets| {
            let (mut bundles, mut instances) = (0, 0);
            for m in moved {
                let old: Vec<String> = {
                    let mut stmt = tx
                        .prepare_cached("SELECT path FROM instances WHERE bundle_id = ?1 AND patient_id = ?2")?;
                    let found = stmt
                        .query_map(params![m.bundle_id, m.from], |r| r.get(0))?
                        .collect::<Result<_, _>>()?;
                    found
                };
                tx.execute(
                    "DELETE FROM instances WHERE bundle_id = ?1 AND patient_id = ?2",
                    params![m.bundle_id, m.from],
                )?;
                super::instances::insert(tx, m.to, m.bundle_id, m.rows)?;
                for r in m.rows {
                    tx.execute("DELETE FROM archive_cleanup WHERE path = ?1", params![r.path])?;
                }
                for o in old {
                    tx.execute(
                        "INSERT OR IGNORE INTO archive_cleanup (path) SELECT ?1 WHERE NOT EXISTS (SELECT 1 FROM instances WHERE path = ?1)",
                        params![o],
                    )?;
                }
                bundles += 1;
                instances += m.rows.len();
            }
            links::recompute_aliases(tx, seeds)?;
            tx.execute(
                "UPDATE links SET pending = CASE WHEN EXISTS (SELECT 1 FROM archive_cleanup) THEN 'cleanup' ELSE NULL END WHERE id = ?1",
                params![id],
            )?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('index_dirty', '1') ON CONFLICT(key) DO UPDATE SET value = '1'",
                [],
            )?;
            let status: String = tx
                .query_row("SELECT status FROM links WHERE id = ?1", params![id], |r| r.get(0))?;
            let action = if status == "linked" { "link-merge" } else { "link-split" };
            audit::append(
                tx,
                secrets,
                action,
                &serde_json::json!({ "link": id, "domain": domain, "bundles": bundles, "instances": instances }),
            )?;
            Ok((bundles, instances))
        })
    }

    /// The archive files recorded for removal that no instance row holds any more, in order.
    pub fn cleanup_paths(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT path FROM archive_cleanup WHERE NOT EXISTS (SELECT 1 FROM instances i WHERE i.path = archive_cleanup.path) ORDER BY path")
            .map_err(|e| self.db_err(e))?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .map_err(|e| self.db_err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.db_err(e))?;
        Ok(rows)
    }

    /// Clears the removal list and every link's `cleanup` mark, once the files are gone.
    pub fn clear_cleanup(&mut self) -> Result<(), StoreError> {
        self.write_tx(|tx, _| {
            // Every recorded path is now either removed or held by an instance row again.
            tx.execute("DELETE FROM archive_cleanup", [])?;
            tx.execute("UPDATE links SET pending = NULL WHERE pending = 'cleanup'", [])?;
            Ok(())
        })
    }

    /// The carried-out merge decisions of `domain` decided or undone at or after `since` (Unix
    /// seconds), by link: (link, decided at, undone at, status, merged from, merged into). A
    /// decision still pending in the archive is left out.
    #[allow(clippy::type_complexity)]
    pub fn merge_decisions_since(
        &self,
        domain: &str,
        since: i64,
    ) -> Result<Vec<(i64, Option<i64>, Option<i64>, String, String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, decided_at, undone_at, status, merged_from, merged_into FROM links
             WHERE domain = ?1 AND merged_from IS NOT NULL AND merged_into IS NOT NULL
               AND (pending IS NULL OR pending = 'cleanup')
               AND (decided_at >= ?2 OR undone_at >= ?2)
             ORDER BY id",
            )
            .map_err(|e| self.db_err(e))?;
        let rows = stmt
            .query_map(params![domain, since], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })
            .map_err(|e| self.db_err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.db_err(e))?;
        Ok(rows)
    }
}
