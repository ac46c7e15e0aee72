//! `pseal-central links …`: argument glue and printing for cross-site linkage review; the work is
//! `pseal_central::linkage::merge` and `pseal_central::store::links`.

use crate::cli::LinksAction;
use crate::{open, EXIT_OK};
use anyhow::{bail, Context, Result};
use pseal::progress::render::Renderer;
use pseal_central::linkage::merge::{self, Carried, KeptBundles};
use pseal_central::store::links::Link;
use pseal_central::{Archive, Store};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

pub(crate) fn run(action: LinksAction) -> Result<u8> {
    match action {
        LinksAction::List {
            store,
            domain,
            all,
            json,
        } => list(&store, domain.as_deref(), all, json),
        LinksAction::Show {
            store,
            bundles,
            reason,
            id,
        } => show(&store, &bundles, &reason, id),
        LinksAction::Accept {
            store,
            archive,
            bundles,
            json,
            id,
        } => carry(&store, &archive, &bundles, json, id, true),
        LinksAction::Undo {
            store,
            archive,
            bundles,
            json,
            id,
        } => carry(&store, &archive, &bundles, json, id, false),
        LinksAction::Reject { store, reason, id } => {
            let _lock = Store::lock(&store, || eprintln!("another pseal-central holds the store; waiting…"))?;
            let mut s = open(&store)?;
            merge::reject(&mut s, id, reason.as_deref())?;
            println!("link {id} rejected: the two patients keep their own pseudonyms");
            Ok(EXIT_OK)
        }
    }
}

fn score(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into())
}

fn list(store: &Path, domain: Option<&str>, all: bool, json: bool) -> Result<u8> {
    let s = open(store)?;
    let links = s.links(domain, all)?;
    let mut out = std::io::stdout().lock();
    if !json {
        let _ = writeln!(
            out,
            "{:>5}  {:<8} {:>5}  {:>6} {:>5} {:>4} {:>5} {:>4} {:>4}  {:<34} {:<34}",
            "link",
            "status",
            "score",
            "family",
            "given",
            "day",
            "month",
            "year",
            "sex",
            "earlier (site pseudonym)",
            "later (site pseudonym)"
        );
    }
    for l in &links {
        let line = if json { serde_json::to_string(l)? } else { row(l) };
        if let Err(e) = writeln!(out, "{line}") {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                break;
            }
            return Err(e.into());
        }
    }
    if !json && links.is_empty() {
        eprintln!("no links{}", if all { "" } else { " waiting for review" });
    }
    Ok(EXIT_OK)
}

fn row(l: &Link) -> String {
    let status = match (&l.pending, l.auto) {
        (Some(p), _) => format!("{}*{p}", l.status.as_str()),
        (None, true) => format!("{}(auto)", l.status.as_str()),
        (None, false) => l.status.as_str().to_string(),
    };
    let side = |s: &pseal_central::store::links::LinkSide| {
        if s.current == s.pseudonym {
            format!("{} {}", s.site, s.pseudonym)
        } else {
            format!("{} {} → {}", s.site, s.pseudonym, s.current)
        }
    };
    let mut flags = Vec::new();
    if l.scores.names_swapped {
        flags.push("names crosswise");
    }
    if l.scores.birth_name_used {
        flags.push("birth name");
    }
    format!(
        "{:>5}  {:<8} {:>5.3}  {:>6} {:>5} {:>4} {:>5} {:>4} {:>4}  {:<34} {:<34}{}",
        l.id,
        status,
        l.score,
        score(l.scores.family),
        score(l.scores.given),
        score(l.scores.day),
        score(l.scores.month),
        score(l.scores.year),
        score(l.scores.sex),
        side(&l.earlier),
        side(&l.later),
        if flags.is_empty() {
            String::new()
        } else {
            format!("  ({})", flags.join(", "))
        }
    )
}

fn show(store: &Path, bundles: &[PathBuf], reason: &str, id: i64) -> Result<u8> {
    // Checked before the terminal and the passphrase; `merge::show` checks it again.
    pseal_central::store::reidentify::check_reason(reason)?;
    // Identities go to the steward's screen only, never into a file or a pipe.
    if !std::io::stdout().is_terminal() {
        bail!("links show prints two patients' identities and does so only on a terminal; run it in the steward's terminal without redirecting its output");
    }
    let kept = KeptBundles::new(bundles)?;
    let mut s = open(store)?;
    let (link, sides) = merge::show(&mut s, id, &kept, reason)?;
    println!(
        "link {} ({}, score {:.3}; recorded in the audit log)",
        link.id,
        link.status.as_str(),
        link.score
    );
    for (label, side) in ["earlier", "later"].iter().zip(&sides) {
        println!();
        println!(
            "{label}: site {}, local ID {}, pseudonym {}",
            side.side.site,
            side.local_id.expose(),
            side.side.pseudonym
        );
        match &side.record {
            Some(r) => {
                let v = |x: &Option<String>| x.clone().unwrap_or_else(|| "—".into());
                println!("  family name  {}", v(&r.family_name));
                println!("  given names  {}", v(&r.given_names));
                println!("  birth name   {}", v(&r.birth_name));
                println!("  birth date   {}", v(&r.birth_date));
                println!("  sex          {}", v(&r.sex));
                for (field, n) in &r.conflicts {
                    println!("  (the site's files held {n} different values of {field})");
                }
            }
            None => println!("  (this bundle carries no linkage fields)"),
        }
    }
    Ok(EXIT_OK)
}

fn carry(store: &Path, archive: &Path, bundles: &[PathBuf], json: bool, id: i64, accept: bool) -> Result<u8> {
    let renderer = Renderer::new(json);
    let _lock = Store::lock(store, || {
        renderer.say("another pseal-central holds the store; waiting for it to finish…")
    })?;
    let kept = KeptBundles::new(bundles)?;
    let mut s = open(store)?;
    let arch = Archive::open_for(&s, archive, false)?;
    let done: Carried = if accept {
        merge::accept(&mut s, &arch, id, &kept, &renderer)?
    } else {
        merge::undo(&mut s, &arch, id, &kept, &renderer)?
    };
    pseal_central::import::refresh_index(&mut s, &arch)
        .with_context(|| format!("writing {}", archive.join(pseal_central::archive::INDEX_FILE).display()))?;
    renderer.finish();
    let link = s.link(id)?;
    if json {
        renderer.json_line(&serde_json::json!({
            "event": "summary", "link": id, "status": link.as_ref().map(|l| l.status.as_str()),
            "bundles": done.bundles, "instances": done.instances, "removed": done.removed, "resumed": done.resumed,
            "merged_from": link.as_ref().and_then(|l| l.merged_from.clone()),
            "merged_into": link.as_ref().and_then(|l| l.merged_into.clone()),
        }));
    } else {
        for r in &done.resumed {
            eprintln!("finished link {r}, which an interrupted command had left pending");
        }
        let (from, into) = link
            .as_ref()
            .map(|l| {
                (
                    l.merged_from.clone().unwrap_or_default(),
                    l.merged_into.clone().unwrap_or_default(),
                )
            })
            .unwrap_or_default();
        if accept {
            println!(
                "link {id} accepted: {from} merged into {into} ({} bundle(s), {} instance(s) re-keyed)",
                done.bundles, done.instances
            );
        } else {
            println!(
                "link {id} undone: {from} has its own studies again ({} bundle(s), {} instance(s) re-keyed)",
                done.bundles, done.instances
            );
        }
    }
    Ok(EXIT_OK)
}
