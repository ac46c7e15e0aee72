//! The rule file that classifies DICOM series into BIDS datatypes and suffixes.
//!
//! A rule file is TOML: an ordered list of `[[rule]]` tables, each with conditions on the
//! attributes of a series' first instance and an outcome (`datatype` + `suffix` [+ `entities`],
//! or `exclude` with a reason). The first rule whose conditions all hold decides; a series no
//! rule matches is reported as unmatched, never guessed. The shipped default for brain-tumour
//! protocols is `central/rules/bids-default.toml`; `docs/researcher-guide.md` documents the
//! format, and the default file's own comments repeat it for whoever edits a copy.

use regex::{Regex, RegexBuilder};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The shipped default rules (brain-tumour MR protocols).
pub const DEFAULT_RULES: &str = include_str!("../../../rules/bids-default.toml");

/// Name under which the default rules are reported (README, audit, errors).
pub const DEFAULT_RULES_NAME: &str = "pseal default rules (bids-default.toml)";

/// The rule file format this version reads.
pub const RULES_FORMAT: u32 = 1;

/// BIDS datatypes a rule may name (MR raw data).
const DATATYPES: [&str; 6] = ["anat", "dwi", "perf", "fmap", "func", "swi"];

/// Entities a rule may set, in the order BIDS writes them in a file name (after `sub` and
/// `ses`; `run` is pseal's own, numbered when a session holds two series of one name).
pub const ENTITY_ORDER: [&str; 12] = [
    "task", "acq", "ce", "trc", "rec", "dir", "run", "mod", "echo", "flip", "inv", "mt",
];
/// `part` comes last of the entities pseal writes.
const LAST_ENTITY: &str = "part";

/// A rule file that cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RulesError {
    /// The file could not be read.
    #[error("BIDS rule file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the rule format (the message names the line).
    #[error("BIDS rule file {name}: {reason}")]
    Syntax {
        /// The file.
        name: String,
        /// Why, with line and column.
        reason: String,
    },
    /// A rule is inconsistent.
    #[error("BIDS rule file {name}, rule {index} ({rule}): {reason}")]
    Rule {
        /// The file.
        name: String,
        /// 1-based position of the rule.
        index: usize,
        /// The rule's name.
        rule: String,
        /// Why.
        reason: RuleProblem,
    },
}

/// What is wrong with one rule of a rule file (the file and rule are named by
/// [`RulesError::Rule`]); each message says what to write instead.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RuleProblem {
    /// The rule has no name.
    #[error("a rule needs a name")]
    NoName,
    /// A datatype BIDS does not have.
    #[error("datatype '{datatype}' is not one of {}", DATATYPES.join(", "))]
    Datatype {
        /// The datatype as written.
        datatype: String,
    },
    /// A suffix with other characters than letters and digits.
    #[error("suffix '{0}' must be letters and digits")]
    Suffix(String),
    /// An entity a rule may not set.
    #[error(
        "entity '{entity}' cannot be set by a rule (allowed: {}, {LAST_ENTITY}; pseal numbers run itself)",
        ENTITY_ORDER.iter().filter(|e| **e != "run").copied().collect::<Vec<_>>().join(", ")
    )]
    Entity {
        /// The entity as written.
        entity: String,
    },
    /// An entity value with other characters than letters and digits.
    #[error("entity {key}='{value}' must be letters and digits")]
    EntityValue {
        /// The entity.
        key: String,
        /// Its value.
        value: String,
    },
    /// Entities on an exclude rule.
    #[error("an exclude rule takes no entities")]
    ExcludeEntities,
    /// An exclude rule without a reason.
    #[error("exclude needs a reason (it is reported with every series the rule leaves out)")]
    ExcludeReason,
    /// Neither a conversion target nor an exclusion (or both).
    #[error("give either datatype and suffix (to convert) or exclude = \"reason\" (to leave out)")]
    Target,
    /// A number range whose ends are out of order (or not numbers).
    #[error("range [{lo}, {hi}] must be [min, max]")]
    Range {
        /// The lower end as written.
        lo: f64,
        /// The upper end as written.
        hi: f64,
    },
    /// A field given as an empty list.
    #[error("an empty list of patterns")]
    EmptyPatterns,
    /// A pattern that is not a regular expression (or too large a one).
    #[error("pattern '{pattern}': {source}")]
    Pattern {
        /// The pattern as written.
        pattern: String,
        /// The regex crate's reason.
        source: regex::Error,
    },
}

