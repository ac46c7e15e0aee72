//! Encodings of the linkage fields: what the store keeps instead of names and birth dates.
//!
//! - **Names** (family name, given names, first given name, birth name): a keyed Bloom filter of
//!   the normalised name's bigrams (padded: `_m mu ul ll le er r_`), [`FILTER_BITS`] bits, each
//!   bigram setting [`HASHES`] bits chosen by HMAC-SHA256 under a key salted by the birth year
//!   (independent positions, not double hashing, which pattern-mining attacks exploit). Two
//!   filters of one salt compare with the Dice coefficient; filters of different salts do not
//!   compare at all, which is what the salt is for.
//! - **Birth date**: one keyed token per part (year, month, day).
//! - **Sex**: the letter, inside the sealed row.
//! - **Blocking tokens**: keyed hashes of coarse keys (birth date with day and month in either
//!   order; birth year with the Cologne phonetic code of a name; day and month with a name code),
//!   the only part kept outside the sealed row, so that candidates are found by index.
//!
//! Every key is derived (HKDF-SHA256) from a store secret and so sealed to the steward. The
//! encoded record is sealed like the other rows; see `docs/linkage.md` for what each layer
//! protects against.

use super::normalise;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rphonetic::{Cologne, Encoder};
use sha2::Sha256;
use std::collections::{BTreeSet, HashMap};
use zeroize::{Zeroize, Zeroizing};

/// Bits per name filter.
pub const FILTER_BITS: usize = 1024;
/// Bytes per name filter.
pub const FILTER_BYTES: usize = FILTER_BITS / 8;
/// Bits each bigram sets (one HMAC-SHA256 output, 16 positions of 16 bits).
pub const HASHES: usize = 16;
/// Bytes of a date-part or blocking token.
pub const TOKEN_BYTES: usize = 16;
/// Birth years the date tokens are decoded for (wider than any living patient's).
pub const YEARS: std::ops::RangeInclusive<u16> = 1850..=2150;

/// Version byte of the encoded record's layout.
const RECORD_VERSION: u8 = 1;

type HmacSha256 = Hmac<Sha256>;

/// A keyed Bloom filter of one name.
#[derive(Clone, PartialEq, Eq)]
pub struct NameFilter(pub [u8; FILTER_BYTES]);

impl std::fmt::Debug for NameFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NameFilter({} bits set)", self.ones())
    }
}

impl NameFilter {
    /// Bits set.
    pub fn ones(&self) -> u32 {
        self.0.iter().map(|b| b.count_ones()).sum()
    }

    /// Dice coefficient `2|A∧B| / (|A| + |B|)`; 0 when both are empty.
    pub fn dice(&self, other: &NameFilter) -> f64 {
        let mut both = 0u32;
        let mut total = 0u32;
        for (a, b) in self.0.chunks_exact(8).zip(other.0.chunks_exact(8)) {
            let a = u64::from_le_bytes(a.try_into().unwrap_or_default());
            let b = u64::from_le_bytes(b.try_into().unwrap_or_default());
            both += (a & b).count_ones();
            total += a.count_ones() + b.count_ones();
        }
        if total == 0 {
            0.0
        } else {
            f64::from(2 * both) / f64::from(total)
        }
    }
}

/// The name filters of one record under one salt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameFilters {
    /// Family name.
    pub family: Option<NameFilter>,
    /// All given names.
    pub given: Option<NameFilter>,
    /// The first given name.
    pub given_first: Option<NameFilter>,
    /// Birth name.
    pub birth: Option<NameFilter>,
}

/// Date-part tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DateTokens {
    /// Keyed token of the year.
    pub year: [u8; TOKEN_BYTES],
    /// Keyed token of the month.
    pub month: [u8; TOKEN_BYTES],
    /// Keyed token of the day.
    pub day: [u8; TOKEN_BYTES],
}

/// What the store keeps of one patient's linkage fields (sealed as a whole).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Encoded {
    /// Name filters salted by the birth year (by "no year" when the birth date is unknown).
    pub names: NameFilters,
    /// Birth date tokens.
    pub date: Option<DateTokens>,
    /// `M`, `F` or `O`.
    pub sex: Option<u8>,
}

