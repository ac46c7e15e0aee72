//! Runs a library call on a thread of its own, with the GIL released, and hands its progress
//! events to the caller's Python callback on the caller's thread.
//!
//! The library emits events from its worker threads; calling Python from there would make every
//! worker wait for the GIL. Instead the events go through a short queue to the thread that called
//! `export` or `review`, which waits with the GIL released (other Python threads, a Flask server,
//! keep running) and takes it only to call the callback. The queue is short so that a callback
//! that raises stops the run within a few files: the run can be at most [`QUEUE`] events ahead
//! of the callback. A `bundle_written` event is the exception: the run waits until it has been
//! delivered, so that a callback that raises on it stops the run before another bundle is
//! finished, and a bundle on disk is one the callback was told about (or, if it had raised
//! before, one listed in the `Cancelled` exception's `bundles`).

use crate::errors;
use pseal::export::{Cancel, ExportError};
use pseal::progress::{Event, JsonEvents, Progress, Silent};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyAnyMethods;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::time::Duration;

/// Events the run may be ahead of the callback (it waits when the queue is full).
const QUEUE: usize = 16;

/// How often the waiting caller looks for Ctrl-C (`KeyboardInterrupt`) when no event comes.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// What a finished run hands back: its report and its `summary` event, both as JSON.
pub struct Finished {
    /// The report, serialized as the CLI writes it (or why it could not be).
    pub report: Result<String, String>,
    /// The `summary` event that ends the `--json` stream.
    pub summary: serde_json::Value,
}

/// An event, and for `bundle_written` where to say it was delivered.
type Item = (Event, Option<SyncSender<()>>);

/// The library's progress events, queued for the caller's thread.
struct Queue(SyncSender<Item>);

impl Progress for Queue {
    fn event(&self, event: Event) {
        // The receiver lives until the run has ended and answers every acknowledgement, so a
        // send or a wait only fails if it is gone early, and then nobody is listening.
        if matches!(event, Event::BundleWritten { .. }) {
            let (delivered, wait) = sync_channel(1);
            if self.0.send((event, Some(delivered))).is_ok() {
                let _ = wait.recv();
            }
        } else {
            let _ = self.0.send((event, None));
        }
    }
}

/// Runs `work` on its own thread and returns its report as Python data.
///
/// `progress`, when given, is called with each event as a dict (the `--json` object), in order,
/// then with the summary. If it raises, `work` is cancelled and the exception is raised here
/// once the run has stopped: a `pseal.Cancelled` raised by the callback becomes a
/// `pseal.Cancelled` with the library's account of what was left and, in `bundles`, the files of
/// the bundles finished before it stopped; any other exception comes back as it was raised.
/// Ctrl-C (`KeyboardInterrupt`) in the waiting main thread cancels likewise.
pub fn run<W>(py: Python<'_>, what: &str, progress: Option<&Bound<'_, PyAny>>, work: W) -> PyResult<Py<PyAny>>
where
    W: FnOnce(&dyn Progress, &Cancel) -> Result<Finished, ExportError> + Send,
{
    if let Some(callback) = progress.filter(|c| !c.is_callable()) {
        return Err(PyTypeError::new_err(format!(
            "progress must be callable (a function taking one event dict), not {}",
            callback.get_type().name()?
        )));
    }
    let json = py.import("json")?;
    let loads = json.getattr("loads")?;
    let cancel = Cancel::new();
    let (sender, receiver) = sync_channel::<Item>(QUEUE);
    let mut raised: Option<PyErr> = None;
    // Every bundle this run finished, delivered to the callback or not.
    let mut bundles: Vec<String> = Vec::new();
    let outcome = std::thread::scope(|scope| {
        let run_cancel = cancel.clone();
        let listening = progress.is_some();
        let worker = scope.spawn(move || {
            let queue = Queue(sender);
            let sink: &dyn Progress = if listening { &queue } else { &Silent };
            work(sink, &run_cancel)
            // `queue` is dropped here: the receiver sees the end of the stream.
        });
        let mut events = JsonEvents::new();
        let mut receiver = receiver;
        loop {
            // Wait with the GIL released; the receiver moves in and out because it may not be
            // shared between threads.
            let (back, first) = py.detach(move || {
                let got = receiver.recv_timeout(SIGNAL_CHECK);
                (receiver, got)
            });
            receiver = back;
            match first {
                Ok(item) => {
                    // Deliver what is queued now under one hold of the GIL, but no more than a
                    // queue's worth: other Python threads get the GIL between batches.
                    for (event, delivered) in std::iter::once(item).chain(drain(&receiver).take(QUEUE)) {
                        if let Event::BundleWritten { file, .. } = &event {
                            bundles.push(file.clone());
                        }
                        if raised.is_none() {
                            if let (Some(callback), Some(value)) = (progress, events.to_json(&event)) {
                                if let Err(e) = deliver(&loads, callback, &value) {
                                    cancel.cancel();
                                    raised = Some(e);
                                }
                            }
                        }
                        if let Some(delivered) = delivered {
                            let _ = delivered.send(());
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if raised.is_none() {
                        if let Err(e) = py.check_signals() {
                            cancel.cancel();
                            raised = Some(e);
                        }
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // The stream ended, so the worker is returning; wait for it without the GIL.
        py.detach(move || worker.join())
    });
    let finished = match outcome {
        Err(_) => return Err(errors::from_panic(what)),
        Ok(Err(ExportError::Cancelled)) => {
            let ours = || -> PyResult<PyErr> {
                let ours = errors::from_export(&ExportError::Cancelled);
                ours.value(py).setattr("bundles", &bundles)?;
                Ok(ours)
            };
            return Err(match raised {
                Some(e) if e.is_instance_of::<errors::Cancelled>(py) => {
                    let ours = ours()?;
                    ours.set_cause(py, Some(e));
                    ours
                }
                Some(e) => e,
                None => ours()?,
            });
        }
        Ok(Err(e)) => return Err(errors::from_export(&e)),
        Ok(Ok(finished)) => finished,
    };
    // The run had passed its last check before the callback raised: it is complete (report
    // written), and the callback's exception still stands.
    if let Some(e) = raised {
        return Err(e);
    }
    if let Some(callback) = progress {
        deliver(&loads, callback, &finished.summary)?;
    }
    let report = finished.report.map_err(errors::Error::new_err)?;
    Ok(loads.call1((report,))?.unbind())
}

/// The events already queued, without waiting.
fn drain(receiver: &Receiver<Item>) -> impl Iterator<Item = Item> + '_ {
    std::iter::from_fn(|| receiver.try_recv().ok())
}

/// Calls the callback with one event as a dict.
fn deliver(loads: &Bound<'_, PyAny>, callback: &Bound<'_, PyAny>, value: &serde_json::Value) -> PyResult<()> {
    let event = loads.call1((value.to_string(),))?;
    callback.call1((event,))?;
    Ok(())
}

/// Runs a short library call (no progress) with the GIL released, turning a panic into
/// `pseal.Error`.
pub fn quick<T: Send>(py: Python<'_>, what: &str, work: impl FnOnce() -> T + Send) -> PyResult<T> {
    py.detach(move || std::panic::catch_unwind(AssertUnwindSafe(work)))
        .map_err(|_| errors::from_panic(what))
}
