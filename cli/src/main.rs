//! `pseal`: the hospital-side export tool. Argument parsing, passphrase-free glue and printing;
//! everything else is in the `pseal` library.

mod cli;

use anyhow::{bail, Context, Result};
use clap::Parser;
use cli::{Cli, Command};
use pseal::config::{validate_site_name, LinkageConfig, LocalIdSource, SiteConfig};
use pseal::deid::{DeidConfig, Options};
use pseal::export::{self, ExportContext};
use pseal::keys::SiteSecretKey;
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
            linkage,
        } => init(
            &config,
            &site,
            &recipients,
            &options,
            &local_id_attribute,
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
            json,
        } => run_review(&config, &input, &out, json),
        Command::Inspect { bundle, json } => inspect(&bundle, json),
    }
}

fn init(
    config_path: &Path,
    site: &str,
    recipients: &[String],
    options: &str,
    local_id_attribute: &str,
    linkage: bool,
) -> Result<u8> {
    validate_site_name(site).map_err(anyhow::Error::msg)?;
    if recipients.is_empty() {
        bail!("at least one --recipient age1… (the steward's) is required");
    }
    let recipients = recipients
        .iter()
        .map(|r| r.parse().with_context(|| format!("--recipient {r}")))
        .collect::<Result<Vec<_>>>()?;
    let options = Options::parse_list(options).context("--options")?;
    if config_path.exists() {
        bail!(
            "{} already exists; refusing to overwrite a site configuration",
            config_path.display()
        );
    }
    let key_name = format!(
        "{}.site-key",
        config_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "pseal".into())
    );
    let config = SiteConfig {
        site: site.to_string(),
        site_key: key_name.into(),
        recipients,
        local_id: LocalIdSource {
            attribute: local_id_attribute.to_string(),
        },
        deid: DeidConfig {
            options,
            ..DeidConfig::default()
        },
        linkage: LinkageConfig { enabled: linkage },
    };
    config.local_id.tag().context("--local-id-attribute")?;
    if let Some(dir) = config_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let key_path = config.site_key_path(config_path);
    let key = SiteSecretKey::generate();
    key.write_new(&key_path, site)?;
    let text = config.to_toml()?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(config_path)
        .with_context(|| format!("writing {}", config_path.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .with_context(|| format!("writing {}", config_path.display()))?;
    file.sync_all()?;
    eprintln!(
        "wrote {} and the site key {} (mode 0600)",
        config_path.display(),
        key_path.display()
    );
    eprintln!(
        "enrol this workstation at the steward with: pseal-central enroll --store DIR --site {site} --key {}",
        key.public()
    );
    println!("{}", key.public());
    Ok(EXIT_OK)
}

fn run_export(config: &Path, input: &Path, out: &Path, json: bool) -> Result<u8> {
    let ctx = ExportContext::load(config)?;
    let renderer = Renderer::new(json);
    let report = export::export(&ctx, input, out, &renderer)?;
    renderer.finish();
    let report_path = out.join(export::REPORT_FILE);
    if renderer.is_json() {
        renderer.json_line(&serde_json::json!({
            "event": "summary",
            "bundles": report.counts.bundles,
            "exported": report.counts.exported,
            "quarantined": report.counts.quarantined,
            "skipped": report.counts.skipped,
            "failed": report.counts.failed,
            "report": report_path,
        }));
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
        renderer.json_line(&serde_json::json!({
            "event": "summary",
            "reviewed": report.counts.reviewed,
            "quarantined": report.counts.quarantined,
            "skipped": report.counts.skipped,
            "report": out.join(pseal::review::REPORT_JSON),
        }));
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
