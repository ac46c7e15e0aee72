//! The command-line interface of `pseal-central` (clap definitions only).

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// pseal-central — the data steward's offline tool: store, import, re-identification, audit.
#[derive(Debug, Parser)]
#[command(
    name = "pseal-central",
    version,
    about,
    long_about = None,
    after_help = "Results and summaries go to standard output; progress, notes, warnings and errors to standard error.\n\
Exit status: 0 done; 1 ran, but something was refused, not found or failed verification; 2 could not run.\n\
Environment: PSEAL_PASSPHRASE (the steward passphrase, else asked on the terminal); PSEAL_NEW_PASSPHRASE (passphrase).\n\
Guide: docs/steward-guide.md"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands. The passphrase comes from `PSEAL_PASSPHRASE` when set, else from the terminal.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a store with a new steward identity; prints the steward recipient (age1…) last.
    ///
    /// The passphrase must be strong (judged by zxcvbn: more than 10^10 guesses); a weak one is
    /// refused with the reason. --allow-weak-passphrase is for test set-ups only.
    #[command(
        after_help = "Example:\n  pseal-central init --store store --backup-recipient age1h9qz…98l6ug\n\nEnvironment: PSEAL_PASSPHRASE (the new steward passphrase; asked twice on the terminal when unset)."
    )]
    Init {
        /// The store folder (must not hold a store yet).
        #[arg(long)]
        store: PathBuf,
        /// A backup recipient (age1…) every bundle is also sealed to; repeat the flag.
        #[arg(long = "backup-recipient", value_name = "AGE1…")]
        backup_recipients: Vec<String>,
        /// Accept a passphrase the strength rule refuses. For test set-ups only: the identity
        /// protects every patient of the network.
        #[arg(long)]
        allow_weak_passphrase: bool,
        /// Print one JSON object (`event` `summary`) instead of the text lines.
        #[arg(long)]
        json: bool,
    },
    /// Print every recipient sites must seal to, one per line (steward first).
    #[command(
        after_help = "Example:\n  pseal-central recipient --store store\n\nEnvironment: none (needs no passphrase)."
    )]
    Recipient {
        /// The store folder.
        #[arg(long)]
        store: PathBuf,
        /// Print one JSON object (`event` `summary`, `recipients`).
        #[arg(long)]
        json: bool,
    },
    /// Manage recipients.
    Recipients {
        /// What to do with recipients.
        #[command(subcommand)]
        action: RecipientsAction,
    },
    /// Enrol a workstation's site key for a site.
    #[command(
        after_help = "Example:\n  pseal-central enroll --store store --site UKB-NEURO --key psealsite1ml46…h84pc\n\nEnvironment: PSEAL_PASSPHRASE (the steward passphrase; asked on the terminal when unset)."
    )]
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
        /// Print one JSON object (`event` `summary`).
        #[arg(long)]
        json: bool,
    },
    /// Revoke a workstation's site key: later bundles made with it are refused.
    #[command(
        after_help = "Example:\n  pseal-central revoke --store store --site KSB-RAD --key psealsite1pqhc…cwt3d\n\nEnvironment: PSEAL_PASSPHRASE (the steward passphrase; asked on the terminal when unset)."
    )]
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
        /// Print one JSON object (`event` `summary`).
        #[arg(long)]
        json: bool,
    },
    /// Import bundles into the research archive.
    ///
    /// A domain the store has never seen must be confirmed with --new-domain (a mistyped name
    /// would otherwise start a new pseudonym namespace).
    #[command(
        after_help = "Example:\n  pseal-central import --store store --archive archive usb/*.pseal\n  pseal-central import --store store --archive archive --domain glio-7 --new-domain usb/*.pseal\n\nEnvironment: PSEAL_PASSPHRASE (the steward passphrase; asked on the terminal when unset)."
    )]
    Import {
        /// The store folder.
        #[arg(long)]
        store: PathBuf,
        /// The archive folder.
        #[arg(long)]
        archive: PathBuf,
        /// The pseudonym domain (research project): lower-case letters, digits and hyphens.
        #[arg(long, default_value = "default")]
        domain: String,
        /// Confirm that --domain names a new domain (required the first time a domain is used).
        #[arg(long)]
        new_domain: bool,
        /// Write the archive files of bundles imported before again (rebuilds a lost or damaged
        /// archive from the bundles as received; an empty folder is accepted as the archive).
        #[arg(long)]
        repair: bool,
        /// One JSON object per line on standard output (progress events, then a summary).
        #[arg(long)]
        json: bool,
        /// Cross-site linkage: link a new patient to another site's patient at once when the match
        /// is clear (score at or above --link-upper, every other candidate at least --link-margin
        /// below it); without it such matches are queued for `links accept`.
        #[arg(long)]
        auto_link: bool,
        /// Cross-site linkage: the score at or above which a pair is a match (docs/linkage.md).
        #[arg(long, value_name = "SCORE", default_value_t = pseal_central::linkage::DEFAULT_UPPER)]
        link_upper: f64,
        /// Cross-site linkage: the score at or above which a pair is queued for review.
        #[arg(long, value_name = "SCORE", default_value_t = pseal_central::linkage::DEFAULT_LOWER)]
        link_lower: f64,
        /// Cross-site linkage: how far below an automatic link every other candidate must score;
        /// a closer one (a twin, a namesake) sends both to review (docs/linkage.md).
        #[arg(long, value_name = "SCORE", default_value_t = pseal_central::linkage::DEFAULT_MARGIN)]
        link_margin: f64,
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
    #[command(
        after_help = "Example:\n  pseal-central check 4DW3-34RH-EFV4R\n  pseal-central check --store store 4DW3-34RH-EFV4R\n\nEnvironment: none (the store's alias table needs no passphrase)."
    )]
    Check {
        /// The store folder (optional).
        #[arg(long)]
        store: Option<PathBuf>,
        /// Print one JSON object (`event` `summary`).
        #[arg(long)]
        json: bool,
        /// The pseudonym.
        pseudonym: String,
    },
    /// Print the site and local ID behind a pseudonym (audited; a reason is required).
    #[command(
        after_help = "Example:\n  pseal-central reidentify --store store --reason 'REQ-2026-017 approved by the board' 4DW3-34RH-EFV4R\n\nEnvironment: PSEAL_PASSPHRASE (the steward passphrase; asked on the terminal when unset)."
    )]
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
    ///
    /// Choose --all or --pseudonyms FILE.
    #[command(
        after_help = "Examples:\n  pseal-central release --store store --archive archive --to age1clmw…5mnymg --pseudonyms glio-7.txt --out releases/GLIO-7.tar.age\n  pseal-central release --store store --archive archive --to age1clmw…5mnymg --all --format bids --out releases/GLIO-bids.tar.age\n\nEnvironment: PSEAL_PASSPHRASE (the steward passphrase; asked on the terminal when unset), PSEAL_DCM2NIIX (the dcm2niix program for --format bids), SOURCE_DATE_EPOCH (the release date written into the metadata)."
    )]
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
        /// Release the whole archive (of the domain).
        #[arg(long, conflicts_with = "pseudonyms")]
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
        /// Compression inside the package [default: none, so that stock `age -d | tar -x` opens it];
        /// zstd makes a DICOM release about half the size (then `age -d | zstd -d | tar -x`).
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
    #[command(
        after_help = "Example:\n  pseal-central sites --store store\n\nEnvironment: PSEAL_PASSPHRASE (the steward passphrase; asked on the terminal when unset)."
    )]
    Sites {
        /// The store folder.
        #[arg(long)]
        store: PathBuf,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Find the pseudonym of a hospital's local ID without minting one (audited; a reason is required).
    #[command(
        after_help = "Example:\n  pseal-central lookup --store store --site UKB-NEURO --local-id 2817418842 --reason 'consent withdrawn, case 2026-09'\n\nEnvironment: PSEAL_PASSPHRASE (the steward passphrase; asked on the terminal when unset)."
    )]
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
        /// Print one JSON object (`event` `summary`, `found`, `pseudonym`).
        #[arg(long)]
        json: bool,
    },
    /// Change the passphrase of the steward identity (the new one from PSEAL_NEW_PASSPHRASE, or asked twice).
    ///
    /// The new passphrase must be strong (judged by zxcvbn: more than 10^10 guesses).
    #[command(
        after_help = "Example:\n  pseal-central passphrase --store store\n\nEnvironment: PSEAL_PASSPHRASE (the current passphrase) and PSEAL_NEW_PASSPHRASE (the new one); each asked on the terminal when unset."
    )]
    Passphrase {
        /// The store folder.
        #[arg(long)]
        store: PathBuf,
        /// Accept a new passphrase the strength rule refuses. For test set-ups only.
        #[arg(long)]
        allow_weak_passphrase: bool,
        /// Print one JSON object (`event` `summary`).
        #[arg(long)]
        json: bool,
    },
    /// List the audit log; with --verify, check its chain.
    #[command(
        after_help = "Example:\n  pseal-central audit --store store --verify\n\nEnvironment: PSEAL_PASSPHRASE (the steward passphrase; asked on the terminal when unset)."
    )]
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
    /// List the pseudonym domains (research projects) with their patients and instances.
    #[command(
        after_help = "Example:\n  pseal-central domains --store store\n\nEnvironment: PSEAL_PASSPHRASE (the steward passphrase; asked on the terminal when unset)."
    )]
    Domains {
        /// The store folder.
        #[arg(long)]
        store: PathBuf,
        /// Print JSON lines (one per domain, then a summary).
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script for pseal-central to standard output.
    #[command(
        after_help = "Example:\n  pseal-central completions bash > /etc/bash_completion.d/pseal-central\n\nEnvironment: none."
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages of pseal-central and its commands into DIR.
    #[command(after_help = "Example:\n  pseal-central manpages /usr/local/share/man/man1\n\nEnvironment: none.")]
    Manpages {
        /// The folder to write into (created if needed).
        dir: PathBuf,
    },
}

