//! dcm2niix, the DICOM-to-NIfTI converter every BIDS tool uses: finding it, recording its
//! version, running it on one series at a time, and cleaning the JSON sidecar it writes.
//!
//! pseal runs it with fixed options so that a release is reproducible: the user's defaults file
//! is ignored (`-g i`), images are compressed by dcm2niix's own zlib code (`-z i`: a gzip header
//! without time or name, the same bytes whether or not `pigz` is installed), BIDS sidecars are
//! anonymised (`-ba y`), and output names are a fixed stem (`-f pseal`), never a patient field.

use std::path::{Path, PathBuf};
use std::process::Command;
use thiserror::Error;

/// Environment variable naming the dcm2niix program (the `--dcm2niix` flag wins over it).
pub const ENV: &str = "PSEAL_DCM2NIIX";

/// How to install dcm2niix, for the error when it is missing.
pub const INSTALL_HINT: &str = "install it (Debian/Ubuntu: `apt install dcm2niix`; any system with Python: \
     `pip install dcm2niix`; conda: `conda install -c conda-forge dcm2niix`; or a release from \
     https://github.com/rordenlab/dcm2niix/releases), or name the program with --dcm2niix PATH or PSEAL_DCM2NIIX";

/// The file-name stem dcm2niix writes (`-f`).
const STEM: &str = "pseal";

/// The options pseal gives dcm2niix (before `-o OUT IN`), as recorded in each release's README.
pub const OPTIONS: [&str; 18] = [
    "-g", "i", "-b", "y", "-ba", "y", "-z", "i", "-f", STEM, "-d", "0", "-w", "1", "-x", "n", "-v", "0",
];

/// Sidecar keys removed although `-ba y` keeps them: they name the site, a person or a date (the
/// files hold `ANONYMIZED` or shifted dates; a BIDS release holds no absolute date at all).
const REMOVED_KEYS: [&str; 14] = [
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "StationName",
    "DeviceSerialNumber",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "OperatorsName",
    "AccessionNumber",
    "StudyID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "ImageComments",
    "PatientIdentityRemoved",
];

/// dcm2niix cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConverterError {
    /// Not found.
    #[error("--format bids needs dcm2niix, which was not found on PATH; {INSTALL_HINT}")]
    Missing,
    /// Named, but cannot be run.
    #[error("dcm2niix at {path} cannot be run: {source}; {INSTALL_HINT}")]
    Run {
        /// The program.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Runs, but does not say a dcm2niix version.
    #[error("{path} does not report a dcm2niix version (it printed: {output}); {INSTALL_HINT}")]
    Version {
        /// The program.
        path: PathBuf,
        /// The start of what it printed.
        output: String,
    },
}

/// A usable dcm2niix.
#[derive(Debug, Clone)]
pub struct Dcm2niix {
    path: PathBuf,
    version: String,
}

/// One image dcm2niix wrote for a series, and its companion files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// What dcm2niix appended to the stem (`""`, `"_e2"`, `"_ph"`…).
    pub postfix: String,
    /// The `.nii.gz` file.
    pub nifti: PathBuf,
    /// The `.json` sidecar.
    pub json: Option<PathBuf>,
    /// The `.bval` file (diffusion).
    pub bval: Option<PathBuf>,
    /// The `.bvec` file (diffusion).
    pub bvec: Option<PathBuf>,
}

/// Looks for `name` in the folders of `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

