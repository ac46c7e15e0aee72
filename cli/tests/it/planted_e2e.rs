//! The planted-identifier proof through the real pipeline: the planted cohort of
//! `pseal_fixtures::planted` (every row of PS3.15 Table E.1-1 with a unique marker, at the top
//! level, two sequences deep and in private groups) is exported by `pseal export` under pseal's
//! default profile, the Basic Profile alone (`none`) and each option switched on alone, and
//! imported by `pseal-central import`. For each run, a byte-level scan of every archived file,
//! of the run's index.csv rows, of the bundle plaintext outside identity.age, of every tar header
//! and of export-report.json finds no marker the profile must remove; every attribute the profile
//! keeps is still in the archived files, at the top level and nested, with its value; dates
//! captured for the steward come back shifted by one offset; replaced UIDs come back as archive
//! UIDs, the same original always as the same archive UID.
//!
//! One steward store, one archive and one import serve all runs (each run is its own site
//! `SITE-<n>`, so its own pseudonym); the runs are set up once, in
//! `$CARGO_TARGET_TMPDIR/planted-e2e`, and each test checks one run.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::common::*;
use chrono::NaiveDate;
use dicom_core::{Tag, VR};
use dicom_object::mem::InMemElement;
use dicom_object::{DefaultDicomObject, InMemDicomObject};
use pseal::deid::{Options, Profile};
use pseal_fixtures::planted::{self, Location, Marker, MarkerKind, PlantedCohort, StewardRewrite, TableRow};

/// The runs: pseal's default, the Basic Profile alone, and each option alone.
const RUNS: [&str; 12] = [
    "default",
    "none",
    "retain-safe-private",
    "retain-uids",
    "retain-device-identity",
    "retain-institution-identity",
    "retain-patient-characteristics",
    "retain-long-full-dates",
    "retain-long-modified-dates",
    "clean-descriptors",
    "clean-structured-content",
    "clean-graphics",
];

const MODIFIED_DATES: &str = "retain-long-modified-dates";
const PATIENT_CHARACTERISTICS: &str = "retain-patient-characteristics";
const SAFE_PRIVATE: &str = "retain-safe-private";
const DEIDENTIFICATION_METHOD_CODE_SEQUENCE: u32 = 0x0012_0064;
const CODE_VALUE: u32 = 0x0008_0100;
const INSTANCE_NUMBER: u32 = 0x0020_0013;
const SOP_INSTANCE_UID: u32 = 0x0008_0018;
const STUDY_INSTANCE_UID: u32 = 0x0020_000D;
const SERIES_INSTANCE_UID: u32 = 0x0020_000E;
const STUDY_DATE: u32 = 0x0008_0020;
const SERIES_DESCRIPTION: u32 = 0x0008_103E;
const PATIENT_BIRTH_DATE: u32 = 0x0010_0030;
const PATIENT_SEX: u32 = 0x0010_0040;
const PATIENT_AGE: u32 = 0x0010_1010;

/// One run: a site whose configuration selects `options`, its bundle and its archived patient.
struct Run {
    options: &'static str,
    /// The option names in force (`default` resolved).
    names: BTreeSet<String>,
    bundle: PathBuf,
    outbox: PathBuf,
    /// The bundle's plaintext tar (decrypted with the steward identity).
    plaintext: Vec<u8>,
    /// The pseudonym the steward gave this run's patient.
    pseudonym: String,
}

struct Shared {
    cohort: PlantedCohort,
    archive: PathBuf,
    runs: Vec<Run>,
}

static SHARED: OnceLock<Result<Shared, String>> = OnceLock::new();

fn shared() -> &'static Shared {
    let result = SHARED.get_or_init(|| {
        std::panic::catch_unwind(setup).map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
    });
    match result {
        Ok(s) => s,
        Err(e) => panic!("setting up the planted runs failed: {e}"),
    }
}

fn option_names(options: &str) -> BTreeSet<String> {
    Options::parse_list(options)
        .unwrap()
        .names()
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// The CID 7050 code values pseal writes for a list of options.
fn method_codes(options: &str) -> BTreeSet<String> {
    let profile = Profile::new(&pseal::deid::DeidConfig {
        options: Options::parse_list(options).unwrap(),
        ..Default::default()
    });
    profile.cid7050_codes().iter().map(|(v, _)| v.to_string()).collect()
}

/// A workspace binary with the steward passphrase in its environment.
fn command(name: &str) -> Command {
    let mut c = Command::new(bin(name));
    c.env("PSEAL_PASSPHRASE", PASSPHRASE);
    c
}

fn run_ok(c: &mut Command, what: &str) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    last_line(&out)
}

