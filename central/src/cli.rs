//! The command-line interface of `pseal-central` (clap definitions only).

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// pseal-central — the data steward's offline tool: store, import, re-identification, audit.
#[derive(Debug, Parser)]
#[command(name = "pseal-central", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands. The passphrase comes from `PSEAL_PASSPHRASE` when set, else from the terminal.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a store with a new steward identity; prints the steward recipient (age1…) last.
    Init {
        /// The store folder (must not hold a store yet).
        #[arg(long)]
        store: PathBuf,
        /// A backup recipient (age1…) every bundle is also sealed to; repeat the flag.
        #[arg(long = "backup-recipient", value_name = "AGE1…")]
        backup_recipients: Vec<String>,
    },
    /// Print every recipient sites must seal to, one per line (steward first).
    Recipient {
        /// The store folder.
        #[arg(long)]
        store: PathBuf,
    },
    /// Manage recipients.
    Recipients {
        /// What to do with recipients.
        #[command(subcommand)]
        action: RecipientsAction,
    },
    /// Enrol a workstation's site key for a site.
    Enroll {
        /// The store folder.
        #[arg(long)]
        store: PathBuf,
        /// The site name.
        #[arg(long)]
        site: String,
        /// The site key printed by `pseal init` (psealsite1…).
        #[arg(long)]
        key: String,
    },
    /// Revoke a workstation's site key: later bundles made with it are refused.
    Revoke {
        /// The store folder.
        #[arg(long)]
        store: PathBuf,
        /// The site name.
        #[arg(long)]
        site: String,
        /// The site key (psealsite1…).
        #[arg(long)]
        key: String,
    },
    /// Import bundles into the research archive.
    Import {
        /// The store folder.
        #[arg(long)]
        store: PathBuf,
        /// The archive folder.
        #[arg(long)]
        archive: PathBuf,
        /// The pseudonym domain (research project).
        #[arg(long, default_value = "default")]
        domain: String,
        /// Write the archive files of bundles imported before again (rebuilds a lost or damaged
        /// archive from the bundles as received; an empty folder is accepted as the archive).
        #[arg(long)]
        repair: bool,
        /// One JSON object per line on standard output (progress events, then a summary).
        #[arg(long)]
        json: bool,
        /// The bundles.
        #[arg(required = true)]
        bundles: Vec<PathBuf>,
    },
    /// Say whether a pseudonym is well-formed (alphabet and check symbol).
    Check {
        /// The pseudonym.
        pseudonym: String,
    },
    /// Print the site and local ID behind a pseudonym (audited; a reason is required).
    Reidentify {
        /// The store folder.
        #[arg(long)]
        store: PathBuf,
        /// Why (recorded in the audit log), e.g. the incidental-finding case number.
        #[arg(long)]
        reason: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The pseudonym.
        pseudonym: String,
    },
    /// Package part of the archive for a researcher: tar + zstd, age-encrypted to their recipient.
    Release {
        /// The store folder.
        #[arg(long)]
        store: PathBuf,
        /// The archive folder.
        #[arg(long)]
        archive: PathBuf,
        /// The researcher's age recipient (age1…).
        #[arg(long, value_name = "AGE1…")]
        to: String,
        /// The pseudonym domain (research project) to release from.
        #[arg(long, default_value = "default")]
        domain: String,
        /// Release the whole archive.
        #[arg(long, conflicts_with = "pseudonyms", required_unless_present = "pseudonyms")]
        all: bool,
        /// Release only the pseudonyms listed in FILE (one per line).
        #[arg(long, value_name = "FILE")]
        pseudonyms: Option<PathBuf>,
        /// The package to write (must not exist).
        #[arg(long)]
        out: PathBuf,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Publish a release into a DICOMweb server (STOW-RS), sending only what it lacks (QIDO-RS).
    ///
    /// Secrets never go on the command line: the password comes from PSEAL_DICOMWEB_PASSWORD or
    /// --password-file, a bearer token from PSEAL_DICOMWEB_TOKEN or --token-file; a passphrase-
    /// protected identity file's passphrase from PSEAL_PASSPHRASE or the terminal.
    Publish {
        /// The age identity the release was encrypted to (age-keygen key or an age -p file).
        #[arg(long, value_name = "KEYFILE")]
        identity: PathBuf,
        /// The DICOMweb service's base URL, e.g. http://localhost:8042/dicom-web (Orthanc).
        #[arg(long, value_name = "URL")]
        dicomweb: String,
        /// HTTP basic user (the password from PSEAL_DICOMWEB_PASSWORD or --password-file).
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// File holding the HTTP basic password (one line, owner-only).
        #[arg(long, value_name = "FILE", requires = "user")]
        password_file: Option<PathBuf>,
        /// File holding a bearer token (one line, owner-only).
        #[arg(long, value_name = "FILE", conflicts_with = "user")]
        token_file: Option<PathBuf>,
        /// PEM file of certificate authorities to trust besides the system's.
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: u16,
        /// Largest number of instances per request.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
        batch: u32,
        /// Largest request body in MiB (a larger instance goes alone).
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
        batch_mib: u32,
        /// After publishing, compare the server with the release's index.csv (exit 1 on a difference).
        #[arg(long)]
        verify: bool,
        /// Only compare; send nothing.
        #[arg(long)]
        verify_only: bool,
        /// One JSON object per line on standard output (progress, failures, then a summary).
        #[arg(long)]
        json: bool,
        /// The release (RELEASE.age, written by pseal-central release).
        release: PathBuf,
    },
    /// List the enrolled site keys (with revocations).
    Sites {
        /// The store folder.
        #[arg(long)]
        store: PathBuf,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Find the pseudonym of a hospital's local ID without minting one (audited; a reason is required).
    Lookup {
        /// The store folder.
        #[arg(long)]
        store: PathBuf,
        /// The site.
        #[arg(long)]
        site: String,
        /// The local patient ID at that site.
        #[arg(long)]
        local_id: String,
        /// The pseudonym domain.
        #[arg(long, default_value = "default")]
        domain: String,
        /// Why (recorded in the audit log), e.g. a consent withdrawal case number.
        #[arg(long)]
        reason: String,
    },
    /// Change the passphrase of the steward identity (the new one from PSEAL_NEW_PASSPHRASE, or asked twice).
    Passphrase {
        /// The store folder.
        #[arg(long)]
        store: PathBuf,
    },
    /// List the audit log; with --verify, check its chain.
    Audit {
        /// The store folder.
        #[arg(long)]
        store: PathBuf,
        /// Verify the chain; exit 1 when it is broken.
        #[arg(long)]
        verify: bool,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
}

/// Recipient management.
#[derive(Debug, Subcommand)]
pub enum RecipientsAction {
    /// Add a backup recipient (sites must add it to their configuration).
    Add {
        /// The store folder.
        #[arg(long)]
        store: PathBuf,
        /// The backup recipient (age1…).
        recipient: String,
    },
}