impl Dcm2niix {
    /// Finds dcm2niix: `explicit` (the `--dcm2niix` flag), else [`ENV`], else `PATH`; asks it
    /// for its version.
    pub fn locate(explicit: Option<&Path>) -> Result<Dcm2niix, ConverterError> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => match std::env::var_os(ENV).filter(|v| !v.is_empty()) {
                Some(p) => PathBuf::from(p),
                None => on_path("dcm2niix").ok_or(ConverterError::Missing)?,
            },
        };
        let out = Command::new(&path)
            .arg("--version")
            .output()
            .map_err(|source| ConverterError::Run {
                path: path.clone(),
                source,
            })?;
        // dcm2niix prints its version and exits with status 3 (its "version shown" code).
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let version = text
            .split(|c: char| c.is_whitespace() || c == '(')
            .find(|w| {
                w.len() > 2
                    && w.starts_with('v')
                    && w[1..].starts_with(|c: char| c.is_ascii_digit())
                    && w[1..]
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            })
            .filter(|_| text.contains("dcm2niiX") || text.contains("dcm2niix"))
            .map(str::to_string)
            .ok_or_else(|| ConverterError::Version {
                path: path.clone(),
                output: text.chars().take(120).collect::<String>().replace('\n', " "),
            })?;
        Ok(Dcm2niix { path, version })
    }

    /// The program.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its version, as it reports it (e.g. `v1.0.20220720`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Converts the DICOM files in `input` (one series) into the empty folder `output`; returns
    /// the images written, or why there is none. The reason quotes dcm2niix's own error lines
    /// (about de-identified archive files, never a hospital's).
    pub fn convert(&self, input: &Path, output: &Path) -> Result<Vec<Image>, ConvertError> {
        let out = Command::new(&self.path)
            .args(OPTIONS)
            .arg("-o")
            .arg(output)
            .arg(input)
            .output()
            .map_err(ConvertError::Run)?;
        let images = images_in(output).map_err(ConvertError::ReadOutput)?;
        if images.is_empty() || !out.status.success() {
            let said = format!(
                "{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let lines: Vec<&str> = said
                .lines()
                .map(str::trim)
                .filter(|l| l.starts_with("Error") || l.starts_with("Warning") || l.contains("Unsupported"))
                .take(3)
                .collect();
            let status = out
                .status
                .code()
                .map_or("a signal".to_string(), |c| format!("status {c}"));
            let detail = if lines.is_empty() {
                String::new()
            } else {
                format!(": {}", lines.join(" / ").chars().take(300).collect::<String>())
            };
            return Err(if images.is_empty() {
                ConvertError::NoImage { status, detail }
            } else {
                ConvertError::Failed { status, detail }
            });
        }
        Ok(images)
    }
}

/// Why dcm2niix gave no usable images for a series (a reason the release lists; it quotes
/// dcm2niix's own lines about de-identified archive files, never a hospital's).
#[derive(Debug, Error)]
pub enum ConvertError {
    /// The program could not be started.
    #[error("dcm2niix could not be run: {0}")]
    Run(std::io::Error),
    /// Its output folder could not be listed.
    #[error("reading dcm2niix's output: {0}")]
    ReadOutput(std::io::Error),
    /// It wrote no image.
    #[error("dcm2niix wrote no image (exit {status}){detail}")]
    NoImage {
        /// `status N` or `a signal`.
        status: String,
        /// `: ` and up to three of its error lines, or nothing.
        detail: String,
    },
    /// It wrote images but failed.
    #[error("dcm2niix failed (exit {status}){detail}")]
    Failed {
        /// `status N` or `a signal`.
        status: String,
        /// `: ` and up to three of its error lines, or nothing.
        detail: String,
    },
}

/// Why a dcm2niix sidecar was not released.
#[derive(Debug, Error)]
pub enum SidecarError {
    /// Not JSON at all.
    #[error("dcm2niix wrote a sidecar that is not JSON: {0}")]
    NotJson(serde_json::Error),
    /// JSON, but not an object.
    #[error("dcm2niix wrote a sidecar that is not a JSON object")]
    NotObject,
    /// The cleaned sidecar could not be written out.
    #[error("writing the cleaned sidecar: {0}")]
    Write(serde_json::Error),
}

/// The images in a dcm2niix output folder, grouped by stem, sorted.
fn images_in(dir: &Path) -> std::io::Result<Vec<Image>> {
    let mut images: std::collections::BTreeMap<String, Image> = std::collections::BTreeMap::new();
    let mut companions = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            continue;
        };
        let Some(rest) = name.strip_prefix(STEM) else {
            continue;
        };
        if let Some(postfix) = rest.strip_suffix(".nii.gz") {
            images.insert(
                postfix.to_string(),
                Image {
                    postfix: postfix.to_string(),
                    nifti: path,
                    json: None,
                    bval: None,
                    bvec: None,
                },
            );
        } else {
            companions.push((rest.to_string(), path));
        }
    }
    for (rest, path) in companions {
        for (ext, which) in [(".json", 0), (".bval", 1), (".bvec", 2)] {
            if let Some(image) = rest.strip_suffix(ext).and_then(|p| images.get_mut(p)) {
                let slot = match which {
                    0 => &mut image.json,
                    1 => &mut image.bval,
                    _ => &mut image.bvec,
                };
                *slot = Some(path.clone());
            }
        }
    }
    Ok(images.into_values().collect())
}

