//! The store's linkage tables: each patient's encoded linkage record (sealed) and blocking
//! tokens, the links proposed between patients of different sites and what the steward decided,
//! and the aliases that send a merged patient's studies to the surviving pseudonym.
//!
//! Merged patients form clusters (the patients joined by linked links); a cluster's studies are
//! all under the pseudonym of its oldest patient (the survivor). `aliases` records, for every
//! other member, the survivor its studies are under *now*; it changes in the same transaction
//! as the archive's instance rows, so it always describes the archive. A link decided but not
//! yet carried out (`pending`) is finished by running the command again (`linkage::merge`).

use super::{now, PatientRef, Store, StoreError, StoreSecrets};
use crate::linkage::{self, Candidate, Clear, Decision, Encoded, FieldScores, LinkageKeys, Policy, Probe, Weights};
use pseal::linkage::LinkageRecord;
use pseal::pseudonym::Pseudonym;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Tables added for linkage (created on first open by a pseal-central that knows them; a store
/// without linkage keeps them empty).
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS linkage_records (
    patient_id INTEGER PRIMARY KEY REFERENCES patients(id),
    site       TEXT NOT NULL,
    sealed     BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS linkage_blocks (
    token      BLOB NOT NULL,
    patient_id INTEGER NOT NULL REFERENCES patients(id),
    PRIMARY KEY (token, patient_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS links (
    id           INTEGER PRIMARY KEY,
    domain       TEXT NOT NULL,
    patient_a    INTEGER NOT NULL REFERENCES patients(id),
    patient_b    INTEGER NOT NULL REFERENCES patients(id),
    score        REAL NOT NULL,
    scores       TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('queued', 'linked', 'rejected', 'undone')),
    auto         INTEGER NOT NULL DEFAULT 0,
    pending      TEXT CHECK (pending IN ('merge', 'split', 'cleanup')),
    merged_from  TEXT,
    merged_into  TEXT,
    created_at   INTEGER NOT NULL,
    decided_at   INTEGER,
    undone_at    INTEGER,
    UNIQUE (patient_a, patient_b)
);
CREATE INDEX IF NOT EXISTS links_by_status ON links (status, domain);
CREATE TABLE IF NOT EXISTS aliases (
    patient_id  INTEGER PRIMARY KEY REFERENCES patients(id),
    survivor_id INTEGER NOT NULL REFERENCES patients(id),
    since       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS aliases_by_survivor ON aliases (survivor_id);
CREATE TABLE IF NOT EXISTS archive_cleanup (
    path TEXT PRIMARY KEY
);
";

/// Linkage state of an open store: the import policy and the derived keys.
#[derive(Default)]
pub struct LinkageState {
    policy: Policy,
    keys: std::cell::OnceCell<LinkageKeys>,
}

/// A link's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkStatus {
    /// Waiting for the steward.
    Queued,
    /// Accepted (or linked automatically): one pseudonym.
    Linked,
    /// Rejected: two people.
    Rejected,
    /// Accepted, then undone: two pseudonyms again.
    Undone,
}

impl LinkStatus {
    fn parse(s: &str) -> LinkStatus {
        match s {
            "linked" => LinkStatus::Linked,
            "rejected" => LinkStatus::Rejected,
            "undone" => LinkStatus::Undone,
            _ => LinkStatus::Queued,
        }
    }

    /// The word `links list` prints.
    pub fn as_str(&self) -> &'static str {
        match self {
            LinkStatus::Queued => "queued",
            LinkStatus::Linked => "linked",
            LinkStatus::Rejected => "rejected",
            LinkStatus::Undone => "undone",
        }
    }
}

/// One side of a link: a (site, local ID) as the store knows it, without the local ID.
#[derive(Debug, Clone, Serialize)]
pub struct LinkSide {
    /// Patient row.
    #[serde(skip)]
    pub patient_id: i64,
    /// The patient's own pseudonym.
    pub pseudonym: String,
    /// The pseudonym its studies are under now (its own unless merged).
    pub current: String,
    /// The site.
    pub site: String,
}

/// A link as `links list` shows it: scores, pseudonyms and sites, no identifying value.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    /// Link number.
    pub id: i64,
    /// Pseudonym domain.
    pub domain: String,
    /// Status.
    pub status: LinkStatus,
    /// Linked automatically at import.
    pub auto: bool,
    /// A decision not yet carried out in the archive (`merge`, `split`, `cleanup`).
    pub pending: Option<String>,
    /// The weighted total.
    pub score: f64,
    /// Per-field scores.
    pub scores: FieldScores,
    /// The patient seen first.
    pub earlier: LinkSide,
    /// The patient seen later.
    pub later: LinkSide,
    /// When proposed (Unix seconds).
    pub created_at: i64,
    /// When accepted, linked or rejected.
    pub decided_at: Option<i64>,
    /// When undone.
    pub undone_at: Option<i64>,
    /// At the merge: the pseudonym retired.
    pub merged_from: Option<String>,
    /// At the merge: the surviving pseudonym.
    pub merged_into: Option<String>,
}

/// What import did with a new patient's linkage fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportLink {
    /// The bundle carried no linkage fields.
    NotAsked,
    /// The patient's linkage record was stored before (an earlier bundle); nothing to do.
    AlreadyKnown,
    /// Stored; no possible match.
    Unmatched,
    /// Stored; this many possible matches queued for review.
    Queued(usize),
    /// Stored and linked automatically (the link number).
    AutoLinked(i64),
}

