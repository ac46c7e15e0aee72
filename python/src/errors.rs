//! The Python exceptions and which library error becomes which.
//!
//! Every message is the one `pseal` prints after `pseal: error: ` (the same chain of causes,
//! joined by the same function), so an integrator can show it to the operator as it is.

use pseal::bundle::inspect::InspectError;
use pseal::config::ConfigError as ConfigFileError;
use pseal::export::ExportError;
use pseal::init::InitError;
use pyo3::exceptions::PyException;
use pyo3::{create_exception, PyErr};
use std::error::Error as StdError;

create_exception!(
    pseal,
    Error,
    PyException,
    "Base class of every error pseal raises. `str(e)` is the message the CLI prints after `pseal: error: `."
);
create_exception!(
    pseal,
    ConfigError,
    Error,
    "The site configuration is missing or not valid, or a value given to init_site is not (site name, options, local-ID attribute)."
);
create_exception!(
    pseal,
    BadKeyError,
    Error,
    "A key problem: the site key is missing, unreadable, readable by other users or damaged; a recipient is not an age recipient; a key file exists already."
);
create_exception!(
    pseal,
    InputError,
    Error,
    "The input cannot be read: the input folder is missing or not a folder, or the file given to inspect is unreadable or not a bundle."
);
create_exception!(
    pseal,
    OutputError,
    Error,
    "The output cannot be written: the output folder cannot be made or written (a file, read-only, full), or init_site's configuration exists already."
);
create_exception!(
    pseal,
    Cancelled,
    Error,
    "The run was cancelled (its progress callback raised pseal.Cancelled). Finished bundles are whole and listed in `bundles` (file names); nothing partial is left; no report was written."
);

/// The error and its causes, as the CLI prints them (without the line end some end with, such
/// as the TOML parser's).
pub fn message(e: &(dyn StdError + 'static)) -> String {
    let text = pseal::progress::render::error_text(std::iter::successors(Some(e), |&e| e.source()));
    text.trim_end().to_string()
}

/// The exception for an error of an export or review run (or of loading its configuration).
pub fn from_export(e: &ExportError) -> PyErr {
    let text = message(e);
    match e {
        ExportError::Config(ConfigFileError::Key(_)) => BadKeyError::new_err(text),
        ExportError::Config(_) => ConfigError::new_err(text),
        ExportError::Input { .. } => InputError::new_err(text),
        ExportError::Output { .. } | ExportError::Path(_) | ExportError::NotEmpty { .. } => OutputError::new_err(text),
        ExportError::Cancelled => Cancelled::new_err(text),
        _ => Error::new_err(text),
    }
}

/// The exception for an error of `init_site`.
pub fn from_init(e: &InitError) -> PyErr {
    let text = message(e);
    match e {
        InitError::Recipient { .. } | InitError::Key(_) => BadKeyError::new_err(text),
        InitError::Exists(_) | InitError::CreateDir { .. } | InitError::Write { .. } => OutputError::new_err(text),
        InitError::Site(_)
        | InitError::NoRecipient
        | InitError::Options(_)
        | InitError::Choices(_)
        | InitError::LocalIdAttribute(_)
        | InitError::Config(_) => ConfigError::new_err(text),
        _ => Error::new_err(text),
    }
}

/// The exception for an error of `inspect`.
pub fn from_inspect(e: &InspectError) -> PyErr {
    InputError::new_err(message(e))
}

/// A panic in Rust, turned into an exception instead of crossing into Python.
pub fn from_panic(what: &str) -> PyErr {
    Error::new_err(format!(
        "internal error in {what} (a bug in pseal; please report it): the run stopped; as after a kill, \
         nothing partial was left under a final name"
    ))
}
