//! What a release must tell researchers about linkage: which pseudonyms were merged into which
//! (one person seen at two hospitals) or split again since an earlier release, so that a
//! researcher who holds data under a retired pseudonym knows where it went.
//!
//! `release` (CHANGES file, issue 13) calls [`merges_since`] with the time of the domain's
//! previous release ([`last_release_at`]) and writes [`changes_text`] into the release's
//! `CHANGES`; see `docs/linkage.md`, "Releases".

use crate::store::{Store, StoreError};
use serde::Serialize;

/// One change of pseudonyms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MergeChange {
    /// When it was carried out (Unix seconds).
    pub at: i64,
    /// `merged` (the retired pseudonym's studies are now under the survivor) or `split` (they
    /// are under the retired pseudonym again).
    pub kind: &'static str,
    /// The link number in the store.
    pub link: i64,
    /// The pseudonym retired by the merge (restored by a split).
    pub retired: String,
    /// The surviving pseudonym.
    pub survivor: String,
}

/// Merges and splits carried out in `domain` at or after `since` (Unix seconds), oldest first.
/// A decision still pending in the archive is not listed until it is carried out.
pub fn merges_since(store: &Store, domain: &str, since: i64) -> Result<Vec<MergeChange>, StoreError> {
    let rows = store.merge_decisions_since(domain, since)?;
    let mut out = Vec::new();
    for (link, decided, undone, status, retired, survivor) in rows {
        if let Some(at) = decided.filter(|t| *t >= since && (status == "linked" || status == "undone")) {
            out.push(MergeChange {
                at,
                kind: "merged",
                link,
                retired: retired.clone(),
                survivor: survivor.clone(),
            });
        }
        if let Some(at) = undone.filter(|t| *t >= since && status == "undone") {
            out.push(MergeChange {
                at,
                kind: "split",
                link,
                retired,
                survivor,
            });
        }
    }
    out.sort_by_key(|c| (c.at, c.link, c.kind == "split"));
    Ok(out)
}

/// When the domain's latest release was made (from the audit log), or `None` before the first.
pub fn last_release_at(store: &Store, domain: &str) -> Result<Option<i64>, StoreError> {
    Ok(store
        .audit_entries()?
        .into_iter()
        .filter(|e| e.action == "release")
        .filter(|e| {
            serde_json::from_str::<serde_json::Value>(&e.detail)
                .is_ok_and(|d| d.get("domain").and_then(|v| v.as_str()) == Some(domain))
        })
        .map(|e| e.at)
        .max())
}

/// The lines a release's CHANGES gives for `changes` (empty when there are none).
pub fn changes_text(changes: &[MergeChange]) -> String {
    let mut text = String::new();
    for c in changes {
        let day = chrono::DateTime::from_timestamp(c.at, 0)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        let line = match c.kind {
            "merged" => format!(
                "{day}  {} merged into {}: one patient seen at two sites; the studies of {} are now under {} (dates shifted by {}'s offset, intervals kept)\n",
                c.retired, c.survivor, c.retired, c.survivor, c.survivor
            ),
            _ => format!(
                "{day}  {} split from {}: the merge was undone; the studies of {} are under {} again\n",
                c.retired, c.survivor, c.retired, c.retired
            ),
        };
        text.push_str(&line);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_read_as_sentences() {
        let text = changes_text(&[
            MergeChange {
                at: 1_800_000_000,
                kind: "merged",
                link: 3,
                retired: "AAAA-BBBB-CCCC1".into(),
                survivor: "DDDD-EEEE-FFFF2".into(),
            },
            MergeChange {
                at: 1_800_086_400,
                kind: "split",
                link: 3,
                retired: "AAAA-BBBB-CCCC1".into(),
                survivor: "DDDD-EEEE-FFFF2".into(),
            },
        ]);
        assert!(
            text.starts_with("2027-01-15  AAAA-BBBB-CCCC1 merged into DDDD-EEEE-FFFF2"),
            "{text}"
        );
        assert!(
            text.contains("2027-01-16  AAAA-BBBB-CCCC1 split from DDDD-EEEE-FFFF2"),
            "{text}"
        );
        assert_eq!(changes_text(&[]), "");
    }
}
