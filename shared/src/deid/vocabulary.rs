//! The Clean Descriptors rule: a description is kept only when every token is acquisition
//! vocabulary, otherwise the Basic Profile action applies. Never a guess that lets a name through.
//!
//! The rule, applied to each value of a multi-valued attribute (all must pass):
//! 1. Lower-case; `ä ö ü ß` become `ae oe ue ss`; any other non-ASCII character fails the value.
//! 2. A run of more than four digits fails (identifiers, dates written `20240131`), and so does a
//!    four-digit run from 1900 to 2099 (a year).
//! 3. Digit runs joined by `:` fail (clock times), and so do three digit runs joined by single
//!    `.`, `-` or `/` (dates such as `31.01.24`).
//! 4. The value is split into tokens at every character that is not an ASCII letter or digit.
//! 5. A token of digits only passes. A token of letters only passes when it is in [`WORDS`].
//!    A token mixing letters and digits (`t1`, `ep2d`, `5mm`, `b1000`, `h31s`) passes when it is
//!    in [`WORDS`], or when its leading letters are in [`PREFIXES`] and every later letter run is
//!    in [`SUFFIXES`] or [`PREFIXES`]; names do not contain digits.
//!
//! A value with no token (empty, or only punctuation) passes: it has nothing to leak.

/// Whole tokens that pass: MR and CT acquisition, contrast, orientation and anatomy terms in
/// English and German, as they appear in series, study and protocol descriptions; and the
/// names of equipment and of coded concepts that the rule for attributes outside Table E.1-1
/// keeps (manufacturers, scanner models, software, coils, kernels, code meanings), which must
/// pass the same rule. No first name or surname common in the network's countries is on it.
#[rustfmt::skip]
pub const WORDS: &[&str] = &[
    // sequences and techniques
    "t1", "t2", "t1w", "t2w", "pd", "pdw", "t2star", "t2s", "flair", "mprage", "mp2rage", "tse",
    "fse", "frfse", "se", "gre", "ge", "ir", "stir", "tir", "tirm", "fl", "spgr", "fspgr", "bravo",
    "cube", "space", "vibe", "blade", "propeller", "resolve", "swi", "swip", "swan", "swi3d", "tfe",
    "ffe", "tof", "pc", "epi", "ep", "ep2d", "ep3d", "dwi", "diff", "diffusion", "adc", "eadc",
    "dadc", "trace", "tracew", "dti", "dki", "tensor", "fa", "colfa", "md", "perf", "perfusion",
    "dsc", "dce", "asl", "pcasl", "pasl", "bold", "fmri", "rest", "resting", "state", "task",
    "fieldmap", "field", "map", "maps", "mapping", "dark", "fluid", "fat", "fatsat", "fs", "sat",
    "water", "dixon", "in", "opp", "out", "phase", "mag", "magnitude", "spin", "echo", "gradient",
    "turbo", "fast", "multi", "slab", "single", "shot", "ss", "inversion", "recovery",
    "spectroscopy", "svs", "csi", "mrs", "press", "steam", "naa", "cho", "cr", "te", "tr", "ti",
    "sense", "asset", "grappa", "ipat", "caipi", "sms", "mb", "hyperband", "arc", "cs",
    "compressed", "sensing", "wave", "moco", "mosaic", "nd", "norm", "dis2d", "dis3d", "filter",
    "motion", "corrected", "mip", "minip", "mpr", "vrt", "recon", "rekon", "reformat", "sub",
    "subtraction", "angio", "mra", "cta", "venous", "arterial", "dyn", "dynamic", "dynamisch",
    "early", "late", "delayed", "iso", "isotropic", "hr", "high", "res", "resolution", "low",
    "thin", "thick", "wip", "smartbrain", "neuro", "survey", "localizer", "localiser", "loc",
    "scout", "aahead", "plane", "planes", "calibration", "cal", "ref", "reference", "rgb",
    "derived", "sequence", "sequenz", "seq", "scan", "dir", "directions", "b", "mm2",
    "apparent", "coefficient", "weighted", "image", "images", "series", "standard", "std", "spiral",
    "helical", "kernel", "bone", "knochen", "soft", "tissue", "weichteil", "dual", "energy",
    "topogram", "dose", "mm", "ms", "s",
    // orientation
    "ax", "axial", "tra", "trans", "transversal", "transverse", "cor", "coronal", "koronar", "sag",
    "sagittal", "obl", "oblique", "3d", "2d",
    // contrast
    "km", "kontrast", "kontrastmittel", "contrast", "cm", "gd", "gad", "gado", "gadolinium", "post",
    "pre", "nativ", "native", "plain", "c", "w", "wo", "o", "with", "without", "mit", "ohne", "und",
    "and", "nach", "vor", "gadovist", "gadavist", "dotarem", "clariscan", "magnevist", "multihance",
    "prohance", "omniscan", "gadobutrol", "gadoterate", "ultravist", "iomeron", "imeron",
    "omnipaque", "visipaque", "ml", "mmol",
    // anatomy and examination
    "mr", "mri", "mrt", "ct", "cct", "head", "brain", "cranial", "cranium", "schaedel", "kopf",
    "hirn", "gehirn", "neurocranium", "orbita", "orbits", "orbit", "sella", "hypophyse",
    "pituitary", "iac", "felsenbein", "skull", "spine", "tumor", "tumour", "routine", "protocol",
    "protokoll", "verlauf", "kontrolle", "followup", "follow", "up", "x",
    // equipment: manufacturers, scanner models, software
    "siemens", "healthineers", "healthcare", "medical", "systems", "system", "gems",
    "philips", "canon", "toshiba", "hitachi", "fujifilm", "united", "imaging", "uih", "neusoft",
    "esaote", "bruker", "agfa", "carestream", "hologic", "mediso", "shimadzu", "samsung", "inc",
    "ltd", "gmbh", "ag", "co", "corp", "corporation", "nv", "bv", "electric", "magnetom", "prisma",
    "fit", "skyra", "vida", "avanto", "aera", "verio", "trio", "tim", "sola", "altea", "lumina",
    "espree", "symphony", "sonata", "essenza", "amira", "cima", "biograph", "somatom",
    "definition", "force", "drive", "edge", "flash", "emotion", "sensation", "signa", "premier",
    "architect", "hdxt", "hdx", "excite", "discovery", "pioneer", "artist", "optima",
    "revolution", "lightspeed", "vct", "ingenia", "achieva", "intera", "elition", "ambition",
    "prodiva", "panorama", "multiva", "gyroscan", "brilliance", "iqon", "incisive", "vantage",
    "titan", "galan", "orian", "elan", "aquilion", "prime", "genesis", "echelon", "oval",
    "airis", "aperto", "syngo", "numaris", "software", "version", "release", "latest", "dicom",
    "gdcm", "dcmtk", "pydicom", "pseal", "fixtures",
    // coils
    "headneck", "neck", "body", "coil", "coils", "matrix", "array", "flex", "channel", "hea",
    "hep", "hns", "knee", "shoulder", "wrist", "breast", "torso", "cardiac", "surface", "volume",
    "birdcage", "transmit", "receive", "tx", "rx", "quadrature", "phased", "combined", "qbc",
    "bc", "ds", "hrbrain", "ne", "bo", "sp", "he", "hc", "large", "small", "medium",
    // reconstruction kernels, filters, look-up tables, rescale types
    "lung", "detail", "chest", "boneplus", "ultra", "sharp", "smooth", "wedge", "flat", "bowtie",
    "window", "center", "centre", "width", "level", "lut", "voi", "linear", "sigmoid", "algo",
    "default", "auto", "user", "abdomen", "liver", "stroke", "hu", "us", "od", "pixel", "ub",
    "yc", "ya", "yb",
    // code meanings of the concepts MR and CT research images carry
    "magnetic", "resonance", "computed", "tomography", "iodinated", "agent", "intravenous",
    "route", "oral", "left", "right", "bilateral", "unpaired", "anterior", "posterior",
    "superior", "inferior", "medial", "lateral", "frontal", "parietal", "temporal", "occipital",
    "lobe", "cerebellum", "cerebral", "cortex", "matter", "ventricle", "lesion", "mass",
    "glioma", "glioblastoma", "meningioma", "metastasis", "edema", "oedema", "necrosis",
    "enhancing", "non", "whole", "region", "interest", "roi", "measurement", "mean", "value",
    "diameter", "length", "area", "deviation", "minimum", "maximum", "median", "count", "ratio",
    "percent", "millimeter", "millimetre", "millisecond", "second", "degree", "degrees",
    "hounsfield", "unit", "units", "intensity", "signal", "acquisition", "procedure", "study",
    "examination", "exam", "radiology", "neuroradiology", "quality", "diagnostic", "original",
    "primary", "secondary", "unspecified", "other", "none", "yes", "no", "of", "the", "for",
    "by", "to", "on", "at", "per", "modality", "equipment", "device", "method", "profile",
    "option", "options", "basic", "application", "confidentiality", "retain", "longitudinal",
    "information", "modified", "dates", "clean", "descriptors", "characteristics", "uids",
    "safe", "private", "institution", "identity", "structured", "content", "graphics", "visual",
    "features", "recognizable", "full",
];

