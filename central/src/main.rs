//! `pseal-central`: the data steward's tool. Argument parsing and printing;
//! everything else is in the `pseal_central` library.

mod cli;
mod links_cmd;

use anyhow::{bail, Context, Result};
use clap::Parser;
use cli::{Cli, Command, RecipientsAction};
use pseal::cli_support::plural;
use pseal::keys::StewardIdentity;
use pseal::progress::render::Renderer;
use pseal::progress::{Event, Progress};
use pseal::pseudonym::Pseudonym;
use pseal::role::{PathError, Role};
use pseal_central::import::RunOptions;
use pseal_central::passphrase;
use pseal_central::publish::{self, CredentialSources};
use pseal_central::release::bids::BidsOptions;
use pseal_central::release::config::ReleaseConfig;
use pseal_central::release::{read_pseudonyms, release, Compression, Format, Output, ReleaseRequest, Selection};
use pseal_central::store::links::ImportLink;
use pseal_central::{Archive, ImportOutcome, Store};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit status when everything succeeded.
pub(crate) const EXIT_OK: u8 = 0;
/// Exit status when the command ran but something was refused or failed verification.
const EXIT_REFUSED: u8 = 1;
/// Exit status when the command could not run.
const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!(
                "pseal-central: error: {}",
                pseal::progress::render::error_text(e.chain())
            );
            ExitCode::from(EXIT_ERROR)
        }
    }
}

pub(crate) fn open(store: &Path) -> Result<Store> {
    Ok(Store::open(store, &passphrase::steward()?)?)
}

/// Prints a command's single result: the JSON summary object, or the text line.
fn print_result(json: bool, value: serde_json::Value, text: &str) {
    if json {
        let mut value = value;
        value["event"] = "summary".into();
        println!("{value}");
    } else {
        println!("{text}");
    }
}

/// Writes one man page per command, from the clap definitions.
fn manpages(dir: &Path) -> Result<u8> {
    use clap::CommandFactory;
    for path in pseal::cli_support::write_manpages(Cli::command(), "pseal-central", dir)? {
        println!("{}", path.display());
    }
    Ok(EXIT_OK)
}

fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Init {
            store,
            backup_recipients,
            allow_weak_passphrase,
            json,
        } => {
            let backups = backup_recipients
                .iter()
                .map(|r| r.parse().with_context(|| format!("--backup-recipient {r}")))
                .collect::<Result<Vec<_>>>()?;
            let pass = passphrase::new(passphrase::PASSPHRASE_ENV, "Steward passphrase", allow_weak_passphrase)?;
            let s = Store::create(&store, &pass, &backups)?;
            let recipient = s.identity().recipient().to_string();
            let identity = store.join(pseal_central::store::IDENTITY_FILE);
            if json {
                print_result(
                    true,
                    serde_json::json!({ "store": store, "identity": identity, "recipient": recipient }),
                    "",
                );
            } else {
                eprintln!(
                    "created the store in {}; the steward identity is {}",
                    store.display(),
                    identity.display()
                );
                eprintln!("give this recipient to every site (pseal init --recipient …):");
                println!("{recipient}");
            }
            Ok(EXIT_OK)
        }
        Command::Recipient { store, json } => {
            let all = Store::recipients_of(&store)?;
            if json {
                print_result(true, serde_json::json!({ "recipients": all }), "");
            } else {
                for r in all {
                    println!("{r}");
                }
            }
            Ok(EXIT_OK)
        }
        Command::Recipients {
            action: RecipientsAction::Add { store, recipient, json },
        } => {
            let r = recipient.parse().context("recipient")?;
            let added = open(&store)?.add_backup_recipient(&r)?;
            print_result(
                json,
                serde_json::json!({ "recipient": recipient, "added": added }),
                if added {
                    "added; sites must add it to their configuration's recipients"
                } else {
                    "already a recipient"
                },
            );
            Ok(EXIT_OK)
        }
        Command::Enroll { store, site, key, json } => {
            let key = key.parse().context("--key")?;
            let added = open(&store)?.enroll(&site, &key)?;
            print_result(
                json,
                serde_json::json!({ "site": site, "key": key.to_string(), "enrolled": added }),
                &format!(
                    "{} {key} for site {site}",
                    if added { "enrolled" } else { "already enrolled:" }
                ),
            );
            Ok(EXIT_OK)
        }
        Command::Revoke { store, site, key, json } => {
            let key = key.parse().context("--key")?;
            open(&store)?.revoke(&site, &key)?;
            print_result(
                json,
                serde_json::json!({ "site": site, "key": key.to_string(), "revoked": true }),
                &format!("revoked {key} for site {site}"),
            );
            Ok(EXIT_OK)
        }
        Command::Import {
            store,
            archive,
            domain,
            new_domain,
            repair,
            json,
            auto_link,
            link_upper,
            link_lower,
            link_margin,
            bundles,
        } => {
            let policy = pseal_central::linkage::Policy {
                upper: link_upper,
                lower: link_lower,
                margin: Some(link_margin),
                auto_link,
                ..Default::default()
            };
            policy.validate()?;
            let options = RunOptions {
                domain,
                new_domain,
                repair,
                policy,
            };
            import(&store, &archive, &options, json, &bundles)
        }
        Command::Links { action } => links_cmd::run(action),
        Command::Check { store, json, pseudonym } => match pseudonym.parse::<Pseudonym>() {
            Ok(p) => {
                let merged = match &store {
                    Some(dir) => Store::merged_into(dir, &p.to_string())?,
                    None => None,
                };
                let text = match &merged {
                    Some(survivor) => format!(
                        "{p} is well-formed; it was merged into {survivor} (same patient at two sites): use {survivor}"
                    ),
                    None => format!("{p} is well-formed"),
                };
                print_result(
                    json,
                    serde_json::json!({ "pseudonym": p.to_string(), "valid": true, "merged_into": merged }),
                    &text,
                );
                Ok(EXIT_OK)
            }
            Err(e) => {
                print_result(
                    json,
                    serde_json::json!({ "pseudonym": pseudonym, "valid": false, "reason": e.to_string() }),
                    &format!("{} is not a valid pseudonym: {e}", pseudonym.escape_default()),
                );
                Ok(EXIT_REFUSED)
            }
        },
        Command::Reidentify {
            store,
            reason,
            json,
            pseudonym,
        } => {
            // Checked before the passphrase is asked for; `reidentify` checks it again.
            pseal_central::store::reidentify::check_reason(&reason)?;
            let p: Pseudonym = pseudonym.parse().context("pseudonym")?;
            let found = open(&store)?.reidentify(&p, &reason)?;
            let (domain, id) = (&found.domain, &found.identity);
            // A merged patient is also each (site, local ID) merged into it.
            let mut text = format!(
                "pseudonym {p} (domain {domain}) is local ID {} at site {}",
                id.local_id.expose(),
                id.site
            );
            let mut merged = Vec::new();
            for (other, m) in &found.also {
                text.push_str(&format!(
                    "\npseudonym {p} is also local ID {} at site {} (merged from {other})",
                    m.local_id.expose(),
                    m.site
                ));
                merged.push(
                    serde_json::json!({ "merged": other.to_string(), "site": m.site, "local_id": m.local_id.expose() }),
                );
            }
            let survivor = &found.merged_into;
            print_result(
                json,
                serde_json::json!({ "pseudonym": p.to_string(), "domain": domain, "site": id.site, "local_id": id.local_id.expose(), "also": merged, "merged_into": survivor }),
                &text,
            );
            if let Some(survivor) = survivor {
                eprintln!("{p} was merged into {survivor}: its studies are under {survivor}");
            }
            Ok(EXIT_OK)
        }
        Command::Release {
            store,
            archive,
            to,
            domain,
            all,
            pseudonyms,
            format,
            out,
            out_dir,
            compress,
            bids_rules,
            bids_keep_unconverted,
            dcm2niix,
            release_config,
            json,
        } => {
            let selection = match (all, pseudonyms) {
                (true, _) => Selection::All,
                (false, Some(file)) => Selection::Pseudonyms(read_pseudonyms(&file)?),
                (false, None) => bail!("say what to release: choose --all or --pseudonyms FILE"),
            };
            let (format, bids) = match format {
                cli::ReleaseFormat::Dicom => (Format::Dicom, None),
                cli::ReleaseFormat::Bids => (
                    Format::Bids,
                    // Checked before the passphrase is asked for: a missing converter is found at once.
                    Some(BidsOptions::load(
                        bids_rules.as_deref(),
                        dcm2niix.as_deref(),
                        bids_keep_unconverted,
                    )?),
                ),
            };
            let output = match (out, out_dir, to) {
                (_, Some(dir), _) => Output::Folder(dir),
                (Some(path), None, Some(to)) => Output::Package {
                    path,
                    to: to.parse().context("--to")?,
                    compression: match compress {
                        Some(cli::ReleaseCompression::None) | None => Compression::None,
                        Some(cli::ReleaseCompression::Zstd) => Compression::Zstd,
                    },
                },
                _ => bail!("say where to write the release: --out FILE with --to AGE1…, or --out-dir DIR"),
            };
            let (config, _) = ReleaseConfig::load(release_config.as_deref(), &store)?;
            let date = pseal_central::release::release_date()?;
            let request = ReleaseRequest {
                domain,
                selection,
                format,
                bids,
                output,
                config,
                date,
            };
            let renderer = Renderer::new(json);
            let mut s = open(&store)?;
            s.check_domain(&request.domain, false, false)?;
            let archive = Archive::open_to_read(&s, &archive).map_err(|e| archive_error(&archive, e))?;
            let summary = release(&mut s, &archive, &request, &renderer)?;
            renderer.finish();
            if json {
                // The same flat shape as every summary; `release` repeats it for programs written
                // against the first version.
                let mut line = serde_json::to_value(&summary)?;
                line["event"] = "summary".into();
                line["release"] = serde_json::to_value(&summary)?;
                renderer.json_line(&line);
            } else {
                for n in &summary.not_converted {
                    println!(
                        "{}: {} {} series {} ({}): {}",
                        n.outcome,
                        n.participant_id,
                        n.session_id,
                        n.series_number,
                        if n.series_description.is_empty() {
                            "no description"
                        } else {
                            &n.series_description
                        },
                        n.reason
                    );
                }
                if let Some(o) = &summary.series {
                    println!(
                        "series: {} converted, {} excluded by a rule, {} matched by no rule, {} failed (all listed in bids/sourcedata/series.tsv)",
                        o.converted, o.excluded, o.unmatched, o.failed
                    );
                }
                println!(
                    "released {} and {} to {}; sha256 {}",
                    plural(summary.patients, "patient", "patients"),
                    plural(summary.instances, "instance", "instances"),
                    summary.out.display(),
                    summary.sha256
                );
            }
            Ok(EXIT_OK)
        }
        Command::Publish {
            identity,
            dicomweb,
            user,
            password_file,
            token_file,
            ca_file,
            jobs,
            batch,
            batch_mib,
            verify,
            verify_only,
            json,
            release,
        } => {
            let sources = CredentialSources {
                user,
                password_file,
                password_env: secret_env(publish::dicomweb::PASSWORD_ENV),
                token_file,
                token_env: secret_env(publish::dicomweb::TOKEN_ENV),
            };
            let options = publish::Options {
                jobs: usize::from(jobs),
                batch_instances: batch as usize,
                batch_bytes: u64::from(batch_mib) << 20,
                send: !verify_only,
                verify: verify || verify_only,
            };
            publish_release(&identity, &dicomweb, sources, ca_file, &options, json, &release)
        }
        Command::Sites { store, json } => {
            let s = open(&store)?;
            let rows = s.sites()?;
            for row in &rows {
                if json {
                    let mut v = serde_json::to_value(row)?;
                    v["event"] = "site".into();
                    println!("{v}");
                } else {
                    let state = if row.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "enrolled"
                    };
                    println!("{:<16} {state:<9} {}", row.site, row.key);
                }
            }
            if json {
                print_result(true, serde_json::json!({ "keys": rows.len() }), "");
            }
            Ok(EXIT_OK)
        }
        Command::Domains { store, json } => {
            let s = open(&store)?;
            let domains = s.domains()?;
            for d in &domains {
                if json {
                    let mut v = serde_json::to_value(d)?;
                    v["event"] = "domain".into();
                    println!("{v}");
                } else {
                    println!(
                        "{:<24} {:>8} {:>10}",
                        d.domain,
                        plural(d.patients, "patient", "patients"),
                        plural(d.instances, "instance", "instances")
                    );
                }
            }
            if json {
                print_result(true, serde_json::json!({ "domains": domains.len() }), "");
            }
            Ok(EXIT_OK)
        }
        Command::Lookup {
            store,
            site,
            local_id,
            domain,
            reason,
            json,
        } => {
            // Checked before the passphrase is asked for; `lookup_audited` checks it again.
            pseal_central::store::reidentify::check_reason(&reason)?;
            let id = pseal::identity::LocalId::new(&local_id).context("--local-id is empty")?;
            let answer = open(&store)?.lookup_audited(&domain, &site, &id, &reason)?;
            if let (Some(survivor), Some(own)) = (&answer.merged_into, &answer.own) {
                eprintln!("(merged into {survivor}; its own pseudonym was {own})");
            }
            let found = answer.pseudonym;
            let value = serde_json::json!({
                "site": site, "domain": domain, "found": found.is_some(),
                "pseudonym": found.as_ref().map(ToString::to_string),
            });
            match found {
                Some(p) => {
                    print_result(json, value, &p.to_string());
                    Ok(EXIT_OK)
                }
                None => {
                    if json {
                        print_result(true, value, "");
                    } else {
                        eprintln!("no patient with that local ID at site {site} in domain {domain}");
                    }
                    Ok(EXIT_REFUSED)
                }
            }
        }
        Command::Passphrase {
            store,
            allow_weak_passphrase,
            json,
        } => {
            let mut s = open(&store)?;
            let new = passphrase::new(
                passphrase::NEW_PASSPHRASE_ENV,
                "New steward passphrase",
                allow_weak_passphrase,
            )?;
            s.change_passphrase(&new)?;
            print_result(
                json,
                serde_json::json!({ "store": store, "changed": true }),
                "the steward identity now opens with the new passphrase",
            );
            Ok(EXIT_OK)
        }
        Command::Audit { store, verify, json } => {
            let s = open(&store)?;
            let mut out = std::io::stdout().lock();
            let entries = s.audit_entries()?;
            let last = entries.last().map(|e| (e.seq, e.hash.clone()));
            for e in &entries {
                let line = if json {
                    let mut v = serde_json::to_value(e)?;
                    v["event"] = "audit_entry".into();
                    v.to_string()
                } else {
                    let at = chrono::DateTime::from_timestamp(e.at, 0)
                        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                        .unwrap_or_default();
                    format!("{:>6}  {at}  {:<11} {}", e.seq, e.action, e.detail)
                };
                // A reader that stops early (`| head`) is not an error.
                if let Err(err) = writeln!(out, "{line}") {
                    if err.kind() == std::io::ErrorKind::BrokenPipe {
                        return Ok(EXIT_OK);
                    }
                    return Err(err.into());
                }
            }
            drop(out);
            let broken = if verify { s.verify_audit()? } else { None };
            if json {
                print_result(
                    true,
                    serde_json::json!({
                        "entries": entries.len(),
                        "last_seq": last.as_ref().map(|l| l.0),
                        "last_hash": last.as_ref().map(|l| l.1.clone()),
                        "verified": if verify { Some(broken.is_none()) } else { None },
                        "broken_at": broken.as_ref().map(|b| b.seq),
                        "reason": broken.as_ref().map(|b| b.reason.clone()),
                    }),
                    "",
                );
            }
            if !verify {
                return Ok(EXIT_OK);
            }
            match broken {
                None => {
                    if !json {
                        println!("audit chain verified");
                    }
                    Ok(EXIT_OK)
                }
                Some(b) => {
                    if !json {
                        println!("audit chain BROKEN at entry {}: {}", b.seq, b.reason);
                    }
                    Ok(EXIT_REFUSED)
                }
            }
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "pseal-central", &mut std::io::stdout());
            Ok(EXIT_OK)
        }
        Command::Manpages { dir } => manpages(&dir),
    }
}

