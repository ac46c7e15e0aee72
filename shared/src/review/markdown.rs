//! `review-report.md`: the review in plain text, section for section what
//! `review-report.html` says ([`super::html`]), without the pictures.

use super::html::{files, plural};
use super::outcome::{option_effect, Outcome, SEALED_DEFINITION, SEALED_WORD};
use super::{group_title, ReviewReport, REPORT_HTML, REPORT_JSON};
use std::fmt::Write as _;

/// A table cell: no line breaks, `|` escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

impl ReviewReport {
    /// One sentence per SOP Class the IOD tables do not hold (Markdown and HTML say the same).
    pub(crate) fn without_iod_lines(&self) -> Vec<String> {
        self.without_iod_data
            .iter()
            .map(|c| {
                let (n, verb) = if c.instances == 1 {
                    ("1 instance".to_string(), "is")
                } else {
                    (format!("{} instances", c.instances), "are")
                };
                format!(
                    "{n} of SOP Class {} {verb} not in pseal's IOD tables: their combined action codes took the alternative that conforms whatever the attribute's Type (D where D is among them, Z for X/Z)",
                    c.sop_class_uid
                )
            })
            .collect()
    }

    /// The `summary` event that ends `pseal review --json` (and a Python caller's progress
    /// stream): the counts, and where the review's reports in `out` are.
    pub fn summary_event(&self, out: &std::path::Path) -> serde_json::Value {
        // Lossy: a folder name that is not UTF-8 must not stop the run at its last line.
        let at = |name: &str| out.join(name).to_string_lossy().into_owned();
        serde_json::json!({
            "event": "summary",
            "reviewed": self.counts.reviewed,
            "quarantined": self.counts.quarantined,
            "skipped": self.counts.skipped,
            "report": at(super::REPORT_JSON),
            "report_html": at(super::REPORT_HTML),
            "report_md": at(super::REPORT_MD),
        })
    }

    /// The report for a person, in Markdown.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# pseal review — site {}\n", self.site);
        let _ = writeln!(md, "Produced by {}. Nothing was sealed or sent: the review folder holds the files an export would put into bundles, as they would leave the hospital. The same report with pictures of the quarantined images: `{REPORT_HTML}`.\n", self.tool);
        let _ = writeln!(md, "**This report stays in the hospital.** It names input files by their paths and shows the values that would leave.\n");

        let c = &self.counts;
        let leaving = self.attributes.iter().filter(|a| a.leaves()).count() as u64;
        let _ = writeln!(md, "## What leaves the hospital, and what does not\n");
        let _ = writeln!(
            md,
            "- **Would leave:** {} from {}, de-identified as this report describes.",
            files(c.reviewed),
            plural(c.patients, "patient", "patients")
        );
        let _ = writeln!(md, "- **Values that leave as they are:** {} (marked *kept unchanged* or *kept after a check*); the text values among them are listed under *Values that leave*.", plural(leaving, "attribute", "attributes"));
        let _ = writeln!(md, "- **Stay at the hospital:** {} quarantined and {} that are not DICOM; every other attribute's original value is removed, emptied or replaced.", files(c.quarantined), files(c.skipped));
        let _ = writeln!(md, "- **Sealed for the steward only:** the local patient ID, the original UIDs and dates (see *What goes into the sealed record*).\n");

        let _ = writeln!(md, "## The words in this report\n");
        let _ = writeln!(
            md,
            "| outcome | does the original value leave? | meaning |\n|---|---|---|"
        );
        for o in Outcome::ALL {
            let _ = writeln!(
                md,
                "| **{}** | {} | {} |",
                o.word(),
                if o.original_leaves() { "yes" } else { "no" },
                cell(o.definition())
            );
        }
        let _ = writeln!(
            md,
            "| **{SEALED_WORD}** | only to the steward | {} |\n",
            cell(SEALED_DEFINITION)
        );

        let _ = writeln!(md, "## Options in force and what each changes\n");
        let _ = writeln!(
            md,
            "The DICOM PS3.15 Basic Application Level Confidentiality Profile applies to every file. On top of it:\n"
        );
        if self.profile.options.is_empty() {
            let _ = writeln!(md, "No option: the Basic Profile alone.\n");
        } else {
            let _ = writeln!(md, "| option | what it changes |\n|---|---|");
            for name in &self.profile.options {
                let effect = crate::deid::DeidOption::from_name(name)
                    .map(option_effect)
                    .unwrap_or("");
                let _ = writeln!(md, "| `{name}` | {} |", cell(effect));
            }
            md.push('\n');
        }
        let _ = writeln!(
            md,
            "- The local patient ID is taken from `{}`; it goes only into the sealed record.",
            self.local_id_attribute
        );
        let _ = writeln!(
            md,
            "- De-identification Method written into every file: {}",
            self.profile.method
        );
        for line in self.without_iod_lines() {
            let _ = writeln!(md, "- {line}");
        }
        if self.allow_burned_in.is_empty() {
            let _ = writeln!(
                md,
                "- No SOP class is allowed despite the burned-in rules (`allow_burned_in` is empty).\n"
            );
        } else {
            let _ = writeln!(md, "- **Allowed despite the burned-in rules** (`allow_burned_in`: files of these SOP classes are exported even when they declare burned-in text): {}\n", self.allow_burned_in.join(", "));
        }

        let _ = writeln!(md, "## Counts\n");
        let _ = writeln!(md, "| files seen | patients | de-identified | quarantined | not DICOM |\n|---|---|---|---|---|\n| {} | {} | {} | {} | {} |\n", c.files_seen, c.patients, c.reviewed, c.quarantined, c.skipped);

