//! Fuzz harnesses: each function feeds arbitrary bytes to pseal's real parsing code and checks
//! what a user depends on (no panic, errors that name the file, parse–write–reparse identity).
//!
//! libFuzzer drives them through `fuzz/fuzz_targets/*.rs`; `shared/tests/it/robust_fuzz_replay.rs`
//! includes this file and replays every seed and every kept crash input in a normal `cargo test`,
//! so CI checks the regressions without libFuzzer. Panics are the findings: every `assert!` here
//! states a property of pseal, and nothing here unwraps input.

use pseal::bundle::{BundleError, BundleReader, Manifest};
use pseal::config::SiteConfig;
use pseal::deid::{deidentify, DeidConfig, Options, Profile, UidPlaceholderKey};
use pseal::identity::{IdentityOpener, IdentitySealer};
use pseal::keys::{SitePublicKey, SiteSecretKey, StewardIdentity, StewardRecipient};
use pseal::pseudonym::Pseudonym;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The steward identity of every fuzz seed: the X25519 identity of the public age test vector
/// `x25519` (C2SP CCTV). A test key, known to everyone; never use it for data.
pub const FUZZ_STEWARD_KEY: &str = "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0";

/// Name the bundle harness gives the bundle, so that errors can be checked for naming it.
pub const FUZZ_BUNDLE_NAME: &str = "fuzz-input.pseal";

fn steward() -> &'static StewardIdentity {
    static ID: OnceLock<StewardIdentity> = OnceLock::new();
    ID.get_or_init(|| match StewardIdentity::parse(FUZZ_STEWARD_KEY) {
        Ok(id) => id,
        Err(e) => panic!("the fixed fuzz identity must parse: {e}"),
    })
}

fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        // A RAM file system when there is one: the harnesses write a few small files per input.
        let shm = Path::new("/dev/shm");
        let mut builder = tempfile::Builder::new();
        builder.prefix("pseal-fuzz-");
        let made = if shm.is_dir() {
            builder.tempdir_in(shm)
        } else {
            builder.tempdir()
        };
        match made {
            Ok(d) => d,
            Err(e) => panic!("cannot create a scratch folder: {e}"),
        }
    })
    .path()
}

fn profiles() -> &'static [Profile] {
    static P: OnceLock<Vec<Profile>> = OnceLock::new();
    P.get_or_init(|| {
        [Options::default_profile(), Options::none()]
            .into_iter()
            .map(|options| {
                Profile::new(&DeidConfig {
                    options,
                    ..DeidConfig::default()
                })
            })
            .collect()
    })
}

/// Seals `data` to the fuzz steward with the stock age crate.
fn seal(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let recipient = steward().recipient().age_recipient();
    let mut out = Vec::new();
    let encryptor = match age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient)) {
        Ok(e) => e,
        Err(e) => panic!("age encryptor: {e}"),
    };
    let sealed = encryptor.wrap_output(&mut out).and_then(|mut w| {
        w.write_all(data)?;
        w.finish()
    });
    if let Err(e) = sealed {
        panic!("sealing to a Vec cannot fail: {e}");
    }
    out
}

/// The DICOM de-identification path as export takes it: bytes (a Part 10 file without its
/// 128-byte preamble) → the pre-parse walk (`part10::open_bytes`: the lenient walk, which refuses
/// declared lengths past the end, and the in-memory rewrite of headers dicom-rs cannot read) →
/// dicom-rs → `deid::deidentify` under two profiles → encode → the steward's walk and
/// parse of what the site wrote. De-identification may refuse a file, never panic; and whatever it
/// writes must pass the walk and open again, or the steward would refuse the whole bundle.
pub fn deid(data: &[u8]) {
    let mut file = vec![0u8; 128];
    file.extend_from_slice(data);
    let Ok(object) = pseal::part10::open_bytes(&file) else {
        return;
    };
    let key = UidPlaceholderKey::from_bytes([7; 32]);
    for profile in profiles() {
        let done = match deidentify(object.clone(), profile, &key) {
            Ok(done) => done,
            Err(e) => {
                let _ = e.to_string();
                continue;
            }
        };
        let mut bytes = Vec::new();
        if done.object.write_all(&mut bytes).is_err() {
            continue;
        }
        if let Err(e) = pseal::part10::survey(std::io::Cursor::new(&bytes), bytes.len() as u64) {
            panic!("a de-identified instance fails the steward's walk: {e}");
        }
        let reopened = dicom_object::OpenFileOptions::new()
            .read_preamble(dicom_object::file::ReadPreamble::Always)
            .from_reader(bytes.as_slice());
        if let Err(e) = reopened {
            panic!("a de-identified instance does not open again: {e}");
        }
    }
}