/// An archive folder error, worded with the folder's role (the store names it only as a path).
fn archive_error(dir: &Path, e: pseal_central::StoreError) -> anyhow::Error {
    match e {
        pseal_central::StoreError::Io { source, .. } => PathError::new(Role::ArchiveFolder, dir, source).into(),
        pseal_central::StoreError::Archive(refused) => anyhow::anyhow!("archive folder: {refused}"),
        other => other.into(),
    }
}

/// A secret from the environment, held so that it is wiped from memory after use.
fn secret_env(name: &str) -> Option<zeroize::Zeroizing<String>> {
    std::env::var(name).ok().map(zeroize::Zeroizing::new)
}

/// Shows a publish run's failures and warnings as they come: a line above the bar, or a JSON line.
struct PublishReport<'a>(&'a Renderer);

impl Progress for PublishReport<'_> {
    fn event(&self, event: Event) {
        self.0.event(event);
    }
}

impl publish::Observer for PublishReport<'_> {
    fn failed(&self, f: &publish::Failure) {
        self.0
            .json_line(&serde_json::json!({ "event": "failed", "path": f.path, "reason": f.reason }));
        self.0.say(&format!("FAILED {}: {}", f.path, f.reason));
    }
    fn warned(&self, w: &publish::Failure) {
        self.0
            .json_line(&serde_json::json!({ "event": "warning", "path": w.path, "reason": w.reason }));
        self.0.say(&format!("warning: {}: {}", w.path, w.reason));
    }
}

