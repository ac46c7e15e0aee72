//! The command-line interface of `pseal` (clap definitions only).

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// pseal — de-identify DICOM studies and seal them for the research network's data steward.
#[derive(Debug, Parser)]
#[command(
    name = "pseal",
    version,
    about,
    long_about = None,
    after_help = "Results and summaries go to standard output; progress, notes, warnings and errors to standard error.\n\
Exit status: 0 done; 1 ran, but part of the work failed (see the report); 2 could not run.\n\
Environment: pseal reads no environment variable.\n\
Guide: docs/hospital-guide.md"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set up this workstation: write the site configuration and a new site key (mode 0600);
    /// prints the site's public key (to enrol at the steward) as the last line.
    #[command(
        after_help = "Example:\n  pseal init --config /etc/pseal/pseal.toml --site UKB-NEURO --recipient age1y9tl…8n76j --recipient age1h9qz…98l6ug\n\n\
Environment: none."
    )]
    Init {
        /// Where to write the site configuration (TOML). The site key is written beside it.
        #[arg(long)]
        config: PathBuf,
        /// The site name, as the steward enrols it.
        #[arg(long)]
        site: String,
        /// The steward's recipient (age1…), then any backup recipients; repeat the flag.
        #[arg(long = "recipient", value_name = "AGE1…")]
        recipients: Vec<String>,
        /// De-identification options: `default`, `none` (Basic Profile alone), or a comma-separated list.
        #[arg(long, default_value = "default")]
        options: String,
        /// The attribute holding the local patient ID (keyword or (gggg,eeee)).
        #[arg(long, default_value = "PatientID")]
        local_id_attribute: String,
        /// Print one JSON object (`event` `summary`) instead of the text lines.
        #[arg(long)]
        json: bool,
        /// Cross-site linkage: `on` also seals family name, given names, birth name, birth date
        /// and sex for the steward to link this site's patients with other sites' (docs/linkage.md).
        #[arg(long, value_enum, default_value = "off")]
        linkage: Switch,
    },
    /// De-identify every DICOM file under INPUT and write one sealed bundle per patient into OUT.
    ///
    /// OUT (the outbox) is created if needed. An export-report.json of an earlier export in it is
    /// kept as export-report-<time>.json.
    #[command(
        after_help = "Example:\n  pseal export --config pseal.toml --input /media/pacs-export --out outbox\n\n\
Environment: none."
    )]
    Export {
        /// The site configuration.
        #[arg(long)]
        config: PathBuf,
        /// Folder to read recursively.
        #[arg(long)]
        input: PathBuf,
        /// Folder to write bundles and export-report.json into.
        #[arg(long)]
        out: PathBuf,
        /// One JSON object per line on standard output (progress events, then a summary).
        #[arg(long)]
        json: bool,
    },
    /// De-identify exactly as export would, into plain files for the data-protection officer to
    /// inspect, with review-report.html (to read and sign), review-report.md and
    /// review-report.json. Nothing is sealed.
    ///
    /// OUT must be empty or new; --replace empties a folder an earlier review wrote.
    #[command(
        after_help = "Example:\n  pseal review --config pseal.toml --input /media/pacs-export --out review\n  pseal review --config pseal.toml --input /media/pacs-export --out review --replace\n\n\
Environment: none."
    )]
    Review {
        /// The site configuration.
        #[arg(long)]
        config: PathBuf,
        /// Folder to read recursively.
        #[arg(long)]
        input: PathBuf,
        /// Folder to write the de-identified files and the reports into.
        #[arg(long)]
        out: PathBuf,
        /// Empty OUT first when an earlier review wrote it (refused for any other folder).
        #[arg(long)]
        replace: bool,
        /// One JSON object per line on standard output (progress events, then a summary).
        #[arg(long)]
        json: bool,
    },
    /// Show what can be said about a bundle without the steward's key.
    #[command(after_help = "Example:\n  pseal inspect outbox/UKB-NEURO-33274db87321fcee.pseal\n\n\
Environment: none.")]
    Inspect {
        /// The bundle.
        bundle: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script for pseal to standard output.
    #[command(
        after_help = "Example:\n  pseal completions bash > /etc/bash_completion.d/pseal\n  pseal completions zsh > \"${fpath[1]}/_pseal\"\n\n\
Environment: none."
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages of pseal and its commands (pseal.1, pseal-export.1, …) into DIR.
    #[command(after_help = "Example:\n  pseal manpages /usr/local/share/man/man1\n\n\
Environment: none.")]
    Manpages {
        /// The folder to write into (created if needed).
        dir: PathBuf,
    },
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}