/// The bundle reader after decryption (`BundleReader::verify_plaintext`, the code `open` runs):
/// the first byte chooses whether the rest is a tar stream (even: the harness compresses it, so
/// the fuzzer explores tar, manifest and tag) or the raw zstd plaintext (odd). A refusal names
/// the bundle; an accepted bundle holds exactly what its manifest lists; nothing is left in
/// staging either way.
pub fn bundle_plaintext(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let plain = if mode % 2 == 0 {
        match zstd::encode_all(rest, 1) {
            Ok(z) => z,
            Err(e) => panic!("zstd compression of a slice cannot fail: {e}"),
        }
    } else {
        rest.to_vec()
    };
    let staging = scratch().join("staging");
    if let Err(e) = std::fs::create_dir_all(&staging) {
        panic!("staging folder: {e}");
    }
    let reader = BundleReader::new(steward());
    let result = reader.verify_plaintext(Path::new(FUZZ_BUNDLE_NAME), plain.as_slice(), &staging);
    check_bundle_result(result, &staging);
}

fn check_bundle_result(result: Result<pseal::bundle::VerifiedBundle, BundleError>, staging: &Path) {
    match result {
        Ok(verified) => {
            let m = &verified.manifest;
            assert_eq!(m.steward, steward().recipient(), "accepted for another steward");
            assert_eq!(verified.instances().len(), m.instance_count());
            for ((name, staged), entry) in verified.instances().iter().zip(&m.entries) {
                assert_eq!(name, &entry.name);
                let bytes = match std::fs::read(staged) {
                    Ok(b) => b,
                    Err(e) => panic!("a staged instance is missing: {e}"),
                };
                assert_eq!(bytes.len() as u64, entry.size);
                assert_eq!(pseal::bundle::sha256(&bytes).as_slice(), entry.sha256.as_slice());
            }
        }
        Err(e) => {
            let text = e.to_string();
            let names_it = text.contains(FUZZ_BUNDLE_NAME) || matches!(e, BundleError::Io { .. });
            assert!(names_it, "a refusal does not name the bundle: {text}");
        }
    }
    let left: Vec<PathBuf> = match std::fs::read_dir(staging) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => panic!("staging folder: {e}"),
    };
    assert!(left.is_empty(), "staging not cleaned: {left:?}");
}

/// The whole reader on an arbitrary file (age layer included) and `pseal inspect` on it.
pub fn bundle_file(data: &[u8]) {
    let dir = scratch().join("file");
    let staging = dir.join("staging");
    if let Err(e) = std::fs::create_dir_all(&staging) {
        panic!("scratch folder: {e}");
    }
    let path = dir.join(FUZZ_BUNDLE_NAME);
    if let Err(e) = std::fs::write(&path, data) {
        panic!("scratch file: {e}");
    }
    if let Err(e) = pseal::bundle::inspect::inspect(&path) {
        assert!(
            e.to_string().contains(FUZZ_BUNDLE_NAME),
            "inspect error does not name the file: {e}"
        );
    }
    let result = BundleReader::new(steward()).open(&path, &staging);
    check_bundle_result(result, &staging);
}

/// `manifest.cbor` and `auth.cbor`: whatever decodes re-encodes to something that decodes to
/// the same value.
pub fn manifest(data: &[u8]) {
    if let Ok(m) = Manifest::from_cbor(data) {
        let again = Manifest::from_cbor(&m.to_cbor()).map_err(|e| e.to_string());
        assert_eq!(again.as_ref(), Ok(&m), "manifest does not survive a round trip");
    }
    if let Ok(tag) = ciborium::from_reader::<pseal::auth::SiteTag, _>(data) {
        let mut bytes = Vec::new();
        if let Err(e) = ciborium::into_writer(&tag, &mut bytes) {
            panic!("encoding a site tag: {e}");
        }
        let again: Result<pseal::auth::SiteTag, _> = ciborium::from_reader(bytes.as_slice());
        assert_eq!(
            again.ok().as_ref(),
            Some(&tag),
            "site tag does not survive a round trip"
        );
    }
}