impl Encoded {
    /// The record's bytes: version, presence flags, sex, date tokens, filters.
    pub fn to_bytes(&self) -> Vec<u8> {
        let filters = [
            &self.names.family,
            &self.names.given,
            &self.names.given_first,
            &self.names.birth,
        ];
        let mut flags = 0u8;
        for (i, f) in filters.iter().enumerate() {
            if f.is_some() {
                flags |= 1 << i;
            }
        }
        if self.date.is_some() {
            flags |= 1 << 4;
        }
        let mut out = Vec::with_capacity(3 + 3 * TOKEN_BYTES + 4 * FILTER_BYTES);
        out.extend_from_slice(&[RECORD_VERSION, flags, self.sex.unwrap_or(0)]);
        if let Some(d) = &self.date {
            out.extend_from_slice(&d.year);
            out.extend_from_slice(&d.month);
            out.extend_from_slice(&d.day);
        }
        for f in filters.into_iter().flatten() {
            out.extend_from_slice(&f.0);
        }
        out
    }

    /// Parses [`to_bytes`](Self::to_bytes) output.
    pub fn from_bytes(bytes: &[u8]) -> Result<Encoded, BadEncodedRecord> {
        let (head, mut rest) = bytes.split_at_checked(3).ok_or(BadEncodedRecord::Truncated)?;
        if head[0] != RECORD_VERSION {
            return Err(BadEncodedRecord::Version(head[0]));
        }
        let flags = head[1];
        let mut take = |n: usize| -> Result<&[u8], BadEncodedRecord> {
            let (a, b) = rest.split_at_checked(n).ok_or(BadEncodedRecord::Truncated)?;
            rest = b;
            Ok(a)
        };
        let token = |b: &[u8]| -> [u8; TOKEN_BYTES] { b.try_into().unwrap_or([0; TOKEN_BYTES]) };
        let date = if flags & (1 << 4) != 0 {
            Some(DateTokens {
                year: token(take(TOKEN_BYTES)?),
                month: token(take(TOKEN_BYTES)?),
                day: token(take(TOKEN_BYTES)?),
            })
        } else {
            None
        };
        let mut filters: [Option<NameFilter>; 4] = Default::default();
        for (i, slot) in filters.iter_mut().enumerate() {
            if flags & (1 << i) != 0 {
                let bytes = take(FILTER_BYTES)?;
                *slot = Some(NameFilter(bytes.try_into().unwrap_or([0; FILTER_BYTES])));
            }
        }
        if !rest.is_empty() {
            return Err(BadEncodedRecord::Trailing);
        }
        let [family, given, given_first, birth] = filters;
        Ok(Encoded {
            names: NameFilters {
                family,
                given,
                given_first,
                birth,
            },
            date,
            sex: (head[2] != 0).then_some(head[2]),
        })
    }
}

/// The normalised fields of one record, held only while it is encoded and matched. Zeroized on
/// drop; `Debug` shows nothing.
#[derive(Default, Clone)]
pub struct Clear {
    /// Normalised family name.
    pub family: String,
    /// Its tokens (a double-barrelled name has two).
    pub family_tokens: Vec<String>,
    /// All given names, normalised and joined.
    pub given: String,
    /// The first given name.
    pub given_first: String,
    /// Normalised birth name.
    pub birth: String,
    /// Its tokens.
    pub birth_tokens: Vec<String>,
    /// Birth date parts.
    pub date: Option<(u16, u8, u8)>,
    /// Sex.
    pub sex: Option<u8>,
}

impl std::fmt::Debug for Clear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clear(<redacted>)")
    }
}

impl Drop for Clear {
    fn drop(&mut self) {
        self.family.zeroize();
        self.family_tokens.zeroize();
        self.given.zeroize();
        self.given_first.zeroize();
        self.birth.zeroize();
        self.birth_tokens.zeroize();
        self.date = None;
    }
}

