//! Normalisation of the sealed demographic fields before they are encoded: what two registries
//! write differently for one person must come out the same.
//!
//! Names: Unicode compatibility decomposition with the marks dropped (`Müller` → `muller`),
//! `ß` → `ss`, the German transcriptions of umlauts folded the same way (`Mueller` → `muller`, so
//! `Müller`, `Mueller` and `Muller` agree), lower case, academic titles and name particles
//! (`Dr. med.`, `Mag.`, `von`, `van der`) removed, then spaces, hyphens, apostrophes and
//! everything but `a`–`z` dropped (`Hans-Peter`, `Hans Peter` and `Hanspeter` agree). The
//! folding merges some distinct names (`Michael` and `Michal`); the other fields carry the
//! difference.

use unicode_normalization::UnicodeNormalization;

/// Academic and professional titles of German-speaking countries, as tokens after splitting on
/// spaces, dots and hyphens (`Dr. med. univ.` is `dr`, `med`, `univ`; `Dipl.-Ing.` is `dipl`, `ing`).
const TITLES: &[&str] = &[
    "dr", "ddr", "prof", "med", "dent", "vet", "univ", "phil", "rer", "nat", "jur", "pol", "oec", "theol", "habil",
    "hc", "dipl", "ing", "di", "mag", "dkfm", "lic", "mba", "msc", "bsc", "phd", "priv", "doz", "pd", "sen", "jun",
];

/// Name particles, as separate tokens (`von`, `van der`, `zu`, `de la`).
const PARTICLES: &[&str] = &[
    "von", "vom", "van", "zu", "zum", "zur", "der", "den", "de", "da", "del", "della", "des", "du", "la", "le", "ten",
    "ter", "am", "auf", "und", "y",
];

/// A normalised name: `a`–`z` only, possibly empty.
pub fn name(raw: &str) -> String {
    tokens(raw).concat()
}

/// The normalised tokens of a name, titles and particles removed (kept when nothing else is
/// left, so that a name that is all particle still has a value).
pub fn tokens(raw: &str) -> Vec<String> {
    let folded = fold(raw);
    let all: Vec<&str> = folded
        .split(|c: char| !c.is_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    let kept: Vec<String> = all
        .iter()
        .filter(|t| !TITLES.contains(t) && !PARTICLES.contains(t))
        .map(|t| fold_transcriptions(t))
        .collect();
    if kept.is_empty() {
        all.iter()
            .filter(|t| !TITLES.contains(t))
            .map(|t| fold_transcriptions(t))
            .collect()
    } else {
        kept
    }
}

/// The first given name, normalised (`Hans Peter` → `hans`).
pub fn first_token(raw: &str) -> String {
    tokens(raw).into_iter().next().unwrap_or_default()
}

/// Lower case, `ß` → `ss`, compatibility decomposition with combining marks dropped; every
/// character that is not `a`–`z` after that becomes a separator.
fn fold(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.nfkd() {
        if unicode_normalization::char::is_combining_mark(c) {
            continue;
        }
        for lower in c.to_lowercase() {
            match lower {
                'ß' => out.push_str("ss"),
                'æ' => out.push_str("ae"),
                'œ' => out.push_str("oe"),
                'ø' => out.push('o'),
                'đ' | 'ð' => out.push('d'),
                'ł' => out.push('l'),
                'ı' => out.push('i'),
                c if c.is_ascii_lowercase() => out.push(c),
                _ => out.push(' '),
            }
        }
    }
    out
}

/// `ae`, `oe`, `ue` → `a`, `o`, `u`: a name written with the umlaut's transcription agrees with
/// the same name written with the umlaut (decomposed to its base letter) or without it.
fn fold_transcriptions(token: &str) -> String {
    let bytes = token.as_bytes();
    let mut out = String::with_capacity(token.len());
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        out.push(char::from(c));
        if matches!(c, b'a' | b'o' | b'u') && bytes.get(i + 1) == Some(&b'e') {
            i += 2;
        } else {
            i += 1;
        }
    }
    out
}

/// A birth date's parts `(year, month, day)` from DA text `YYYYMMDD` (also `YYYY.MM.DD`, the
/// retired ACR-NEMA form), checked to be a real date.
pub fn date(raw: &str) -> Option<(u16, u8, u8)> {
    let digits: String = raw.trim().chars().filter(|c| *c != '.').collect();
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: u16 = digits[..4].parse().ok()?;
    let month: u8 = digits[4..6].parse().ok()?;
    let day: u8 = digits[6..].parse().ok()?;
    chrono::NaiveDate::from_ymd_opt(i32::from(year), u32::from(month), u32::from(day))?;
    Some((year, month, day))
}

/// Sex as one letter `M`, `F` or `O`; anything else is unknown.
pub fn sex(raw: &str) -> Option<u8> {
    match raw.trim().to_ascii_uppercase().as_str() {
        "M" => Some(b'M'),
        "F" | "W" => Some(b'F'),
        "O" => Some(b'O'),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umlaut_spellings_agree() {
        for n in ["Müller", "Mueller", "Muller", "MÜLLER", "MUELLER", "müller"] {
            assert_eq!(name(n), "muller", "{n}");
        }
        assert_eq!(name("Schröder"), name("Schroeder"));
        assert_eq!(name("Strauß"), name("Strauss"));
        assert_eq!(name("Jäger"), name("Jaeger"));
        assert_eq!(name("Bräuer"), name("Braeuer"));
    }

    #[test]
    fn titles_particles_spaces_and_hyphens_go() {
        assert_eq!(name("Dr. med. Hans-Peter"), "hanspeter");
        assert_eq!(name("Hans Peter"), "hanspeter");
        assert_eq!(name("Prof. Dr. Dipl.-Ing. von der Heide"), "heide");
        assert_eq!(name("Mag. Zwölfer"), "zwolfer");
        assert_eq!(name("van"), "van", "a name that is all particle keeps it");
        assert_eq!(first_token("Anna-Lena Maria"), "anna");
        assert_eq!(name("  "), "");
    }

    #[test]
    fn other_scripts_decompose_to_latin_letters() {
        assert_eq!(name("Núñez"), "nunez");
        assert_eq!(name("Ødegård"), "odegard");
        assert_eq!(name("Łukasz"), "lukasz");
    }

    #[test]
    fn dates_and_sex_parse_strictly() {
        assert_eq!(date("19610229"), None);
        assert_eq!(date("19640229"), Some((1964, 2, 29)));
        assert_eq!(date("19000229"), None);
        assert_eq!(date("1964.02.28"), Some((1964, 2, 28)));
        assert_eq!(date("196402"), None);
        assert_eq!(sex("f "), Some(b'F'));
        assert_eq!(sex("X"), None);
    }
}