fn publish_release(
    identity_file: &Path,
    url: &str,
    sources: CredentialSources,
    ca_file: Option<PathBuf>,
    options: &publish::Options,
    json: bool,
    release: &Path,
) -> Result<u8> {
    let credentials = sources.resolve()?;
    let client = publish::Client::new(url, credentials, &publish::Tls { ca_file })?;
    let identity = StewardIdentity::read_file(identity_file, || {
        passphrase::steward().map_err(|e| pseal::keys::KeyError::IdentityLocked {
            path: identity_file.to_path_buf(),
            reason: e.to_string(),
        })
    })?;
    let renderer = Renderer::new(json);
    let report = PublishReport(&renderer);
    let summary = publish::publish(&client, release, &identity, identity_file, options, &report);
    renderer.finish();
    let summary = summary?;
    let mut code = if summary.failed == 0 { EXIT_OK } else { EXIT_REFUSED };
    if let Some(v) = &summary.verify {
        if !v.matches() {
            code = EXIT_REFUSED;
        }
    }
    if json {
        renderer.json_line(&serde_json::json!({
            "event": "summary", "sent": summary.sent, "already_present": summary.already_present,
            "failed": summary.failed, "warnings": summary.warnings, "studies": summary.studies,
            "failures": summary.failures, "verify": summary.verify,
            "release": release, "dicomweb": client.base(),
        }));
        return Ok(code);
    }
    if options.send {
        println!(
            "{} sent, {} already present, {} failed ({} studies) from {} to {}",
            summary.sent,
            summary.already_present,
            summary.failed,
            summary.studies,
            release.display(),
            client.base()
        );
    }
    if let Some(v) = &summary.verify {
        let counts = |c: &publish::verify::Counts| {
            format!("{} studies, {} series, {} instances", c.studies, c.series, c.instances)
        };
        println!(
            "verify: the release lists {}; the server holds {} of them{}",
            counts(&v.release),
            counts(&v.server),
            if v.matches() { ": they match" } else { "" }
        );
        if !v.missing.is_empty() {
            println!("  missing on the server ({}):", v.missing.len());
            for p in &v.missing {
                println!("    {p}");
            }
        }
        if !v.wrong_series.is_empty() {
            println!("  filed under another series on the server ({}):", v.wrong_series.len());
            for p in &v.wrong_series {
                println!("    {p}");
            }
        }
        if !v.extra.is_empty() {
            println!("  on the server but not in the release ({}):", v.extra.len());
            for e in &v.extra {
                println!("    study {} series {} instance {}", e.study, e.series, e.sop);
            }
        }
    }
    Ok(code)
}