impl Store {
    /// Sets the linkage policy used by imports from now on (not stored: each import run says it).
    pub fn set_link_policy(&mut self, policy: Policy) -> Result<(), StoreError> {
        policy.validate()?;
        self.linkage.policy = policy;
        Ok(())
    }

    /// The linkage policy in force.
    pub fn link_policy(&self) -> Policy {
        self.linkage.policy
    }

    /// The linkage keys (derived from a store secret on first use).
    pub fn linkage_keys(&self) -> &LinkageKeys {
        self.linkage.keys.get_or_init(|| self.secrets.linkage_keys())
    }

    /// The stored encoded record of a patient.
    pub fn linkage_record(&self, patient_id: i64) -> Result<Option<(String, Encoded)>, StoreError> {
        let row: Option<(String, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT site, sealed FROM linkage_records WHERE patient_id = ?1",
                params![patient_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.db_err(e))?;
        row.map(|(site, sealed)| Ok((site, open_encoded(&self.secrets, patient_id, &sealed)?)))
            .transpose()
    }

    /// Import's linkage step for `patient` (just looked up or minted at `site`): the first time
    /// the patient's linkage fields arrive they are normalised, encoded and stored with their
    /// blocking tokens, then matched, and the clear record is dropped. Queued links and an
    /// automatic link are committed with the record, in one transaction, and audited.
    pub fn link_on_import(
        &mut self,
        domain: &str,
        site: &str,
        patient: &PatientRef,
        record: LinkageRecord,
    ) -> Result<ImportLink, StoreError> {
        let path = self.db_path();
        let keys = self.linkage.keys.get_or_init(|| self.secrets.linkage_keys());
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| LinkError::Db(e).into_store(&path))?;
        let outcome = link_in(
            &tx,
            &self.secrets,
            keys,
            &self.linkage.policy,
            domain,
            site,
            patient,
            record,
        )
        .map_err(|e| e.into_store(&path))?;
        tx.commit().map_err(|e| LinkError::Db(e).into_store(&path))?;
        Ok(outcome)
    }

