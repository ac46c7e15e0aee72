//! Generator of the de-identification tables in `shared/src/deid/generated/`, and the test that
//! the committed files are what it produces from the CSVs in `shared/data/`.
//!
//! Regenerate after editing a CSV or this generator:
//! `PSEAL_REGENERATE=1 cargo test -p pseal --test it deid_generated::`.
//!
//! The IOD requirement tables have their own generator, [`iod`].
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "deid_generated/iod.rs"]
mod iod;

use crate::deid_support::read_csv;
use pseal::deid::DeidOption;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The option columns of the CSV, in table order: pseal's options, named with `_` for `-`.
fn option_columns() -> Vec<String> {
    DeidOption::ALL.iter().map(|o| o.name().replace('-', "_")).collect()
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The rows of `shared/data/<name>`.
fn data_csv(name: &str) -> Vec<BTreeMap<String, String>> {
    read_csv(&crate_dir().join("data").join(name))
}

fn header(what: &str, csv: &str) -> String {
    format!(
        "//! {what}\n//!\n//! Automatically generated from shared/data/{csv} by the generator in\n\
         //! shared/tests/it/deid_generated.rs. Edit the generator, not this file. Regenerate with\n\
         //! `PSEAL_REGENERATE=1 cargo test -p pseal --test it deid_generated::`.\n\n"
    )
}

/// `(0008,0018)` → `TagPattern::Exact(0x0008_0018)`; `(60xx,3000)` → a mask; `(gggg,eeee)` →
/// the private row.
fn tag_pattern(tag: &str) -> String {
    if tag == "(gggg,eeee)" {
        return "TagPattern::Private".to_string();
    }
    let hex: String = tag
        .trim_matches(|c| c == '(' || c == ')')
        .chars()
        .filter(|&c| c != ',')
        .collect();
    assert_eq!(hex.len(), 8, "tag {tag}");
    if !hex.contains('x') {
        let v = u32::from_str_radix(&hex, 16).unwrap_or_else(|_| panic!("tag {tag}"));
        return format!("TagPattern::Exact(0x{:04X}_{:04X})", v >> 16, v & 0xFFFF);
    }
    let (mut value, mut mask) = (0u32, 0u32);
    for c in hex.chars() {
        value <<= 4;
        mask <<= 4;
        if c != 'x' {
            value |= c.to_digit(16).unwrap_or_else(|| panic!("tag {tag}"));
            mask |= 0xF;
        }
    }
    format!(
        "TagPattern::Masked {{ value: 0x{:04X}_{:04X}, mask: 0x{:04X}_{:04X} }}",
        value >> 16,
        value & 0xFFFF,
        mask >> 16,
        mask & 0xFFFF
    )
}

fn code(c: &str) -> &'static str {
    match c {
        "D" => "Code::D",
        "Z" => "Code::Z",
        "X" => "Code::X",
        "K" => "Code::K",
        "C" => "Code::C",
        "U" => "Code::U",
        "Z/D" => "Code::ZD",
        "X/Z" => "Code::XZ",
        "X/D" => "Code::XD",
        "X/Z/D" => "Code::XZD",
        "X/Z/U*" => "Code::XZUStar",
        other => panic!("unknown action code {other:?}"),
    }
}

fn cell(c: &str) -> &'static str {
    match c {
        "" => "Cell::E",
        "K" => "Cell::K",
        "C" => "Cell::C",
        other => panic!("option cell {other:?} is neither empty, K nor C"),
    }
}

fn generate_table() -> String {
    let rows = data_csv("ps3.15-table-e1-1.csv");
    let mut out = header(
        "PS3.15 2026c Table E.1-1, Application Level Confidentiality Profile Attributes.",
        "ps3.15-table-e1-1.csv",
    );
    out.push_str("use crate::deid::table::{Cell, Code, Row, TagPattern};\n\n");
    let _ = writeln!(
        out,
        "/// Every row of Table E.1-1 ({} rows), in the order of the CSV.",
        rows.len()
    );
    out.push_str("#[rustfmt::skip]\n");
    let _ = writeln!(out, "pub(crate) static TABLE_E1_1: [Row; {}] = [", rows.len());
    for r in &rows {
        let retired = match r["retired"].as_str() {
            "Y" => "true",
            "N" => "false",
            other => panic!("retired {other:?}"),
        };
        let cells: Vec<&str> = option_columns().iter().map(|c| cell(&r[c])).collect();
        let _ = writeln!(
            out,
            "    Row {{ tag: {}, name: {:?}, retired: {retired}, basic: {}, options: [{}] }},",
            tag_pattern(&r["tag"]),
            r["name"],
            code(&r["basic"]),
            cells.join(", ")
        );
    }
    out.push_str("];\n");
    out
}

