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

/// Renders progress for the binaries: a bar on a terminal, JSON lines with `--json`, else nothing.
#[cfg(feature = "terminal")]
pub mod render;