/// Letter runs that may lead a token mixing letters and digits (`t1`, `p2`, `b1000`, `h31s`,
/// `br40`, `ep2d`, `fl3d`, `fc26`).
#[rustfmt::skip]
pub const PREFIXES: &[&str] = &[
    "t", "st", "s", "p", "b", "h", "j", "i", "q", "d", "v", "br", "hr", "qr", "ur", "fc", "fl",
    "ep", "swi", "tof", "mp", "sl", "ax", "sag", "cor", "tra", "tr", "te", "ti", "fa", "iso", "mb",
    "r", "x",
    // sequence names (`*tfl3d1_16ns`, `*tse2d1_15`, `*epse2d1_64`), software versions (`XA30`,
    // `VE11C`, `DV26`), coil elements (`HE1`, `SP4`), kernels (`J30s`, `Qr40`, `YC`)
    "tfl", "tse", "tir", "fi", "fse", "spc", "epse", "epfid", "re", "de", "ir", "se", "gr", "pc",
    "me", "ss", "tgse", "gse", "tfi", "fid", "fgre", "xa", "ve", "vb", "vd", "va", "dv", "mr", "hd",
    "rx", "e", "n", "he", "hc", "ne", "bo", "sp", "ch", "hea", "hep", "body", "head", "c", "a",
    "l", "u", "ub", "yc",
    // contrast agents followed by a concentration (ISOVUE300, Ultravist370)
    "gadovist", "dotarem", "clariscan", "magnevist", "multihance", "prohance", "omniscan",
    "ultravist", "iomeron", "imeron", "omnipaque", "visipaque", "isovue", "iopamiro", "accupaque",
];