/// One pattern or a list of patterns that must all match.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Patterns {
    One(String),
    All(Vec<String>),
}

impl Patterns {
    fn into_vec(self) -> Vec<String> {
        match self {
            Patterns::One(p) => vec![p],
            Patterns::All(v) => v,
        }
    }
}

/// A rule as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    datatype: Option<String>,
    suffix: Option<String>,
    #[serde(default)]
    entities: BTreeMap<String, String>,
    exclude: Option<String>,
    description: Option<Patterns>,
    not_description: Option<Patterns>,
    series_description: Option<Patterns>,
    protocol_name: Option<Patterns>,
    sequence_name: Option<Patterns>,
    modality: Option<Patterns>,
    mr_acquisition_type: Option<Patterns>,
    #[serde(default)]
    image_type: Vec<String>,
    #[serde(default)]
    not_image_type: Vec<String>,
    #[serde(default)]
    scanning_sequence: Vec<String>,
    #[serde(default)]
    not_scanning_sequence: Vec<String>,
    #[serde(default)]
    sequence_variant: Vec<String>,
    #[serde(default)]
    not_sequence_variant: Vec<String>,
    contrast: Option<bool>,
    echo_time_ms: Option<[f64; 2]>,
    repetition_time_ms: Option<[f64; 2]>,
    inversion_time_ms: Option<[f64; 2]>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    format: u32,
    #[serde(default, rename = "rule")]
    rules: Vec<RawRule>,
}

/// What the attributes of a series' first instance say (the input of classification).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesAttributes {
    /// Modality.
    pub modality: String,
    /// Series Description.
    pub series_description: String,
    /// Protocol Name.
    pub protocol_name: String,
    /// Sequence Name.
    pub sequence_name: String,
    /// MR Acquisition Type (`2D`, `3D`).
    pub mr_acquisition_type: String,
    /// Image Type values.
    pub image_type: Vec<String>,
    /// Scanning Sequence values (`SE`, `IR`, `GR`, `EP`, `RM`).
    pub scanning_sequence: Vec<String>,
    /// Sequence Variant values.
    pub sequence_variant: Vec<String>,
    /// True when a contrast/bolus attribute holds a value.
    pub contrast: bool,
    /// Echo Time, ms.
    pub echo_time_ms: Option<f64>,
    /// Repetition Time, ms.
    pub repetition_time_ms: Option<f64>,
    /// Inversion Time, ms.
    pub inversion_time_ms: Option<f64>,
}

/// Where a rule sends a series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Convert into `<datatype>/…_<entities>_<suffix>.nii.gz`.
    Bids {
        /// BIDS datatype folder (`anat`, `dwi`…).
        datatype: String,
        /// BIDS suffix (`T1w`, `FLAIR`…).
        suffix: String,
        /// Entities other than sub, ses and run, e.g. `ce` → `gadolinium`.
        entities: BTreeMap<String, String>,
    },
    /// Leave out, for this reason.
    Exclude(String),
}

/// A checked rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule's name (reported with every series it decides).
    pub name: String,
    /// Its outcome.
    pub target: Target,
    text: Vec<(TextField, Vec<Regex>, bool)>,
    values: Vec<(ValueField, Vec<String>, bool)>,
    contrast: Option<bool>,
    ranges: Vec<(NumberField, [f64; 2])>,
}

