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
        /// Cross-site linkage: link a new patient to another site's patient at once when the match
        /// is clear (score at or above --link-upper, no other candidate at or above --link-lower);
        /// without it such matches are queued for `links accept`.
        #[arg(long)]
        auto_link: bool,
        /// Cross-site linkage: the score at or above which a pair is a match (docs/linkage.md).
        #[arg(long, value_name = "SCORE", default_value_t = pseal_central::linkage::DEFAULT_UPPER)]
        link_upper: f64,
        /// Cross-site linkage: the score at or above which a pair is queued for review.
        #[arg(long, value_name = "SCORE", default_value_t = pseal_central::linkage::DEFAULT_LOWER)]
        link_lower: f64,
        /// The bundles.
        #[arg(required = true)]
        bundles: Vec<PathBuf>,
    },
    /// Cross-site linkage: review the links proposed between patients of different sites.
    Links {
        /// What to do.
        #[command(subcommand)]
        action: LinksAction,
    },
    /// Say whether a pseudonym is well-formed (alphabet and check symbol); with --store, also
    /// whether it was merged into another (needs no passphrase).
    Check {
        /// The store folder (optional).
        #[arg(long)]
        store: Option<PathBuf>,
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

/// Links between patients of different sites (docs/linkage.md).
#[derive(Debug, Subcommand)]
pub enum LinksAction {
    /// List links: pairs, per-field scores, pseudonyms and sites (no identifying value). Queued
    /// links and unfinished merges only, unless --all.
    List {
        /// The store folder.
        #[arg(long)]
        store: PathBuf,
        /// Only this pseudonym domain.
        #[arg(long)]
        domain: Option<String>,
        /// Also accepted, rejected and undone links.
        #[arg(long)]
        all: bool,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Show both patients of a link (from the kept bundles) on the steward's terminal (audited; a
    /// reason is required; refused when standard output is not a terminal).
    Show {
        /// The store folder.
        #[arg(long)]
        store: PathBuf,
        /// Folder(s) holding the bundles as received; repeat the flag.
        #[arg(long = "bundles", value_name = "DIR", required = true)]
        bundles: Vec<PathBuf>,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: String,
        /// The link number (`links list`).
        id: i64,
    },
    /// Accept a link: merge the later patient into the earlier one (re-keys its studies).
    Accept {
        /// The store folder.
        #[arg(long)]
        store: PathBuf,
        /// The archive folder.
        #[arg(long)]
        archive: PathBuf,
        /// Folder(s) holding the bundles as received; repeat the flag.
        #[arg(long = "bundles", value_name = "DIR", required = true)]
        bundles: Vec<PathBuf>,
        /// One JSON object per line on standard output (progress events, then a summary).
        #[arg(long)]
        json: bool,
        /// The link number.
        id: i64,
    },
    /// Reject a queued link: the two stay two patients.
    Reject {
        /// The store folder.
        #[arg(long)]
        store: PathBuf,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: Option<String>,
        /// The link number.
        id: i64,
    },
    /// Undo an accepted link: split the patients again (re-keys the later patient's studies).
    Undo {
        /// The store folder.
        #[arg(long)]
        store: PathBuf,
        /// The archive folder.
        #[arg(long)]
        archive: PathBuf,
        /// Folder(s) holding the bundles as received; repeat the flag.
        #[arg(long = "bundles", value_name = "DIR", required = true)]
        bundles: Vec<PathBuf>,
        /// One JSON object per line on standard output (progress events, then a summary).
        #[arg(long)]
        json: bool,
        /// The link number.
        id: i64,
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
