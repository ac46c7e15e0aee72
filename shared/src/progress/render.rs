//! How the binaries show progress: on a terminal, a spinner with a count while the total is
//! unknown and a bar once it is known, with the item in hand ("patient 2/3", "bundle 4/9"), the
//! count of files or instances against their total, bytes per second in binary units and the
//! time left; with `--json`, one JSON object per line on standard output; otherwise nothing.
//!
//! Standard output carries the results (one line per item, then the summary); standard error
//! carries the bar, notes, warnings and errors, so that `> log` keeps every result and reason.

use super::{Event, Progress};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How progress is shown.
pub enum Renderer {
    /// A bar on standard error.
    Bar(Box<BarState>),
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
        let mut part = cause.to_string();
        // tempfile's errors end in `at path "…/.tmpXXXX"`: a file the user never named.
        if let Some(i) = part.find(" at path \"") {
            part.truncate(i);
        }
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
    events: super::JsonEvents,
}

/// The terminal display: the indicatif bar and the numbers it shows.
pub struct BarState {
    bar: indicatif::ProgressBar,
    numbers: Mutex<Numbers>,
}

/// What the bar says, kept here rather than in the bar so that every count is shown against its
/// own total and never exceeds it.
#[derive(Default)]
struct Numbers {
    phase: &'static str,
    started: Option<Instant>,
    steps: u64,
    steps_total: Option<u64>,
    bytes: u64,
    bytes_total: Option<u64>,
    item: Option<(&'static str, u64, u64)>,
    /// Which template the bar has: 0 none yet, 1 spinner, 2 bar.
    style: u8,
    last_message: Option<Instant>,
}

/// Seconds into a phase before a rate is shown (earlier ones say little).
const RATE_AFTER: f64 = 0.2;

/// What a phase's steps are called.
fn step_unit(phase: &str, n: u64) -> &'static str {
    match (phase, n) {
        ("import" | "release", 1) => "instance",
        ("import" | "release", _) => "instances",
        (_, 1) => "file",
        _ => "files",
    }
}

/// A count with thousands separators (`12,345`).
pub fn count(n: u64) -> String {
    indicatif::HumanCount(n).to_string()
}

/// A rate per second: one decimal under 10, whole numbers above.
fn rate(n: f64) -> String {
    if n < 10.0 {
        format!("{n:.1}")
    } else {
        count(n.round() as u64)
    }
}

impl Numbers {
    fn message(&self) -> String {
        let mut parts = Vec::new();
        if let Some((unit, index, total)) = self.item {
            parts.push(format!("{unit} {}/{}", index.min(total), total));
        }
        let unit = step_unit(self.phase, self.steps_total.unwrap_or(self.steps));
        match self.steps_total {
            Some(total) => parts.push(format!("{}/{} {unit}", count(self.steps.min(total)), count(total))),
            None => parts.push(format!("{} {unit}", count(self.steps))),
        }
        let elapsed = self.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
        if self.bytes > 0 || self.bytes_total.is_some() {
            match self.bytes_total {
                Some(total) => parts.push(format!(
                    "{}/{}",
                    indicatif::BinaryBytes(self.bytes.min(total)),
                    indicatif::BinaryBytes(total)
                )),
                None => parts.push(indicatif::BinaryBytes(self.bytes).to_string()),
            }
            if elapsed > RATE_AFTER {
                parts.push(format!(
                    "{}/s",
                    indicatif::BinaryBytes((self.bytes as f64 / elapsed) as u64)
                ));
            }
        } else if elapsed > RATE_AFTER {
            parts.push(format!("{} {unit}/s", rate(self.steps as f64 / elapsed)));
        }
        parts.join(" · ")
    }

    /// Position and length for the bar: bytes when their total is known, else steps.
    fn bar_position(&self) -> Option<(u64, u64)> {
        match (self.bytes_total, self.steps_total) {
            (Some(total), _) => Some((self.bytes.min(total), total)),
            (None, Some(total)) => Some((self.steps.min(total), total)),
            (None, None) => None,
        }
    }
}

impl BarState {
    fn new() -> BarState {
        let bar = indicatif::ProgressBar::no_length();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {prefix:>7} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        BarState {
            bar,
            numbers: Mutex::new(Numbers::default()),
        }
    }

    fn redraw(&self, n: &mut Numbers, force: bool) {
        let now = Instant::now();
        if !force
            && n.last_message
                .is_some_and(|t| now.duration_since(t) < Duration::from_millis(50))
        {
            return;
        }
        n.last_message = Some(now);
        match n.bar_position() {
            Some((pos, len)) => {
                if n.style != 2 {
                    n.style = 2;
                    self.bar.set_style(
                        indicatif::ProgressStyle::with_template("{spinner} {prefix:>7} [{bar:28}] {msg} · eta {eta}")
                            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                            .progress_chars("=> "),
                    );
                }
                self.bar.set_length(len);
                self.bar.set_position(pos);
            }
            None => {
                if n.style != 1 {
                    n.style = 1;
                    self.bar.set_style(
                        indicatif::ProgressStyle::with_template("{spinner} {prefix:>7} {msg}")
                            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                    );
                    self.bar.unset_length();
                }
            }
        }
        self.bar.set_message(n.message());
    }