fn setup() -> Shared {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("planted-e2e");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    let cohort = planted::generate(&dir.join("input"), 3).unwrap();
    let store = dir.join("store");
    let archive = dir.join("archive");
    let mut c = command("pseal-central");
    let recipient = run_ok(c.arg("init").arg("--store").arg(&store), "pseal-central init");

    // Every run is a site with its own configuration.
    let sites: Vec<(String, PathBuf, String)> = RUNS
        .iter()
        .enumerate()
        .map(|(n, options)| {
            let site = format!("SITE-{}", n + 1);
            let config = dir.join(&site).join("pseal.toml");
            let mut c = command("pseal");
            c.args([
                "init",
                "--site",
                &site,
                "--recipient",
                &recipient,
                "--options",
                options,
                "--config",
            ])
            .arg(&config);
            let key = run_ok(&mut c, "pseal init");
            (site, config, key)
        })
        .collect();

    // Enrol every site with one opening of the store (each opening costs a second of scrypt);
    // the same opening gives the identity that decrypts the bundles below.
    let pass = pseal::keys::Passphrase::new(PASSPHRASE.into()).unwrap();
    let mut steward = pseal_central::store::Store::open(&store, &pass).unwrap();
    for (site, _, key) in &sites {
        assert!(steward.enroll(site, &key.parse().unwrap()).unwrap());
    }

    // Export every run at once.
    let children: Vec<_> = sites
        .iter()
        .enumerate()
        .map(|(n, (_, config, _))| {
            let outbox = dir.join(format!("out-{}", n + 1));
            let child = command("pseal")
                .arg("export")
                .arg("--config")
                .arg(config)
                .arg("--input")
                .arg(&cohort.root)
                .arg("--out")
                .arg(&outbox)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (outbox, child)
        })
        .collect();
    let mut runs = Vec::new();
    for ((outbox, child), options) in children.into_iter().zip(RUNS) {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "export with {options}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bundles = bundles_in(&outbox);
        assert_eq!(bundles.len(), 1, "one patient, one bundle with {options}");
        let plaintext = plaintext(steward.identity(), &bundles[0]);
        runs.push(Run {
            options,
            names: option_names(options),
            bundle: bundles[0].clone(),
            outbox,
            plaintext,
            pseudonym: String::new(),
        });
    }
    drop(steward);

    // One import of all bundles.
    let mut c = command("pseal-central");
    c.arg("import")
        .arg("--store")
        .arg(&store)
        .arg("--archive")
        .arg(&archive);
    c.args(runs.iter().map(|r| &r.bundle));
    let summary = run_ok(&mut c, "pseal-central import");
    assert!(
        summary.starts_with(&format!(
            "{} bundles imported ({} instances)",
            RUNS.len(),
            RUNS.len() * 3
        )),
        "{summary}"
    );

    // Which pseudonym is which run: the De-identification Method Code Sequence of its files
    // names the options applied, and each run applies a different set.
    for entry in std::fs::read_dir(&archive).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_dir() || path.file_name().unwrap() == ".pseal-staging" {
            continue;
        }
        let files = walkdir(&path);
        let obj = dicom_object::open_file(&files[0]).unwrap();
        let codes: BTreeSet<String> = obj
            .get(tag(DEIDENTIFICATION_METHOD_CODE_SEQUENCE))
            .and_then(|e| e.items())
            .unwrap()
            .iter()
            .map(|item| text(item.get(tag(CODE_VALUE)).unwrap()))
            .collect();
        let pseudonym = path.file_name().unwrap().to_string_lossy().to_string();
        let run = runs
            .iter_mut()
            .find(|r| method_codes(r.options) == codes)
            .unwrap_or_else(|| panic!("no run applies the codes {codes:?}"));
        assert!(run.pseudonym.is_empty(), "two patients for {}", run.options);
        run.pseudonym = pseudonym;
    }
    assert!(runs.iter().all(|r| !r.pseudonym.is_empty()));
    assert!(staging_left(&archive).is_empty());
    Shared { cohort, archive, runs }
}

/// Decrypts a bundle (age, then zstd) into its plaintext tar.
fn plaintext(identity: &pseal::keys::StewardIdentity, bundle: &Path) -> Vec<u8> {
    use std::io::Read;
    let file = std::fs::File::open(bundle).unwrap();
    let decryptor = age::Decryptor::new_buffered(std::io::BufReader::new(file)).unwrap();
    let reader = decryptor
        .decrypt(std::iter::once(identity.age_identity() as &dyn age::Identity))
        .unwrap();
    let mut out = Vec::new();
    zstd::stream::read::Decoder::new(reader)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn tag(t: u32) -> Tag {
    Tag((t >> 16) as u16, (t & 0xFFFF) as u16)
}

fn text(e: &InMemElement) -> String {
    e.value()
        .to_str()
        .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
        .unwrap_or_default()
}

fn item_at<'a>(obj: &'a InMemDicomObject, path: &[(u32, u32)]) -> Option<&'a InMemDicomObject> {
    let mut current = obj;
    for &(sequence, index) in path {
        current = current.get(tag(sequence))?.items()?.get(index as usize)?;
    }
    Some(current)
}