/// Links between patients of different sites (docs/linkage.md).
#[derive(Debug, Subcommand)]
pub enum LinksAction {
    /// List links: pairs, per-field scores, pseudonyms and sites (no identifying value). Queued
    /// links and unfinished merges only, unless --all.
    #[command(
        after_help = "Example:\n  pseal-central links list --store store --domain default\n\nEnvironment: PSEAL_PASSPHRASE (the steward passphrase; asked on the terminal when unset)."
    )]
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
    #[command(
        after_help = "Example:\n  pseal-central links show --store store --bundles usb-ukb --bundles usb-akh --reason 'linkage review 2026-12' 4\n\nEnvironment: PSEAL_PASSPHRASE (the steward passphrase; asked on the terminal when unset)."
    )]
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
    #[command(
        after_help = "Example:\n  pseal-central links accept --store store --archive archive --bundles usb-ukb --bundles usb-akh 4\n\nEnvironment: PSEAL_PASSPHRASE (the steward passphrase; asked on the terminal when unset)."
    )]
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
    #[command(
        after_help = "Example:\n  pseal-central links reject --store store --reason 'different birth places in the records' 4\n\nEnvironment: PSEAL_PASSPHRASE (the steward passphrase; asked on the terminal when unset)."
    )]
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
    #[command(
        after_help = "Example:\n  pseal-central links undo --store store --archive archive --bundles usb-ukb --bundles usb-akh 4\n\nEnvironment: PSEAL_PASSPHRASE (the steward passphrase; asked on the terminal when unset)."
    )]
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
    #[command(
        after_help = "Example:\n  pseal-central recipients add --store store age1qymj…38da\n\nEnvironment: PSEAL_PASSPHRASE (the steward passphrase; asked on the terminal when unset)."
    )]
    Add {
        /// The store folder.
        #[arg(long)]
        store: PathBuf,
        /// The backup recipient (age1…).
        recipient: String,
        /// Print one JSON object (`event` `summary`).
        #[arg(long)]
        json: bool,
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