    fn event(&self, event: &Event) {
        let Ok(mut n) = self.numbers.lock() else { return };
        match event {
            Event::Phase { name, total } => {
                // A phase of the same name again (import: one per bundle) goes on counting bytes
                // and items; only its steps start over.
                if *name != n.phase {
                    *n = Numbers {
                        phase: name,
                        started: Some(Instant::now()),
                        ..Numbers::default()
                    };
                    self.bar.set_prefix(*name);
                    self.bar.reset_eta();
                }
                n.steps = 0;
                n.steps_total = *total;
                self.redraw(&mut n, true);
            }
            Event::Advance { n: k } => {
                n.steps += k;
                self.redraw(&mut n, false);
            }
            Event::Size { bytes } => {
                n.bytes_total = Some(*bytes);
                self.redraw(&mut n, true);
            }
            Event::Bytes { n: k } => {
                n.bytes += k;
                self.redraw(&mut n, false);
            }
            Event::Item { unit, index, total } => {
                n.item = Some((unit, *index, *total));
                self.redraw(&mut n, true);
            }
            Event::Quarantined { path, reason } => {
                drop(n);
                self.result(&format!("left out {path}: {reason}"));
            }
            _ => {}
        }
    }

    /// Prints a result line on standard output with the bar out of the way.
    fn result(&self, line: &str) {
        self.bar.suspend(|| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        });
    }
}

impl Renderer {
    /// Chooses JSON lines when `json`, a bar when standard error is a terminal, else nothing.
    pub fn new(json: bool) -> Renderer {
        if json {
            Renderer::Json(Mutex::new(JsonState {
                out: std::io::stdout(),
                events: super::JsonEvents::new(),
            }))
        } else if std::io::stderr().is_terminal() {
            Renderer::Bar(Box::new(BarState::new()))
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

    /// Prints a note or warning for a human on standard error (above the bar; never in JSON
    /// mode, where a program reads the events instead).
    pub fn say(&self, line: &str) {
        match self {
            Renderer::Bar(bar) => bar.bar.suspend(|| eprintln!("{line}")),
            Renderer::Quiet => eprintln!("{line}"),
            Renderer::Json(_) => {}
        }
    }

    /// Prints a per-item result (a bundle imported or refused, a file left out) on standard
    /// output, above the bar; in JSON mode the events say it instead.
    pub fn result(&self, line: &str) {
        match self {
            Renderer::Bar(bar) => bar.result(line),
            Renderer::Quiet => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            Renderer::Json(_) => {}
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Renderer::Bar(bar) = self {
            bar.bar.finish_and_clear();
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
                let Ok(mut state) = state.lock() else { return };
                let Some(v) = state.events.to_json(&event) else {
                    return;
                };
                let _ = writeln!(state.out, "{v}");
                let _ = state.out.flush();
            }
            Renderer::Bar(bar) => bar.event(&event),
            Renderer::Quiet => {
                if let Event::Quarantined { path, reason } = &event {
                    self.result(&format!("left out {path}: {reason}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn an_error_line_never_names_a_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = tempfile::Builder::new()
            .prefix(".pseal-report-")
            .tempfile_in(dir.path().join("missing"))
            .unwrap_err();
        assert!(e.to_string().contains(".pseal-report-"), "tempfile names its file: {e}");
        let text = error_text(std::iter::once(&e as &(dyn std::error::Error + 'static)));
        assert!(!text.contains(".pseal-report-"), "{text}");
    }

    #[test]
    fn counts_never_exceed_their_totals_and_rates_have_units() {
        let n = Numbers {
            phase: "export",
            started: Some(Instant::now() - Duration::from_secs(2)),
            steps: 200,
            steps_total: Some(192),
            bytes: 5 << 20,
            bytes_total: Some(4 << 20),
            item: Some(("patient", 3, 3)),
            ..Numbers::default()
        };
        let m = n.message();
        assert!(
            m.starts_with("patient 3/3 · 192/192 files · 4.00 MiB/4.00 MiB · "),
            "{m}"
        );
        assert!(m.ends_with("MiB/s"), "{m}");
        assert_eq!(n.bar_position(), Some((4 << 20, 4 << 20)));
        let scan = Numbers {
            phase: "scan",
            started: Some(Instant::now() - Duration::from_secs(1)),
            steps: 7624,
            ..Numbers::default()
        };
        let m = scan.message();
        assert!(m.starts_with("7,624 files · "), "{m}");
        assert!(m.ends_with(" files/s"), "{m}");
        assert_eq!(scan.bar_position(), None, "a spinner while the total is unknown");
    }
}
