//! pseal's library: everything the hospital tool and the steward tool share.
//!
//! The binaries (`pseal`, `pseal-central`) are argument parsing and printing; every behaviour lives
//! here or in the steward's library so that tests and future bindings reach it without a process.
//! The modules follow the data flow of an export: [`deid`] cleans each instance, [`identity`] seals
//! what the steward needs, [`bundle`] packs and authenticates ([`auth`]) it under the [`keys`], and
//! [`export`] drives the whole run for a site [`config`] that [`init`] wrote.
#![forbid(unsafe_code)]

pub mod atomic;
pub mod auth;
pub mod bundle;
pub mod cli_support;
pub mod config;
pub mod deid;
pub mod export;
pub mod identity;
pub mod init;
pub mod keys;
pub mod linkage;
pub mod part10;
pub mod progress;
pub mod pseudonym;
pub mod review;
pub mod role;
pub mod uid;

/// The version of this library, recorded in every bundle manifest as the producing tool.
pub const TOOL_VERSION: &str = concat!("pseal ", env!("CARGO_PKG_VERSION"));
