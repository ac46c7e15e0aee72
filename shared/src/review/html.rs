//! `review-report.html`: the review for the data-protection officer to read, print and sign. One
//! self-contained file: styles inline, thumbnails embedded as PNG data, no script, nothing
//! fetched from a network. Says the same as `review-report.md` ([`super::markdown`]).

use super::outcome::{option_effect, Outcome, SEALED_DEFINITION, SEALED_WORD};
use super::{group_title, ReviewReport, REPORT_JSON};
use crate::deid::Profile;
use base64::Engine as _;
use std::fmt::Write as _;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:64rem;margin:1.5rem auto;padding:0 1rem;color:#1b1b1b;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:2px solid #ddd;padding-bottom:.2rem}h3{font-size:1.05rem;margin-bottom:.3rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}th,td{border:1px solid #ccc;padding:.25rem .45rem;text-align:left;vertical-align:top}th{background:#f2f2f2}
td.n{text-align:right;font-variant-numeric:tabular-nums}tr.leaves td{background:#fff4d6}.note{background:#eef4ff;border-left:4px solid #4a7bd0;padding:.5rem .8rem}
.warn{background:#fff0f0;border-left:4px solid #c0392b;padding:.5rem .8rem}.summary li{margin:.2rem 0}code{font-size:.9em}
figure{display:inline-block;margin:.4rem .8rem .8rem 0;vertical-align:top;max-width:200px}figcaption{font-size:.75rem;word-break:break-all}
img.thumb{border:1px solid #888;image-rendering:pixelated}.sign td{height:2.2rem;min-width:16rem}@media print{h2{break-after:avoid}figure{break-inside:avoid}}";

/// Renders the whole report.
pub fn render(report: &ReviewReport, profile: &Profile) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>pseal review — site {site}</title><style>{STYLE}</style></head><body>\n<h1>pseal review — site {site}</h1>\n<p>Produced by {tool}. Nothing was sealed or sent: the review folder holds the files an export would put into bundles, as they would leave the hospital.</p>\n<p class=\"warn\"><strong>This report stays in the hospital.</strong> It names input files by their paths, shows the values that would leave and pictures of quarantined images, which may show a patient's name.</p>\n",
        site = escape(&report.site),
        tool = escape(&report.tool),
    );
    summary(&mut h, report);
    legend(&mut h);
    options(&mut h, report, profile);
    counts(&mut h, report);
    leaving_values(&mut h, report);
    attributes(&mut h, report);
    sealed(&mut h, report);
    quarantined(&mut h, report);
    skipped(&mut h, report);
    let _ = write!(
        h,
        "<h2 id=\"sign\">Sign-off</h2>\n<p>I have read this report and looked at the de-identified files it describes.</p>\n<table class=\"sign\"><tr><th>Name and role</th><td></td></tr><tr><th>Date</th><td></td></tr><tr><th>Decision</th><td></td></tr><tr><th>Signature</th><td></td></tr></table>\n<p>Which input file became which output file is listed in <code>{REPORT_JSON}</code> (<code>files</code>).</p>\n</body></html>\n"
    );
    h
}

fn summary(h: &mut String, r: &ReviewReport) {
    let leaving: Vec<_> = r.attributes.iter().filter(|a| a.leaves()).collect();
    let c = &r.counts;
    let _ = write!(
        h,
        "<h2 id=\"summary\">What leaves the hospital, and what does not</h2>\n<ul class=\"summary\">\n<li><strong>Would leave:</strong> {} from {}, de-identified as this report describes.</li>\n<li><strong>Values that leave as they are:</strong> {} (marked <em>kept unchanged</em> or <em>kept after a check</em>); the text values among them are listed under <a href=\"#values\">Values that leave</a>.</li>\n<li><strong>Stay at the hospital:</strong> {} quarantined and {} that are not DICOM; every other attribute's original value is removed, emptied or replaced.</li>\n<li><strong>Sealed for the steward only:</strong> the local patient ID, the original UIDs and dates (see <a href=\"#sealed\">the sealed record</a>).</li>\n</ul>\n",
        files(c.reviewed),
        plural(c.patients, "patient", "patients"),
        plural(leaving.len() as u64, "attribute", "attributes"),
        files(c.quarantined),
        files(c.skipped),
    );
}

fn legend(h: &mut String) {
    h.push_str("<h2 id=\"legend\">The words in this report</h2>\n<table><tr><th>outcome</th><th>does the original value leave?</th><th>meaning</th></tr>\n");
    for o in Outcome::ALL {
        let _ = writeln!(
            h,
            "<tr><td><strong>{}</strong></td><td>{}</td><td>{}</td></tr>",
            o.word(),
            if o.original_leaves() { "yes" } else { "no" },
            escape(o.definition())
        );
    }
    let _ = writeln!(
        h,
        "<tr><td><strong>{SEALED_WORD}</strong></td><td>only to the steward</td><td>{}</td></tr>\n</table>",
        escape(SEALED_DEFINITION)
    );
}

fn options(h: &mut String, r: &ReviewReport, profile: &Profile) {
    h.push_str("<h2 id=\"options\">Options in force and what each changes</h2>\n");
    let _ = writeln!(
        h,
        "<p>The DICOM PS3.15 Basic Application Level Confidentiality Profile applies to every file. On top of it:</p>"
    );
    if profile.options().iter().next().is_none() {
        h.push_str("<p>No option: the Basic Profile alone.</p>\n");
    } else {
        h.push_str("<table><tr><th>option</th><th>what it changes</th></tr>\n");
        for o in profile.options().iter() {
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td>{}</td></tr>",
                o.name(),
                escape(option_effect(o))
            );
        }
        h.push_str("</table>\n");
    }
    let _ = writeln!(
        h,
        "<ul><li>The local patient ID is taken from <code>{}</code>; it goes only into the sealed record.</li><li>De-identification Method written into every file: <code>{}</code></li>",
        escape(&r.local_id_attribute),
        escape(&r.profile.method)
    );
    for line in r.without_iod_lines() {
        let _ = writeln!(h, "<li>{}</li>", escape(&line));
    }
    if r.allow_burned_in.is_empty() {
        h.push_str("<li>No SOP class is allowed despite the burned-in rules (<code>allow_burned_in</code> is empty).</li></ul>\n");
    } else {
        let _ = writeln!(
            h,
            "<li><strong>Allowed despite the burned-in rules</strong> (<code>allow_burned_in</code>: files of these SOP classes are exported even when they declare burned-in text): {}</li></ul>",
            escape(&r.allow_burned_in.join(", "))
        );
    }
}