/// Letter runs that may follow a digit run in a mixed token (`3d`, `5mm`, `1000b`, `h31s`,
/// `b30f`, `t1w`, `25dir`, `3scan`, `20ch`).
#[rustfmt::skip]
pub const SUFFIXES: &[&str] = &[
    "d", "mm", "cm", "ms", "s", "f", "b", "w", "t", "x", "ch", "dir", "scan", "rage", "star", "min",
    "ml", "mmol", "sec", "k", "p", "r", "v", "e", "se", "pf", "ns", "rr", "in", "c", "a", "l",
    "i", "n", "u", "lo", "hi", "fs", "nm", "sl", "tr", "ti",
];

/// Whether `value` (one value of a description) passes the Clean Descriptors rule.
pub fn passes(value: &str) -> bool {
    let Some(text) = transliterate(value) else {
        return false;
    };
    if has_long_number_or_year(&text) || has_date_or_time(&text) {
        return false;
    }
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .all(token_passes)
}

/// Lower-case ASCII with German umlauts spelled out, or `None` for other non-ASCII text.
fn transliterate(value: &str) -> Option<String> {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            'ä' | 'Ä' => out.push_str("ae"),
            'ö' | 'Ö' => out.push_str("oe"),
            'ü' | 'Ü' => out.push_str("ue"),
            'ß' => out.push_str("ss"),
            c if c.is_ascii() => out.push(c.to_ascii_lowercase()),
            _ => return None,
        }
    }
    Some(out)
}

/// Runs of consecutive ASCII digits with their byte positions.
fn digit_runs(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            runs.push((start, i));
        } else {
            i += 1;
        }
    }
    runs
}

fn has_long_number_or_year(text: &str) -> bool {
    digit_runs(text).into_iter().any(|(s, e)| {
        let run = &text[s..e];
        run.len() > 4 || (run.len() == 4 && ("1900".."2100").contains(&run))
    })
}

fn has_date_or_time(text: &str) -> bool {
    let bytes = text.as_bytes();
    let runs = digit_runs(text);
    let joiner = |a: (usize, usize), b: (usize, usize)| -> Option<u8> { (b.0 == a.1 + 1).then(|| bytes[a.1]) };
    for pair in runs.windows(2) {
        if joiner(pair[0], pair[1]) == Some(b':') {
            return true;
        }
    }
    for triple in runs.windows(3) {
        let first = joiner(triple[0], triple[1]);
        let second = joiner(triple[1], triple[2]);
        let date_joiner = |j: Option<u8>| matches!(j, Some(b'.' | b'-' | b'/'));
        if date_joiner(first) && date_joiner(second) {
            return true;
        }
    }
    false
}

fn token_passes(token: &str) -> bool {
    if WORDS.contains(&token) || token.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    if token.bytes().all(|b| b.is_ascii_alphabetic()) {
        return false;
    }
    // A mixed token: alternate letter and digit runs.
    let bytes = token.as_bytes();
    let mut i = 0;
    let mut first = true;
    while i < bytes.len() {
        let start = i;
        let alpha = bytes[i].is_ascii_alphabetic();
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() == alpha {
            i += 1;
        }
        if alpha {
            let run = &token[start..i];
            let ok = if first {
                PREFIXES.contains(&run)
            } else {
                SUFFIXES.contains(&run) || PREFIXES.contains(&run)
            };
            if !ok {
                return false;
            }
        }
        first = false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::{PREFIXES, SUFFIXES, WORDS};
    use std::collections::BTreeSet;

    #[test]
    fn lists_are_lower_case_ascii_letters_and_digits_without_duplicates() {
        for list in [WORDS, PREFIXES, SUFFIXES] {
            let set: BTreeSet<&str> = list.iter().copied().collect();
            assert_eq!(set.len(), list.len(), "duplicate in {list:?}");
            for w in list {
                assert!(w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "{w}");
            }
        }
    }
}