impl Clear {
    /// Normalises a sealed linkage record.
    pub fn from_record(record: &pseal::linkage::LinkageRecord) -> Clear {
        let opt = |v: &Option<String>| v.as_deref().unwrap_or_default().to_string();
        let family = opt(&record.family_name);
        let given = opt(&record.given_names);
        let birth = opt(&record.birth_name);
        Clear {
            family: normalise::name(&family),
            family_tokens: normalise::tokens(&family),
            given: normalise::name(&given),
            given_first: normalise::first_token(&given),
            birth: normalise::name(&birth),
            birth_tokens: normalise::tokens(&birth),
            date: record.birth_date.as_deref().and_then(normalise::date),
            sex: record.sex.as_deref().and_then(normalise::sex),
        }
    }

    /// True when there is nothing to link on.
    pub fn is_empty(&self) -> bool {
        self.family.is_empty() && self.given.is_empty() && self.birth.is_empty() && self.date.is_none()
    }

    /// The birth year, the names' salt.
    pub fn year(&self) -> Option<u16> {
        self.date.map(|(y, _, _)| y)
    }
}

/// The linkage keys, derived from a store secret. Zeroized on drop, never printed.
pub struct LinkageKeys {
    bloom: Zeroizing<[u8; 32]>,
    date: Zeroizing<[u8; 32]>,
    block: Zeroizing<[u8; 32]>,
    decode: DateDecoder,
}

impl std::fmt::Debug for LinkageKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkageKeys(<secret>)")
    }
}

/// Token → value tables for date parts (the domains are tiny, so decoding is a look-up).
struct DateDecoder {
    years: HashMap<[u8; TOKEN_BYTES], u16>,
    months: HashMap<[u8; TOKEN_BYTES], u8>,
    days: HashMap<[u8; TOKEN_BYTES], u8>,
}

fn mac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let Ok(mut m) = <HmacSha256 as Mac>::new_from_slice(key) else {
        return [0; 32];
    };
    for p in parts {
        m.update(&(p.len() as u64).to_be_bytes());
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

fn truncate(full: [u8; 32]) -> [u8; TOKEN_BYTES] {
    let mut t = [0u8; TOKEN_BYTES];
    t.copy_from_slice(&full[..TOKEN_BYTES]);
    t
}

/// One blocking key before it is hashed: its kind and its parts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BlockKey {
    kind: &'static str,
    parts: Vec<Vec<u8>>,
}

impl LinkageKeys {
    /// Derives the keys from a 32-byte store secret (HKDF-SHA256, one label per key).
    pub fn derive(secret: &[u8; 32]) -> LinkageKeys {
        let hk = Hkdf::<Sha256>::new(Some(b"pseal linkage v1"), secret);
        let expand = |label: &[u8]| {
            let mut k = Zeroizing::new([0u8; 32]);
            // 32 bytes is always a valid HKDF-SHA256 output length.
            let _ = hk.expand(label, &mut *k);
            k
        };
        let date = expand(b"date tokens");
        let decode = DateDecoder {
            years: YEARS
                .map(|y| (truncate(mac(&date, &[b"Y", &y.to_be_bytes()])), y))
                .collect(),
            months: (1..=12u8).map(|m| (truncate(mac(&date, &[b"M", &[m]])), m)).collect(),
            days: (1..=31u8).map(|d| (truncate(mac(&date, &[b"D", &[d]])), d)).collect(),
        };
        LinkageKeys {
            bloom: expand(b"name bloom filters"),
            date,
            block: expand(b"blocking tokens"),
            decode,
        }
    }