#[derive(Debug, Clone, Copy)]
enum TextField {
    Description,
    SeriesDescription,
    ProtocolName,
    SequenceName,
    Modality,
    MrAcquisitionType,
}

#[derive(Debug, Clone, Copy)]
enum ValueField {
    ImageType,
    ScanningSequence,
    SequenceVariant,
}

#[derive(Debug, Clone, Copy)]
enum NumberField {
    Echo,
    Repetition,
    Inversion,
}

/// How a series was classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A rule matched.
    Matched {
        /// The rule's name.
        rule: String,
        /// Its outcome.
        target: Target,
    },
    /// No rule matched.
    Unmatched,
}

/// An ordered list of rules, with the name and SHA-256 of the file they came from.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Where the rules came from (a file name, or [`DEFAULT_RULES_NAME`]).
    pub name: String,
    /// SHA-256 of the file's bytes (recorded in the README and the audit log).
    pub sha256: String,
    /// The rules, in order.
    pub rules: Vec<Rule>,
}

impl Rules {
    /// The shipped default rules.
    pub fn default_rules() -> Result<Rules, RulesError> {
        Rules::parse(DEFAULT_RULES, DEFAULT_RULES_NAME)
    }

    /// Reads a rule file.
    pub fn read(path: &Path) -> Result<Rules, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut rules = Rules::parse(&text, &path.display().to_string())?;
        // Releases name the file, never the steward's folders.
        rules.name = path
            .file_name()
            .map_or_else(|| "rules".to_string(), |n| n.to_string_lossy().into_owned());
        Ok(rules)
    }

    /// Parses rule-file text; `name` says where it came from in errors.
    pub fn parse(text: &str, name: &str) -> Result<Rules, RulesError> {
        use sha2::Digest;
        let raw: RawFile = toml::from_str(text).map_err(|e| RulesError::Syntax {
            name: name.to_string(),
            reason: e.to_string().trim_end().replace('\n', " "),
        })?;
        if raw.format != RULES_FORMAT {
            return Err(RulesError::Syntax {
                name: name.to_string(),
                reason: format!(
                    "format = {} is not a rule format this pseal reads (it reads format = {RULES_FORMAT})",
                    raw.format
                ),
            });
        }
        let rules = raw
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let rule_name = r.name.clone();
                check(r).map_err(|reason| RulesError::Rule {
                    name: name.to_string(),
                    index: i + 1,
                    rule: rule_name,
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Rules {
            name: name.to_string(),
            sha256: hex::encode(sha2::Sha256::digest(text.as_bytes())),
            rules,
        })
    }

    /// The first rule that matches `series`, or [`Decision::Unmatched`].
    pub fn classify(&self, series: &SeriesAttributes) -> Decision {
        self.rules
            .iter()
            .find(|r| r.matches(series))
            .map_or(Decision::Unmatched, |r| Decision::Matched {
                rule: r.name.clone(),
                target: r.target.clone(),
            })
    }
}

fn is_label(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric())
}

