//! The audit log: every import, enrolment, revocation, re-identification and release, chained.
//!
//! Each entry carries an HMAC (keyed by a store secret) over the previous entry's MAC and its own
//! fields, so any edit, insertion or deletion breaks the chain from that point on, and nobody
//! without the steward passphrase can re-chain an edited log. Entries never hold a local ID.

use super::{Store, StoreError, StoreSecrets};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

/// MAC that precedes the first entry.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit entry.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    /// Position in the chain (1-based).
    pub seq: i64,
    /// Unix time (seconds).
    pub at: i64,
    /// What happened (`init`, `enroll`, `revoke`, `import`, `reidentify`, `release`, …).
    pub action: String,
    /// Details as JSON text.
    pub detail: String,
    /// The chained MAC.
    pub hash: String,
}

/// Appends an entry inside the caller's transaction.
pub(crate) fn append(
    conn: &Connection,
    secrets: &StoreSecrets,
    action: &str,
    detail: &serde_json::Value,
) -> rusqlite::Result<()> {
    let last: Option<(i64, String)> = conn
        .query_row("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let (seq, prev) = match last {
        Some((s, h)) => (s + 1, h),
        None => (1, GENESIS.to_string()),
    };
    let at = super::now();
    let detail = detail.to_string();
    let hash = secrets.audit_mac(&prev, seq, at, action, &detail);
    conn.execute(
        "INSERT INTO audit (seq, at, action, detail, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![seq, at, action, detail, prev, hash],
    )?;
    // The keyed head pins the chain's length, so deleting the newest entries is detected too.
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('audit_head', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![head_value(secrets, seq, &hash)],
    )?;
    Ok(())
}

fn head_value(secrets: &StoreSecrets, seq: i64, hash: &str) -> String {
    format!("{seq}:{}", secrets.audit_mac(hash, seq, 0, "head", ""))
}

/// Where the chain breaks.
#[derive(Debug, Clone, Serialize)]
pub struct ChainBreak {
    /// The first entry that does not verify (or the position where one is missing).
    pub seq: i64,
    /// What is wrong.
    pub reason: String,
}

impl Store {
    /// Appends an audit entry in its own transaction.
    pub fn audit(&mut self, action: &str, detail: &serde_json::Value) -> Result<(), StoreError> {
        let path = self.db_path();
        let db = |source| StoreError::Database {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(db)?;
        append(&tx, &self.secrets, action, detail).map_err(db)?;
        tx.commit().map_err(db)
    }

    /// Every entry, oldest first.
    pub fn audit_entries(&self) -> Result<Vec<AuditEntry>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, at, action, detail, hash FROM audit ORDER BY seq")
            .map_err(|e| self.db_err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(AuditEntry {
                    seq: r.get(0)?,
                    at: r.get(1)?,
                    action: r.get(2)?,
                    detail: r.get(3)?,
                    hash: r.get(4)?,
                })
            })
            .map_err(|e| self.db_err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.db_err(e))
    }

    /// Verifies the whole chain; `Ok(None)` when it is intact.
    pub fn verify_audit(&self) -> Result<Option<ChainBreak>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, at, action, detail, prev_hash, hash FROM audit ORDER BY seq")
            .map_err(|e| self.db_err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.db_err(e))?;
        let mut prev = GENESIS.to_string();
        let mut expected_seq = 1i64;
        while let Some(r) = rows.next().map_err(|e| self.db_err(e))? {
            let seq: i64 = r.get(0).map_err(|e| self.db_err(e))?;
            let at: i64 = r.get(1).map_err(|e| self.db_err(e))?;
            let action: String = r.get(2).map_err(|e| self.db_err(e))?;
            let detail: String = r.get(3).map_err(|e| self.db_err(e))?;
            let prev_hash: String = r.get(4).map_err(|e| self.db_err(e))?;
            let hash: String = r.get(5).map_err(|e| self.db_err(e))?;
            if seq != expected_seq {
                return Ok(Some(ChainBreak {
                    seq: expected_seq,
                    reason: format!("entry {expected_seq} is missing (next is {seq})"),
                }));
            }
            if prev_hash != prev {
                return Ok(Some(ChainBreak {
                    seq,
                    reason: "does not link to the previous entry".into(),
                }));
            }
            if self.secrets.audit_mac(&prev, seq, at, &action, &detail) != hash {
                return Ok(Some(ChainBreak {
                    seq,
                    reason: "was altered (its MAC does not verify)".into(),
                }));
            }
            prev = hash;
            expected_seq += 1;
        }
        let head: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'audit_head'", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.db_err(e))?;
        let last = expected_seq - 1;
        if head.as_deref() != Some(head_value(&self.secrets, last, &prev).as_str()) {
            return Ok(Some(ChainBreak {
                seq: last + 1,
                reason: "the newest entries were deleted (the chain is shorter than its recorded head)".into(),
            }));
        }
        Ok(None)
    }
}
