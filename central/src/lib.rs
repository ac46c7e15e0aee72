//! The data steward's library: the store, bundle import, re-keying and the research archive.
//!
//! `pseal-central` (the binary) parses arguments and prints; everything it does is here.
//! [`store`] holds pseudonyms, sites, secrets and the audit chain in one SQLite file next to the
//! passphrase-protected steward identity; [`import`] verifies bundles and drives [`rekey`] and
//! [`archive`]; [`release`] packages part of the archive for a researcher, and [`publish`] streams
//! such a release into the network's DICOMweb database; [`linkage`] gives one pseudonym to a patient
//! seen at two sites.
#![forbid(unsafe_code)]

pub mod archive;
pub mod fault;
pub mod import;
pub mod linkage;
pub mod passphrase;
pub mod publish;
pub mod rekey;
pub mod release;
pub mod store;
pub mod strength;

pub use archive::Archive;
pub use import::{import_bundle, ImportError, ImportOutcome};
pub use store::{Store, StoreError};
