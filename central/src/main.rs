//! `pseal-central`: the data steward's tool. Argument parsing, passphrase prompting and printing;
//! everything else is in the `pseal_central` library.

mod cli;
mod links_cmd;

use anyhow::{bail, Context, Result};
use clap::Parser;
use cli::{Cli, Command, RecipientsAction};
use pseal::keys::Passphrase;
use pseal::progress::render::Renderer;
use pseal::progress::{Event, Progress};
use pseal::pseudonym::Pseudonym;
use pseal_central::import::import_bundle_with;
use pseal_central::release::{read_pseudonyms, release, Selection};
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

/// Environment variable holding the passphrase for unattended use.
const PASSPHRASE_ENV: &str = "PSEAL_PASSPHRASE";

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

fn passphrase(confirm: bool) -> Result<Passphrase> {
    let text = match std::env::var(PASSPHRASE_ENV) {
        Ok(t) => t,
        Err(_) => {
            use std::io::IsTerminal;
            if !std::io::stdin().is_terminal() {
                bail!("no passphrase: set {PASSPHRASE_ENV} or run on a terminal");
            }
            let first = rpassword::prompt_password("Steward passphrase: ").context("reading the passphrase")?;
            if confirm {
                let second = rpassword::prompt_password("Repeat the passphrase: ").context("reading the passphrase")?;
                if first != second {
                    bail!("the two passphrases differ");
                }
            }
            first
        }
    };
    Passphrase::new(text).context("the passphrase is empty; an empty passphrase protects nothing")
}

pub(crate) fn open(store: &Path) -> Result<Store> {
    Ok(Store::open(store, &passphrase(false)?)?)
}

fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Init {
            store,
            backup_recipients,
        } => {
            let backups = backup_recipients
                .iter()
                .map(|r| r.parse().with_context(|| format!("--backup-recipient {r}")))
                .collect::<Result<Vec<_>>>()?;
            let s = Store::create(&store, &passphrase(true)?, &backups)?;
            eprintln!(
                "created the store in {}; the steward identity is {}",
                store.display(),
                store.join(pseal_central::store::IDENTITY_FILE).display()
            );
            eprintln!("give this recipient to every site (pseal init --recipient …):");
            println!("{}", s.identity().recipient());
            Ok(EXIT_OK)
        }
        Command::Recipient { store } => {
            for r in Store::recipients_of(&store)? {
                println!("{r}");
            }
            Ok(EXIT_OK)
        }
        Command::Recipients {
            action: RecipientsAction::Add { store, recipient },
        } => {
            let r = recipient.parse().context("recipient")?;
            let added = open(&store)?.add_backup_recipient(&r)?;
            println!(
                "{}",
                if added {
                    "added; sites must add it to their configuration's recipients"
                } else {
                    "already a recipient"
                }
            );
            Ok(EXIT_OK)
        }
        Command::Enroll { store, site, key } => {
            let key = key.parse().context("--key")?;
            let added = open(&store)?.enroll(&site, &key)?;
            println!(
                "{} {key} for site {site}",
                if added { "enrolled" } else { "already enrolled:" }
            );
            Ok(EXIT_OK)
        }
        Command::Revoke { store, site, key } => {
            let key = key.parse().context("--key")?;
            open(&store)?.revoke(&site, &key)?;
            println!("revoked {key} for site {site}");
            Ok(EXIT_OK)
        }
        Command::Import {
            store,
            archive,
            domain,
            repair,
            json,
            auto_link,
            link_upper,
            link_lower,
            bundles,
        } => {
            let policy = pseal_central::linkage::Policy {
                upper: link_upper,
                lower: link_lower,
                auto_link,
                ..Default::default()
            };
            policy.validate().map_err(anyhow::Error::msg)?;
            import(&store, &archive, &domain, repair, json, policy, &bundles)
        }
        Command::Links { action } => links_cmd::run(action),
        Command::Check { store, pseudonym } => {
            match pseudonym.parse::<Pseudonym>() {
                Ok(p) => {
                    let merged = match &store {
                        Some(dir) => Store::merged_into(dir, &p.to_string())?,
                        None => None,
                    };
                    match merged {
                    Some(survivor) => println!("{p} is well-formed; it was merged into {survivor} (same patient at two sites): use {survivor}"),
                    None => println!("{p} is well-formed"),
                }
                    Ok(EXIT_OK)
                }
                Err(e) => {
                    println!("{} is not a valid pseudonym: {e}", pseudonym.escape_default());
                    Ok(EXIT_REFUSED)
                }
            }
        }
        Command::Reidentify {
            store,
            reason,
            json,
            pseudonym,
        } => {
            if reason.trim().is_empty() {
                bail!("--reason must say why (it is recorded in the audit log)");
            }
            let p: Pseudonym = pseudonym.parse().context("pseudonym")?;
            let mut s = open(&store)?;
            let Some((domain, id)) = s.open_identity(&p)? else {
                bail!("no patient has pseudonym {p} in this store");
            };
            s.audit(
                "reidentify",
                &serde_json::json!({ "pseudonym": p.to_string(), "domain": domain, "reason": reason }),
            )?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "pseudonym": p.to_string(), "domain": domain, "site": id.site, "local_id": id.local_id.expose() })
                );
            } else {
                println!(
                    "pseudonym {p} (domain {domain}) is local ID {} at site {}",
                    id.local_id.expose(),
                    id.site
                );
            }
            // A merged patient is also each (site, local ID) merged into it.
            for other in s.merged_rows(&p)? {
                if let Some((_, m)) = s.open_identity(&other)? {
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({ "pseudonym": p.to_string(), "merged": other.to_string(), "site": m.site, "local_id": m.local_id.expose() })
                        );
                    } else {
                        println!(
                            "pseudonym {p} is also local ID {} at site {} (merged from {other})",
                            m.local_id.expose(),
                            m.site
                        );
                    }
                }
            }
            if let Some(survivor) = Store::merged_into(&store, &p.to_string())? {
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
            out,
            json,
        } => {
            let to = to.parse().context("--to")?;
            let selection = match (all, pseudonyms) {
                (true, _) => Selection::All,
                (false, Some(file)) => Selection::Pseudonyms(read_pseudonyms(&file).map_err(anyhow::Error::msg)?),
                (false, None) => bail!("say what to release: --all or --pseudonyms FILE"),
            };
            let renderer = Renderer::new(json);
            let mut s = open(&store)?;
            let archive = Archive::open_for(&s, &archive, false)?;
            let summary = release(&mut s, &domain, &archive, &to, &selection, &out, &renderer)?;
            renderer.finish();
            if json {
                renderer.json_line(&serde_json::json!({ "event": "summary", "release": summary }));
            } else {
                println!(
                    "released {} patient(s), {} instance(s) to {}; sha256 {}",
                    summary.patients,
                    summary.instances,
                    summary.out.display(),
                    summary.sha256
                );
            }
            Ok(EXIT_OK)
        }
        Command::Sites { store, json } => {
            let s = open(&store)?;
            for row in s.sites()? {
                if json {
                    println!("{}", serde_json::to_string(&row)?);
                } else {
                    let state = if row.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "enrolled"
                    };
                    println!("{:<16} {state:<9} {}", row.site, row.key);
                }
            }
            Ok(EXIT_OK)
        }
        Command::Lookup {
            store,
            site,
            local_id,
            domain,
            reason,
        } => {
            if reason.trim().is_empty() {
                bail!("--reason must say why (it is recorded in the audit log)");
            }
            let id = pseal::identity::LocalId::new(&local_id).context("--local-id is empty")?;
            let mut s = open(&store)?;
            let found = s.lookup(&domain, &site, &id)?;
            // The pseudonym the patient's studies are under: a merged patient's survivor.
            let found = match found {
                Some(p) => Some(match Store::merged_into(&store, &p.to_string())? {
                    Some(survivor) => {
                        eprintln!("(merged into {survivor}; its own pseudonym was {p})");
                        survivor.parse().unwrap_or(p)
                    }
                    None => p,
                }),
                None => None,
            };
            s.audit(
                "lookup",
                &serde_json::json!({ "site": site, "domain": domain, "found": found.as_ref().map(ToString::to_string), "reason": reason }),
            )?;
            match found {
                Some(p) => {
                    println!("{p}");
                    Ok(EXIT_OK)
                }
                None => {
                    eprintln!("no patient with that local ID at site {site} in domain {domain}");
                    Ok(EXIT_REFUSED)
                }
            }
        }
        Command::Passphrase { store } => {
            let mut s = open(&store)?;
            let new = match std::env::var("PSEAL_NEW_PASSPHRASE") {
                Ok(t) => Passphrase::new(t).context("the new passphrase is empty")?,
                Err(_) => {
                    use std::io::IsTerminal;
                    if !std::io::stdin().is_terminal() {
                        bail!("no new passphrase: set PSEAL_NEW_PASSPHRASE or run on a terminal");
                    }
                    let first = rpassword::prompt_password("New steward passphrase: ")?;
                    let second = rpassword::prompt_password("Repeat the new passphrase: ")?;
                    if first != second {
                        bail!("the two passphrases differ");
                    }
                    Passphrase::new(first).context("the new passphrase is empty")?
                }
            };
            s.change_passphrase(&new)?;
            println!("the steward identity now opens with the new passphrase");
            Ok(EXIT_OK)
        }
        Command::Audit { store, verify, json } => {
            let s = open(&store)?;
            let mut out = std::io::stdout().lock();
            for e in s.audit_entries()? {
                let line = if json {
                    serde_json::to_string(&e)?
                } else {
                    let at = chrono::DateTime::from_timestamp(e.at, 0)
                        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                        .unwrap_or_default();
                    format!("{:>6}  {at}  {:<11} {}", e.seq, e.action, e.detail)
                };
                // A reader that stops early (`| head`) is not an error.
                if let Err(err) = writeln!(out, "{line}") {
                    if err.kind() == std::io::ErrorKind::BrokenPipe {
                        break;
                    }
                    return Err(err.into());
                }
            }
            drop(out);
            if verify {
                match s.verify_audit()? {
                    None => {
                        eprintln!("audit chain verified");
                        Ok(EXIT_OK)
                    }
                    Some(b) => {
                        eprintln!("audit chain BROKEN at entry {}: {}", b.seq, b.reason);
                        Ok(EXIT_REFUSED)
                    }
                }
            } else {
                Ok(EXIT_OK)
            }
        }
    }
}

