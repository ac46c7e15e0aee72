//! The command-line interface of `pseal` (clap definitions only).

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// pseal — de-identify DICOM studies and seal them for the research network's data steward.
#[derive(Debug, Parser)]
#[command(name = "pseal", version, about, long_about = None)]
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
        /// Cross-site linkage: `on` also seals family name, given names, birth name, birth date
        /// and sex for the steward to link this site's patients with other sites' (docs/linkage.md).
        #[arg(long, value_enum, default_value = "off")]
        linkage: Switch,
    },
    /// De-identify every DICOM file under INPUT and write one sealed bundle per patient into OUT.
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
    /// inspect, with review-report.json and review-report.md. Nothing is sealed.
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
        /// One JSON object per line on standard output (progress events, then a summary).
        #[arg(long)]
        json: bool,
    },
    /// Show what can be said about a bundle without the steward's key.
    Inspect {
        /// The bundle.
        bundle: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
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
