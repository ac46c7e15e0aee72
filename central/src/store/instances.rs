//! The archived instances the store records, and the rows of `index.csv` read back from them.
//!
//! This is the one place that numbers a patient's sessions (studies in order of shifted study
//! date, then study time) and counts the days since the first one, so that `index.csv`, a DICOM
//! release and a BIDS release (`ses-NN`, `sessions.tsv`) always agree, and a later rewrite of the
//! index (after a merge of two patients, say) renumbers them the same way.

use super::{Store, StoreError};
use crate::archive::IndexRow;
use crate::rekey::details_of;
use chrono::NaiveDate;
use rusqlite::{params, Transaction};
use std::path::Path;

/// Records `rows` (instances of one bundle of patient `patient_id`), replacing earlier rows at
/// the same archive paths.
pub(crate) fn insert(
    tx: &Transaction<'_>,
    patient_id: i64,
    bundle_id: &str,
    rows: &[IndexRow],
) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare(
        "INSERT OR REPLACE INTO instances (path, patient_id, bundle_id, study_uid, series_uid, sop_uid, modality,
             study_date, series_description, patient_age, patient_sex, study_time, series_number, instance_number,
             manufacturer, model, field_strength, sequence_name, slice_thickness, image_rows, image_columns)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
    )?;
    for r in rows {
        stmt.execute(params![
            r.path,
            patient_id,
            bundle_id,
            r.study_uid,
            r.series_uid,
            r.sop_uid,
            r.modality,
            r.study_date,
            r.series_description,
            r.patient_age,
            r.patient_sex,
            r.study_time,
            r.series_number,
            r.instance_number,
            r.manufacturer,
            r.model,
            r.field_strength,
            r.sequence_name,
            r.slice_thickness,
            r.rows,
            r.columns,
        ])?;
    }
    Ok(())
}

/// The query behind every index row; `{filter}` restricts the patients.
const ROWS_SQL: &str = "
WITH sel AS (
    SELECT i.*, p.pseudonym AS pseudonym, p.domain AS domain
    FROM instances i JOIN patients p ON p.id = i.patient_id {filter}
),
studies AS (
    SELECT patient_id, study_uid, MIN(study_date) AS study_date, MIN(COALESCE(study_time, '')) AS study_time
    FROM sel GROUP BY patient_id, study_uid
),
ranked AS (
    SELECT patient_id, study_uid, study_date,
        ROW_NUMBER() OVER (PARTITION BY patient_id ORDER BY study_date = '', study_date, study_time, study_uid) AS session_index,
        MIN(NULLIF(study_date, '')) OVER (PARTITION BY patient_id) AS first_date
    FROM studies
)
SELECT sel.pseudonym, sel.study_uid, sel.series_uid, sel.sop_uid, sel.modality, sel.study_date,
    sel.series_description, sel.path, sel.patient_age, sel.patient_sex, sel.domain,
    r.session_index, r.study_date, r.first_date,
    COALESCE(sel.series_number, ''), COALESCE(sel.instance_number, ''), COALESCE(sel.manufacturer, ''),
    COALESCE(sel.model, ''), COALESCE(sel.field_strength, ''), COALESCE(sel.sequence_name, ''),
    COALESCE(sel.slice_thickness, ''), COALESCE(sel.image_rows, ''), COALESCE(sel.image_columns, ''),
    COALESCE(sel.study_time, '')
FROM sel JOIN ranked r ON r.patient_id = sel.patient_id AND r.study_uid = sel.study_uid
ORDER BY sel.path";

/// Whole days from `first` to `date` (both `YYYYMMDD`); `None` when either is not a full date.
pub fn days_between(first: &str, date: &str) -> Option<i64> {
    let parse = |s: &str| NaiveDate::parse_from_str(s.trim(), "%Y%m%d").ok();
    Some((parse(date)? - parse(first)?).num_days())
}

impl Store {
    /// Streams every archived instance as an index row, ordered by path (so by patient, study,
    /// series), with its session number and days since the patient's first session.
    pub fn for_each_index_row(&self, f: impl FnMut(IndexRow) -> std::io::Result<()>) -> Result<(), StoreError> {
        self.index_rows(&ROWS_SQL.replace("{filter}", ""), [], f)
    }

    /// Streams the index rows of one patient (ordered by path), as [`Store::for_each_index_row`].
    pub fn for_each_index_row_of(
        &self,
        pseudonym: &str,
        f: impl FnMut(IndexRow) -> std::io::Result<()>,
    ) -> Result<(), StoreError> {
        self.index_rows(&ROWS_SQL.replace("{filter}", "WHERE p.pseudonym = ?1"), [pseudonym], f)
    }

