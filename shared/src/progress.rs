//! Progress reporting: the library says what it is doing; the binaries draw a bar or print JSON.

use serde::Serialize;

/// One step of a long command, as the binaries render it (a bar on a terminal, or one JSON object
/// per line with `--json`). Never carries a value read from a DICOM file.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A phase starts; `total` is the number of steps when known.
    Phase {
        /// Phase name, e.g. `scan`, `export`, `import`.
        name: &'static str,
        /// Steps in the phase.
        total: Option<u64>,
    },
    /// `n` more steps are done in the current phase.
    Advance {
        /// Steps done since the last event.
        n: u64,
    },
    /// A bundle was written.
    BundleWritten {
        /// The bundle file name (generated, no patient data).
        file: String,
        /// Instances inside.
        instances: u64,
    },
    /// A file was left out, with the reason.
    Quarantined {
        /// Path relative to the input folder (local only; never enters a bundle).
        path: String,
        /// Why.
        reason: String,
    },
    /// A bundle was imported (steward side).
    Imported {
        /// The bundle file.
        bundle: String,
        /// Outcome: `imported` or `already-imported`.
        outcome: &'static str,
        /// Instances written to the archive.
        instances: u64,
    },
    /// A bundle was refused (steward side).
    Refused {
        /// The bundle file.
        bundle: String,
        /// Why.
        reason: String,
    },
    /// The current phase's work in bytes, once known (sent after its `Phase`): displays show a
    /// byte rate and an estimated time left.
    Size {
        /// Bytes the phase will process.
        bytes: u64,
    },
    /// `n` more bytes of the current phase are done (sent just before the `Advance` of the same
    /// step, or on its own while a large file is read).
    Bytes {
        /// Bytes done since the last event.
        n: u64,
    },
    /// Work moves on to item `index` (1-based) of `total`: a patient, a bundle.
    Item {
        /// What an item is: `patient` or `bundle`.
        unit: &'static str,
        /// Which one, from 1.
        index: u64,
        /// How many there are.
        total: u64,
    },
}

/// Receives progress events. Implementations must be cheap: events arrive per file.
pub trait Progress: Send + Sync {
    /// Handles one event.
    fn event(&self, event: Event);
}

/// Discards progress (library callers and tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {
    fn event(&self, _event: Event) {}
}

/// Turns events into the objects `--json` prints, one per line: the event's own fields, and on
/// `advance` the phase with its `done` and `total` so far, so a program need not count. Bytes
/// ride on the next `advance` (as `bytes`, `bytes_done` and, once known, `bytes_total`) rather
/// than adding a line per file. Shared by the binaries' JSON lines and the Python binding's
/// progress callback, so the two never differ.
#[derive(Debug, Default)]
pub struct JsonEvents {
    phase: &'static str,
    done: u64,
    total: Option<u64>,
    bytes_pending: u64,
    bytes_done: u64,
    bytes_total: Option<u64>,
}

impl JsonEvents {
    /// Ready for the first phase.
    pub fn new() -> JsonEvents {
        JsonEvents::default()
    }

    /// The JSON object of `event`, or `None` for an event folded into a later line (`bytes`);
    /// events must come in the order they happened.
    pub fn to_json(&mut self, event: &Event) -> Option<serde_json::Value> {
        match event {
            Event::Phase { name, total } => {
                // A phase of the same name again (import: one per bundle) goes on counting bytes.
                if *name != self.phase {
                    self.bytes_done = 0;
                    self.bytes_total = None;
                }
                self.phase = name;
                self.done = 0;
                self.total = *total;
            }
            Event::Bytes { n } => {
                self.bytes_pending += n;
                self.bytes_done += n;
                return None;
            }
            Event::Size { bytes } => self.bytes_total = Some(*bytes),
            _ => {}
        }
        let mut v = serde_json::to_value(event).ok()?;
        if let Event::Advance { n } = event {
            self.done += n;
            v["phase"] = self.phase.into();
            v["done"] = self.done.into();
            if let Some(t) = self.total {
                v["total"] = t.into();
            }
            if self.bytes_pending > 0 || self.bytes_done > 0 {
                v["bytes"] = self.bytes_pending.into();
                v["bytes_done"] = self.bytes_done.into();
                if let Some(t) = self.bytes_total {
                    v["bytes_total"] = t.into();
                }
                self.bytes_pending = 0;
            }
        }
        Some(v)
    }
}

/// Renders progress for the binaries: a bar on a terminal, JSON lines with `--json`, else nothing.
#[cfg(feature = "terminal")]
pub mod render;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_events_count_advances_within_their_phase() {
        let mut json = JsonEvents::new();
        let scan = Event::Phase {
            name: "scan",
            total: None,
        };
        assert_eq!(
            json.to_json(&scan),
            Some(serde_json::json!({"event": "phase", "name": "scan", "total": null}))
        );
        json.to_json(&Event::Advance { n: 1 });
        assert_eq!(
            json.to_json(&Event::Advance { n: 2 }),
            Some(serde_json::json!({"event": "advance", "n": 2, "done": 3, "phase": "scan"}))
        );
        json.to_json(&Event::Phase {
            name: "export",
            total: Some(5),
        });
        assert_eq!(
            json.to_json(&Event::Advance { n: 1 }),
            Some(serde_json::json!({"event": "advance", "n": 1, "done": 1, "phase": "export", "total": 5}))
        );
        let written = Event::BundleWritten {
            file: "S-1.pseal".into(),
            instances: 4,
        };
        assert_eq!(
            json.to_json(&written),
            Some(serde_json::json!({"event": "bundle_written", "file": "S-1.pseal", "instances": 4}))
        );
    }
}
