//! Generator of the IOD requirement tables, in two steps, each with the test that its output is
//! current:
//!
//! 1. `../shared/data/iod/` (PS3.3 as highdicom ships it: 180 SOP Classes, their IODs and modules,
//!    99,740 module attribute rows, 11 MB) → `shared/data/iod/` (the compact copy the repository
//!    keeps): only what the engine asks, "which Type does this attribute have at this place in
//!    this IOD", for the attributes PS3.3 makes Type 1, 1C, 2 or 2C and the sequences that lead to
//!    one. Equal item contents (the macros PS3.3 repeats under many sequences) are stored once, as
//!    one *node*. Skipped where `../shared` is absent (a fresh clone keeps its compact copy).
//! 2. `shared/data/iod/` → `shared/src/deid/generated/iod.rs`; always runs.
//!
//! Regenerate both: `PSEAL_REGENERATE=1 cargo test -p pseal --test it deid_generated::`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;

use super::{check_or_regenerate, crate_dir, regenerating};
use crate::deid_support::read_csv;

/// The full tables, beside the checkout as in CI.
fn source_dir() -> PathBuf {
    crate_dir().join("../../shared/data/iod")
}

/// The compact copy kept in the repository.
fn compact_dir() -> PathBuf {
    crate_dir().join("data/iod")
}

/// Strength of a PS3.3 Type: what the engine must write when it would otherwise remove the
/// attribute. `None` (the normalized services' columns) and anything unknown count as 3.
fn rank(ty: &str) -> u8 {
    match ty {
        "1" => 4,
        "1C" => 3,
        "2" => 2,
        "2C" => 1,
        _ => 0,
    }
}

const TYPES: [&str; 5] = ["3", "2C", "2", "1C", "1"];

/// One module's attributes: `(path of sequence tags, tag)` → (Type, keyword).
type ModuleRows = BTreeMap<(Vec<u32>, u32), (String, String)>;

fn parse_tag(t: &str) -> Option<u32> {
    let hex: String = t
        .trim_matches(|c| c == '(' || c == ')')
        .chars()
        .filter(|&c| c != ',')
        .collect();
    if hex.len() != 8 {
        return None;
    }
    u32::from_str_radix(&hex, 16).ok()
}

/// One attribute of a node: `(tag, keyword, Type, node of its items)`.
type Edge = (u32, String, String, Option<usize>);

/// The compact form: nodes (item contents), each stored once.
#[derive(Default)]
struct Compact {
    nodes: Vec<Vec<Edge>>,
    ids: HashMap<Vec<Edge>, usize>,
}

impl Compact {
    /// The node holding the contents of the item at `path` of a module (hash-consed).
    fn node(&mut self, rows: &ModuleRows, kept: &BTreeSet<(Vec<u32>, u32)>, path: &[u32]) -> Option<usize> {
        let mut edges = Vec::new();
        for (p, tag) in kept.iter().filter(|(p, _)| p.as_slice() == path) {
            let (ty, keyword) = rows
                .get(&(p.clone(), *tag))
                .cloned()
                .unwrap_or_else(|| ("3".to_string(), String::new()));
            let mut inner = p.clone();
            inner.push(*tag);
            let child = self.node(rows, kept, &inner);
            edges.push((*tag, keyword, ty, child));
        }
        if edges.is_empty() {
            return None;
        }
        if let Some(&id) = self.ids.get(&edges) {
            return Some(id);
        }
        let id = self.nodes.len();
        self.nodes.push(edges.clone());
        self.ids.insert(edges, id);
        Some(id)
    }
}

