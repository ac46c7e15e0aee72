//! Cancelling an export or a review (`export::Cancel`): the run ends with `Cancelled`, bundles
//! announced before stay whole, nothing partial or pending is left, no report is written.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use pseal::bundle::BundleReader;
use pseal::config::{LocalIdSource, SiteConfig};
use pseal::deid::{DeidConfig, Options, Profile};
use pseal::export::{Cancel, ExportContext, ExportError};
use pseal::keys::{SiteSecretKey, StewardIdentity};
use pseal::progress::{Event, Progress};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

fn instance(patient: &str, number: usize) -> Vec<u8> {
    let mut obj = dicom_object::from_reader(pseal_fixtures::sample::mr_instance(16).unwrap().as_slice()).unwrap();
    obj.put(DataElement::new(
        tags::PATIENT_ID,
        VR::LO,
        PrimitiveValue::from(patient),
    ));
    let uid = format!("1.2.826.0.1.3680043.10.999.8.{number}");
    obj.put(DataElement::new(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(uid.as_str()),
    ));
    obj.update_meta(|m| m.media_storage_sop_instance_uid = uid.clone());
    let mut out = Vec::new();
    obj.write_all(&mut out).unwrap();
    out
}

/// Three patients of 40 files each (two chunks each), as files under `dir/in`.
fn cohort(dir: &Path) -> PathBuf {
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    for p in 0..3 {
        for i in 0..40 {
            let n = p * 100 + i;
            std::fs::write(input.join(format!("p{p}-{i:03}.dcm")), instance(&format!("PID-{p}"), n)).unwrap();
        }
    }
    input
}

fn context(steward: &StewardIdentity) -> ExportContext {
    let config = DeidConfig {
        options: Options::parse_list("default").unwrap(),
        ..DeidConfig::default()
    };
    ExportContext {
        profile: Profile::new(&config),
        config: SiteConfig {
            site: "SITE-A".into(),
            site_key: "unused.site-key".into(),
            recipients: vec![steward.recipient()],
            local_id: LocalIdSource::default(),
            deid: config,
            linkage: Default::default(),
        },
        site_key: SiteSecretKey::generate(),
    }
}

/// Records events and sets the flag at the first event `when` accepts.
struct CancelWhen<F> {
    cancel: Cancel,
    when: F,
    events: Mutex<Vec<Event>>,
}

impl<F: Fn(&Event) -> bool + Send + Sync> Progress for CancelWhen<F> {
    fn event(&self, event: Event) {
        if (self.when)(&event) {
            self.cancel.cancel();
        }
        self.events.lock().unwrap().push(event);
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = walk(dir)
        .iter()
        .map(|p| p.strip_prefix(dir).unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn an_export_cancelled_during_the_scan_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = cohort(dir.path());
    let steward = StewardIdentity::generate();
    let progress = CancelWhen {
        cancel: Cancel::new(),
        when: |e: &Event| matches!(e, Event::Advance { .. }),
        events: Mutex::new(Vec::new()),
    };
    let out = dir.path().join("out");
    let result = pseal::export::export_cancellable(&context(&steward), &input, &out, &progress, &progress.cancel);
    assert!(matches!(result, Err(ExportError::Cancelled)), "{:?}", result.err());
    assert_eq!(names_in(&out), Vec::<String>::new());
    let events = progress.events.lock().unwrap();
    assert!(
        !events.iter().any(|e| matches!(e, Event::Phase { name: "export", .. })),
        "the export phase never started"
    );
}

#[test]
fn an_export_cancelled_after_a_bundle_keeps_that_bundle_whole_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let input = cohort(dir.path());
    let steward = StewardIdentity::generate();
    let progress = CancelWhen {
        cancel: Cancel::new(),
        when: |e: &Event| matches!(e, Event::BundleWritten { .. }),
        events: Mutex::new(Vec::new()),
    };
    let out = dir.path().join("out");
    let result = pseal::export::export_cancellable(&context(&steward), &input, &out, &progress, &progress.cancel);
    assert!(matches!(result, Err(ExportError::Cancelled)), "{:?}", result.err());
    let announced: Vec<String> = progress
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::BundleWritten { file, .. } => Some(file.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(announced.len(), 1, "the second patient's bundle was dropped");
    // Only the announced bundle: no partial bundle, no identity record, no report.
    assert_eq!(names_in(&out), announced);
    let staging = dir.path().join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    let verified = BundleReader::new(&steward)
        .open(&out.join(&announced[0]), &staging)
        .unwrap();
    assert_eq!(verified.instances().len(), 40);
}

#[test]
fn a_review_cancelled_midway_leaves_no_pending_file_and_no_report() {
    let dir = tempfile::tempdir().unwrap();
    let input = cohort(dir.path());
    let steward = StewardIdentity::generate();
    let advances = std::sync::atomic::AtomicUsize::new(0);
    // The 36th review step: in the middle of the first patient's second chunk.
    let counting = CancelWhen {
        cancel: Cancel::new(),
        when: |e: &Event| {
            matches!(e, Event::Advance { .. })
                && advances.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 120 + 35
        },
        events: Mutex::new(Vec::new()),
    };
    let out = dir.path().join("out");
    let result = pseal::review::review_cancellable(&context(&steward), &input, &out, &counting, &counting.cancel);
    assert!(matches!(result, Err(ExportError::Cancelled)), "{:?}", result.err());
    // The marker that says a review wrote this folder (so `--replace` may empty it) stays.
    let names: Vec<String> = names_in(&out).into_iter().filter(|n| n != ".pseal-review").collect();
    // 120 scan steps, then 36 review steps: the first 36 files are reviewed, the rest of their
    // chunk was written under pending names and removed.
    assert_eq!(names.len(), 36, "{names:?}");
    for (k, name) in names.iter().enumerate() {
        assert_eq!(name, &format!("patient-0001/instances/{:06}.dcm", k + 1));
    }
}