    /// [`link_on_import`](Self::link_on_import) for many patients of one site in one
    /// transaction (one sync), in order, each matched against everything stored before it. For
    /// bulk loading (benchmarks, migrations); an import links one patient per bundle.
    pub fn link_many(
        &mut self,
        domain: &str,
        site: &str,
        items: Vec<(PatientRef, LinkageRecord)>,
    ) -> Result<Vec<ImportLink>, StoreError> {
        let path = self.db_path();
        let keys = self.linkage.keys.get_or_init(|| self.secrets.linkage_keys());
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| LinkError::Db(e).into_store(&path))?;
        let mut out = Vec::with_capacity(items.len());
        for (patient, record) in items {
            out.push(
                link_in(
                    &tx,
                    &self.secrets,
                    keys,
                    &self.linkage.policy,
                    domain,
                    site,
                    &patient,
                    record,
                )
                .map_err(|e| e.into_store(&path))?,
            );
        }
        tx.commit().map_err(|e| LinkError::Db(e).into_store(&path))?;
        Ok(out)
    }

    /// What matching would decide for `record` as a new patient of `site` (row `patient_id`),
    /// without storing anything: blocking, scoring and the decision under the current policy.
    /// The benchmark times this; import runs the same steps inside its transaction.
    pub fn match_record(
        &self,
        domain: &str,
        site: &str,
        patient_id: i64,
        record: &LinkageRecord,
    ) -> Result<Decision, StoreError> {
        let path = self.db_path();
        let keys = self.linkage_keys();
        let clear = Clear::from_record(record);
        let tokens = keys.block_tokens(domain, &clear);
        let mut probe = Probe::new(keys, clear);
        let candidates = candidates(&self.conn, &self.secrets, domain, site, patient_id, &tokens, &mut probe)
            .map_err(|e| e.into_store(&path))?;
        Ok(linkage::decide(candidates, &self.linkage.policy))
    }

    /// The patient whose pseudonym and date offset `patient`'s studies are written under: the
    /// survivor of its cluster, or itself.
    pub fn effective_patient(&self, patient: &PatientRef) -> Result<PatientRef, StoreError> {
        let survivor: Option<i64> = self
            .conn
            .query_row(
                "SELECT survivor_id FROM aliases WHERE patient_id = ?1",
                params![patient.id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.db_err(e))?;
        match survivor {
            None => Ok(patient.clone()),
            Some(id) => self.patient_ref(id),
        }
    }

    /// A patient row as import needs it (pseudonym and date offset, opened from its sealed row).
    pub fn patient_ref(&self, id: i64) -> Result<PatientRef, StoreError> {
        let text: String = self
            .conn
            .query_row("SELECT pseudonym FROM patients WHERE id = ?1", params![id], |r| {
                r.get(0)
            })
            .map_err(|e| self.db_err(e))?;
        let pseudonym: Pseudonym = text
            .parse()
            .map_err(|e| StoreError::Damaged(format!("stored pseudonym {text} is malformed: {e}")))?;
        let (_, identity) = self
            .open_identity(&pseudonym)?
            .ok_or_else(|| StoreError::Damaged(format!("patient row {id} vanished")))?;
        Ok(PatientRef {
            id,
            pseudonym,
            date_offset_days: identity.date_offset_days,
            minted: false,
        })
    }

    /// Links of `domain` (every domain when `None`), newest first; queued only unless `all`.
    pub fn links(&self, domain: Option<&str>, all: bool) -> Result<Vec<Link>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id FROM links WHERE (?1 IS NULL OR domain = ?1) AND (?2 OR status = 'queued' OR pending IS NOT NULL)
                 ORDER BY id",
            )
            .map_err(|e| self.db_err(e))?;
        let ids: Vec<i64> = stmt
            .query_map(params![domain, all], |r| r.get(0))
            .map_err(|e| self.db_err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.db_err(e))?;
        ids.into_iter()
            .map(|id| {
                self.link(id)?
                    .ok_or_else(|| StoreError::Damaged(format!("link {id} vanished")))
            })
            .collect()
    }

    /// One link.
    pub fn link(&self, id: i64) -> Result<Option<Link>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT domain, status, auto, pending, score, scores, patient_a, patient_b, created_at, decided_at, undone_at, merged_from, merged_into
                 FROM links WHERE id = ?1",
                params![id],
                |r| {
                    Ok((
                        (r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, bool>(2)?, r.get::<_, Option<String>>(3)?),
                        (r.get::<_, f64>(4)?, r.get::<_, String>(5)?, r.get::<_, i64>(6)?, r.get::<_, i64>(7)?),
                        (r.get::<_, i64>(8)?, r.get::<_, Option<i64>>(9)?, r.get::<_, Option<i64>>(10)?),
                        (r.get::<_, Option<String>>(11)?, r.get::<_, Option<String>>(12)?),
                    ))
                },
            )
            .optional()
            .map_err(|e| self.db_err(e))?;
        let Some((
            (domain, status, auto, pending),
            (score, scores, a, b),
            (created_at, decided_at, undone_at),
            (merged_from, merged_into),
        )) = row
        else {
            return Ok(None);
        };
        let scores: FieldScores = serde_json::from_str(&scores)
            .map_err(|e| StoreError::Damaged(format!("the scores of link {id} are damaged: {e}")))?;
        Ok(Some(Link {
            id,
            domain,
            status: LinkStatus::parse(&status),
            auto,
            pending,
            score,
            scores,
            earlier: self.link_side(a)?,
            later: self.link_side(b)?,
            created_at,
            decided_at,
            undone_at,
            merged_from,
            merged_into,
        }))
    }

    fn link_side(&self, patient_id: i64) -> Result<LinkSide, StoreError> {
        self.conn
            .query_row(
                "SELECT p.pseudonym, COALESCE(s.pseudonym, p.pseudonym), COALESCE(r.site, '')
                 FROM patients p LEFT JOIN aliases a ON a.patient_id = p.id LEFT JOIN patients s ON s.id = a.survivor_id
                 LEFT JOIN linkage_records r ON r.patient_id = p.id WHERE p.id = ?1",
                params![patient_id],
                |r| {
                    Ok(LinkSide {
                        patient_id,
                        pseudonym: r.get(0)?,
                        current: r.get(1)?,
                        site: r.get(2)?,
                    })
                },
            )
            .map_err(|e| self.db_err(e))
    }

    /// Queued links per status, for reports: `(status, count)`.
    pub fn link_counts(&self, domain: &str) -> Result<BTreeMap<String, i64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT status, COUNT(*) FROM links WHERE domain = ?1 GROUP BY status")
            .map_err(|e| self.db_err(e))?;
        let rows = stmt
            .query_map(params![domain], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.db_err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.db_err(e))
    }

    /// How many patients share each blocking token: group size → number of tokens with that
    /// many patients (what a thief of the store file sees of the blocks; `docs/linkage.md`).
    pub fn block_group_sizes(&self) -> Result<BTreeMap<i64, i64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT n, COUNT(*) FROM (SELECT COUNT(*) AS n FROM linkage_blocks GROUP BY token) GROUP BY n")
            .map_err(|e| self.db_err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.db_err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.db_err(e))
    }

    /// The pseudonym a retired pseudonym's studies are under now, read without the passphrase
    /// (aliases map pseudonyms to pseudonyms only). `None` when `pseudonym` is not merged.
    pub fn merged_into(dir: &std::path::Path, pseudonym: &str) -> Result<Option<String>, StoreError> {
        let db_path = dir.join(super::DATABASE_FILE);
        if !db_path.exists() {
            return Err(StoreError::Missing(dir.to_path_buf()));
        }
        let db = |source| StoreError::Database {
            path: db_path.clone(),
            source,
        };
        let conn = Connection::open_with_flags(&db_path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(db)?;
        let has_table: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'aliases')",
                [],
                |r| r.get(0),
            )
            .map_err(db)?;
        if !has_table {
            return Ok(None);
        }
        conn.query_row(
            "SELECT s.pseudonym FROM patients p JOIN aliases a ON a.patient_id = p.id JOIN patients s ON s.id = a.survivor_id WHERE p.pseudonym = ?1",
            params![pseudonym],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)
    }

    /// The (site, local ID) rows merged into `pseudonym`'s patient (for `reidentify`).
    pub fn merged_rows(&self, pseudonym: &Pseudonym) -> Result<Vec<Pseudonym>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT p.pseudonym FROM aliases a JOIN patients p ON p.id = a.patient_id JOIN patients s ON s.id = a.survivor_id
                 WHERE s.pseudonym = ?1 ORDER BY p.id",
            )
            .map_err(|e| self.db_err(e))?;
        let rows: Vec<String> = stmt
            .query_map(params![pseudonym.to_string()], |r| r.get(0))
            .map_err(|e| self.db_err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.db_err(e))?;
        rows.iter()
            .map(|t| {
                t.parse()
                    .map_err(|e| StoreError::Damaged(format!("stored pseudonym {t} is malformed: {e}")))
            })
            .collect()
    }
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn pseudonym_of(conn: &Connection, patient: i64) -> rusqlite::Result<String> {
    conn.query_row("SELECT pseudonym FROM patients WHERE id = ?1", params![patient], |r| {
        r.get(0)
    })
}