fn parse_da(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y%m%d").unwrap()
}

// ---------------------------------------------------------------------------------------------
// The Types of PS3.3's MR Image IOD, read here from the compact CSVs the repository keeps
// (shared/data/iod), not through the engine: the combined codes depend on them.

/// The planted instances' IOD, as `shared/data/iod` describes it.
struct MrIod {
    /// Node → `(tag, Type, child node)`.
    nodes: HashMap<usize, Vec<(u32, String, Option<usize>)>>,
    /// The root nodes of MR Image's modules.
    roots: Vec<usize>,
}

fn parse_tag(t: &str) -> u32 {
    u32::from_str_radix(&t.replace(['(', ')', ','], ""), 16).unwrap()
}

fn mr_iod() -> &'static MrIod {
    static IOD: OnceLock<MrIod> = OnceLock::new();
    IOD.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/iod");
        let rows = |file: &str| -> Vec<csv::StringRecord> {
            csv::Reader::from_path(dir.join(file))
                .unwrap()
                .records()
                .map(|r| r.unwrap())
                .collect()
        };
        let iod = rows("sop-class-iod.csv")
            .into_iter()
            .find(|r| &r[0] == pseal_fixtures::MR_IMAGE_STORAGE)
            .map(|r| r[1].to_string())
            .unwrap();
        let roots = rows("iod-modules.csv")
            .into_iter()
            .filter(|r| r[0] == *iod)
            .map(|r| r[2].parse().unwrap())
            .collect();
        let mut nodes: HashMap<usize, Vec<(u32, String, Option<usize>)>> = HashMap::new();
        for r in rows("requirements.csv") {
            nodes.entry(r[0].parse().unwrap()).or_default().push((
                parse_tag(&r[1]),
                r[3].to_string(),
                r[4].parse().ok(),
            ));
        }
        MrIod { nodes, roots }
    })
}

impl MrIod {
    /// The strongest Type (`1`, `1C`, `2`, `2C`, `3`) of `tag` inside the items at `path`.
    fn type_at(&self, path: &[(u32, u32)], tag: u32) -> &'static str {
        let rank = |t: &str| ["3", "2C", "2", "1C", "1"].iter().position(|x| *x == t).unwrap_or(0);
        let mut here: Vec<usize> = self.roots.clone();
        for &(sequence, _) in path {
            here = here
                .iter()
                .flat_map(|n| self.nodes[n].iter())
                .filter(|(t, _, _)| *t == sequence)
                .filter_map(|(_, _, child)| *child)
                .collect();
        }
        let best = here
            .iter()
            .flat_map(|n| self.nodes[n].iter())
            .filter(|(t, _, _)| *t == tag)
            .map(|(_, ty, _)| rank(ty))
            .max()
            .unwrap_or(0);
        ["3", "2C", "2", "1C", "1"][best]
    }
}

/// What a combined code comes to by the Type (docs/deidentification.md, *Combined codes*):
/// `X`, `Z`, `D` or `U*`; other codes are returned as they are.
fn by_type(code: &str, ty: &str) -> &'static str {
    let combined = ["X/Z/D", "X/Z", "X/D", "Z/D", "X/Z/U*"];
    match (combined.iter().position(|c| *c == code), ty) {
        (None, _) => match code {
            "X" => "X",
            "Z" => "Z",
            "D" => "D",
            "U" => "U",
            other => panic!("action code {other}"),
        },
        (Some(4), "1" | "1C") => "U*",
        (Some(_), "1" | "1C") => "D",
        (Some(_), "2" | "2C") => "Z",
        (Some(3), _) => "Z",
        (Some(_), _) => "X",
    }
}

// ---------------------------------------------------------------------------------------------
// What the profile must do with each marker (from docs/deidentification.md, applied to the
// table row the cohort planted, not to the engine's generated table).

/// What a marker must look like after export and import.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// Absent at its place.
    Removed,
    /// Present, empty.
    Emptied,
    /// Present with a dummy (not the marker).
    Dummy,
    /// Present with the marker value, in the bundle and in the archive.
    Kept,
    /// A DA or DT captured for the steward: not in the bundle; archived shifted.
    Shifted,
    /// A TM captured for the steward: not in the bundle; archived unchanged.
    TimeBack,
    /// A UID replaced by a placeholder: archived as the steward's archive UID.
    ArchiveUid,
    /// Patient ID and Patient's Name: the pseudonym.
    Pseudonym,
    /// Patient's Age: the age at the scan the steward computed.
    AgeAtScan,
    /// The Text Value inside the item of a planted sequence: always removed; the sequence itself
    /// meets the given fate.
    Content(Sequence),
}

