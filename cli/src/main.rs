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
use pseal::review::Replace;
use pseal::role::{PathError, Role};
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
    std::fs::create_dir_all(dir).with_context(|| format!("man page folder {}", dir.display()))?;
    let cli = Cli::command();
    let mut written = Vec::new();
    let mut write = |cmd: clap::Command, name: String| -> Result<()> {
        let path = dir.join(format!("{name}.1"));
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut page)?;
        std::fs::write(&path, page).with_context(|| format!("man page {}", path.display()))?;
        written.push(path);
        Ok(())
    };
    for sub in cli.get_subcommands() {
        let name = format!("pseal-{}", sub.get_name());
        write(
            sub.clone().display_name(name.clone()).bin_name(name.replace('-', " ")),
            name,
        )?;
    }
    write(cli, "pseal".into())?;
    for path in &written {
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
            "configuration file {} already exists; refusing to overwrite a site configuration",
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
        std::fs::create_dir_all(dir).map_err(PathError::at(Role::ConfigFile, config_path))?;
    }
    let key_path = config.site_key_path(config_path);
    let key = SiteSecretKey::generate();
    key.write_new(&key_path, site)?;
    let text = config.to_toml()?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(config_path)
        .map_err(PathError::at(Role::ConfigFile, config_path))?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(PathError::at(Role::ConfigFile, config_path))?;
    file.sync_all().map_err(PathError::at(Role::ConfigFile, config_path))?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "event": "summary", "config": config_path, "site": site, "site_key_file": key_path, "site_key": key.public().to_string() })
        );
        return Ok(EXIT_OK);
    }
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
            "earlier_report_kept_as": report.earlier_report_kept_as.as_ref().map(|n| out.join(n)),
        }));
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
    let report = pseal::review::review_with(&ctx, input, out, replace, &renderer)?;
    renderer.finish();
    if renderer.is_json() {
        renderer.json_line(&serde_json::json!({
            "event": "summary",
            "reviewed": report.counts.reviewed,
            "quarantined": report.counts.quarantined,
            "skipped": report.counts.skipped,
            "report": out.join(pseal::review::REPORT_JSON),
            "report_html": out.join(pseal::review::REPORT_HTML),
            "report_md": out.join(pseal::review::REPORT_MD),
        }));
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

/// `n` and the singular or plural noun.
fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
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