fn pseudonyms_of(conn: &Connection, patients: &[i64]) -> rusqlite::Result<Vec<String>> {
    patients.iter().map(|p| pseudonym_of(conn, *p)).collect()
}

fn insert_link(tx: &Transaction<'_>, domain: &str, c: &Candidate, new: i64, status: &str) -> rusqlite::Result<i64> {
    let (a, b) = (c.patient.min(new), c.patient.max(new));
    let scores = serde_json::to_string(&c.scores).unwrap_or_else(|_| "{}".into());
    tx.execute(
        "INSERT INTO links (domain, patient_a, patient_b, score, scores, status, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (patient_a, patient_b) DO NOTHING",
        params![domain, a, b, c.scores.total, scores, status, now()],
    )?;
    tx.query_row(
        "SELECT id FROM links WHERE patient_a = ?1 AND patient_b = ?2",
        params![a, b],
        |r| r.get(0),
    )
}

/// The clusters (patients joined by linked links) of `seeds`: member → survivor (the lowest row,
/// the patient seen first). `edge` counts as one more linked link and link `without` as not
/// linked, to plan a decision before it is committed.
pub(crate) fn clusters_with(
    conn: &Connection,
    seeds: &BTreeSet<i64>,
    edge: Option<(i64, i64)>,
    without: Option<i64>,
) -> rusqlite::Result<BTreeMap<i64, i64>> {
    let mut neighbours = conn.prepare_cached(
        "SELECT patient_b FROM links WHERE status = 'linked' AND patient_a = ?1 AND id IS NOT ?2
         UNION SELECT patient_a FROM links WHERE status = 'linked' AND patient_b = ?1 AND id IS NOT ?2",
    )?;
    let mut out = BTreeMap::new();
    for &seed in seeds {
        if out.contains_key(&seed) {
            continue;
        }
        let mut members = BTreeSet::from([seed]);
        let mut queue = VecDeque::from([seed]);
        while let Some(x) = queue.pop_front() {
            let mut next: Vec<i64> = neighbours
                .query_map(params![x, without], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            match edge {
                Some((a, b)) if a == x => next.push(b),
                Some((a, b)) if b == x => next.push(a),
                _ => {}
            }
            for n in next {
                if members.insert(n) {
                    queue.push_back(n);
                }
            }
        }
        let survivor = members.first().copied().unwrap_or(seed);
        for m in members {
            out.insert(m, survivor);
        }
    }
    Ok(out)
}

/// The survivor `patient`'s studies are under now (per `aliases`).
pub(crate) fn current_survivor(conn: &Connection, patient: i64) -> rusqlite::Result<i64> {
    Ok(conn
        .query_row(
            "SELECT survivor_id FROM aliases WHERE patient_id = ?1",
            params![patient],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(patient))
}

/// The patients under the same pseudonym as `patient` now (per `aliases`), itself included.
pub(crate) fn cluster_members(conn: &Connection, patient: i64) -> rusqlite::Result<BTreeSet<i64>> {
    let survivor = current_survivor(conn, patient)?;
    let mut stmt = conn.prepare_cached("SELECT patient_id FROM aliases WHERE survivor_id = ?1")?;
    let mut members: BTreeSet<i64> = stmt
        .query_map(params![survivor], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    members.insert(survivor);
    members.insert(patient);
    Ok(members)
}

/// Every patient a change around `seeds` can move: the seeds' current groups and their link
/// clusters.
pub(crate) fn affected_rows(conn: &Connection, seeds: &[i64]) -> rusqlite::Result<BTreeSet<i64>> {
    let mut all = BTreeSet::new();
    for &s in seeds {
        all.extend(cluster_members(conn, s)?);
    }
    let linked: BTreeSet<i64> = clusters_with(conn, &all, None, None)?.into_keys().collect();
    for &m in &linked {
        all.extend(cluster_members(conn, m)?);
    }
    Ok(all)
}

/// Sets `aliases` to the link clusters around `seeds`.
pub(crate) fn recompute_aliases(conn: &Connection, seeds: &[i64]) -> rusqlite::Result<()> {
    let affected = affected_rows(conn, seeds)?;
    let map = clusters_with(conn, &affected, None, None)?;
    for (member, survivor) in map {
        if member == survivor {
            conn.execute("DELETE FROM aliases WHERE patient_id = ?1", params![member])?;
        } else {
            conn.execute(
                "INSERT INTO aliases (patient_id, survivor_id, since) VALUES (?1, ?2, ?3)
                 ON CONFLICT(patient_id) DO UPDATE SET survivor_id = excluded.survivor_id,
                 since = CASE WHEN aliases.survivor_id = excluded.survivor_id THEN aliases.since ELSE excluded.since END",
                params![member, survivor, now()],
            )?;
        }
    }
    Ok(())
}

/// A failure inside a linkage step, before the database path is attached.
enum LinkError {
    Db(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for LinkError {
    fn from(e: rusqlite::Error) -> Self {
        LinkError::Db(e)
    }
}

impl LinkError {
    fn into_store(self, path: &std::path::Path) -> StoreError {
        match self {
            LinkError::Db(source) => StoreError::Database {
                path: path.to_path_buf(),
                source,
            },
            LinkError::Store(e) => e,
        }
    }
}

fn linkage_aad(patient_id: i64) -> Vec<u8> {
    let mut aad = b"pseal linkage record v1".to_vec();
    aad.extend_from_slice(&patient_id.to_be_bytes());
    aad
}

fn open_encoded(secrets: &StoreSecrets, patient_id: i64, sealed: &[u8]) -> Result<Encoded, StoreError> {
    let plain = secrets
        .open_row(&linkage_aad(patient_id), sealed)
        .map_err(|e| StoreError::Damaged(format!("the linkage record of patient row {patient_id}: {e}")))?;
    Encoded::from_bytes(&plain)
        .map_err(|e| StoreError::Damaged(format!("the linkage record of patient row {patient_id}: {e}")))
}

/// The candidates of `probe` in `domain`: stored patients of other sites sharing a blocking
/// token, scored, leaving out clusters that already hold a patient of `site`.
fn candidates(
    conn: &Connection,
    secrets: &StoreSecrets,
    domain: &str,
    site: &str,
    patient_id: i64,
    tokens: &[[u8; 16]],
    probe: &mut Probe<'_>,
) -> Result<Vec<Candidate>, LinkError> {
    if tokens.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders = vec!["?"; tokens.len()].join(",");
    // Tokens are keyed with the domain, so they find only this domain's patients; the query
    // starts from the token index and never scans the store.
    let _ = domain;
    let sql = format!(
        "SELECT DISTINCT r.patient_id, r.site, COALESCE(a.survivor_id, r.patient_id), r.sealed
         FROM linkage_blocks b CROSS JOIN linkage_records r ON r.patient_id = b.patient_id
         LEFT JOIN aliases a ON a.patient_id = r.patient_id
         WHERE b.token IN ({placeholders})"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let values: Vec<&dyn rusqlite::ToSql> = tokens.iter().map(|t| t as &dyn rusqlite::ToSql).collect();
    let rows: Vec<(i64, String, i64, Vec<u8>)> = stmt
        .query_map(values.as_slice(), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    let weights = Weights::default_weights();
    let mut excluded = BTreeSet::new();
    let mut out = Vec::with_capacity(rows.len());
    for (candidate, candidate_site, cluster, sealed) in rows {
        if candidate == patient_id {
            continue;
        }
        if candidate_site == site {
            excluded.insert(cluster);
            continue;
        }
        let encoded = open_encoded(secrets, candidate, &sealed).map_err(LinkError::Store)?;
        out.push(Candidate {
            patient: candidate,
            cluster,
            scores: probe.score(&encoded, &weights),
        });
    }
    // A cluster reached only through another row may still hold a patient of this site.
    let mut site_of = conn.prepare_cached("SELECT site FROM linkage_records WHERE patient_id = ?1")?;
    for cluster in out.iter().map(|c| c.cluster).collect::<BTreeSet<_>>() {
        if excluded.contains(&cluster) {
            continue;
        }
        for member in cluster_members(conn, cluster)? {
            let member_site: Option<String> = site_of.query_row(params![member], |r| r.get(0)).optional()?;
            if member_site.as_deref() == Some(site) {
                excluded.insert(cluster);
                break;
            }
        }
    }
    out.retain(|c| !excluded.contains(&c.cluster));
    Ok(out)
}

/// The linkage step of one patient inside the caller's transaction.
#[allow(clippy::too_many_arguments)]
fn link_in(
    tx: &Transaction<'_>,
    secrets: &StoreSecrets,
    keys: &LinkageKeys,
    policy: &Policy,
    domain: &str,
    site: &str,
    patient: &PatientRef,
    record: LinkageRecord,
) -> Result<ImportLink, LinkError> {
    let known: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM linkage_records WHERE patient_id = ?1)",
        params![patient.id],
        |r| r.get(0),
    )?;
    if known {
        return Ok(ImportLink::AlreadyKnown);
    }
    let clear = Clear::from_record(&record);
    drop(record);
    let encoded = keys.encode(&clear);
    let tokens = keys.block_tokens(domain, &clear);
    let empty = clear.is_empty();
    let mut probe = Probe::new(keys, clear);
    let found = if empty {
        Vec::new()
    } else {
        candidates(tx, secrets, domain, site, patient.id, &tokens, &mut probe)?
    };
    // The clear fields go now: from here on only encodings exist.
    drop(probe);
    let has_bundles: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM bundles WHERE patient_id = ?1)",
        params![patient.id],
        |r| r.get(0),
    )?;
    let mut policy = *policy;
    // A patient whose studies are already archived is merged only by a steward's `accept`,
    // which re-keys them; linking automatically is for a patient seen for the first time.
    policy.auto_link &= !has_bundles;
    let decision = linkage::decide(found, &policy);
    let sealed = secrets
        .seal_row(&linkage_aad(patient.id), &encoded.to_bytes())
        .map_err(|e| LinkError::Store(StoreError::Damaged(e.to_string())))?;
    tx.execute(
        "INSERT INTO linkage_records (patient_id, site, sealed, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![patient.id, site, sealed, now()],
    )?;
    {
        let mut insert =
            tx.prepare_cached("INSERT OR IGNORE INTO linkage_blocks (token, patient_id) VALUES (?1, ?2)")?;
        for t in &tokens {
            insert.execute(params![&t[..], patient.id])?;
        }
    }
    Ok(match decision {
        Decision::Unmatched => ImportLink::Unmatched,
        Decision::Queue(list) => {
            for c in &list {
                let id = insert_link(tx, domain, c, patient.id, "queued")?;
                super::audit::append(
                    tx,
                    secrets,
                    "link-propose",
                    &serde_json::json!({ "link": id, "domain": domain, "score": round(c.scores.total), "pseudonyms": pseudonyms_of(tx, &[c.patient, patient.id])? }),
                )?;
            }
            ImportLink::Queued(list.len())
        }
        Decision::AutoLink(c) => {
            let id = insert_link(tx, domain, &c, patient.id, "linked")?;
            let into = pseudonym_of(tx, c.cluster)?;
            let from = pseudonym_of(tx, patient.id)?;
            tx.execute(
                "UPDATE links SET auto = 1, decided_at = ?2, merged_from = ?3, merged_into = ?4 WHERE id = ?1",
                params![id, now(), from, into],
            )?;
            // Nothing of the new patient is archived yet, so the alias is the whole merge.
            recompute_aliases(tx, &[patient.id, c.patient])?;
            super::audit::append(
                tx,
                secrets,
                "link-auto",
                &serde_json::json!({ "link": id, "domain": domain, "score": round(c.scores.total), "merged_from": from, "merged_into": into }),
            )?;
            ImportLink::AutoLinked(id)
        }
    })
}