/// The identity record's plaintext (a CBOR sequence): sealed with the stock age crate, then read
/// through the real `IdentityOpener`. Whatever reads back is re-sealed and must read back equal.
pub fn identity(data: &[u8]) {
    let sealed = seal(data);
    let Ok(mut opener) = IdentityOpener::open(sealed.as_slice(), steward()) else {
        return;
    };
    let header = opener.header().clone();
    assert_eq!(format!("{:?}", header.local_id), "LocalId(<redacted>)");
    let mut records = Vec::new();
    loop {
        match opener.next_record() {
            Ok(Some(r)) => records.push(r),
            Ok(None) => break,
            Err(_) => return,
        }
    }
    let mut out = Vec::new();
    let resealed = IdentitySealer::new(&mut out, &[steward().recipient()], &header).and_then(|mut s| {
        for r in &records {
            s.add(r)?;
        }
        s.finish().map(|_| ())
    });
    if let Err(e) = resealed {
        panic!("re-sealing a record that was read: {e}");
    }
    let mut again = match IdentityOpener::open(out.as_slice(), steward()) {
        Ok(o) => o,
        Err(e) => panic!("a re-sealed record does not open: {e}"),
    };
    assert_eq!(again.header(), &header);
    for r in &records {
        match again.next_record() {
            Ok(Some(back)) => assert_eq!(&back, r),
            other => panic!("record lost in the round trip: {other:?}"),
        }
    }
    assert!(matches!(again.next_record(), Ok(None)));
}

/// The site configuration (TOML) as `pseal export` reads it: errors name the file; a valid
/// configuration survives `to_toml` and a second read unchanged.
pub fn config(data: &[u8]) {
    let dir = scratch().join("config");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("scratch folder: {e}");
    }
    let path = dir.join("pseal.toml");
    if let Err(e) = std::fs::write(&path, data) {
        panic!("scratch file: {e}");
    }
    match SiteConfig::read(&path) {
        Ok(config) => {
            let text = match config.to_toml() {
                Ok(t) => t,
                Err(e) => panic!("a configuration that was read does not serialize: {e}"),
            };
            let path2 = dir.join("again.toml");
            if let Err(e) = std::fs::write(&path2, &text) {
                panic!("scratch file: {e}");
            }
            match SiteConfig::read(&path2) {
                Ok(again) => assert_eq!(again.to_toml().ok().as_deref(), Some(text.as_str())),
                Err(e) => panic!("a configuration written by to_toml does not read back: {e}\n{text}"),
            }
        }
        Err(e) => {
            let text = e.to_string();
            assert!(
                text.contains("pseal.toml"),
                "config error does not name the file: {text}"
            );
        }
    }
}

/// Key texts: site secret key files, steward identities, site public keys, recipients,
/// pseudonyms. What parses prints back to itself; a secret that does not parse is not echoed in
/// the error.
pub fn keys(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let trimmed = text.trim();
    // An operator who pastes a damaged secret key must not see it printed back: for input that
    // looks like a secret key, the error holds none of the key data after the prefix.
    let upper = trimmed.to_ascii_uppercase();
    let secret = ["AGE-SECRET-KEY-1", "PSEAL-SITE-SECRET-KEY-1"]
        .iter()
        .find(|prefix| upper.starts_with(*prefix))
        .map(|prefix| (prefix.len(), &trimmed[prefix.len()..]))
        .filter(|(_, data)| data.len() >= 8);
    // An error holding the key data may be a fixed message the input happens to copy (libFuzzer
    // found "AGE-SECRET-KEY-1ile: bad bech32 encoding"). It echoes only if the same text with
    // other key data gives an error holding that other data too.
    let no_echo = |err: String, parse: &dyn Fn(&str) -> Option<String>| {
        let Some((at, data)) = secret else { return };
        if !err.contains(data) {
            return;
        }
        let other: String = data.chars().map(|c| if c == 'q' { 'p' } else { 'q' }).collect();
        let again = parse(&format!("{}{other}", &trimmed[..at])).unwrap_or_default();
        assert!(!again.contains(&other), "a key error echoes the secret key text: {err}");
    };
    match SiteSecretKey::parse(&text) {
        Ok(k) => round_trip_site_public(&k.public()),
        Err(e) => no_echo(e.to_string(), &|t| SiteSecretKey::parse(t).err().map(|e| e.to_string())),
    }
    match StewardIdentity::parse(&text) {
        Ok(id) => round_trip_recipient(&id.recipient()),
        Err(e) => no_echo(e.to_string(), &|t| {
            StewardIdentity::parse(t).err().map(|e| e.to_string())
        }),
    }
    if let Ok(k) = trimmed.parse::<SitePublicKey>() {
        round_trip_site_public(&k);
    }
    if let Ok(r) = trimmed.parse::<StewardRecipient>() {
        round_trip_recipient(&r);
    }
    if let Ok(p) = trimmed.parse::<Pseudonym>() {
        assert_eq!(p.to_string().parse::<Pseudonym>().ok(), Some(p));
    }
}

fn round_trip_site_public(k: &SitePublicKey) {
    assert_eq!(k.to_string().parse::<SitePublicKey>().ok(), Some(*k));
}

fn round_trip_recipient(r: &StewardRecipient) {
    assert_eq!(r.to_string().parse::<StewardRecipient>().ok().as_ref(), Some(r));
}
