//! The publish pipeline. One thread reads the release; for each study it meets it asks the server
//! which instances it holds (QIDO-RS) and puts the others into batches; worker threads send the
//! batches (STOW-RS), several in flight. When a study's batches are answered, the server is asked
//! again, and only the instances it then holds count as sent. That question goes to a thread of
//! its own, so the next study's batches go on being read and sent while the server answers it
//! (asked on the reading thread, it left the senders idle for as long as the server took), and it
//! counts instances per series before listing any (docs/performance.md, *Publishing into Orthanc*).
//!
//! Memory: the batches in flight (`jobs` + 1, each at most `batch_bytes` or one instance), the
//! UIDs of the studies open, and with `verify` the index rows. Nothing else grows with the
//! release.

use super::release::{self, Kind};
use super::stow::{failure_text, warning_text, Batch, Part, Verdict};
use super::verify;
use super::{Failure, Observer, PublishError, Server, ServerError, Summary};
use pseal::keys::StewardIdentity;
use pseal::progress::Event;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::mpsc;
use std::sync::Mutex;

/// How to publish.
#[derive(Debug, Clone)]
pub struct Options {
    /// Requests in flight at once.
    pub jobs: usize,
    /// Largest number of instances in one request.
    pub batch_instances: usize,
    /// Largest request body in bytes (an instance larger than this goes alone).
    pub batch_bytes: u64,
    /// Send what the server lacks (false: only compare, with `verify`).
    pub send: bool,
    /// Compare the server with `index.csv` at the end.
    pub verify: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            jobs: 4,
            batch_instances: 64,
            batch_bytes: 16 << 20,
            send: true,
            verify: false,
        }
    }
}

/// What the server made of one instance.
enum Outcome {
    Stored(Option<u16>),
    Failed(String),
}

type Answer = Result<Vec<(Part, Outcome)>, ServerError>;

/// A study whose batches are all answered, for the confirming thread to ask about.
struct ToConfirm {
    study: String,
    stored: Vec<Part>,
    /// Instances per series the server should now hold: what it held before and what it stored.
    expected: HashMap<String, u64>,
}

/// The confirming thread's answer: the instances the server said it stored and what it holds.
struct Confirmed {
    stored: Vec<Part>,
    held: Result<HashSet<String>, ServerError>,
}

/// A study met in the release.
#[derive(Default)]
struct Study {
    /// What the server held before this run.
    held: HashSet<String>,
    /// The same, counted per series.
    held_series: HashMap<String, u64>,
    /// Instances sent and not yet answered.
    in_flight: usize,
    /// Instances the server said it stored, to confirm.
    stored: Vec<Part>,
    /// The release has moved on to another study.
    closed: bool,
}

struct State<'a> {
    server: &'a dyn Server,
    observer: &'a dyn Observer,
    studies: HashMap<String, Study>,
    current: Option<String>,
    summary: Summary,
    /// To the confirming thread (`None` once closed: then confirmation is done in line).
    confirm_tx: Option<mpsc::Sender<ToConfirm>>,
}

