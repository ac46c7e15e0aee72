//! The `pseal` Python package: the hospital side of pseal for a Python program (the network's
//! Flask backend), built with PyO3 and maturin.
//!
//! Conversion only: each function calls the library function the CLI calls (`pseal::init`,
//! `pseal::review`, `pseal::export`, `pseal::bundle::inspect`) and hands back what the CLI would
//! write, as Python data (through JSON, so a dict here equals the CLI's JSON). Progress events
//! and their `--json` objects come from `pseal::progress`; cancellation is `pseal::export::Cancel`;
//! errors keep the CLI's messages ([`errors`]). The running and waiting is [`run`].

mod errors;
mod run;

use pseal::export::report::ExportReport;
use pseal::export::{Cancel, ExportContext, ExportError};
use pseal::progress::Progress;
use pseal::review::ReviewReport;
use pyo3::prelude::*;
use pyo3::types::{PyAnyMethods, PyString};
use std::path::{Path, PathBuf};

/// De-identify and seal DICOM studies for the research network's data steward (the hospital side
/// of pseal).
///
/// Functions: init_site (set up a workstation), review (de-identify into plain files for the
/// data-protection officer), export (one sealed bundle per patient), inspect (what a bundle
/// shows without the steward's key). Each returns the report the `pseal` command writes, as
/// Python data. review and export take an optional progress callback that receives the events
/// `pseal export --json` prints, as dicts, and that stops the run cleanly by raising
/// pseal.Cancelled. Errors are subclasses of pseal.Error carrying the CLI's message.
/// The GIL is released while pseal works.
#[pymodule]
#[pyo3(name = "pseal")]
mod pseal_py {
    #[pymodule_export]
    use super::errors::{BadKeyError, Cancelled, ConfigError, Error, InputError, OutputError};
    #[pymodule_export]
    use super::{export, init_site, inspect, review};

    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        Ok(())
    }
}

/// Set up this workstation, as `pseal init` does: write the site configuration (TOML) at
/// `config` and a new site key beside it (`<stem>.site-key`, mode 0600). Never overwrites.
///
/// recipient: the steward's recipient (age1…), or a list: the steward's first, then backup
/// recipients.
/// options: the other choices of `pseal init`, by flag name, all optional:
///   {"options": "default" | "none" | "a,b,…" | ["a", "b", …],   # de-identification options
///    "local_id_attribute": "PatientID",                        # keyword or "(gggg,eeee)"
///    "linkage": "off" | "on" | False | True}                    # seal linkage fields (docs/linkage.md)
///   An unknown key raises ConfigError; later versions add keys.
///
/// Returns {"config", "site_key", "site", "public_key", "linkage"}: enrol public_key (psealsite1…) at the
/// steward with `pseal-central enroll`.
///
/// Raises ConfigError (site name, options, attribute), BadKeyError (a recipient that is not an
/// age recipient, an existing key file), OutputError (the configuration exists already, its
/// folder cannot be made or written).
#[pyfunction]
#[pyo3(signature = (config, site, recipient, options = None))]
fn init_site(
    py: Python<'_>,
    config: PathBuf,
    site: String,
    recipient: &Bound<'_, PyAny>,
    options: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
    // One recipient or a list of them (pyo3 refuses to read a str as a list of characters).
    let recipients: Vec<String> = if recipient.is_instance_of::<PyString>() {
        vec![recipient.extract()?]
    } else {
        recipient.extract()?
    };
    let choices = match options {
        None => serde_json::Value::Null,
        Some(map) => {
            let text: String = py
                .import("json")?
                .getattr("dumps")?
                .call1((map,))
                .map_err(|e| errors::ConfigError::new_err(format!("init options: {e}")))?
                .extract()?;
            serde_json::from_str(&text).map_err(|e| errors::ConfigError::new_err(format!("init options: {e}")))?
        }
    };
    let choices = pseal::init::InitOptions::from_map(choices).map_err(|e| errors::from_init(&e))?;
    let report = run::quick(py, "init_site", move || {
        pseal::init::init_site(&config, &site, &recipients, &choices)
    })?
    .map_err(|e| errors::from_init(&e))?;
    to_python(py, &report)
}