fn counts(h: &mut String, r: &ReviewReport) {
    let c = &r.counts;
    let _ = writeln!(
        h,
        "<h2 id=\"counts\">Counts</h2>\n<table><tr><th>files seen</th><th>patients</th><th>de-identified</th><th>quarantined</th><th>not DICOM</th></tr><tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr></table>",
        c.files_seen, c.patients, c.reviewed, c.quarantined, c.skipped
    );
}

fn leaving_values(h: &mut String, r: &ReviewReport) {
    h.push_str("<h2 id=\"values\">Values that leave</h2>\n<p>Every text attribute whose value leaves as it is (kept unchanged or kept after a check), with each distinct value and the number of times it occurs. Ask of each: could it identify a patient here?</p>\n");
    let mut any = false;
    for a in r.attributes.iter().filter(|a| a.leaves()) {
        let Some(values) = r.values.get(&a.tag) else { continue };
        any = true;
        let kept = a.count(Outcome::KeptUnchanged) + a.count(Outcome::KeptAfterCheck);
        let _ = writeln!(
            h,
            "<h3 id=\"v-{}\">{} {} — {} {}</h3>\n<table><tr><th>value</th><th>times</th></tr>",
            anchor(&a.tag),
            escape(&a.tag),
            escape(&a.name),
            outcome_words(a),
            plural(kept, "time", "times")
        );
        for (value, n) in values.by_count() {
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td class=\"n\">{n}</td></tr>",
                escape(value)
            );
        }
        if values.more > 0 {
            let _ = writeln!(
                h,
                "<tr><td>other values (not listed: only the first {} distinct values are)</td><td class=\"n\">{}</td></tr>",
                super::values::MAX_DISTINCT,
                values.more
            );
        }
        h.push_str("</table>\n");
    }
    if !any {
        h.push_str("<p>No text value leaves.</p>\n");
    }
}

fn outcome_words(a: &super::outcome::AttributeOutcomes) -> String {
    let words: Vec<&str> = a
        .outcomes
        .iter()
        .filter(|(o, n)| o.original_leaves() && **n > 0)
        .map(|(o, _)| o.word())
        .collect();
    words.join(" / ")
}

fn anchor(tag: &str) -> String {
    tag.chars().filter(char::is_ascii_alphanumeric).collect()
}

fn attributes(h: &mut String, r: &ReviewReport) {
    h.push_str("<h2 id=\"attributes\">What happened to each attribute</h2>\n<p>Times each outcome occurred, over all de-identified files (attributes inside sequences included). Rows whose original value leaves are shaded.</p>\n<table><tr><th>tag</th><th>attribute</th>");
    for o in Outcome::ALL {
        let _ = write!(h, "<th>{}</th>", o.word());
    }
    let _ = writeln!(h, "<th>{SEALED_WORD}</th></tr>");
    for a in &r.attributes {
        let _ = write!(
            h,
            "<tr{}><td><code>{}</code></td><td>{}</td>",
            if a.leaves() { " class=\"leaves\"" } else { "" },
            escape(&a.tag),
            escape(&a.name)
        );
        for o in Outcome::ALL {
            let n = a.count(o);
            let _ = write!(
                h,
                "<td class=\"n\">{}</td>",
                if n == 0 { String::new() } else { n.to_string() }
            );
        }
        let _ = writeln!(
            h,
            "<td class=\"n\">{}</td></tr>",
            if a.sealed == 0 {
                String::new()
            } else {
                a.sealed.to_string()
            }
        );
    }
    if r.attributes.is_empty() {
        h.push_str("<tr><td colspan=\"11\">Nothing was de-identified.</td></tr>\n");
    }
    h.push_str("</table>\n");
}