    /// The name filters of `clear` under the salt of `year` (`None`: no birth year known).
    pub fn name_filters(&self, clear: &Clear, year: Option<u16>) -> NameFilters {
        let salt = match year {
            Some(y) => mac(&self.bloom, &[b"year", &y.to_be_bytes()]),
            None => mac(&self.bloom, &[b"no year"]),
        };
        let Ok(keyed) = <HmacSha256 as Mac>::new_from_slice(&salt) else {
            return NameFilters::default();
        };
        let filter = |name: &str| -> Option<NameFilter> {
            if name.is_empty() {
                return None;
            }
            let mut bits = [0u8; FILTER_BYTES];
            let padded: Vec<u8> = std::iter::once(b'_')
                .chain(name.bytes())
                .chain(std::iter::once(b'_'))
                .collect();
            for gram in padded.windows(2) {
                let mut m = keyed.clone();
                m.update(gram);
                let out = m.finalize().into_bytes();
                for pair in out.chunks_exact(2) {
                    let bit = usize::from(u16::from_be_bytes([pair[0], pair[1]])) % FILTER_BITS;
                    bits[bit / 8] |= 1 << (bit % 8);
                }
            }
            Some(NameFilter(bits))
        };
        NameFilters {
            family: filter(&clear.family),
            given: filter(&clear.given),
            given_first: filter(&clear.given_first),
            birth: filter(&clear.birth),
        }
    }

    /// The encoded record of `clear` (names under its own birth year's salt).
    pub fn encode(&self, clear: &Clear) -> Encoded {
        Encoded {
            names: self.name_filters(clear, clear.year()),
            date: clear.date.map(|(y, m, d)| DateTokens {
                year: truncate(mac(&self.date, &[b"Y", &y.to_be_bytes()])),
                month: truncate(mac(&self.date, &[b"M", &[m]])),
                day: truncate(mac(&self.date, &[b"D", &[d]])),
            }),
            sex: clear.sex,
        }
    }

    /// The date parts behind an encoded record's tokens (a look-up over every possible value;
    /// `None` for a token of no date this store could have made).
    pub fn decode_date(&self, tokens: &DateTokens) -> Option<(u16, u8, u8)> {
        Some((
            *self.decode.years.get(&tokens.year)?,
            *self.decode.months.get(&tokens.month)?,
            *self.decode.days.get(&tokens.day)?,
        ))
    }

    /// The blocking tokens of `clear` in `domain`, sorted and without duplicates. A record is
    /// stored under these and a new record looks its candidates up under its own, so two records
    /// meet when they share one key: the birth date (day and month in either order); the birth
    /// year and the phonetic code of any name of either (family, birth or first given name, so
    /// that name order and a name changed at marriage still meet); or day and month and a name
    /// code (so that a wrong birth year still meets).
    pub fn block_tokens(&self, domain: &str, clear: &Clear) -> Vec<[u8; TOKEN_BYTES]> {
        let tokens: BTreeSet<[u8; TOKEN_BYTES]> = block_keys(clear)
            .iter()
            .map(|key| {
                let mut parts: Vec<&[u8]> = vec![b"pseal block v1", domain.as_bytes(), key.kind.as_bytes()];
                parts.extend(key.parts.iter().map(Vec::as_slice));
                truncate(mac(&self.block, &parts))
            })
            .collect();
        tokens.into_iter().collect()
    }
}

/// The Cologne phonetic codes of a record's names: each family and birth-name token, the whole
/// family and birth names, and the first given name.
fn name_codes(clear: &Clear) -> BTreeSet<String> {
    let mut names: Vec<&str> = vec![&clear.family, &clear.birth, &clear.given_first];
    names.extend(clear.family_tokens.iter().map(String::as_str));
    names.extend(clear.birth_tokens.iter().map(String::as_str));
    names
        .into_iter()
        .filter(|n| n.len() >= 2)
        .map(|n| Cologne.encode(n))
        .filter(|c| !c.is_empty())
        .collect()
}

/// The blocking keys of a record (see [`LinkageKeys::block_tokens`]).
pub fn block_keys(clear: &Clear) -> Vec<BlockKey> {
    let mut keys = Vec::new();
    let codes = name_codes(clear);
    if let Some((y, m, d)) = clear.date {
        let (lo, hi) = (m.min(d), m.max(d));
        keys.push(BlockKey {
            kind: "dob",
            parts: vec![y.to_be_bytes().to_vec(), vec![lo, hi]],
        });
        for code in &codes {
            keys.push(BlockKey {
                kind: "year+name",
                parts: vec![y.to_be_bytes().to_vec(), code.as_bytes().to_vec()],
            });
            keys.push(BlockKey {
                kind: "day+month+name",
                parts: vec![vec![lo, hi], code.as_bytes().to_vec()],
            });
        }
    } else {
        for code in &codes {
            keys.push(BlockKey {
                kind: "name",
                parts: vec![code.as_bytes().to_vec()],
            });
        }
    }
    keys
}

