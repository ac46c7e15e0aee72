//! The command-line interface of `pseal-central` (clap definitions only).

use clap::{Parser, Subcommand, ValueEnum};
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
    /// Package part of the archive for a researcher: DICOM or BIDS, as one tar age-encrypted to
    /// their recipient (--out) or as a plain folder (--out-dir).
    Release {
        /// The store folder.
        #[arg(long)]
        store: PathBuf,
        /// The archive folder.
        #[arg(long)]
        archive: PathBuf,
        /// The researcher's age recipient (age1…); with --out.
        #[arg(
            long,
            value_name = "AGE1…",
            required_unless_present = "out_dir",
            conflicts_with = "out_dir"
        )]
        to: Option<String>,
        /// The pseudonym domain (research project) to release from.
        #[arg(long, default_value = "default")]
        domain: String,
        /// Release the whole archive.
        #[arg(long, conflicts_with = "pseudonyms", required_unless_present = "pseudonyms")]
        all: bool,
        /// Release only the pseudonyms listed in FILE (one per line).
        #[arg(long, value_name = "FILE")]
        pseudonyms: Option<PathBuf>,
        /// dicom: the archive's DICOM files with index.csv; bids: NIfTI + JSON sidecars made with
        /// dcm2niix, in the layout the BIDS validator accepts.
        #[arg(long, value_enum, default_value_t = ReleaseFormat::Dicom)]
        format: ReleaseFormat,
        /// The package to write (must not exist): one tar, age-encrypted to --to.
        #[arg(long, value_name = "FILE", required_unless_present = "out_dir")]
        out: Option<PathBuf>,
        /// Write a plain folder instead (must not exist), for a steward who hands it over another way.
        #[arg(long, value_name = "DIR", conflicts_with = "out")]
        out_dir: Option<PathBuf>,
        /// Compression inside the package [default: zstd for dicom, none for bids (NIfTI files are
        /// compressed already)]; with none, `age -d | tar -x` opens it.
        #[arg(long, value_enum, conflicts_with = "out_dir")]
        compress: Option<ReleaseCompression>,
        /// BIDS: the classification rule file [default: the shipped rules for brain-tumour protocols].
        #[arg(long, value_name = "FILE")]
        bids_rules: Option<PathBuf>,
        /// BIDS: keep series that were not converted (no rule matched, or dcm2niix failed) as
        /// DICOM under sourcedata/dicom/.
        #[arg(long)]
        bids_keep_unconverted: bool,
        /// BIDS: the dcm2niix program [default: PSEAL_DCM2NIIX, else dcm2niix on PATH].
        #[arg(long, value_name = "PATH")]
        dcm2niix: Option<PathBuf>,
        /// The release settings (name, contact, how to cite, licence) [default: STORE/release.toml when present].
        #[arg(long, value_name = "FILE")]
        release_config: Option<PathBuf>,
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

/// Release formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReleaseFormat {
    /// The archive's DICOM files keyed by pseudonym, with index.csv.
    Dicom,
    /// BIDS: NIfTI images and JSON sidecars (dcm2niix), participants and sessions tables.
    Bids,
}

/// Compression inside a release package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReleaseCompression {
    /// A plain tar.
    None,
    /// zstd.
    Zstd,
}
