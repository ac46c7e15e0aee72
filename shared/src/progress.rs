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
/// `advance` the phase with its `done` and `total` so far, so a program need not count. Shared by
/// the binaries' JSON lines and the Python binding's progress callback, so the two never differ.
#[derive(Debug, Default)]
pub struct JsonEvents {
    phase: &'static str,
    done: u64,
    total: Option<u64>,
}

impl JsonEvents {
    /// Ready for the first phase.
    pub fn new() -> JsonEvents {
        JsonEvents::default()
    }

    /// The JSON object of `event`; events must come in the order they happened.
    pub fn to_json(&mut self, event: &Event) -> Option<serde_json::Value> {
        let mut v = serde_json::to_value(event).ok()?;
        match event {
            Event::Phase { name, total } => {
                self.phase = name;
                self.done = 0;
                self.total = *total;
            }
            Event::Advance { n } => {
                self.done += n;
                v["phase"] = self.phase.into();
                v["done"] = self.done.into();
                if let Some(t) = self.total {
                    v["total"] = t.into();
                }
            }
            _ => {}
        }
        Some(v)
    }
}

/// Renders progress for the binaries: a bar on a terminal, JSON lines with `--json`, else nothing.
#[cfg(feature = "terminal")]
pub mod render {
    use super::{Event, JsonEvents, Progress};
    use std::io::{IsTerminal, Write};
    use std::sync::Mutex;

    /// How progress is shown.
    pub enum Renderer {
        /// A bar on standard error.
        Bar(indicatif::ProgressBar),
        /// One JSON object per line on standard output.
        Json(Mutex<JsonState>),
        /// Nothing (not a terminal, no `--json`).
        Quiet,
    }

    /// An error and its causes on one line, without repeating a cause that a message already
    /// quotes (typed errors here put their source into their own message).
    pub fn error_text<'a>(chain: impl Iterator<Item = &'a (dyn std::error::Error + 'static)>) -> String {
        let mut text = String::new();
        for cause in chain {
            let part = cause.to_string();
            if text.contains(&part) {
                continue;
            }
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
        text
    }

    /// Counters added to JSON progress lines, so a program need not keep its own.
    pub struct JsonState {
        out: std::io::Stdout,
        events: JsonEvents,
    }

    impl Renderer {
        /// Chooses JSON lines when `json`, a bar when standard error is a terminal, else nothing.
        pub fn new(json: bool) -> Renderer {
            if json {
                Renderer::Json(Mutex::new(JsonState {
                    out: std::io::stdout(),
                    events: JsonEvents::new(),
                }))
            } else if std::io::stderr().is_terminal() {
                let bar = indicatif::ProgressBar::new(0);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{spinner} {prefix:>8} [{bar:40}] {pos}/{len} {per_sec} eta {eta}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                Renderer::Bar(bar)
            } else {
                Renderer::Quiet
            }
        }

        /// Prints one JSON object as a line (JSON mode only).
        pub fn json_line(&self, value: &serde_json::Value) {
            if let Renderer::Json(state) = self {
                if let Ok(mut state) = state.lock() {
                    let _ = writeln!(state.out, "{value}");
                    let _ = state.out.flush();
                }
            }
        }

        /// Prints a line for a human: above the bar, or on standard error (never in JSON mode,
        /// where standard output is for programs).
        pub fn say(&self, line: &str) {
            match self {
                Renderer::Bar(bar) => bar.println(line),
                Renderer::Quiet => eprintln!("{line}"),
                Renderer::Json(_) => {}
            }
        }

        /// Removes the bar.
        pub fn finish(&self) {
            if let Renderer::Bar(bar) = self {
                bar.finish_and_clear();
            }
        }

        /// True in JSON mode.
        pub fn is_json(&self) -> bool {
            matches!(self, Renderer::Json(_))
        }
    }

    impl Progress for Renderer {
        fn event(&self, event: Event) {
            match self {
                Renderer::Json(state) => {
                    if let Ok(mut state) = state.lock() {
                        let Some(v) = state.events.to_json(&event) else {
                            return;
                        };
                        let _ = writeln!(state.out, "{v}");
                        let _ = state.out.flush();
                    }
                }
                Renderer::Bar(bar) => match event {
                    Event::Phase { name, total } => {
                        bar.set_prefix(name);
                        bar.set_position(0);
                        bar.set_length(total.unwrap_or(0));
                    }
                    Event::Advance { n } => {
                        if bar.length() == Some(0) {
                            bar.set_length(bar.position() + n);
                        }
                        bar.inc(n)
                    }
                    Event::Quarantined { path, reason } => bar.println(format!("left out {path}: {reason}")),
                    _ => {}
                },
                Renderer::Quiet => {}
            }
        }
    }
}

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
