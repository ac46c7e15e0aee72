//! `pseal`: the hospital-side export tool. Argument parsing, passphrase-free glue and printing;
//! everything else is in the `pseal` library.

mod cli;

use anyhow::Result;
use clap::Parser;
use cli::{Cli, Command};
use pseal::cli_support::plural;
use pseal::export::{self, ExportContext};
use pseal::init::InitOptions;
use pseal::progress::render::Renderer;
use pseal::review::Replace;
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
            json,
            linkage,
        } => init(
            &config,
            &site,
            &recipients,
            &options,
            &local_id_attribute,
            json,
            linkage == cli::Switch::On,
        ),
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
            replace,
            json,
        } => run_review(&config, &input, &out, replace, json),
        Command::Inspect { bundle, json } => inspect(&bundle, json),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "pseal", &mut std::io::stdout());
            Ok(EXIT_OK)
        }
        Command::Manpages { dir } => manpages(&dir),
    }
}

/// Writes one man page per command, from the clap definitions.
fn manpages(dir: &Path) -> Result<u8> {
    use clap::CommandFactory;
    for path in pseal::cli_support::write_manpages(Cli::command(), "pseal", dir)? {
        println!("{}", path.display());
    }
    Ok(EXIT_OK)
}

fn init(
    config_path: &Path,
    site: &str,
    recipients: &[String],
    options: &str,
    local_id_attribute: &str,
    json: bool,
    linkage: bool,
) -> Result<u8> {
    let choices = InitOptions {
        options: options.to_string(),
        local_id_attribute: local_id_attribute.to_string(),
        linkage,
    };
    let done = pseal::init::init_site(config_path, site, recipients, &choices)?;
    if json {
        let mut line = serde_json::to_value(&done)?;
        line["event"] = "summary".into();
        println!("{line}");
        return Ok(EXIT_OK);
    }
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
        for f in &report.failed {
            println!("patient {} of this export: NO BUNDLE: {}", f.patient, f.reason);
        }
        println!(
            "{} with {} written to {}; {} quarantined, {} skipped as not DICOM.",
            plural(report.counts.bundles, "bundle", "bundles"),
            plural(report.counts.exported, "instance", "instances"),
            out.display(),
            plural(report.counts.quarantined, "file", "files"),
            report.counts.skipped
        );
        if let Some(kept) = &report.earlier_report_kept_as {
            println!("The earlier export's report was kept as {}.", out.join(kept).display());
        }
        println!("Report: {}", report_path.display());
    }
    Ok(if report.complete() { EXIT_OK } else { EXIT_PARTIAL })
}

fn run_review(config: &Path, input: &Path, out: &Path, replace: bool, json: bool) -> Result<u8> {
    let ctx = ExportContext::load(config)?;
    let renderer = Renderer::new(json);
    let replace = if replace { Replace::Yes } else { Replace::No };
    let report = pseal::review::review_with(&ctx, input, out, replace, &renderer, &pseal::export::Cancel::new())?;
    renderer.finish();
    if renderer.is_json() {
        renderer.json_line(&report.summary_event(out));
    } else {
        println!(
            "{} de-identified into {}; {} quarantined, {} skipped as not DICOM.",
            plural(report.counts.reviewed, "file", "files"),
            out.display(),
            plural(report.counts.quarantined, "file", "files"),
            report.counts.skipped
        );
        println!(
            "Read {} (to sign), or {} (the same as text; {} has every detail).",
            out.join(pseal::review::REPORT_HTML).display(),
            out.join(pseal::review::REPORT_MD).display(),
            out.join(pseal::review::REPORT_JSON).display()
        );
    }
    Ok(EXIT_OK)
}

fn inspect(bundle: &Path, json: bool) -> Result<u8> {
    let info = pseal::bundle::inspect::inspect(bundle)?;
    if json {
        let mut value = serde_json::to_value(&info)?;
        value["event"] = "summary".into();
        println!("{value}");
    } else {
        println!("{}", info);
    }
    Ok(EXIT_OK)
}