        let _ = writeln!(md, "## Values that leave\n");
        let _ = writeln!(md, "Every text attribute whose value leaves as it is (kept unchanged or kept after a check), with each distinct value and the number of times it occurs. Ask of each: could it identify a patient here?\n");
        let mut any = false;
        for a in self.attributes.iter().filter(|a| a.leaves()) {
            let Some(values) = self.values.get(&a.tag) else {
                continue;
            };
            any = true;
            let kept = a.count(Outcome::KeptUnchanged) + a.count(Outcome::KeptAfterCheck);
            let words: Vec<&str> = a
                .outcomes
                .iter()
                .filter(|(o, n)| o.original_leaves() && **n > 0)
                .map(|(o, _)| o.word())
                .collect();
            let _ = writeln!(
                md,
                "### {} {} — {} {}\n",
                a.tag,
                a.name,
                words.join(" / "),
                plural(kept, "time", "times")
            );
            let _ = writeln!(md, "| value | times |\n|---|---|");
            for (value, n) in values.by_count() {
                let _ = writeln!(md, "| `{}` | {n} |", cell(value).replace('`', "'"));
            }
            if values.more > 0 {
                let _ = writeln!(
                    md,
                    "| other values (not listed: only the first {} distinct values are) | {} |",
                    super::values::MAX_DISTINCT,
                    values.more
                );
            }
            md.push('\n');
        }
        if !any {
            let _ = writeln!(md, "No text value leaves.\n");
        }

        let _ = writeln!(md, "## What happened to each attribute\n");
        let _ = writeln!(md, "Times each outcome occurred, over all de-identified files (attributes inside sequences included). **leaves** marks rows whose original value leaves.\n");
        let mut header = String::from("| tag | attribute |");
        let mut rule = String::from("|---|---|");
        for o in Outcome::ALL {
            let _ = write!(header, " {} |", o.word());
            rule.push_str("---|");
        }
        let _ = writeln!(md, "{header} {SEALED_WORD} |\n{rule}---|");
        for a in &self.attributes {
            let name = if a.leaves() {
                format!("{} (**leaves**)", cell(&a.name))
            } else {
                cell(&a.name)
            };
            let _ = write!(md, "| {} | {name} |", a.tag);
            for o in Outcome::ALL {
                let n = a.count(o);
                if n == 0 {
                    md.push_str(" |");
                } else {
                    let _ = write!(md, " {n} |");
                }
            }
            if a.sealed == 0 {
                md.push_str(" |\n");
            } else {
                let _ = writeln!(md, " {} |", a.sealed);
            }
        }
        if self.attributes.is_empty() {
            let _ = writeln!(md, "| | nothing was de-identified | | | | | | | | | |");
        }

        let s = &self.sealed_identity;
        let _ = writeln!(md, "\n## What goes into the sealed record\n");
        let _ = writeln!(md, "Each bundle carries one identity record, encrypted to the data steward: only the steward can open it. These are its fields (names only, never values):\n");
        let _ = writeln!(md, "| field | how many |\n|---|---|");
        let _ = writeln!(
            md,
            "| local patient ID (from `{}`) | {} |",
            self.local_id_attribute, s.local_ids
        );
        let _ = writeln!(md, "| original UIDs (the files carry replacements) | {} |", s.uids);
        let _ = writeln!(
            md,
            "| birth date (for the age at each scan; the steward does not keep it) | {} |",
            s.birth_dates
        );
        for (attr, n) in &s.values {
            let _ = writeln!(
                md,
                "| original {} (written back shifted by the steward) | {n} |",
                cell(attr)
            );
        }
        if !s.linkage_fields.is_empty() {
            let _ = writeln!(
                md,
                "| for cross-site linkage (this site has it on), per patient: {} — the steward encodes them and keeps only the encodings | {} |",
                cell(&s.linkage_fields.join(", ")),
                s.local_ids
            );
        }

        let _ = writeln!(md, "\n## Quarantined files (stay at the hospital)\n");
        let _ = writeln!(
            md,
            "{} left out, grouped by reason. `{REPORT_HTML}` shows a small picture of each uncompressed image.\n",
            files(c.quarantined)
        );
        if self.quarantine_groups.is_empty() {
            let _ = writeln!(md, "None.\n");
        }
        for g in &self.quarantine_groups {
            let _ = writeln!(
                md,
                "### {} — {}\n\n{}\n",
                group_title(&g.code),
                files(g.files.len() as u64),
                g.reason
            );
            for f in &g.files {
                match &f.no_thumbnail {
                    Some(why) => {
                        let _ = writeln!(md, "- `{}` ({why})", f.path);
                    }
                    None => {
                        let _ = writeln!(md, "- `{}`", f.path);
                    }
                }
            }
            md.push('\n');
        }

        let _ = writeln!(md, "## Not DICOM (skipped)\n\n{} skipped.\n", files(c.skipped));
        let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
        for s in &self.skipped {
            match groups.iter_mut().find(|(reason, _)| *reason == s.reason) {
                Some((_, paths)) => paths.push(&s.path),
                None => groups.push((&s.reason, vec![&s.path])),
            }
        }
        for (reason, paths) in groups {
            let _ = writeln!(md, "### {reason} — {}\n", files(paths.len() as u64));
            for p in paths {
                let _ = writeln!(md, "- `{p}`");
            }
            md.push('\n');
        }
        let _ = writeln!(md, "## Sign-off\n\nI have read this report and looked at the de-identified files it describes.\n\n- Name and role:\n- Date:\n- Decision:\n- Signature:\n");
        let _ = writeln!(
            md,
            "Which input file became which output file is listed in `{REPORT_JSON}` (`files`)."
        );
        md
    }
}