/// What happens to a planted sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sequence {
    /// Kept with its item (the item cleaned).
    Kept,
    /// Removed (X, never passes, private).
    Removed,
    /// Present without items (Z).
    Emptied,
    /// Present with one empty item (D).
    DummyItem,
}

impl Expect {
    /// Whether the marker's bytes may leave the hospital.
    fn in_bundle(&self) -> bool {
        *self == Expect::Kept
    }

    /// Whether the marker's bytes may be in the archive.
    fn in_archive(&self) -> bool {
        matches!(self, Expect::Kept | Expect::TimeBack)
    }
}

/// Attributes that never pass whatever the options (docs: "Never passes").
fn never_passes(t: u32) -> bool {
    let (g, e) = (t >> 16, t & 0xFFFF);
    matches!(g, 0x0000 | 0x0002 | 0x0004)
        || e == 0
        || (0x5000..=0x50FF).contains(&g)
        || (0x6000..=0x60FF).contains(&g)
        || matches!(t, 0x0400_0561 | 0xFFFA_FFFA | 0xFFFC_FFFC)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Basic,
    Keep,
    Clean,
    Capture,
}

/// The documented precedence: Modified Dates capture, then any C, then any K, else Basic.
fn decide(row: &TableRow, names: &BTreeSet<String>) -> Decision {
    let cells: Vec<&str> = names.iter().map(|o| row.cell(o)).collect();
    if names.contains(MODIFIED_DATES) && row.cell(MODIFIED_DATES) == "C" {
        Decision::Capture
    } else if cells.contains(&"C") {
        Decision::Clean
    } else if cells.contains(&"K") {
        Decision::Keep
    } else {
        Decision::Basic
    }
}

fn basic(m: &Marker) -> Expect {
    let (row, vr) = (&m.row, m.vr);
    let ty = mr_iod().type_at(m.location.path(), m.tag);
    let e = match by_type(&row.basic, ty) {
        "X" => Expect::Removed,
        "Z" => Expect::Emptied,
        "D" => Expect::Dummy,
        "U" => Expect::ArchiveUid,
        other => panic!("basic action {other} of {} on a value", row.name),
    };
    if e == Expect::Dummy && vr == VR::UI {
        Expect::ArchiveUid
    } else {
        e
    }
}

fn is_descriptor_vr(vr: VR) -> bool {
    matches!(
        vr,
        VR::AE | VR::CS | VR::LO | VR::LT | VR::SH | VR::ST | VR::UC | VR::UT
    )
}

fn expect(m: &Marker, names: &BTreeSet<String>) -> Expect {
    if let MarkerKind::Private { creator, safe } = &m.kind {
        let kept = *safe && creator.is_some() && names.contains(SAFE_PRIVATE);
        return match (kept, m.vr) {
            // A kept safe private sequence keeps its item, cleaned.
            (true, _) if m.within.is_some() => Expect::Content(Sequence::Kept),
            (false, _) if m.within.is_some() => Expect::Content(Sequence::Removed),
            (false, _) => Expect::Removed,
            (true, VR::UI) if !names.contains("retain-uids") => Expect::ArchiveUid,
            (true, _) => Expect::Kept,
        };
    }
    if let Some(sequence) = m.within {
        if never_passes(sequence) {
            return Expect::Content(Sequence::Removed);
        }
        let ty = mr_iod().type_at(m.location.path(), sequence);
        let fate = match (decide(&m.row, names), by_type(&m.row.basic, ty)) {
            (Decision::Keep | Decision::Clean, _) | (_, "U*") => Sequence::Kept,
            (_, "X") => Sequence::Removed,
            (_, "Z") => Sequence::Emptied,
            (_, "D") => Sequence::DummyItem,
            (_, other) => panic!("basic action {other} of the sequence {}", m.row.name),
        };
        return Expect::Content(fate);
    }
    if m.location == Location::FileMeta {
        // The meta group is regenerated from the (re-keyed) SOP Instance UID.
        return if names.contains("retain-uids") {
            Expect::Kept
        } else {
            Expect::ArchiveUid
        };
    }
    if never_passes(m.tag) {
        return Expect::Removed;
    }
    if m.rewrite == StewardRewrite::Pseudonym {
        return Expect::Pseudonym;
    }
    if m.rewrite == StewardRewrite::AgeAtScan
        && names.contains(PATIENT_CHARACTERISTICS)
        && names.contains(MODIFIED_DATES)
    {
        return Expect::AgeAtScan;
    }
    match decide(&m.row, names) {
        Decision::Keep => Expect::Kept,
        Decision::Clean if m.clean && is_descriptor_vr(m.vr) => Expect::Kept,
        Decision::Capture if matches!(m.vr, VR::DA | VR::DT) => Expect::Shifted,
        Decision::Capture if m.vr == VR::TM => Expect::TimeBack,
        Decision::Clean | Decision::Capture | Decision::Basic => basic(m),
    }
}