/// Step 1: the compact CSVs from the full ones, as `(file name, content)`.
fn compact_from_source() -> Vec<(&'static str, String)> {
    let source = source_dir();
    let mut modules: BTreeMap<String, ModuleRows> = BTreeMap::new();
    for r in read_csv(&source.join("module-attributes.csv")) {
        // Repeating groups ((60xx,0010), overlays and curves) never pass the engine anyway.
        let Some(tag) = parse_tag(&r["tag"]) else { continue };
        let path: Vec<u32> = if r["path"].is_empty() {
            Vec::new()
        } else {
            r["path"]
                .split('>')
                .map(|t| parse_tag(t).unwrap_or_else(|| panic!("path {}", r["path"])))
                .collect()
        };
        let ty = if rank(&r["type"]) > 0 {
            r["type"].clone()
        } else {
            "3".to_string()
        };
        let entry = modules
            .entry(r["module"].clone())
            .or_default()
            .entry((path, tag))
            .or_insert_with(|| ("3".to_string(), r["keyword"].clone()));
        if rank(&ty) > rank(&entry.0) {
            entry.0 = ty;
        }
    }
    let mut compact = Compact::default();
    let mut roots: BTreeMap<String, usize> = BTreeMap::new();
    for (module, rows) in &modules {
        let mut kept: BTreeSet<(Vec<u32>, u32)> = BTreeSet::new();
        for ((path, tag), (ty, _)) in rows {
            if rank(ty) > 0 {
                kept.insert((path.clone(), *tag));
                for depth in 0..path.len() {
                    kept.insert((path[..depth].to_vec(), path[depth]));
                }
            }
        }
        if let Some(root) = compact.node(rows, &kept, &[]) {
            roots.insert(module.clone(), root);
        }
    }

    let mut requirements = String::from("node,tag,keyword,type,child\n");
    for (id, edges) in compact.nodes.iter().enumerate() {
        for (tag, keyword, ty, child) in edges {
            let child = child.map(|c| c.to_string()).unwrap_or_default();
            let _ = writeln!(
                requirements,
                "{id},\"({:04X},{:04X})\",{keyword},{ty},{child}",
                tag >> 16,
                tag & 0xFFFF
            );
        }
    }
    let mut iod_modules = String::from("iod,module,node\n");
    for r in read_csv(&source.join("iod-modules.csv")) {
        if let Some(root) = roots.get(&r["module"]) {
            let _ = writeln!(iod_modules, "{},{},{root}", r["iod"], r["module"]);
        }
    }
    let sop = std::fs::read_to_string(source.join("sop-class-iod.csv")).expect("sop-class-iod.csv");
    vec![
        ("sop-class-iod.csv", sop),
        ("iod-modules.csv", iod_modules),
        ("requirements.csv", requirements),
    ]
}

#[test]
fn compact_iod_tables_are_what_the_full_ones_give() {
    if !source_dir().join("module-attributes.csv").exists() {
        super::say_skipped(format!(
            "{} is not present (it sits beside the checkout in CI); the compact copy in shared/data/iod is not re-derived",
            source_dir().display()
        ));
        return;
    }
    for (file, content) in compact_from_source() {
        let path = compact_dir().join(file);
        if regenerating() {
            std::fs::write(&path, content).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == content,
            "shared/data/iod/{file} is not what ../shared/data/iod gives; run \
             `PSEAL_REGENERATE=1 cargo test -p pseal --test it deid_generated::` and commit the result"
        );
    }
}