fn sealed(h: &mut String, r: &ReviewReport) {
    let s = &r.sealed_identity;
    let _ = writeln!(
        h,
        "<h2 id=\"sealed\">What goes into the sealed record</h2>\n<p>Each bundle carries one identity record, encrypted to the data steward: only the steward can open it. These are its fields (names only, never values):</p>\n<table><tr><th>field</th><th>how many</th></tr>\n<tr><td>local patient ID (from <code>{}</code>)</td><td class=\"n\">{}</td></tr>\n<tr><td>original UIDs (the files carry replacements)</td><td class=\"n\">{}</td></tr>\n<tr><td>birth date (for the age at each scan; the steward does not keep it)</td><td class=\"n\">{}</td></tr>",
        escape(&r.local_id_attribute),
        s.local_ids,
        s.uids,
        s.birth_dates
    );
    for (attr, n) in &s.values {
        let _ = writeln!(
            h,
            "<tr><td>original {} (written back shifted by the steward)</td><td class=\"n\">{n}</td></tr>",
            escape(attr)
        );
    }
    if !s.linkage_fields.is_empty() {
        let _ = writeln!(
            h,
            "<tr><td>for cross-site linkage (this site has it on), per patient: {} — the steward encodes them and keeps only the encodings</td><td class=\"n\">{}</td></tr>",
            escape(&s.linkage_fields.join(", ")),
            s.local_ids
        );
    }
    h.push_str("</table>\n");
}

fn quarantined(h: &mut String, r: &ReviewReport) {
    let _ = writeln!(
        h,
        "<h2 id=\"quarantined\">Quarantined files (stay at the hospital)</h2>\n<p>{} left out, grouped by reason. Pictures show the first frame of each image, small, so that you see the text that kept it here. Compressed images are not pictured (pseal decodes only uncompressed pixel data): open them in a DICOM viewer.</p>",
        files(r.counts.quarantined)
    );
    if r.quarantine_groups.is_empty() {
        h.push_str("<p>None.</p>\n");
    }
    for g in &r.quarantine_groups {
        let _ = writeln!(
            h,
            "<h3>{} — {}</h3>\n<p class=\"note\">{}</p>",
            escape(group_title(&g.code)),
            files(g.files.len() as u64),
            escape(&g.reason)
        );
        for f in &g.files {
            match &f.thumbnail {
                Some(t) => {
                    let data = base64::engine::general_purpose::STANDARD.encode(&t.png);
                    let _ = writeln!(
                        h,
                        "<figure><img class=\"thumb\" alt=\"first frame of {path}\" width=\"{}\" height=\"{}\" src=\"data:image/png;base64,{data}\"><figcaption><code>{path}</code></figcaption></figure>",
                        t.width,
                        t.height,
                        path = escape(&f.path)
                    );
                }
                None => {
                    let _ = writeln!(
                        h,
                        "<figure><figcaption><code>{}</code><br>{}</figcaption></figure>",
                        escape(&f.path),
                        escape(f.no_thumbnail.as_deref().unwrap_or("no thumbnail"))
                    );
                }
            }
        }
    }
}

fn skipped(h: &mut String, r: &ReviewReport) {
    let _ = writeln!(
        h,
        "<h2 id=\"skipped\">Not DICOM (skipped)</h2>\n<p>{} skipped.</p>",
        files(r.counts.skipped)
    );
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for s in &r.skipped {
        match groups.iter_mut().find(|(reason, _)| *reason == s.reason) {
            Some((_, paths)) => paths.push(&s.path),
            None => groups.push((&s.reason, vec![&s.path])),
        }
    }
    for (reason, paths) in groups {
        let _ = writeln!(h, "<h3>{} — {}</h3>\n<ul>", escape(reason), files(paths.len() as u64));
        for p in paths {
            let _ = writeln!(h, "<li><code>{}</code></li>", escape(p));
        }
        h.push_str("</ul>\n");
    }
}

/// `1 file`, `2 files`.
pub(crate) fn files(n: u64) -> String {
    plural(n, "file", "files")
}

/// `n` and the singular or plural noun.
pub(crate) fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(super::escape("<b a=\"x\">&'"), "&lt;b a=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(super::files(1), "1 file");
        assert_eq!(super::files(2), "2 files");
    }
}
