//! A release as a stream: age-decrypted with the recipient's identity, zstd-decompressed when it is compressed, read
//! as tar entry after entry, never written to disk. Instances are the entries laid out as the
//! archive is (`archive/<pseudonym>/<study>/<series>/<sop>.dcm`); `archive/index.csv` is read by
//! column name; any other entry (a README, checksums, a data dictionary) is passed over.

use super::stow::Part;
use super::PublishError;
use pseal::keys::StewardIdentity;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// Where the release's index is.
pub const INDEX_ENTRY: &str = "archive/index.csv";

/// The decrypted, decompressed tar stream of a release.
pub type Stream = tar::Archive<Box<dyn Read>>;

/// Opens `path` for reading with `identity`.
pub fn open(path: &Path, identity: &StewardIdentity, identity_file: &Path) -> Result<Stream, PublishError> {
    let bad = |reason: String| PublishError::Release {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let decryptor = age::Decryptor::new_buffered(BufReader::with_capacity(1 << 20, file))
        .map_err(|e| bad(format!("not an age-encrypted release: {e}")))?;
    if decryptor.is_scrypt() {
        return Err(bad(
            "it is encrypted with a passphrase, not to a recipient; a release is made with pseal-central release --to"
                .into(),
        ));
    }
    let plain = decryptor
        .decrypt(std::iter::once(identity.age_identity() as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => PublishError::NotForThisKey {
                path: path.to_path_buf(),
                identity: identity_file.to_path_buf(),
                recipient: identity.recipient().to_string(),
            },
            other => bad(other.to_string()),
        })?;
    // A release is a plain tar by default and zstd-compressed with `release --compress zstd`:
    // the frame's magic number says which.
    let mut plain = BufReader::with_capacity(1 << 16, plain);
    let head = plain.fill_buf().map_err(|e| bad(format!("cannot decrypt: {e}")))?;
    let stream: Box<dyn Read> = if head.starts_with(&ZSTD_MAGIC) {
        Box::new(zstd::stream::read::Decoder::with_buffer(plain).map_err(|e| bad(format!("not zstd inside: {e}")))?)
    } else {
        Box::new(plain)
    };
    Ok(tar::Archive::new(stream))
}

/// The first bytes of a zstd frame (RFC 8878, 3.1.1).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// What an entry of the release is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A DICOM instance of the archive.
    Instance(Part),
    /// `archive/index.csv`.
    Index,
    /// A `.dcm` entry outside the archive layout (it cannot be placed, so it is reported).
    Misplaced(String),
    /// Anything else (documentation, checksums, folders).
    Other,
}

/// True for a DICOM UID: 1–64 characters, digits in dot-separated components.
fn is_uid(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.split('.')
            .all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()))
}

/// Places an entry by its name.
pub fn classify(name: &str) -> Kind {
    if name == INDEX_ENTRY {
        return Kind::Index;
    }
    if !name.ends_with(".dcm") {
        return Kind::Other;
    }
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        ["archive", pseudonym, study, series, file]
            if !pseudonym.is_empty() && is_uid(study) && is_uid(series) && is_uid(&file[..file.len() - 4]) =>
        {
            Kind::Instance(Part {
                path: name.to_string(),
                study: study.to_string(),
                sop: file[..file.len() - 4].to_string(),
            })
        }
        _ => Kind::Misplaced(name.to_string()),
    }
}

/// One row of `index.csv`, the columns publishing needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRow {
    /// Path inside the release (`archive/` + the index's path).
    pub path: String,
    /// Study Instance UID.
    pub study: String,
    /// Series Instance UID.
    pub series: String,
    /// SOP Instance UID.
    pub sop: String,
}

/// Reads `index.csv` by column name, so columns added later (at any place) change nothing.
pub fn read_index(data: impl Read, release: &Path) -> Result<Vec<IndexRow>, PublishError> {
    let bad = |reason: String| PublishError::Index {
        path: release.to_path_buf(),
        reason: format!("{INDEX_ENTRY}: {reason}"),
    };
    let mut reader = csv::Reader::from_reader(data);
    let headers = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| bad(format!("no column {name}")))
    };
    let (path, study, series, sop) = (
        column("path")?,
        column("study_uid")?,
        column("series_uid")?,
        column("sop_uid")?,
    );
    let mut rows = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let record = record.map_err(|e| bad(format!("row {}: {e}", n + 2)))?;
        let get = |i: usize| record.get(i).unwrap_or_default().to_string();
        rows.push(IndexRow {
            path: format!("archive/{}", get(path)),
            study: get(study),
            series: get(series),
            sop: get(sop),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn entries_are_placed_by_the_archive_layout() {
        assert_eq!(
            classify("archive/4DW3-34RH-EFV4R/2.25.1/2.25.2/2.25.3.dcm"),
            Kind::Instance(Part {
                path: "archive/4DW3-34RH-EFV4R/2.25.1/2.25.2/2.25.3.dcm".into(),
                study: "2.25.1".into(),
                sop: "2.25.3".into(),
            })
        );
        assert_eq!(classify("archive/index.csv"), Kind::Index);
        assert_eq!(classify("archive/README.md"), Kind::Other);
        assert_eq!(classify("archive/SHA256SUMS"), Kind::Other);
        assert_eq!(classify("archive/participants.tsv"), Kind::Other);
        assert!(matches!(classify("archive/P/2.25.1/x.dcm"), Kind::Misplaced(_)));
        assert!(matches!(
            classify("archive/P/2.25.1/2.25.2/../x.dcm"),
            Kind::Misplaced(_)
        ));
        assert!(matches!(
            classify("archive/P/2.25.1/2.25.2/2.25..3.dcm"),
            Kind::Misplaced(_)
        ));
    }

    #[test]
    fn the_index_is_read_by_column_name_whatever_is_added() {
        let csv = "pseudonym,extra_before,study_uid,series_uid,sop_uid,path,added_later\n\
                   P,x,2.25.1,2.25.2,2.25.3,P/2.25.1/2.25.2/2.25.3.dcm,y\n";
        let rows = read_index(csv.as_bytes(), Path::new("r.age")).unwrap();
        assert_eq!(
            rows,
            vec![IndexRow {
                path: "archive/P/2.25.1/2.25.2/2.25.3.dcm".into(),
                study: "2.25.1".into(),
                series: "2.25.2".into(),
                sop: "2.25.3".into(),
            }]
        );
        let err = read_index("pseudonym,path\nP,x\n".as_bytes(), Path::new("r.age"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no column study_uid") && err.contains("r.age"), "{err}");
    }
}