/// Bytes [`Encoded::from_bytes`] cannot read as an encoded record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadEncodedRecord {
    /// Shorter than its flags say.
    #[error("the encoded record is truncated")]
    Truncated,
    /// Written by another version of the encoding.
    #[error("unknown encoded-record version {0}")]
    Version(u8),
    /// Longer than its flags say.
    #[error("the encoded record has trailing bytes")]
    Trailing,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pseal::linkage::LinkageRecord;

    fn clear(family: &str, given: &str, date: &str) -> Clear {
        Clear::from_record(&LinkageRecord {
            family_name: Some(family.into()),
            given_names: Some(given.into()),
            birth_name: None,
            birth_date: Some(date.into()),
            sex: Some("F".into()),
            conflicts: Default::default(),
        })
    }

    #[test]
    fn similar_names_score_high_and_different_names_low() {
        let keys = LinkageKeys::derive(&[7; 32]);
        let a = keys.encode(&clear("Müller", "Anna", "19650312"));
        let b = keys.encode(&clear("Mueller", "Anna", "19650312"));
        let typo = keys.encode(&clear("Müler", "Anna", "19650312"));
        let other = keys.encode(&clear("Schmidt", "Anna", "19650312"));
        let dice = |x: &Encoded, y: &Encoded| x.names.family.as_ref().unwrap().dice(y.names.family.as_ref().unwrap());
        assert_eq!(dice(&a, &b), 1.0);
        assert!(dice(&a, &typo) > 0.75, "{}", dice(&a, &typo));
        assert!(dice(&a, &other) < 0.3, "{}", dice(&a, &other));
    }

    #[test]
    fn the_salt_and_the_key_change_every_filter() {
        let keys = LinkageKeys::derive(&[7; 32]);
        let c = clear("Huber", "Josef", "19501111");
        let own = keys.name_filters(&c, Some(1950));
        let other_year = keys.name_filters(&c, Some(1951));
        let other_key = LinkageKeys::derive(&[8; 32]).name_filters(&c, Some(1950));
        let family = |f: &NameFilters| f.family.clone().unwrap();
        assert!(family(&own).dice(&family(&other_year)) < 0.3);
        assert!(family(&own).dice(&family(&other_key)) < 0.3);
        assert_eq!(
            family(&own),
            family(&keys.name_filters(&c, Some(1950))),
            "deterministic"
        );
    }

    #[test]
    fn records_round_trip_and_dates_decode() {
        let keys = LinkageKeys::derive(&[1; 32]);
        let mut c = clear("Gruber", "Maria Theresia", "19480101");
        c.birth = normalise::name("Huber");
        let e = keys.encode(&c);
        assert_eq!(Encoded::from_bytes(&e.to_bytes()).unwrap(), e);
        assert_eq!(keys.decode_date(e.date.as_ref().unwrap()), Some((1948, 1, 1)));
        let bytes = e.to_bytes();
        assert!(Encoded::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        let empty = Encoded::default();
        assert_eq!(Encoded::from_bytes(&empty.to_bytes()).unwrap(), empty);
    }

    #[test]
    fn swapped_day_and_month_and_a_wrong_year_still_share_a_block() {
        let keys = LinkageKeys::derive(&[2; 32]);
        let a = keys.block_tokens("default", &clear("Steiner", "Lukas", "19710304"));
        let swapped = keys.block_tokens("default", &clear("Steinre", "Lukas", "19710403"));
        let wrong_year = keys.block_tokens("default", &clear("Steiner", "Lukas", "19170304"));
        let other_domain = keys.block_tokens("other", &clear("Steiner", "Lukas", "19710304"));
        let shares = |x: &[[u8; 16]], y: &[[u8; 16]]| x.iter().any(|t| y.contains(t));
        assert!(shares(&a, &swapped));
        assert!(shares(&a, &wrong_year));
        assert!(!shares(&a, &other_domain), "tokens differ per domain");
    }
}
