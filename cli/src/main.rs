//! `pseal`: the hospital-side export tool. Argument parsing, passphrase-free glue and printing;
//! everything else is in the `pseal` library.

mod cli;

use anyhow::Result;
use clap::Parser;
use cli::{Cli, Command};
use pseal::export::{self, ExportContext};
use pseal::init::InitOptions;
use pseal::progress::render::Renderer;
use std::path::Path;
use std::process::ExitCode;

/// Exit status when the command did its work.
const EXIT_OK: u8 = 0;
/// Exit status when the command ran but part of the work failed (see the report).
const EXIT_PARTIAL: u8 = 1;
/// Exit status when the command could not run (bad arguments, configuration, keys, I/O).
const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("pseal: error: {}", pseal::progress::render::error_text(e.chain()));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Init {
            config,
            site,
            recipients,
            options,
            local_id_attribute,
        } => init(&config, &site, &recipients, &options, &local_id_attribute),
        Command::Export {
            config,
            input,
            out,
            json,
        } => run_export(&config, &input, &out, json),
        Command::Review {
            config,
            input,
            out,
            json,
        } => run_review(&config, &input, &out, json),
        Command::Inspect { bundle, json } => inspect(&bundle, json),
    }
}

fn init(config_path: &Path, site: &str, recipients: &[String], options: &str, local_id_attribute: &str) -> Result<u8> {
    let choices = InitOptions {
        options: options.to_string(),
        local_id_attribute: local_id_attribute.to_string(),
    };
    let done = pseal::init::init_site(config_path, site, recipients, &choices)?;
    eprintln!("wrote {} and the site key {} (mode 0600)", done.config, done.site_key);
    eprintln!(
        "enrol this workstation at the steward with: pseal-central enroll --store DIR --site {site} --key {}",
        done.public_key
    );
    println!("{}", done.public_key);
    Ok(EXIT_OK)
}

fn run_export(config: &Path, input: &Path, out: &Path, json: bool) -> Result<u8> {
    let ctx = ExportContext::load(config)?;
    let renderer = Renderer::new(json);
    let report = export::export(&ctx, input, out, &renderer)?;
    renderer.finish();
    let report_path = out.join(export::REPORT_FILE);
    if renderer.is_json() {
        renderer.json_line(&report.summary_event(out));
    } else {
        println!(
            "{} bundle(s) with {} instance(s) written to {}; {} file(s) quarantined, {} skipped as not DICOM.",
            report.counts.bundles,
            report.counts.exported,
            out.display(),
            report.counts.quarantined,
            report.counts.skipped
        );
        for f in &report.failed {
            println!("patient {} of this export: NO BUNDLE: {}", f.patient, f.reason);
        }
        println!("Report: {}", report_path.display());
    }
    Ok(if report.complete() { EXIT_OK } else { EXIT_PARTIAL })
}

fn run_review(config: &Path, input: &Path, out: &Path, json: bool) -> Result<u8> {
    let ctx = ExportContext::load(config)?;
    let renderer = Renderer::new(json);
    let report = pseal::review::review(&ctx, input, out, &renderer)?;
    renderer.finish();
    if renderer.is_json() {
        renderer.json_line(&report.summary_event(out));
    } else {
        println!(
            "{} file(s) de-identified into {} for review; {} quarantined, {} skipped as not DICOM.",
            report.counts.reviewed,
            out.display(),
            report.counts.quarantined,
            report.counts.skipped
        );
        println!(
            "Read {} (and {} for every detail).",
            out.join(pseal::review::REPORT_MD).display(),
            out.join(pseal::review::REPORT_JSON).display()
        );
    }
    Ok(EXIT_OK)
}

fn inspect(bundle: &Path, json: bool) -> Result<u8> {
    let info = pseal::bundle::inspect::inspect(bundle)?;
    if json {
        println!("{}", serde_json::to_string(&info)?);
    } else {
        println!("{}", info);
    }
    Ok(EXIT_OK)
}