// ---------------------------------------------------------------------------------------------
// Byte-level search.

/// Marker needles, found in one pass over a haystack.
struct Needles<'a> {
    by_prefix: HashMap<[u8; 7], Vec<&'a Marker>>,
}

impl<'a> Needles<'a> {
    fn new(markers: impl Iterator<Item = &'a Marker>) -> Needles<'a> {
        let mut by_prefix: HashMap<[u8; 7], Vec<&Marker>> = HashMap::new();
        for m in markers {
            if let Some(n) = &m.needle {
                let prefix: [u8; 7] = n[..7].try_into().unwrap();
                by_prefix.entry(prefix).or_default().push(m);
            }
        }
        Needles { by_prefix }
    }

    /// The markers whose bytes occur in `haystack`. UIDs under `2.25.` (placeholders, archive
    /// UIDs) are skipped: their random digits may hold any date or number.
    fn find(&self, haystack: &[u8]) -> Vec<&'a Marker> {
        let hay = mask_random_uids(haystack);
        let mut found = Vec::new();
        for i in 0..hay.len().saturating_sub(6) {
            let Some(candidates) = hay[i..i + 7]
                .try_into()
                .ok()
                .and_then(|p: [u8; 7]| self.by_prefix.get(&p))
            else {
                continue;
            };
            for m in candidates {
                let n = m.needle.as_ref().unwrap();
                if hay[i..].starts_with(n) && !found.iter().any(|f: &&Marker| f.id == m.id) {
                    found.push(*m);
                }
            }
        }
        found
    }
}