/// Step 2: the Rust tables from the compact CSVs.
fn generate_iod() -> String {
    let dir = compact_dir();
    let sop = read_csv(&dir.join("sop-class-iod.csv"));
    let iod_modules = read_csv(&dir.join("iod-modules.csv"));
    let requirements = read_csv(&dir.join("requirements.csv"));

    let mut iods: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    for r in &iod_modules {
        let node: u16 = r["node"].parse().expect("node");
        let roots = iods.entry(r["iod"].clone()).or_default();
        if !roots.contains(&node) {
            roots.push(node);
        }
    }
    for r in &sop {
        iods.entry(r["iod"].clone()).or_default();
    }
    let iod_index: BTreeMap<&str, usize> = iods.keys().enumerate().map(|(i, k)| (k.as_str(), i)).collect();
    let mut classes: Vec<(&str, usize)> = sop
        .iter()
        .map(|r| (r["sop_class_uid"].as_str(), iod_index[r["iod"].as_str()]))
        .collect();
    classes.sort();

    let mut nodes: Vec<Vec<String>> = Vec::new();
    for r in &requirements {
        let node: usize = r["node"].parse().expect("node");
        assert!(node <= nodes.len(), "nodes are numbered in order");
        if node == nodes.len() {
            nodes.push(Vec::new());
        }
        let tag = parse_tag(&r["tag"]).expect("tag");
        let ty = match r["type"].as_str() {
            "1" => "T1",
            "1C" => "T1C",
            "2" => "T2",
            "2C" => "T2C",
            "3" => "T3",
            other => panic!("type {other:?}"),
        };
        assert!(TYPES.contains(&r["type"].as_str()));
        let child = if r["child"].is_empty() {
            "NONE".to_string()
        } else {
            r["child"].clone()
        };
        nodes[node].push(format!("({:#06X}_{:04X}, {ty}, {child})", tag >> 16, tag & 0xFFFF).replace("0X", "0x"));
    }
    let edges: usize = nodes.iter().map(Vec::len).sum();

    let mut out = String::from(
        "//! PS3.3 IOD requirements: for each SOP Class, its IOD's modules, and in each module the\n\
         //! attributes of Type 1, 1C, 2 and 2C at every sequence depth (and the sequences leading to\n\
         //! one). Equal item contents are one node.\n\
         //!\n\
         //! Automatically generated from shared/data/iod/ by the generator in\n\
         //! shared/tests/it/deid_generated/iod.rs. Edit the generator, not this file. Regenerate with\n\
         //! `PSEAL_REGENERATE=1 cargo test -p pseal --test it deid_generated::`.\n\n",
    );
    out.push_str("use crate::deid::iod::Type::{T1, T1C, T2, T2C, T3};\nuse crate::deid::iod::{Edge, NONE};\n\n");
    let _ = writeln!(
        out,
        "/// `(SOP Class UID, index into [`IODS`])`, sorted by UID ({} SOP Classes).",
        classes.len()
    );
    out.push_str("#[rustfmt::skip]\n");
    let _ = writeln!(
        out,
        "pub(crate) static SOP_CLASSES: [(&str, u16); {}] = [",
        classes.len()
    );
    for (uid, iod) in &classes {
        let _ = writeln!(out, "    ({uid:?}, {iod}),");
    }
    out.push_str("];\n\n");
    let _ = writeln!(
        out,
        "/// `(IOD, root node of each of its modules that requires something)` ({} IODs).",
        iods.len()
    );
    out.push_str("#[rustfmt::skip]\n");
    let _ = writeln!(out, "pub(crate) static IODS: [(&str, &[u16]); {}] = [", iods.len());
    for (name, roots) in &iods {
        let roots: Vec<String> = roots.iter().map(u16::to_string).collect();
        let _ = writeln!(out, "    ({name:?}, &[{}]),", roots.join(", "));
    }
    out.push_str("];\n\n");
    let _ = writeln!(
        out,
        "/// The nodes: each an item's attributes `(tag, Type, node of its items or NONE)`, sorted by\n\
         /// tag ({} nodes, {edges} attributes).",
        nodes.len()
    );
    out.push_str("#[rustfmt::skip]\n");
    let _ = writeln!(out, "pub(crate) static NODES: [&[Edge]; {}] = [", nodes.len());
    for (i, edges) in nodes.iter().enumerate() {
        let _ = writeln!(out, "    /* {i} */ &[{}],", edges.join(", "));
    }
    out.push_str("];\n");
    out
}

#[test]
fn iod_is_current() {
    check_or_regenerate("iod.rs", generate_iod());
}

/// The compact copy answers what the full tables say, for the attributes of the issue that
/// brought the IOD data in (MR Image Storage): Referenced Performed Procedure Step Sequence is
/// Type 3 at the top level with Type 1 contents, Position Reference Indicator Type 2.
#[test]
fn compact_tables_hold_the_mr_cases() {
    let dir = compact_dir();
    let sop = read_csv(&dir.join("sop-class-iod.csv"));
    assert_eq!(sop.len(), 180);
    let mr = sop
        .iter()
        .find(|r| r["sop_class_uid"] == "1.2.840.10008.5.1.4.1.1.4")
        .expect("MR");
    assert_eq!(mr["iod"], "mr-image");
    let requirements = read_csv(&dir.join("requirements.csv"));
    let mut by_node: BTreeMap<usize, Vec<&BTreeMap<String, String>>> = BTreeMap::new();
    for r in &requirements {
        by_node.entry(r["node"].parse().unwrap()).or_default().push(r);
    }
    let roots: Vec<usize> = read_csv(&dir.join("iod-modules.csv"))
        .iter()
        .filter(|r| r["iod"] == "mr-image")
        .map(|r| r["node"].parse().unwrap())
        .collect();
    let find = |nodes: &[usize], tag: &str| -> Vec<(String, Option<usize>)> {
        nodes
            .iter()
            .flat_map(|n| by_node[n].iter())
            .filter(|r| r["tag"] == tag)
            .map(|r| (r["type"].clone(), r["child"].parse().ok()))
            .collect()
    };
    let position = find(&roots, "(0020,1040)");
    assert_eq!(position.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(), ["2"]);
    let pps = find(&roots, "(0008,1111)");
    assert_eq!(pps.len(), 1);
    assert_eq!(pps[0].0, "3");
    let inner = [pps[0].1.expect("contents")];
    assert_eq!(find(&inner, "(0008,1150)")[0].0, "1");
    assert_eq!(find(&inner, "(0008,1155)")[0].0, "1");
    // Type 3 attributes are not kept: Study Description is not in any MR module's requirements.
    assert!(find(&roots, "(0008,1030)").is_empty());
}