impl State<'_> {
    fn fail(&mut self, path: String, reason: String) {
        let failure = Failure { path, reason };
        self.observer.failed(&failure);
        self.summary.failed += 1;
        self.summary.failures.push(failure);
    }

    /// The release's next instance is in `study`: close the previous one, ask about this one.
    fn enter(&mut self, study: &str) -> Result<(), ServerError> {
        if self.current.as_deref() == Some(study) {
            return Ok(());
        }
        if let Some(previous) = self.current.take() {
            if let Some(s) = self.studies.get_mut(&previous) {
                s.closed = true;
            }
            self.confirm_if_done(&previous)?;
        }
        if let Some(s) = self.studies.get_mut(study) {
            // Met again after another study (the release is not grouped by study): what the
            // server held then still holds.
            s.closed = false;
        } else {
            let mut held = HashSet::new();
            let mut held_series: HashMap<String, u64> = HashMap::new();
            for h in self.server.study_instances(study)? {
                *held_series.entry(h.series).or_default() += 1;
                held.insert(h.sop);
            }
            self.studies.insert(
                study.to_string(),
                Study {
                    held,
                    held_series,
                    ..Study::default()
                },
            );
            self.summary.studies += 1;
        }
        self.current = Some(study.to_string());
        Ok(())
    }

    /// Takes a worker's answer for one batch.
    fn absorb(&mut self, answer: Answer) -> Result<(), ServerError> {
        let outcomes = answer?;
        let mut touched = Vec::new();
        for (part, outcome) in outcomes {
            if let Some(s) = self.studies.get_mut(&part.study) {
                s.in_flight = s.in_flight.saturating_sub(1);
            }
            if !touched.contains(&part.study) {
                touched.push(part.study.clone());
            }
            match outcome {
                Outcome::Stored(warning) => {
                    if let Some(code) = warning {
                        self.summary.warnings += 1;
                        self.observer.warned(&Failure {
                            path: part.path.clone(),
                            reason: warning_text(code),
                        });
                    }
                    match self.studies.get_mut(&part.study) {
                        Some(s) => s.stored.push(part),
                        None => self.summary.sent += 1,
                    }
                }
                Outcome::Failed(reason) => self.fail(part.path, reason),
            }
            self.observer.event(Event::Advance { n: 1 });
        }
        for study in touched {
            self.confirm_if_done(&study)?;
        }
        Ok(())
    }

    fn confirm_if_done(&mut self, study: &str) -> Result<(), ServerError> {
        match self.studies.get(study) {
            Some(s) if s.closed && s.in_flight == 0 => self.confirm(study),
            _ => Ok(()),
        }
    }

    /// Asks the server again (on the confirming thread when there is one) and counts as sent
    /// only what it then holds: a server may answer "stored" for an instance it then discards.
    fn confirm(&mut self, study: &str) -> Result<(), ServerError> {
        let Some(s) = self.studies.get_mut(study) else {
            return Ok(());
        };
        if s.stored.is_empty() {
            s.held.clear();
            self.studies.remove(study);
            return Ok(());
        }
        let stored = std::mem::take(&mut s.stored);
        let mut expected = std::mem::take(&mut s.held_series);
        for part in &stored {
            *expected.entry(series_of(&part.path).to_string()).or_default() += 1;
        }
        self.studies.remove(study);
        let job = ToConfirm {
            study: study.to_string(),
            stored,
            expected,
        };
        let job = match &self.confirm_tx {
            Some(tx) => match tx.send(job) {
                Ok(()) => return Ok(()),
                // The confirming thread is gone: ask here.
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        let held = held_after(self.server, &job);
        self.confirmed(Confirmed {
            stored: job.stored,
            held,
        })
    }

    /// Counts a study's confirmation.
    fn confirmed(&mut self, answer: Confirmed) -> Result<(), ServerError> {
        let Confirmed { stored, held } = answer;
        let held = match held {
            Ok(held) => held,
            Err(e) => {
                // Answered "stored" but not confirmed: counted as sent, as when a run stops.
                self.summary.sent += stored.len() as u64;
                return Err(e);
            }
        };
        for part in stored {
            if held.contains(&part.sop) {
                self.summary.sent += 1;
            } else {
                self.fail(
                    part.path,
                    "the server answered that it stored this instance but does not hold it (QIDO-RS); a filter or rule on the server discarded it".into(),
                );
            }
        }
        Ok(())
    }

    /// Counts what was answered but not confirmed, when the run stops early.
    fn count_unconfirmed(&mut self) {
        for s in self.studies.values() {
            self.summary.sent += s.stored.len() as u64;
        }
    }
}

/// Which of `job.stored` the server holds. First by counting each series' instances, which a
/// server answers from its index: when every series holds exactly what it held before plus what
/// was stored, everything stored is there (the release's series carry the archive's own UIDs, so
/// nothing else is stored into them meanwhile). Otherwise, or when the server cannot count, the
/// study's instances are listed one by one, which names what is missing.
fn held_after(server: &dyn Server, job: &ToConfirm) -> Result<HashSet<String>, ServerError> {
    if let Some(counts) = server.study_series_counts(&job.study)? {
        if job.expected.iter().all(|(series, n)| counts.get(series) == Some(n)) {
            return Ok(job.stored.iter().map(|p| p.sop.clone()).collect());
        }
    }
    Ok(server.study_instances(&job.study)?.into_iter().map(|h| h.sop).collect())
}

/// The series UID in an instance's path `archive/<pseudonym>/<study>/<series>/<sop>.dcm`.
fn series_of(path: &str) -> &str {
    path.split('/').nth(3).unwrap_or_default()
}

/// Sends one batch and turns the answer into one outcome per instance. A batch refused as a whole
/// without a word about its instances is sent again one instance at a time, so that one bad
/// instance does not fail the others.
fn store_batch(server: &dyn Server, batch: Batch) -> Answer {
    let response = server.store(&batch)?;
    let status = response.status;
    if let Some(verdicts) = &response.verdicts {
        return Ok(batch
            .into_parts()
            .into_iter()
            .map(|part| {
                let outcome = match verdicts.get(&part.sop) {
                    Some(Verdict::Stored(w)) => Outcome::Stored(*w),
                    Some(Verdict::Failed(code)) => Outcome::Failed(failure_text(*code)),
                    None => Outcome::Failed(format!(
                        "the server's answer (HTTP {status}) does not mention this instance"
                    )),
                };
                (part, outcome)
            })
            .collect());
    }
    if (200..300).contains(&status) {
        return Ok(batch
            .into_parts()
            .into_iter()
            .map(|p| (p, Outcome::Stored(None)))
            .collect());
    }
    if batch.len() > 1 {
        let singles = batch.split().map_err(|e| ServerError::Transport {
            url: String::new(),
            reason: e.to_string(),
            transient: false,
        })?;
        drop(batch);
        let mut out = Vec::new();
        for one in singles {
            out.extend(store_batch(server, one)?);
        }
        return Ok(out);
    }
    let text = if response.text.is_empty() {
        String::new()
    } else {
        format!(": {}", response.text)
    };
    Ok(batch
        .into_parts()
        .into_iter()
        .map(|p| (p, Outcome::Failed(format!("refused with HTTP {status}{text}"))))
        .collect())
}

/// Publishes the release at `path` (encrypted to `identity`, read from `identity_file`) into
/// `server`. Returns the counts; `Err` only when the run could not go on (what it did stays done,
/// and the same call finishes the work).
pub fn publish(
    server: &dyn Server,
    path: &Path,
    identity: &StewardIdentity,
    identity_file: &Path,
    options: &Options,
    observer: &dyn Observer,
) -> Result<Summary, PublishError> {
    server.probe()?;
    let mut stream = release::open(path, identity, identity_file)?;
    let entries = stream.entries().map_err(|e| PublishError::Release {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    observer.event(Event::Phase {
        name: "publish",
        total: None,
    });
    let mut state = State {
        server,
        observer,
        studies: HashMap::new(),
        current: None,
        summary: Summary::default(),
        confirm_tx: None,
    };
    let mut index = None;
    let jobs = options.jobs.max(1);
    let mut stop: Option<String> = None;

    let (batch_tx, batch_rx) = mpsc::sync_channel::<Batch>(0);
    let batch_rx = Mutex::new(batch_rx);
    std::thread::scope(|scope| {
        let (answer_tx, answer_rx) = mpsc::channel::<Answer>();
        if options.send {
            for _ in 0..jobs {
                let (batch_rx, answer_tx) = (&batch_rx, answer_tx.clone());
                scope.spawn(move || loop {
                    let next = match batch_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(batch) = next else { return };
                    if answer_tx.send(store_batch(server, batch)).is_err() {
                        return;
                    }
                });
            }
        }
        drop(answer_tx);
        let (confirmed_tx, confirmed_rx) = mpsc::channel::<Confirmed>();
        if options.send {
            let (confirm_tx, confirm_rx) = mpsc::channel::<ToConfirm>();
            state.confirm_tx = Some(confirm_tx);
            scope.spawn(move || {
                for job in confirm_rx {
                    let held = held_after(server, &job);
                    let answer = Confirmed {
                        stored: job.stored,
                        held,
                    };
                    if confirmed_tx.send(answer).is_err() {
                        return;
                    }
                }
            });
        } else {
            drop(confirmed_tx);
        }

        let mut batch = Batch::new();
        let flush = |batch: &mut Batch| -> Result<(), FlushError> {
            if batch.is_empty() {
                return Ok(());
            }
            let mut full = std::mem::take(batch);
            full.finish().map_err(FlushError::Encode)?;
            batch_tx.send(full).map_err(|_| FlushError::SendersStopped)
        };
        for entry in entries {
            while let Ok(answer) = answer_rx.try_recv() {
                if let Err(e) = state.absorb(answer) {
                    stop.get_or_insert(e.to_string());
                }
            }
            while let Ok(answer) = confirmed_rx.try_recv() {
                if let Err(e) = state.confirmed(answer) {
                    stop.get_or_insert(e.to_string());
                }
            }
            if stop.is_some() {
                break;
            }
            let mut entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    stop = Some(format!("{}: reading the release: {e}", path.display()));
                    break;
                }
            };
            let name = entry
                .path()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            match release::classify(&name) {
                Kind::Other => {}
                Kind::Index => {
                    if options.verify {
                        match release::read_index(&mut entry, path) {
                            Ok(rows) => index = Some(rows),
                            Err(e) => {
                                stop = Some(e.to_string());
                                break;
                            }
                        }
                    }
                }
                Kind::Misplaced(name) => {
                    if options.send {
                        state.fail(
                            name,
                            "not in the archive layout archive/<pseudonym>/<study>/<series>/<sop>.dcm; not sent".into(),
                        );
                        observer.event(Event::Advance { n: 1 });
                    }
                }
                Kind::Instance(part) => {
                    if !options.send {
                        continue;
                    }
                    if let Err(e) = state.enter(&part.study) {
                        stop = Some(e.to_string());
                        break;
                    }
                    let held = state
                        .studies
                        .get(&part.study)
                        .is_some_and(|s| s.held.contains(&part.sop));
                    if held {
                        state.summary.already_present += 1;
                        observer.event(Event::Advance { n: 1 });
                        continue;
                    }
                    let size = entry.header().size().unwrap_or(0);
                    if batch.len() >= options.batch_instances.max(1)
                        || (!batch.is_empty() && batch.bytes() as u64 + size > options.batch_bytes)
                    {
                        if let Err(e) = flush(&mut batch) {
                            stop = Some(e.to_string());
                            break;
                        }
                    }
                    let entry_path = part.path.clone();
                    let study = part.study.clone();
                    if let Err(e) = batch.add(part, &mut entry, size) {
                        stop = Some(format!("{}: reading {entry_path}: {e}", path.display()));
                        break;
                    }
                    // Counted from the moment it is batched, so the study is not confirmed
                    // while the instance still waits in the batch being filled.
                    if let Some(s) = state.studies.get_mut(&study) {
                        s.in_flight += 1;
                    }
                }
            }
        }
        if stop.is_none() {
            if let Err(e) = flush(&mut batch) {
                stop = Some(e.to_string());
            }
        }
        drop(batch);
        drop(batch_tx);
        // Every batch handed over is answered before the counts are final.
        for answer in answer_rx {
            if let Err(e) = state.absorb(answer) {
                stop.get_or_insert(e.to_string());
            }
        }
        if stop.is_none() {
            if let Some(current) = state.current.take() {
                if let Some(s) = state.studies.get_mut(&current) {
                    s.closed = true;
                }
            }
            let open: Vec<String> = state.studies.keys().cloned().collect();
            for study in open {
                if let Err(e) = state.confirm(&study) {
                    stop = Some(e.to_string());
                    break;
                }
            }
        }
        // Closing the channel ends the confirming thread once it has answered everything.
        state.confirm_tx = None;
        for answer in confirmed_rx {
            if let Err(e) = state.confirmed(answer) {
                stop.get_or_insert(e.to_string());
            }
        }
    });
    if let Some(reason) = stop {
        state.count_unconfirmed();
        return Err(PublishError::Stopped {
            reason,
            sent: state.summary.sent,
            already_present: state.summary.already_present,
            failed: state.summary.failed,
        });
    }
    let mut summary = state.summary;
    if options.verify {
        let rows = index.ok_or_else(|| PublishError::Index {
            path: path.to_path_buf(),
            reason: format!("the release has no {}; nothing to compare with", release::INDEX_ENTRY),
        })?;
        summary.verify = Some(verify::compare(server, &rows)?);
    }
    Ok(summary)
}

/// Why a full batch could not be handed to the sending threads.
#[derive(Debug, thiserror::Error)]
enum FlushError {
    /// The multipart body could not be closed.
    #[error("{0}")]
    Encode(std::io::Error),
    /// Every sending thread has ended (their own error is reported first).
    #[error("the sending threads stopped")]
    SendersStopped,
}