fn mask_random_uids(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut i = 0;
    while i + 5 <= out.len() {
        if &out[i..i + 5] == b"2.25." {
            let mut j = i + 5;
            while j < out.len() && (out[j].is_ascii_digit() || out[j] == b'.') {
                j += 1;
            }
            out[i..j].fill(b'#');
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

fn describe(m: &Marker) -> String {
    let place = match (m.location, m.within) {
        (l, Some(s)) => format!("{l:?} in ({:04X},{:04X})", s >> 16, s & 0xFFFF),
        (l, None) => format!("{l:?}"),
    };
    let kind = match &m.kind {
        MarkerKind::Table => String::new(),
        MarkerKind::Private { creator, .. } => format!(" private {creator:?}"),
    };
    format!(
        "marker {} ({:04X},{:04X}) {} {}{kind} at {place}",
        m.id,
        m.tag >> 16,
        m.tag & 0xFFFF,
        m.row.name,
        m.vr
    )
}

// ---------------------------------------------------------------------------------------------
// The check of one run.

fn check(options: &str) {
    let s = shared();
    let run = s.runs.iter().find(|r| r.options == options).unwrap();
    let cohort = &s.cohort;
    let names = &run.names;
    let mut failures: Vec<String> = Vec::new();
    let e_of = |m: &Marker| expect(m, names);

    // Needles: what must not leave the hospital, and what must not reach the archive. A needle
    // shared by two markers (the meta group repeats the SOP Instance UID) is searched only when
    // neither may appear.
    let allowed = |f: fn(&Expect) -> bool| -> BTreeSet<Vec<u8>> {
        cohort
            .markers
            .iter()
            .filter(|m| f(&e_of(m)))
            .filter_map(|m| m.needle.clone())
            .collect()
    };
    let (bundle_ok, archive_ok) = (allowed(Expect::in_bundle), allowed(Expect::in_archive));
    let hospital = Needles::new(
        cohort
            .markers
            .iter()
            .filter(|m| m.needle.as_ref().is_some_and(|n| !bundle_ok.contains(n))),
    );
    let steward = Needles::new(
        cohort
            .markers
            .iter()
            .filter(|m| m.needle.as_ref().is_some_and(|n| !archive_ok.contains(n))),
    );
    let mut scan = |needles: &Needles, what: &str, bytes: &[u8]| {
        for m in needles.find(bytes) {
            failures.push(format!("{what} holds {} ({:?})", describe(m), e_of(m)));
        }
    };

    // (c), (d): the bundle plaintext outside identity.age, and every tar header.
    let mut entries = 0;
    let mut tar = tar::Archive::new(run.plaintext.as_slice());
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().to_string();
        scan(&hospital, &format!("tar header of {name}"), entry.header().as_bytes());
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
        if name != "identity.age" {
            scan(&hospital, &format!("bundle entry {name}"), &content);
        }
        entries += 1;
    }
    assert_eq!(entries, 3 + 3, "three instances, identity, manifest, auth");
    scan(
        &hospital,
        "bundle file name",
        run.bundle.file_name().unwrap().to_string_lossy().as_bytes(),
    );
    // (e): the export report.
    let report = std::fs::read(run.outbox.join("export-report.json")).unwrap();
    scan(&hospital, "export-report.json", &report);
    let report: serde_json::Value = serde_json::from_slice(&report).unwrap();
    assert_eq!(report["counts"]["exported"], 3, "{report}");
    assert_eq!(report["counts"]["quarantined"], 0, "{report}");

    // (a): every archived file of this run's patient.
    let patient_dir = s.archive.join(&run.pseudonym);
    let files = walkdir(&patient_dir);
    assert_eq!(files.len(), cohort.instances.len());
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        scan(&steward, &format!("archived {}", f.display()), &bytes);
    }
    // (b): this run's rows of index.csv.
    let index = std::fs::read_to_string(s.archive.join("index.csv")).unwrap();
    let rows: Vec<&str> = index
        .lines()
        .filter(|l| l.starts_with(&format!("{},", run.pseudonym)))
        .collect();
    assert_eq!(rows.len(), cohort.instances.len());
    for row in &rows {
        scan(&steward, "index.csv", row.as_bytes());
    }

    // At their places: open every archived file.
    let mut by_instance: BTreeMap<usize, DefaultDicomObject> = BTreeMap::new();
    for f in &files {
        let obj = dicom_object::open_file(f).unwrap();
        let number: usize = text(obj.get(tag(INSTANCE_NUMBER)).unwrap()).parse().unwrap();
        assert!(
            by_instance.insert(number - 1, obj).is_none(),
            "instance {number} archived twice"
        );
    }
    let mut offsets = BTreeSet::new();
    let mut uids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let birth = cohort.marker(0, Location::Top, PATIENT_BIRTH_DATE).unwrap();
    for (&i, obj) in &by_instance {
        let study_date = cohort.marker(i, Location::Top, STUDY_DATE).unwrap().text().unwrap();
        for m in cohort.markers_of(i) {
            let e = e_of(m);
            let what = format!("instance {}: {} expected {e:?}", i + 1, describe(m));
            if m.location == Location::FileMeta {
                let meta = obj.meta().media_storage_sop_instance_uid().trim_end_matches('\0');
                let sop = text(obj.get(tag(SOP_INSTANCE_UID)).unwrap());
                if meta != sop {
                    failures.push(format!("{what}: meta {meta} is not the SOP Instance UID {sop}"));
                }
                continue;
            }
            let holder = item_at(obj, &m.path());
            let element = holder.and_then(|h| h.get(tag(m.tag)));
            let value = element.and_then(|el| el.value().primitive());
            let has_marker = value.is_some_and(|v| m.is_value(v));
            let mut fail = |why: &str| failures.push(format!("{what}: {why} (found {:?})", element.map(text)));
            match &e {
                Expect::Content(fate) => {
                    if element.is_some() {
                        fail("the text inside a planted sequence survived");
                    }
                    let sequence = item_at(obj, m.location.path()).and_then(|h| h.get(tag(m.within.unwrap())));
                    let items = sequence.map(|s| s.items().map_or(0, |items| items.len()));
                    let first_empty = sequence
                        .and_then(|s| s.items())
                        .and_then(|items| items.first())
                        .is_some_and(|item| item.iter().next().is_none());
                    let ok = match fate {
                        Sequence::Kept => items == Some(1),
                        Sequence::Removed => items.is_none(),
                        Sequence::Emptied => items == Some(0),
                        Sequence::DummyItem => items == Some(1) && first_empty,
                    };
                    if !ok {
                        fail(&format!("the sequence has {items:?} items"));
                    }
                }
                Expect::Removed if element.is_some() => fail("not removed"),
                Expect::Removed => {}
                Expect::Emptied if !value.is_some_and(|v| v.to_str().trim_end_matches(['\0', ' ']).is_empty()) => {
                    fail("not emptied")
                }
                Expect::Emptied => {}
                Expect::Dummy
                    if has_marker || value.is_none_or(|v| v.to_str().trim_end_matches(['\0', ' ']).is_empty()) =>
                {
                    fail("no dummy")
                }
                Expect::Dummy => {}
                Expect::Kept | Expect::TimeBack if !has_marker => fail("value not kept"),
                Expect::Kept | Expect::TimeBack => {}
                Expect::Shifted => {
                    let got = element.map(text).unwrap_or_default();
                    let original = m.text().unwrap();
                    if got.len() < 8 || got[8..] != original[8..] {
                        fail("not the original shifted");
                        continue;
                    }
                    let days = (parse_da(&got[..8]) - parse_da(&original[..8])).num_days();
                    offsets.insert(days);
                }
                Expect::ArchiveUid => {
                    let got = element.map(text).unwrap_or_default();
                    if !got.starts_with("2.25.") || has_marker {
                        fail("not an archive UID");
                    }
                    uids.entry(m.text().unwrap()).or_default().insert(got);
                }
                Expect::Pseudonym if element.map(text).as_deref() != Some(run.pseudonym.as_str()) => {
                    fail("not the pseudonym")
                }
                Expect::Pseudonym => {}
                Expect::AgeAtScan => {
                    let age = pseal_central::rekey::format_age(parse_da(&birth.text().unwrap()), parse_da(&study_date));
                    if element.map(text) != Some(age.clone()) {
                        fail(&format!("not the age at scan {age}"));
                    }
                }
            }
        }
        // References between instances: the same UID as the referenced instance's own, where
        // the sequence holding them is kept (X/Z/U* removes them where the IOD makes the
        // sequence Type 3, as MR Image does).
        for r in &cohort.instances[i].references {
            let (&(sequence, _), parent) = r.path.split_last().unwrap();
            let kept = cohort
                .markers_of(i)
                .find(|m| m.within == Some(sequence) && m.location.path() == parent)
                .is_some_and(|m| e_of(m) == Expect::Content(Sequence::Kept));
            if !kept {
                if item_at(obj, &r.path).is_some() {
                    failures.push(format!("instance {}: the reference at {:?} survived", i + 1, r.path));
                }
                continue;
            }
            let got = item_at(obj, &r.path)
                .and_then(|h| h.get(tag(r.tag)))
                .map(text)
                .unwrap_or_default();
            let target = by_instance
                .get(&r.target)
                .map(|o| text(o.get(tag(SOP_INSTANCE_UID)).unwrap()))
                .unwrap_or_default();
            if got != target {
                failures.push(format!(
                    "instance {}: reference at {:?} is {got}, the referenced instance is {target}",
                    i + 1,
                    r.path
                ));
            }
            if got != r.uid {
                uids.entry(r.uid.clone()).or_default().insert(got);
            }
        }
    }

    // U: one archive UID per original, a different one for each original.
    let mut seen = BTreeMap::new();
    for (original, archived) in &uids {
        if archived.len() != 1 {
            failures.push(format!("{original} became {} different archive UIDs", archived.len()));
        }
        for a in archived {
            if let Some(other) = seen.insert(a.clone(), original.clone()) {
                if &other != original {
                    failures.push(format!("{other} and {original} both became {a}"));
                }
            }
        }
    }
    // Dates: one offset for the patient, 1 to 10 years back.
    if offsets.len() > 1 {
        failures.push(format!("dates shifted by different offsets: {offsets:?}"));
    }
    if offsets.iter().any(|d| !(-3652..=-366).contains(d)) {
        failures.push(format!("date offset outside 1 to 10 years back: {offsets:?}"));
    }

    // index.csv says what the files say.
    let mut csv = csv::Reader::from_path(s.archive.join("index.csv")).unwrap();
    let headers = csv.headers().unwrap().clone();
    for record in csv.records() {
        let record = record.unwrap();
        let row: BTreeMap<&str, &str> = headers.iter().zip(record.iter()).collect();
        if row["pseudonym"] != run.pseudonym {
            continue;
        }
        let obj = dicom_object::open_file(s.archive.join(row["path"])).unwrap();
        for (column, t) in [
            ("sop_uid", SOP_INSTANCE_UID),
            ("study_uid", STUDY_INSTANCE_UID),
            ("series_uid", SERIES_INSTANCE_UID),
            ("study_date", STUDY_DATE),
            ("series_description", SERIES_DESCRIPTION),
            ("patient_sex", PATIENT_SEX),
            ("patient_age", PATIENT_AGE),
        ] {
            let in_file = obj.get(tag(t)).map(text).unwrap_or_default();
            if row[column] != in_file {
                failures.push(format!(
                    "index.csv {column} is {:?}, the file says {in_file:?}",
                    row[column]
                ));
            }
        }
    }

    failures.sort();
    failures.dedup();
    let shown: Vec<&String> = failures.iter().take(60).collect();
    assert!(
        failures.is_empty(),
        "{} failures with --options {options}:\n{}",
        failures.len(),
        shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
    );
}

/// How many markers a run keeps, replaces or removes, for the sanity checks below.
fn count(options: &str, wanted: fn(&Expect) -> bool) -> usize {
    let s = shared();
    let names = option_names(options);
    s.cohort.markers.iter().filter(|m| wanted(&expect(m, &names))).count()
}

#[test]
fn default_profile() {
    check("default");
    // Descriptions that pass the vocabulary rule, age at scan, sex, shifted dates.
    assert!(count("default", |e| *e == Expect::Kept) > 100);
    assert!(count("default", |e| *e == Expect::Shifted) > 200);
    assert_eq!(count("default", |e| *e == Expect::AgeAtScan), 1);
}

#[test]
fn basic_profile_alone() {
    check("none");
    assert_eq!(
        count("none", |e| *e == Expect::Kept),
        0,
        "the Basic Profile keeps no marker"
    );
}

#[test]
fn retain_safe_private_alone() {
    check("retain-safe-private");
    // The safe private B value, directionality and gradient direction at both levels.
    assert_eq!(count("retain-safe-private", |e| *e == Expect::Kept), 6);
    // The safe private UID (replaced, then remapped) and the safe private sequence (cleaned).
    assert_eq!(
        count("retain-safe-private", |e| *e == Expect::ArchiveUid),
        count("none", |e| *e == Expect::ArchiveUid) + 2
    );
    assert_eq!(kept_sequences("retain-safe-private"), kept_sequences("none") + 2);
}

#[test]
fn retain_uids_alone() {
    check("retain-uids");
    assert!(count("retain-uids", |e| *e == Expect::Kept) > 100);
    // (0040,A124) UID has no K under Retain UIDs: still replaced.
    assert!(count("retain-uids", |e| *e == Expect::ArchiveUid) > 0);
}

#[test]
fn retain_device_identity_alone() {
    check("retain-device-identity");
    assert!(count("retain-device-identity", |e| *e == Expect::Kept) > 50);
}

#[test]
fn retain_institution_identity_alone() {
    check("retain-institution-identity");
    assert!(count("retain-institution-identity", |e| *e == Expect::Kept) >= 16);
}

#[test]
fn retain_patient_characteristics_alone() {
    check("retain-patient-characteristics");
    assert!(count("retain-patient-characteristics", |e| *e == Expect::Kept) > 20);
}

#[test]
fn retain_long_full_dates_alone() {
    check("retain-long-full-dates");
    assert!(count("retain-long-full-dates", |e| *e == Expect::Kept) > 300);
}

#[test]
fn retain_long_modified_dates_alone() {
    check("retain-long-modified-dates");
    assert!(count("retain-long-modified-dates", |e| *e == Expect::Shifted) > 200);
    assert!(count("retain-long-modified-dates", |e| *e == Expect::TimeBack) > 100);
}

#[test]
fn clean_descriptors_alone() {
    check("clean-descriptors");
    assert!(count("clean-descriptors", |e| *e == Expect::Kept) > 100);
}

/// Sequences an option keeps (cleaned).
fn kept_sequences(options: &str) -> usize {
    count(options, |e| *e == Expect::Content(Sequence::Kept))
}

#[test]
fn clean_structured_content_alone() {
    check("clean-structured-content");
    assert!(kept_sequences("clean-structured-content") > kept_sequences("none"));
}

#[test]
fn clean_graphics_alone() {
    check("clean-graphics");
    assert!(kept_sequences("clean-graphics") > kept_sequences("none"));
}

/// The steward's UID remapping is per store, not per bundle: every run that replaced the planted
/// SOP Instance UIDs archived them under the same archive UIDs.
#[test]
fn archive_uids_are_the_same_in_every_run() {
    let s = shared();
    let index = std::fs::read_to_string(s.archive.join("index.csv")).unwrap();
    let mut per_run: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for run in s.runs.iter().filter(|r| r.options != "retain-uids") {
        let sops: BTreeSet<String> = index
            .lines()
            .filter(|l| l.starts_with(&format!("{},", run.pseudonym)))
            .map(|l| l.split(',').nth(3).unwrap().to_string())
            .collect();
        assert_eq!(sops.len(), 3);
        per_run.insert(run.options, sops);
    }
    let first = per_run.values().next().unwrap().clone();
    for (options, sops) in &per_run {
        assert_eq!(sops, &first, "{options}");
    }
    let kept = s.runs.iter().find(|r| r.options == "retain-uids").unwrap();
    let originals: BTreeSet<String> = s.cohort.instances.iter().map(|i| i.sop_uid.clone()).collect();
    assert!(index
        .lines()
        .filter(|l| l.starts_with(&format!("{},", kept.pseudonym)))
        .all(|l| originals.contains(l.split(',').nth(3).unwrap())));
}