fn generate_safe_private() -> String {
    let rows = data_csv("safe-private-attributes.csv");
    let mut out = header(
        "PS3.15 2026c Table E.3.10-1, Safe Private Attributes.",
        "safe-private-attributes.csv",
    );
    out.push_str("use crate::deid::private::SafePrivate;\n\n");
    let _ = writeln!(
        out,
        "/// Every row of Table E.3.10-1 ({} rows), in the order of the CSV.",
        rows.len()
    );
    out.push_str("#[rustfmt::skip]\n");
    let _ = writeln!(out, "pub(crate) static SAFE_PRIVATE: [SafePrivate; {}] = [", rows.len());
    for r in &rows {
        // (GGGG,xxEE)
        let tag = r["tag"].trim_matches(|c| c == '(' || c == ')');
        let (g, e) = tag.split_once(',').unwrap();
        assert!(e.starts_with("xx") && e.len() == 4, "tag {tag}");
        let group = u16::from_str_radix(g, 16).unwrap();
        assert_eq!(group % 2, 1, "safe private tag {tag} is not in an odd group");
        let element = u8::from_str_radix(&e[2..], 16).unwrap();
        let _ = writeln!(
            out,
            "    SafePrivate {{ group: 0x{group:04X}, element: 0x{element:02X}, creator: {:?}, vr: {:?}, meaning: {:?} }},",
            r["private_creator"], r["vr"], r["meaning"]
        );
    }
    out.push_str("];\n");
    out
}

fn generate_cid7050() -> String {
    let rows = data_csv("cid7050.csv");
    let mut out = header(
        "PS3.16 CID 7050 De-identification Method (coding scheme DCM).",
        "cid7050.csv",
    );
    let _ = writeln!(
        out,
        "/// `(code value, code meaning)` of every concept of CID 7050 ({} rows).",
        rows.len()
    );
    out.push_str("#[rustfmt::skip]\n");
    let _ = writeln!(out, "pub(crate) static CID7050: [(&str, &str); {}] = [", rows.len());
    for r in &rows {
        let _ = writeln!(out, "    ({:?}, {:?}),", r["code"], r["meaning"]);
    }
    out.push_str("];\n");
    out
}

/// Whether the run rewrites the generated files instead of checking them.
fn regenerating() -> bool {
    std::env::var_os("PSEAL_REGENERATE").is_some()
}

/// Says, visibly, that a test left part of its work out (libtest swallows `eprintln!`).
fn say_skipped(why: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

fn check_or_regenerate(file: &str, generated: String) {
    let path: PathBuf = crate_dir().join("src/deid/generated").join(file);
    if regenerating() {
        std::fs::write(&path, generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is not what the generator produces from shared/data; run \
         `PSEAL_REGENERATE=1 cargo test -p pseal --test it deid_generated::` and commit the result",
        Path::new(file).display()
    );
}

#[test]
fn table_e1_1_is_current() {
    check_or_regenerate("table_e1_1.rs", generate_table());
}

#[test]
fn safe_private_is_current() {
    check_or_regenerate("safe_private.rs", generate_safe_private());
}

#[test]
fn cid7050_is_current() {
    check_or_regenerate("cid7050.rs", generate_cid7050());
}

#[test]
fn table_has_the_656_rows_and_counts_of_the_source_note() {
    let rows = data_csv("ps3.15-table-e1-1.csv");
    assert_eq!(rows.len(), 656);
    assert_eq!(rows.iter().filter(|r| r["retired"] == "Y").count(), 102);
    let mut basic: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &rows {
        *basic.entry(r["basic"].as_str()).or_default() += 1;
    }
    let expected: BTreeMap<&str, usize> = [
        ("X", 416),
        ("D", 93),
        ("U", 55),
        ("Z", 42),
        ("X/D", 23),
        ("X/Z", 11),
        ("X/Z/D", 8),
        ("Z/D", 6),
        ("X/Z/U*", 2),
    ]
    .into_iter()
    .collect();
    assert_eq!(basic, expected);
    let patterns: Vec<&str> = rows
        .iter()
        .map(|r| r["tag"].as_str())
        .filter(|t| t.contains('x') || t.contains('g'))
        .collect();
    assert_eq!(patterns, ["(50xx,xxxx)", "(60xx,3000)", "(60xx,4000)", "(gggg,eeee)"]);
}

#[test]
fn every_basic_code_is_defined_in_table_e1_1a() {
    let codes: Vec<String> = data_csv("ps3.15-table-e1-1a-action-codes.csv")
        .into_iter()
        .map(|r| r["code"].clone())
        .collect();
    assert_eq!(codes.len(), 11);
    for r in data_csv("ps3.15-table-e1-1.csv") {
        assert!(codes.contains(&r["basic"]), "{}: {}", r["tag"], r["basic"]);
        code(&r["basic"]);
    }
}