    fn index_rows<P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        mut f: impl FnMut(IndexRow) -> std::io::Result<()>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.db_err(e))?;
        let mut rows = stmt.query(params).map_err(|e| self.db_err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.db_err(e))? {
            let get = |i: usize| -> Result<String, StoreError> { r.get(i).map_err(|e| self.db_err(e)) };
            let session: i64 = r.get(11).map_err(|e| self.db_err(e))?;
            let first: Option<String> = r.get(13).map_err(|e| self.db_err(e))?;
            let days = first
                .and_then(|first| days_between(&first, &get(12).ok()?))
                .map(|d| d.to_string())
                .unwrap_or_default();
            let row = IndexRow {
                pseudonym: get(0)?,
                study_uid: get(1)?,
                series_uid: get(2)?,
                sop_uid: get(3)?,
                modality: get(4)?,
                study_date: get(5)?,
                series_description: get(6)?,
                path: get(7)?,
                patient_age: get(8)?,
                patient_sex: get(9)?,
                domain: get(10)?,
                session_index: session.to_string(),
                days_since_first_session: days,
                series_number: get(14)?,
                instance_number: get(15)?,
                manufacturer: get(16)?,
                model: get(17)?,
                field_strength: get(18)?,
                sequence_name: get(19)?,
                slice_thickness: get(20)?,
                rows: get(21)?,
                columns: get(22)?,
                study_time: get(23)?,
            };
            f(row).map_err(|source| StoreError::Io {
                path: self.db_path(),
                source,
            })?;
        }
        Ok(())
    }

    /// The pseudonyms of domain `domain` that have archived instances, sorted.
    pub fn pseudonyms_with_instances(&self, domain: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT p.pseudonym FROM patients p
                 WHERE p.domain = ?1 AND EXISTS (SELECT 1 FROM instances i WHERE i.patient_id = p.id)
                 ORDER BY p.pseudonym",
            )
            .map_err(|e| self.db_err(e))?;
        let rows = stmt.query_map([domain], |r| r.get(0)).map_err(|e| self.db_err(e))?;
        rows.collect::<Result<Vec<String>, _>>().map_err(|e| self.db_err(e))
    }

    /// Fills the instance details (series number, scanner, geometry…) of rows archived before
    /// the store recorded them, by reading the header of each archived file once. Returns how
    /// many rows were filled and how many files could not be read (their details stay empty).
    pub fn backfill_details(&mut self, archive_dir: &Path) -> Result<(u64, u64), StoreError> {
        let path = self.db_path();
        let db = |source| StoreError::Database {
            path: path.clone(),
            source,
        };
        let complete: Option<String> = rusqlite::OptionalExtension::optional(self.conn.query_row(
            "SELECT value FROM meta WHERE key = 'details_complete'",
            [],
            |r| r.get(0),
        ))
        .map_err(db)?;
        if complete.as_deref() == Some("1") {
            return Ok((0, 0));
        }
        let (mut filled, mut unreadable) = (0u64, 0u64);
        loop {
            let batch: Vec<String> = {
                let mut stmt = self
                    .conn
                    .prepare_cached("SELECT path FROM instances WHERE series_number IS NULL ORDER BY path LIMIT 512")
                    .map_err(db)?;
                let rows = stmt.query_map([], |r| r.get(0)).map_err(db)?;
                rows.collect::<Result<_, _>>().map_err(db)?
            };
            if batch.is_empty() {
                break;
            }
            let tx = self.conn.transaction().map_err(db)?;
            for rel in &batch {
                let details = match pseal::part10::open_split(&archive_dir.join(rel)) {
                    Ok((object, _)) => details_of(&object),
                    Err(_) => {
                        unreadable += 1;
                        IndexRow::default()
                    }
                };
                tx.execute(
                    "UPDATE instances SET study_time = ?2, series_number = ?3, instance_number = ?4, manufacturer = ?5,
                         model = ?6, field_strength = ?7, sequence_name = ?8, slice_thickness = ?9, image_rows = ?10,
                         image_columns = ?11 WHERE path = ?1",
                    params![
                        rel,
                        details.study_time,
                        details.series_number,
                        details.instance_number,
                        details.manufacturer,
                        details.model,
                        details.field_strength,
                        details.sequence_name,
                        details.slice_thickness,
                        details.rows,
                        details.columns
                    ],
                )
                .map_err(db)?;
                filled += 1;
            }
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('index_dirty', '1') ON CONFLICT(key) DO UPDATE SET value = '1'",
                [],
            )
            .map_err(db)?;
            tx.commit().map_err(db)?;
        }
        // Rows archived from now on carry their details: the scan above is not needed again.
        // (Written only after filling something, so that a run that finds nothing changes
        // nothing; a new store records it at creation.)
        if filled > 0 {
            self.conn
                .execute(
                    "INSERT INTO meta (key, value) VALUES ('details_complete', '1') ON CONFLICT(key) DO UPDATE SET value = '1'",
                    [],
                )
                .map_err(db)?;
        }
        Ok((filled - unreadable, unreadable))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_count_whole_days_and_need_full_dates() {
        assert_eq!(days_between("20240101", "20240301"), Some(60));
        assert_eq!(days_between("20240301", "20240301"), Some(0));
        assert_eq!(days_between("", "20240301"), None);
        assert_eq!(days_between("2024", "20240301"), None);
    }
}