/// De-identify every DICOM file under `input` exactly as export would, into plain files under
/// `out` for the data-protection officer, with review-report.json and review-report.md, as
/// `pseal review` does. Nothing is sealed.
///
/// progress: called with each event as a dict, in order, exactly the objects
/// `pseal review --json` prints ({"event": "phase" | "advance" | "quarantined" | "summary", …});
/// the last is the summary. Raise pseal.Cancelled in it to stop: files already reviewed stay,
/// pending ones are removed, no report is written, and review raises pseal.Cancelled.
///
/// Returns the report (review-report.json) as a dict. The GIL is released while pseal works.
/// Raises ConfigError, BadKeyError, InputError, OutputError, Cancelled (see pseal.Error).
#[pyfunction]
#[pyo3(signature = (config, input, out, progress = None))]
fn review(
    py: Python<'_>,
    config: PathBuf,
    input: PathBuf,
    out: PathBuf,
    progress: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let (command, summary) = (pseal::review::review_cancellable, ReviewReport::summary_event);
    site_run(py, "review", progress, [config, input, out], command, summary)
}

/// De-identify every DICOM file under `input` and write one sealed bundle per patient into
/// `out`, with export-report.json, as `pseal export` does.
///
/// progress: called with each event as a dict, in order, exactly the objects
/// `pseal export --json` prints ({"event": "phase" | "advance" | "quarantined" |
/// "bundle_written" | "summary", …}); the last is the summary. Raise pseal.Cancelled in it to
/// stop: bundles already finished stay whole (the exception's `bundles` lists them; each was
/// announced by a bundle_written event unless the callback had raised before), the one being
/// written is removed, no report is written, and export raises pseal.Cancelled. Another
/// exception raised there also stops the run, and is raised as it was. The run may be up to 16
/// events ahead of the callback, but waits at each bundle_written until it is delivered; an
/// exception raised on the summary comes after a complete run.
///
/// Returns the report (export-report.json) as a dict; report["failed"] lists patients that got
/// no bundle (the CLI's exit code 1). The GIL is released while pseal works.
/// Raises ConfigError, BadKeyError, InputError, OutputError, Cancelled (see pseal.Error).
#[pyfunction]
#[pyo3(signature = (config, input, out, progress = None))]
fn export(
    py: Python<'_>,
    config: PathBuf,
    input: PathBuf,
    out: PathBuf,
    progress: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let (command, summary) = (pseal::export::export_cancellable, ExportReport::summary_event);
    site_run(py, "export", progress, [config, input, out], command, summary)
}

/// A review or export command: (site context, input, output, progress, cancel) to its report.
type SiteCommand<R> = fn(&ExportContext, &Path, &Path, &dyn Progress, &Cancel) -> Result<R, ExportError>;

/// What review and export share: load the site configuration, run `command` from `input` into
/// `out` on its own thread (see [`run::run`]), and hand back its report and `summary` event.
fn site_run<R: serde::Serialize>(
    py: Python<'_>,
    what: &str,
    progress: Option<&Bound<'_, PyAny>>,
    [config, input, out]: [PathBuf; 3],
    command: SiteCommand<R>,
    summary: fn(&R, &Path) -> serde_json::Value,
) -> PyResult<Py<PyAny>> {
    run::run(py, what, progress, move |sink, cancel| {
        let ctx = ExportContext::load(&config)?;
        let report = command(&ctx, &input, &out, sink, cancel)?;
        finished(&report, summary(&report, &out))
    })
}

/// What can be said about a bundle without the steward's key, as `pseal inspect --json`
/// prints it: {"path", "size", "format", "recipients": [[stanza type, count], …]}.
///
/// Raises InputError when the file cannot be read or is not a bundle.
#[pyfunction]
fn inspect(py: Python<'_>, bundle: PathBuf) -> PyResult<Py<PyAny>> {
    let info = run::quick(py, "inspect", move || pseal::bundle::inspect::inspect(&bundle))?
        .map_err(|e| errors::from_inspect(&e))?;
    to_python(py, &info)
}

/// A report and its summary event, ready to go back to Python.
fn finished<R: serde::Serialize>(
    report: &R,
    summary: serde_json::Value,
) -> Result<run::Finished, pseal::export::ExportError> {
    Ok(run::Finished {
        report: serde_json::to_string(report).map_err(|e| e.to_string()),
        summary,
    })
}

/// A serializable value as Python data (through JSON, as the CLI prints it).
fn to_python<T: serde::Serialize>(py: Python<'_>, value: &T) -> PyResult<Py<PyAny>> {
    let text = serde_json::to_string(value).map_err(|e| errors::Error::new_err(e.to_string()))?;
    Ok(py.import("json")?.getattr("loads")?.call1((text,))?.unbind())
}