fn check(r: RawRule) -> Result<Rule, RuleProblem> {
    if r.name.trim().is_empty() {
        return Err(RuleProblem::NoName);
    }
    let target = match (r.datatype, r.suffix, r.exclude) {
        (Some(datatype), Some(suffix), None) => {
            if !DATATYPES.contains(&datatype.as_str()) {
                return Err(RuleProblem::Datatype { datatype });
            }
            if !is_label(&suffix) {
                return Err(RuleProblem::Suffix(suffix));
            }
            for (key, value) in &r.entities {
                let settable = (ENTITY_ORDER.contains(&key.as_str()) || key == LAST_ENTITY) && key != "run";
                if !settable {
                    return Err(RuleProblem::Entity { entity: key.clone() });
                }
                if !is_label(value) {
                    return Err(RuleProblem::EntityValue {
                        key: key.clone(),
                        value: value.clone(),
                    });
                }
            }
            Target::Bids {
                datatype,
                suffix,
                entities: r.entities,
            }
        }
        (None, None, Some(reason)) => {
            if !r.entities.is_empty() {
                return Err(RuleProblem::ExcludeEntities);
            }
            if reason.trim().is_empty() {
                return Err(RuleProblem::ExcludeReason);
            }
            Target::Exclude(reason)
        }
        _ => return Err(RuleProblem::Target),
    };
    let mut text = Vec::new();
    let mut compile = |field, patterns: Option<Patterns>, negate| -> Result<(), RuleProblem> {
        if let Some(p) = patterns {
            let list = p.into_vec();
            if list.is_empty() {
                return Err(RuleProblem::EmptyPatterns);
            }
            let compiled = list
                .iter()
                .map(|p| {
                    RegexBuilder::new(p)
                        .case_insensitive(true)
                        .size_limit(1 << 20)
                        .build()
                        .map_err(|source| RuleProblem::Pattern {
                            pattern: p.clone(),
                            source,
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            text.push((field, compiled, negate));
        }
        Ok(())
    };
    compile(TextField::Description, r.description, false)?;
    compile(TextField::Description, r.not_description, true)?;
    compile(TextField::SeriesDescription, r.series_description, false)?;
    compile(TextField::ProtocolName, r.protocol_name, false)?;
    compile(TextField::SequenceName, r.sequence_name, false)?;
    compile(TextField::Modality, r.modality, false)?;
    compile(TextField::MrAcquisitionType, r.mr_acquisition_type, false)?;
    let mut values = Vec::new();
    for (field, list, negate) in [
        (ValueField::ImageType, r.image_type, false),
        (ValueField::ImageType, r.not_image_type, true),
        (ValueField::ScanningSequence, r.scanning_sequence, false),
        (ValueField::ScanningSequence, r.not_scanning_sequence, true),
        (ValueField::SequenceVariant, r.sequence_variant, false),
        (ValueField::SequenceVariant, r.not_sequence_variant, true),
    ] {
        if !list.is_empty() {
            values.push((
                field,
                list.into_iter().map(|v| v.trim().to_ascii_uppercase()).collect(),
                negate,
            ));
        }
    }
    let mut ranges = Vec::new();
    for (field, range) in [
        (NumberField::Echo, r.echo_time_ms),
        (NumberField::Repetition, r.repetition_time_ms),
        (NumberField::Inversion, r.inversion_time_ms),
    ] {
        if let Some([lo, hi]) = range {
            if lo.is_nan() || hi.is_nan() || lo > hi {
                return Err(RuleProblem::Range { lo, hi });
            }
            ranges.push((field, [lo, hi]));
        }
    }
    Ok(Rule {
        name: r.name,
        target,
        text,
        values,
        contrast: r.contrast,
        ranges,
    })
}

impl Rule {
    /// True when every condition of the rule holds for `s`.
    pub fn matches(&self, s: &SeriesAttributes) -> bool {
        let text_ok = self.text.iter().all(|(field, patterns, negate)| {
            let candidates: Vec<&str> = match field {
                TextField::Description => vec![&s.series_description, &s.protocol_name],
                TextField::SeriesDescription => vec![&s.series_description],
                TextField::ProtocolName => vec![&s.protocol_name],
                TextField::SequenceName => vec![&s.sequence_name],
                TextField::Modality => vec![&s.modality],
                TextField::MrAcquisitionType => vec![&s.mr_acquisition_type],
            };
            // Every pattern must match one of the candidate values (for a negated condition: no
            // pattern may match any of them).
            if *negate {
                !patterns.iter().any(|p| candidates.iter().any(|c| p.is_match(c)))
            } else {
                patterns.iter().all(|p| candidates.iter().any(|c| p.is_match(c)))
            }
        });
        let values_ok = self.values.iter().all(|(field, wanted, negate)| {
            let have = match field {
                ValueField::ImageType => &s.image_type,
                ValueField::ScanningSequence => &s.scanning_sequence,
                ValueField::SequenceVariant => &s.sequence_variant,
            };
            let has = |w: &String| have.iter().any(|h| h.trim().eq_ignore_ascii_case(w));
            if *negate {
                !wanted.iter().any(has)
            } else {
                wanted.iter().all(has)
            }
        });
        let contrast_ok = self.contrast.is_none_or(|c| c == s.contrast);
        let ranges_ok = self.ranges.iter().all(|(field, [lo, hi])| {
            let v = match field {
                NumberField::Echo => s.echo_time_ms,
                NumberField::Repetition => s.repetition_time_ms,
                NumberField::Inversion => s.inversion_time_ms,
            };
            v.is_some_and(|v| v >= *lo && v <= *hi)
        });
        text_ok && values_ok && contrast_ok && ranges_ok
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn series(description: &str) -> SeriesAttributes {
        SeriesAttributes {
            modality: "MR".into(),
            series_description: description.into(),
            protocol_name: description.into(),
            image_type: vec!["ORIGINAL".into(), "PRIMARY".into(), "M".into(), "ND".into()],
            ..SeriesAttributes::default()
        }
    }

    fn target_of(rules: &Rules, s: &SeriesAttributes) -> Option<(String, String, Option<String>)> {
        match rules.classify(s) {
            Decision::Matched {
                target:
                    Target::Bids {
                        datatype,
                        suffix,
                        entities,
                    },
                ..
            } => Some((datatype, suffix, entities.get("ce").cloned())),
            _ => None,
        }
    }

    #[test]
    fn the_default_rules_classify_a_tumour_protocol() {
        let rules = Rules::default_rules().unwrap();
        let anat = |s: &str, ce: Option<&str>| Some(("anat".to_string(), s.to_string(), ce.map(String::from)));
        assert_eq!(target_of(&rules, &series("t1_mprage_sag")), anat("T1w", None));
        assert_eq!(
            target_of(&rules, &series("t1_mprage_sag_KM")),
            anat("T1w", Some("gadolinium"))
        );
        assert_eq!(
            target_of(&rules, &series("T1 SE tra +C")),
            anat("T1w", Some("gadolinium"))
        );
        assert_eq!(target_of(&rules, &series("t2_tse_tra")), anat("T2w", None));
        assert_eq!(target_of(&rules, &series("t2_flair_tra")), anat("FLAIR", None));
        assert_eq!(target_of(&rules, &series("AX FLAIR T2")), anat("FLAIR", None));
        // Contrast recorded in the attributes, whatever the description says.
        let mut agent = series("t1_mprage_sag");
        agent.contrast = true;
        assert_eq!(target_of(&rules, &agent), anat("T1w", Some("gadolinium")));
        // Derived diffusion maps are left out with a reason; raw diffusion is dwi.
        assert!(matches!(
            rules.classify(&series("ep2d_diff_tra_TRACEW")),
            Decision::Matched {
                target: Target::Exclude(_),
                ..
            }
        ));
        assert_eq!(
            target_of(&rules, &series("ep2d_diff_mddw_20")),
            Some(("dwi".into(), "dwi".into(), None))
        );
        assert!(matches!(
            rules.classify(&series("localizer")),
            Decision::Matched {
                target: Target::Exclude(_),
                ..
            }
        ));
        // SWI has no BIDS raw suffix: unmatched, not guessed.
        assert_eq!(rules.classify(&series("swi_tra_SWI")), Decision::Unmatched);
        assert_eq!(rules.classify(&series("")), Decision::Unmatched);
    }

    #[test]
    fn parameters_classify_a_series_without_description() {
        let rules = Rules::default_rules().unwrap();
        let mut flair = series("");
        flair.scanning_sequence = vec!["SE".into(), "IR".into()];
        flair.inversion_time_ms = Some(2500.0);
        flair.echo_time_ms = Some(81.0);
        flair.repetition_time_ms = Some(9000.0);
        assert_eq!(target_of(&rules, &flair), Some(("anat".into(), "FLAIR".into(), None)));
        // An MPRAGE without description: T1 with or without contrast cannot be told apart.
        let mut mprage = series("");
        mprage.scanning_sequence = vec!["GR".into(), "IR".into()];
        mprage.inversion_time_ms = Some(900.0);
        assert_eq!(rules.classify(&mprage), Decision::Unmatched);
    }

    #[test]
    fn rules_apply_in_order_and_all_conditions_must_hold() {
        let rules = Rules::parse(
            r#"
format = 1
[[rule]]
name = "a"
datatype = "anat"
suffix = "T2w"
description = ["t2", "tse"]
not_image_type = ["DERIVED"]
echo_time_ms = [80, 120]
[[rule]]
name = "b"
exclude = "everything else named t2"
series_description = "^t2"
"#,
            "test",
        )
        .unwrap();
        let mut s = series("t2_tse_tra");
        s.echo_time_ms = Some(98.0);
        assert!(matches!(rules.classify(&s), Decision::Matched { rule, .. } if rule == "a"));
        s.echo_time_ms = None;
        assert!(matches!(rules.classify(&s), Decision::Matched { rule, .. } if rule == "b"));
        s.echo_time_ms = Some(98.0);
        s.image_type.push("DERIVED".into());
        assert!(matches!(rules.classify(&s), Decision::Matched { rule, .. } if rule == "b"));
        assert_eq!(rules.classify(&series("flair")), Decision::Unmatched);
    }

    /// docs/researcher-guide.md quotes rules of the default file: the quote must be the file's.
    #[test]
    fn the_rules_quoted_in_the_researcher_guide_are_the_default_ones() {
        let guide = include_str!("../../../../docs/researcher-guide.md");
        let start = guide
            .find("```toml\nformat = 1")
            .expect("the guide quotes the rule file");
        let quote = &guide[start + "```toml\n".len()..];
        let quote = &quote[..quote.find("```").expect("the quote ends")];
        let parsed = Rules::parse(quote, "the guide's quote").unwrap();
        assert!(parsed.rules.len() >= 3);
        for block in quote.split("[[rule]]").skip(1) {
            assert!(DEFAULT_RULES.contains(block.trim()), "not in the default file: {block}");
        }
    }

    #[test]
    fn bad_rule_files_name_the_file_the_rule_and_the_reason() {
        let cases = [
            ("format = 2\n", "format = 2"),
            ("format = 1\n[[rule]]\nname = \"x\"\ndatatype = \"anat\"\n", "give either datatype and suffix"),
            (
                "format = 1\n[[rule]]\nname = \"x\"\ndatatype = \"brain\"\nsuffix = \"T1w\"\n",
                "datatype 'brain'",
            ),
            (
                "format = 1\n[[rule]]\nname = \"x\"\ndatatype = \"anat\"\nsuffix = \"T1w\"\ndescription = \"(\"\n",
                "pattern '('",
            ),
            (
                "format = 1\n[[rule]]\nname = \"x\"\ndatatype = \"anat\"\nsuffix = \"T1w\"\nentities = { run = \"1\" }\n",
                "entity 'run'",
            ),
            (
                "format = 1\n[[rule]]\nname = \"x\"\ndatatype = \"anat\"\nsuffix = \"T1w\"\ndescripton = \"t1\"\n",
                "descripton",
            ),
        ];
        for (text, expected) in cases {
            let err = Rules::parse(text, "my-rules.toml").unwrap_err().to_string();
            assert!(err.contains("my-rules.toml"), "{err}");
            assert!(err.contains(expected), "{err} should mention {expected}");
        }
    }
}