fn import(store_dir: &Path, archive_dir: &Path, options: &RunOptions, json: bool, bundles: &[PathBuf]) -> Result<u8> {
    let renderer = Renderer::new(json);
    let _lock = Store::lock(store_dir, || {
        renderer.say("another pseal-central holds the store; waiting for it to finish…")
    })?;
    let mut store = open(store_dir)?;
    let mut show = |bundle: &Path, result: &Result<ImportOutcome, pseal_central::import::ImportError>| {
        let line = match result {
            Ok(ImportOutcome::Imported { instances, linkage, .. }) => {
                let note = match linkage {
                    ImportLink::Queued(k) => format!(
                        "; {} at other sites queued for review",
                        plural(*k as u64, "possible match", "possible matches")
                    ),
                    ImportLink::AutoLinked(link) => {
                        format!("; linked automatically to a patient of another site (link {link})")
                    }
                    _ => String::new(),
                };
                format!(
                    "imported {} ({}){note}",
                    bundle.display(),
                    plural(*instances, "instance", "instances")
                )
            }
            Ok(ImportOutcome::Repaired { instances }) => format!(
                "repaired {} ({} written again)",
                bundle.display(),
                plural(*instances, "instance", "instances")
            ),
            Ok(ImportOutcome::AlreadyImported) => format!("{} was already imported; nothing changed", bundle.display()),
            Err(e) => format!("REFUSED {e}"),
        };
        renderer.result(&line);
    };
    let summary = pseal_central::import::run(&mut store, archive_dir, bundles, options, &renderer, &mut show)?;
    renderer.finish();
    if json {
        let mut line = serde_json::to_value(&summary)?;
        line["event"] = "summary".into();
        line["archive"] = serde_json::json!(archive_dir);
        line["domain"] = options.domain.clone().into();
        renderer.json_line(&line);
    } else {
        println!(
            "{} imported ({}), {} already imported, {} refused; archive: {}",
            plural(summary.imported, "bundle", "bundles"),
            plural(summary.instances, "instance", "instances"),
            summary.already_imported,
            summary.refused,
            archive_dir.display()
        );
        if summary.links_queued > 0 || summary.auto_linked > 0 {
            println!(
                "cross-site linkage: {} linked automatically, {} queued; review with `pseal-central links list --store {}`",
                plural(summary.auto_linked, "patient", "patients"),
                plural(summary.links_queued, "link", "links"),
                store_dir.display()
            );
        }
    }
    Ok(if summary.refused == 0 { EXIT_OK } else { EXIT_REFUSED })
}