fn import(
    store_dir: &Path,
    archive_dir: &Path,
    domain: &str,
    repair: bool,
    json: bool,
    policy: pseal_central::linkage::Policy,
    bundles: &[PathBuf],
) -> Result<u8> {
    let renderer = Renderer::new(json);
    let _lock = Store::lock(store_dir, || {
        renderer.say("another pseal-central holds the store; waiting for it to finish…")
    })?;
    let mut store = open(store_dir)?;
    store.set_link_policy(policy)?;
    let archive = Archive::open_for(&store, archive_dir, repair)?;
    let (mut imported, mut already, mut refused, mut instances) = (0u64, 0u64, 0u64, 0u64);
    let (mut queued, mut auto_linked) = (0u64, 0u64);
    for bundle in bundles {
        renderer.event(Event::Phase {
            name: "import",
            total: None,
        });
        match import_bundle_with(&mut store, &archive, bundle, domain, repair, &renderer) {
            Ok(ImportOutcome::Imported {
                instances: n, linkage, ..
            }) => {
                imported += 1;
                instances += n;
                renderer.event(Event::Imported {
                    bundle: bundle.display().to_string(),
                    outcome: "imported",
                    instances: n,
                });
                let note = match linkage {
                    ImportLink::Queued(k) => {
                        queued += k as u64;
                        format!("; {k} possible match(es) at other sites queued for review")
                    }
                    ImportLink::AutoLinked(link) => {
                        auto_linked += 1;
                        format!("; linked automatically to a patient of another site (link {link})")
                    }
                    _ => String::new(),
                };
                renderer.say(&format!("imported {} ({n} instances){note}", bundle.display()));
            }
            Ok(ImportOutcome::Repaired { instances: n }) => {
                imported += 1;
                instances += n;
                renderer.event(Event::Imported {
                    bundle: bundle.display().to_string(),
                    outcome: "repaired",
                    instances: n,
                });
                renderer.say(&format!("repaired {} ({n} instances written again)", bundle.display()));
            }
            Ok(ImportOutcome::AlreadyImported) => {
                already += 1;
                renderer.event(Event::Imported {
                    bundle: bundle.display().to_string(),
                    outcome: "already-imported",
                    instances: 0,
                });
                renderer.say(&format!("{} was already imported; nothing changed", bundle.display()));
            }
            Err(e) => {
                refused += 1;
                renderer.event(Event::Refused {
                    bundle: bundle.display().to_string(),
                    reason: e.to_string(),
                });
                renderer.say(&format!("REFUSED {e}"));
            }
        }
    }
    pseal_central::import::refresh_index(&mut store, &archive).with_context(|| {
        format!(
            "writing {}",
            archive_dir.join(pseal_central::archive::INDEX_FILE).display()
        )
    })?;
    renderer.finish();
    if json {
        renderer.json_line(&serde_json::json!({
            "event": "summary", "imported": imported, "already_imported": already, "refused": refused,
            "instances": instances, "archive": archive_dir, "links_queued": queued, "auto_linked": auto_linked,
        }));
    } else {
        println!("{imported} bundle(s) imported ({instances} instances), {already} already imported, {refused} refused; archive: {}", archive_dir.display());
        if queued > 0 || auto_linked > 0 {
            println!("cross-site linkage: {auto_linked} patient(s) linked automatically, {queued} link(s) queued; review with `pseal-central links list --store {}`", store_dir.display());
        }
    }
    Ok(if refused == 0 { EXIT_OK } else { EXIT_REFUSED })
}
