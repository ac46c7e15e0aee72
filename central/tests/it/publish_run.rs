//! The publish pipeline against an in-memory DICOMweb server whose misbehaviours are chosen per
//! test: what is sent, in what batches and how many at once; what a second or interrupted run
//! does; per-instance refusals (Failed SOP Sequence, a batch refused whole, a silent discard); a
//! damaged release; and the comparison with index.csv. The same behaviours against a real
//! Orthanc are in cli/tests/it/publish_orthanc.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pseal::keys::StewardIdentity;
use pseal::progress::Silent;
use pseal_central::publish::stow::{Batch, StowResponse, Verdict};
use pseal_central::publish::{publish, HeldInstance, Options, PublishError, Server, ServerError};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// One instance of a synthetic release.
#[derive(Clone)]
struct Inst {
    study: String,
    series: String,
    sop: String,
}

impl Inst {
    fn path(&self) -> String {
        format!(
            "archive/4DW3-34RH-EFV4R/{}/{}/{}.dcm",
            self.study, self.series, self.sop
        )
    }
    /// Bytes unique to the instance, of a size that varies.
    fn bytes(&self) -> Vec<u8> {
        let mut b = b"DICM".to_vec();
        let n = 1000 + self.sop.len() * 37 % 500;
        b.extend(self.sop.bytes().cycle().take(n));
        b
    }
}

/// `studies` studies × 2 series × `per_series` instances.
fn instances(studies: usize, per_series: usize) -> Vec<Inst> {
    let mut v = Vec::new();
    for s in 1..=studies {
        for se in 1..=2 {
            for i in 1..=per_series {
                v.push(Inst {
                    study: format!("2.25.{s}"),
                    series: format!("2.25.{s}{se}"),
                    sop: format!("2.25.{s}{se}{i:03}"),
                });
            }
        }
    }
    v
}

/// Writes a release as `pseal-central release` lays it out (plus files a newer release may add)
/// and returns its path and the identity it is encrypted to.
fn write_release(dir: &Path, list: &[Inst]) -> (PathBuf, StewardIdentity) {
    let id = StewardIdentity::generate();
    let path = dir.join("release.age");
    let recipient = id.recipient().age_recipient();
    let enc = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient)).unwrap();
    let out = enc.wrap_output(std::fs::File::create(&path).unwrap()).unwrap();
    let zstd = zstd::stream::write::Encoder::new(out, 3).unwrap();
    let mut tar = tar::Builder::new(zstd);
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, data).unwrap();
    };
    add("archive/README.md", b"a newer release's documentation\n");
    let mut index = String::from("pseudonym,study_uid,series_uid,sop_uid,modality,path,added_later\n");
    for i in list {
        add(&i.path(), &i.bytes());
        index.push_str(&format!(
            "4DW3-34RH-EFV4R,{},{},{},MR,{},x\n",
            i.study,
            i.series,
            i.sop,
            i.path().trim_start_matches("archive/")
        ));
    }
    add("archive/index.csv", index.as_bytes());
    let zstd = tar.into_inner().unwrap();
    zstd.finish().unwrap().finish().unwrap().flush().unwrap();
    (path, id)
}

/// An in-memory DICOMweb server.
#[derive(Default)]
struct Fake {
    /// study → sop → series
    held: Mutex<HashMap<String, BTreeMap<String, String>>>,
    /// Instances refused in the Failed SOP Sequence.
    refuse: HashSet<String>,
    /// Instances answered as stored, then not kept (as Orthanc's Lua filter does).
    discard: HashSet<String>,
    /// A batch holding one of these is refused whole (HTTP 400, no sequences); alone, it fails.
    poison: HashSet<String>,
    /// Answer 401 to every STOW request after this many.
    unauthorized_after: Option<usize>,
    /// Every STOW request's instance count.
    batches: Mutex<Vec<usize>>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    /// Expected bytes per SOP (checked on arrival).
    expected: HashMap<String, Vec<u8>>,
    /// Answer series-level counts (as Orthanc does), not only instance lists.
    counts: bool,
    /// Instance-level listings asked for.
    listings: AtomicUsize,
}

impl Fake {
    fn new(list: &[Inst]) -> Fake {
        Fake {
            expected: list.iter().map(|i| (i.sop.clone(), i.bytes())).collect(),
            ..Fake::default()
        }
    }
    fn count(&self) -> usize {
        self.held.lock().unwrap().values().map(BTreeMap::len).sum()
    }
    fn series_of(path: &str) -> String {
        path.split('/').nth(3).unwrap().to_string()
    }
}

impl Server for Fake {
    fn study_series_counts(&self, study: &str) -> Result<Option<HashMap<String, u64>>, ServerError> {
        if !self.counts {
            return Ok(None);
        }
        let mut out: HashMap<String, u64> = HashMap::new();
        for series in self
            .held
            .lock()
            .unwrap()
            .get(study)
            .into_iter()
            .flat_map(|m| m.values())
        {
            *out.entry(series.clone()).or_default() += 1;
        }
        Ok(Some(out))
    }