/// The echo number of a multi-echo image (`_e2` → 2), if that is all dcm2niix appended.
pub fn echo_of(postfix: &str) -> Option<u32> {
    postfix
        .strip_prefix("_e")
        .and_then(|n| n.parse().ok())
        .filter(|n| *n > 0)
}

/// Whether a sidecar key is released.
fn released_key(k: &str) -> bool {
    let removed =
        REMOVED_KEYS.contains(&k) || k.contains("Date") || (k.starts_with("Patient") && k != "PatientPosition");
    !removed
}

/// The sidecar as released: keys that name a site, a person, a UID or a date removed (a BIDS
/// release holds no absolute date; `AcquisitionTime`, a time of day, stays), written with sorted
/// keys so the bytes depend only on the content.
pub fn clean_sidecar(bytes: &[u8]) -> Result<Vec<u8>, SidecarError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(SidecarError::NotJson)?;
    let serde_json::Value::Object(map) = value else {
        return Err(SidecarError::NotObject);
    };
    let kept: serde_json::Map<String, serde_json::Value> = map.into_iter().filter(|(k, _)| released_key(k)).collect();
    let mut out = serde_json::to_vec_pretty(&serde_json::Value::Object(kept)).map_err(SidecarError::Write)?;
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sidecars_lose_site_person_uid_and_date_keys_and_keep_acquisition_parameters() {
        let raw = br#"{"Modality": "MR", "InstitutionName": "ANONYMIZED", "StationName": "ANONYMIZED",
            "AcquisitionDateTime": "2016-04-29T11:54:57", "AcquisitionTime": "11:54:57.102500",
            "PatientName": "X", "PatientPosition": "HFS", "SeriesInstanceUID": "2.25.1",
            "EchoTime": 0.00232, "SeriesDescription": "t1_mprage_sag"}"#;
        let cleaned: serde_json::Value = serde_json::from_slice(&clean_sidecar(raw).unwrap()).unwrap();
        // Sorted: serde_json keeps dcm2niix's order where a dependency enables `preserve_order`.
        let mut keys: Vec<&str> = cleaned.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "AcquisitionTime",
                "EchoTime",
                "Modality",
                "PatientPosition",
                "SeriesDescription"
            ]
        );
        assert!(clean_sidecar(b"[1]").is_err());
        assert!(clean_sidecar(b"not json").is_err());
    }

    #[test]
    fn output_files_group_by_stem_and_echo_postfixes_are_read() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "pseal.nii.gz",
            "pseal.json",
            "pseal.bval",
            "pseal.bvec",
            "pseal_e2.nii.gz",
            "other.txt",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let images = images_in(dir.path()).unwrap();
        assert_eq!(images.len(), 2);
        assert_eq!(images[0].postfix, "");
        assert!(images[0].json.is_some() && images[0].bval.is_some() && images[0].bvec.is_some());
        assert_eq!(images[1].postfix, "_e2");
        assert_eq!(echo_of("_e2"), Some(2));
        assert_eq!(echo_of("_ph"), None);
        assert_eq!(echo_of(""), None);
    }

    #[test]
    fn a_program_that_is_not_dcm2niix_is_refused_with_the_install_hint() {
        let err = Dcm2niix::locate(Some(Path::new("/bin/true"))).unwrap_err().to_string();
        assert!(err.contains("does not report a dcm2niix version"), "{err}");
        assert!(err.contains("apt install dcm2niix"), "{err}");
        let err = Dcm2niix::locate(Some(Path::new("/nonexistent/dcm2niix")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot be run"), "{err}");
    }
}