    fn study_instances(&self, study: &str) -> Result<Vec<HeldInstance>, ServerError> {
        self.listings.fetch_add(1, Ordering::SeqCst);
        Ok(self
            .held
            .lock()
            .unwrap()
            .get(study)
            .map(|m| {
                m.iter()
                    .map(|(sop, series)| HeldInstance {
                        series: series.clone(),
                        sop: sop.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    fn store(&self, batch: &Batch) -> Result<StowResponse, ServerError> {
        let n = {
            let mut b = self.batches.lock().unwrap();
            b.push(batch.len());
            b.len()
        };
        if self.unauthorized_after.is_some_and(|k| n > k) {
            return Err(ServerError::Unauthorized {
                url: "fake".into(),
                status: 401,
                user: Some("pseal".into()),
                sent_credentials: true,
            });
        }
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        // Long enough for the other workers' requests to overlap.
        std::thread::sleep(std::time::Duration::from_millis(20));
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let body = String::from_utf8_lossy(batch.body()).into_owned();
        assert!(body.ends_with("--\r\n"), "the batch is a finished multipart document");
        if batch.len() > 1 && batch.parts().iter().any(|p| self.poison.contains(&p.sop)) {
            return Ok(StowResponse {
                status: 400,
                verdicts: None,
                text: "Bad Request".into(),
            });
        }
        let mut verdicts = HashMap::new();
        for (i, part) in batch.parts().iter().enumerate() {
            assert_eq!(
                batch.data(i).unwrap(),
                self.expected[&part.sop].as_slice(),
                "{} arrives whole and unchanged",
                part.path
            );
            let verdict = if self.refuse.contains(&part.sop) {
                Verdict::Failed(0xA900)
            } else if self.poison.contains(&part.sop) {
                return Ok(StowResponse {
                    status: 400,
                    verdicts: None,
                    text: "Bad Request".into(),
                });
            } else {
                if !self.discard.contains(&part.sop) {
                    self.held
                        .lock()
                        .unwrap()
                        .entry(part.study.clone())
                        .or_default()
                        .insert(part.sop.clone(), Fake::series_of(&part.path));
                }
                Verdict::Stored(None)
            };
            verdicts.insert(part.sop.clone(), verdict);
        }
        Ok(StowResponse {
            status: 200,
            verdicts: Some(verdicts),
            text: String::new(),
        })
    }
}

fn options(jobs: usize, batch: usize) -> Options {
    Options {
        jobs,
        batch_instances: batch,
        ..Options::default()
    }
}

fn run(
    fake: &Fake,
    release: &Path,
    id: &StewardIdentity,
    opts: &Options,
) -> Result<pseal_central::publish::Summary, PublishError> {
    publish(fake, release, id, Path::new("key.txt"), opts, &Silent)
}

#[test]
fn everything_is_sent_in_batches_several_at_once_and_a_second_run_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let list = instances(3, 10);
    let (release, id) = write_release(dir.path(), &list);
    let fake = Fake::new(&list);
    let summary = run(&fake, &release, &id, &options(3, 4)).unwrap();
    assert_eq!((summary.sent, summary.already_present, summary.failed), (60, 0, 0));
    assert_eq!(summary.studies, 3);
    assert_eq!(fake.count(), 60);
    let batches = fake.batches.lock().unwrap().clone();
    assert!(batches.iter().all(|&n| (1..=4).contains(&n)), "{batches:?}");
    assert_eq!(batches.iter().sum::<usize>(), 60);
    let peak = fake.peak.load(Ordering::SeqCst);
    assert!((2..=3).contains(&peak), "requests in flight at once: {peak}");

    let again = run(&fake, &release, &id, &options(3, 4)).unwrap();
    assert_eq!((again.sent, again.already_present, again.failed), (0, 60, 0));
    assert_eq!(
        fake.batches.lock().unwrap().len(),
        batches.len(),
        "nothing sent the second time"
    );
}

#[test]
fn refused_discarded_and_poisoned_instances_are_reported_and_the_rest_stored() {
    let dir = tempfile::tempdir().unwrap();
    let list = instances(2, 6);
    let (release, id) = write_release(dir.path(), &list);
    let mut fake = Fake::new(&list);
    fake.refuse.insert(list[1].sop.clone());
    fake.discard.insert(list[7].sop.clone());
    fake.poison.insert(list[14].sop.clone());
    let summary = run(&fake, &release, &id, &options(2, 5)).unwrap();
    assert_eq!((summary.sent, summary.already_present, summary.failed), (21, 0, 3));
    assert_eq!(fake.count(), 21);
    let reasons: BTreeMap<String, String> = summary
        .failures
        .iter()
        .map(|f| (f.path.clone(), f.reason.clone()))
        .collect();
    assert!(reasons[&list[1].path()].contains("A900H"), "{reasons:?}");
    assert!(reasons[&list[7].path()].contains("does not hold it"), "{reasons:?}");
    assert!(reasons[&list[14].path()].contains("HTTP 400"), "{reasons:?}");
    // The poisoned batch's other instances were sent again one by one and stored.
    for (i, inst) in list.iter().enumerate() {
        if ![1, 7, 14].contains(&i) {
            assert!(!reasons.contains_key(&inst.path()));
        }
    }
    // A second run sends only the three again, and they fail again.
    let again = run(&fake, &release, &id, &options(2, 5)).unwrap();
    assert_eq!((again.sent, again.already_present, again.failed), (0, 21, 3));
}

#[test]
fn confirmation_by_series_counts_lists_instances_only_where_a_count_is_short() {
    let dir = tempfile::tempdir().unwrap();
    let list = instances(3, 6);
    let (release, id) = write_release(dir.path(), &list);
    let mut fake = Fake::new(&list);
    fake.counts = true;
    // Study 2.25.2 has one instance discarded after the server answered "stored".
    fake.discard.insert(list[14].sop.clone());
    let summary = run(&fake, &release, &id, &options(2, 5)).unwrap();
    assert_eq!((summary.sent, summary.already_present, summary.failed), (35, 0, 1));
    assert!(
        summary.failures[0].reason.contains("does not hold it"),
        "{:?}",
        summary.failures
    );
    assert_eq!(summary.failures[0].path, list[14].path());
    // One listing per study before sending, and one more only for the study that came up short.
    assert_eq!(fake.listings.load(Ordering::SeqCst), 4);
    // The second run sends the discarded instance again, and it is found missing again.
    let again = run(&fake, &release, &id, &options(2, 5)).unwrap();
    assert_eq!((again.sent, again.already_present, again.failed), (0, 35, 1));
}

#[test]
fn a_run_stopped_by_the_server_says_what_it_did_and_the_next_run_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let list = instances(4, 8);
    let (release, id) = write_release(dir.path(), &list);
    let mut fake = Fake::new(&list);
    fake.unauthorized_after = Some(3);
    let err = run(&fake, &release, &id, &options(1, 4)).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("refused user pseal") && text.contains("run the same command again"),
        "{text}"
    );
    let PublishError::Stopped { sent, .. } = err else {
        panic!("{err:?}")
    };
    let stored = fake.count() as u64;
    assert_eq!(sent, stored, "the counts say what the server holds");
    assert!((1..64).contains(&stored), "{stored}");

    fake.unauthorized_after = None;
    let summary = run(&fake, &release, &id, &options(2, 4)).unwrap();
    assert_eq!(summary.already_present, stored);
    assert_eq!(summary.sent + summary.already_present, 64);
    assert_eq!(fake.count(), 64);
}

#[test]
fn a_damaged_release_stops_with_its_name_and_sends_no_partial_instance() {
    let dir = tempfile::tempdir().unwrap();
    let list = instances(2, 40);
    let (release, id) = write_release(dir.path(), &list);
    let bytes = std::fs::read(&release).unwrap();
    let cut = dir.path().join("cut.age");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let fake = Fake::new(&list);
    // Every instance the fake receives is compared with its expected bytes (in `store`).
    let err = run(&fake, &cut, &id, &options(2, 4)).unwrap_err().to_string();
    assert!(err.contains("cut.age"), "{err}");
    assert!(fake.count() < list.len());

    let other = StewardIdentity::generate();
    let err = run(&fake, &release, &other, &options(2, 4)).unwrap_err().to_string();
    assert!(err.contains("not encrypted to the identity key.txt"), "{err}");
}

#[test]
fn verify_lists_what_the_server_lacks_holds_extra_or_files_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let list = instances(2, 3);
    let (release, id) = write_release(dir.path(), &list);
    let fake = Fake::new(&list);
    let opts = Options {
        verify: true,
        ..options(2, 4)
    };
    let summary = run(&fake, &release, &id, &opts).unwrap();
    let v = summary.verify.unwrap();
    assert!(v.matches(), "{v:?}");
    assert_eq!((v.release.studies, v.release.series, v.release.instances), (2, 4, 12));
    assert_eq!(v.server, v.release);

    {
        let mut held = fake.held.lock().unwrap();
        let s1 = held.get_mut("2.25.1").unwrap();
        s1.remove(&list[0].sop);
        s1.insert("2.25.999".into(), "2.25.11".into());
        s1.insert(list[1].sop.clone(), "2.25.12".into());
    }
    let only = Options {
        send: false,
        verify: true,
        ..options(2, 4)
    };
    let before = fake.batches.lock().unwrap().len();
    let v = run(&fake, &release, &id, &only).unwrap().verify.unwrap();
    assert_eq!(
        fake.batches.lock().unwrap().len(),
        before,
        "--verify-only sends nothing"
    );
    assert!(!v.matches());
    assert_eq!(v.missing, vec![list[0].path()]);
    assert_eq!(v.wrong_series, vec![list[1].path()]);
    assert_eq!(v.extra.len(), 1);
    assert_eq!(v.extra[0].sop, "2.25.999");
    assert_eq!(v.server.instances, 12);
}
