//! Tampering and wrong keys through the real `pseal-central import`: every altered, truncated,
//! re-ordered, forged or misdirected bundle is refused with a message naming it, and the store and
//! archive stay byte-for-byte as they were.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use crate::robust_support::*;
use pseal::bundle::Manifest;
use pseal::keys::{Passphrase, SiteSecretKey, StewardIdentity};
use pseal_fixtures::{generate, CohortSpec};
use std::path::{Path, PathBuf};

struct Setup {
    world: World,
    /// The bundle every variant is made from (not imported).
    bundle: PathBuf,
    /// Another patient's bundle of the same site, imported before the variants.
    other: PathBuf,
    steward: StewardIdentity,
    site_key: SiteSecretKey,
}

/// One site, two patients; the second is imported so that store and archive hold real data.
/// Images are 128×128 with 8 slices, so the bundle spans several 64 KiB age chunks.
fn setup() -> Setup {
    let world = World::new();
    let root = world.dir.path().join("hospitals");
    let spec = CohortSpec {
        sites: vec!["SITE-A".into()],
        patients_per_site: 2,
        timepoints: 1,
        series: 2,
        slices: 4,
        rows: 128,
        columns: 128,
        shared_local_ids: 0,
        include_burned_in: false,
        include_non_dicom: false,
        ..CohortSpec::small()
    };
    let cohort = generate(&spec, &root).unwrap();
    world.add_site("SITE-A", true);
    let bundles = world.export("SITE-A", &cohort.sites[0].dir, "out");
    assert_eq!(bundles.len(), 2);
    let pass = Passphrase::new(PASSPHRASE.into()).unwrap();
    let steward = StewardIdentity::read_encrypted(&world.store().join("steward-identity.age"), &pass).unwrap();
    let site_key = SiteSecretKey::read(&world.dir.path().join("SITE-A/pseal.site-key")).unwrap();
    let out = world.import(&bundles[1..]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Setup {
        world,
        bundle: bundles[0].clone(),
        other: bundles[1].clone(),
        steward,
        site_key,
    }
}

fn flip(bytes: &[u8], pos: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[pos] ^= 0x01;
    b
}

/// Replaces the base64 character at `pos` by another valid one, so the header still parses and
/// the change reaches the cryptography (a bit flip may make it non-canonical base64 instead).
fn swap_base64(bytes: &[u8], pos: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[pos] = if b[pos] == b'A' { b'B' } else { b'A' };
    b
}

/// A variant with an expected phrase in its refusal ("" when any refusal will do).
type Variant = (String, Vec<u8>, &'static str);

const DAMAGED: &str = "damaged or has been altered";

/// Flips and truncations of the age file itself: the age header, the nonce, every payload chunk.
fn age_variants(good: &[u8]) -> Vec<Variant> {
    let layout = age_layout(good);
    assert!(
        layout.chunks.len() >= 3,
        "the test needs a bundle of at least three age chunks, got {}",
        layout.chunks.len()
    );
    let stanza = good.windows(10).position(|w| w == b"-> X25519 ").unwrap();
    let body = stanza + good[stanza..].iter().position(|&b| b == b'\n').unwrap() + 1;
    let mut v: Vec<Variant> = vec![
        ("age-version-line".into(), flip(good, 3), ""),
        (
            "age-stanza-type".into(),
            flip(good, stanza + 4),
            "not sealed to this steward",
        ),
        ("age-stanza-share".into(), flip(good, stanza + 14), ""),
        (
            "age-stanza-share-base64".into(),
            swap_base64(good, stanza + 14),
            "not sealed to this steward",
        ),
        ("age-stanza-body".into(), flip(good, body + 3), ""),
        (
            "age-stanza-body-base64".into(),
            swap_base64(good, body + 3),
            "not sealed to this steward",
        ),
        ("age-header-mac".into(), flip(good, layout.header_end - 5), ""),
        (
            "age-header-mac-base64".into(),
            swap_base64(good, layout.header_end - 5),
            DAMAGED,
        ),
        ("age-nonce".into(), flip(good, layout.nonce + 7), DAMAGED),
    ];
    for (i, c) in layout.chunks.iter().enumerate() {
        v.push((format!("age-chunk{i}-first-byte"), flip(good, c.start), DAMAGED));
        v.push((
            format!("age-chunk{i}-middle"),
            flip(good, (c.start + c.end) / 2),
            DAMAGED,
        ));
        v.push((format!("age-chunk{i}-tag"), flip(good, c.end - 1), DAMAGED));
    }
    let mut cuts = vec![
        0,
        1,
        20,
        layout.header_end - 1,
        layout.header_end,
        layout.nonce + 8,
        layout.nonce + 16,
        layout.nonce + 17,
        good.len() / 3,
        good.len() / 2,
        good.len() - 17,
        good.len() - 16,
        good.len() - 1,
    ];
    for c in &layout.chunks {
        cuts.extend([c.start + 1, c.end - 1]);
        if c.end < good.len() {
            cuts.push(c.end);
        }
    }
    cuts.sort_unstable();
    cuts.dedup();
    for cut in cuts {
        v.push((format!("truncated-at-{cut}"), good[..cut].to_vec(), ""));
    }
    let mut extended = good.to_vec();
    extended.push(0);
    v.push(("one-byte-appended".into(), extended, DAMAGED));
    let mut doubled = good.to_vec();
    doubled.extend_from_slice(&good[layout.chunks[0].clone()]);
    v.push(("chunk-appended".into(), doubled, DAMAGED));
    let mut swapped = good[..layout.chunks[0].start].to_vec();
    swapped.extend_from_slice(&good[layout.chunks[1].clone()]);
    swapped.extend_from_slice(&good[layout.chunks[0].clone()]);
    swapped.extend_from_slice(&good[layout.chunks[1].end..]);
    v.push(("chunks-swapped".into(), swapped, DAMAGED));
    v
}

/// Changes inside the plaintext, re-sealed to the steward with the stock age crate (a forger
/// knows the steward's public recipient, not the site key).
fn plaintext_variants(s: &Setup, good: &[u8]) -> Vec<Variant> {
    let ours = [s.steward.recipient()];
    let reseal = |plain: &[u8]| seal(&ours, plain);
    let z = decrypt(&s.steward, good);
    let tar = unzstd(&z);
    let mut v: Vec<Variant> = Vec::new();

    // The zstd frame: magic, frame header descriptor, window/size bytes, block data, the end.
    for (label, pos) in [
        ("zstd-magic", 0),
        ("zstd-frame-descriptor", 4),
        ("zstd-block-middle", z.len() / 2),
        ("zstd-last-byte", z.len() - 1),
    ] {
        v.push((label.into(), reseal(&flip(&z, pos)), DAMAGED));
    }
    v.push(("zstd-truncated".into(), reseal(&z[..z.len() - 5]), DAMAGED));

    // Tar headers: a raw flip breaks the checksum; flips with the checksum recomputed change
    // the name, the size, or metadata the format requires to be normalized.
    let headers = header_offsets(&tar);
    for (i, (name, off)) in headers.iter().enumerate() {
        let label = format!("tar-header{i}-name-raw-{}", name.replace('/', "_"));
        v.push((label, reseal(&zstd(&flip(&tar, off + 3))), DAMAGED));
    }
    let fixed = |f: &dyn Fn(&mut tar::Header)| {
        let mut t = tar.clone();
        let off = headers[0].1;
        let mut h = tar::Header::new_old();
        h.as_mut_bytes().copy_from_slice(&t[off..off + 512]);
        f(&mut h);
        h.set_cksum();
        t[off..off + 512].copy_from_slice(h.as_bytes());
        reseal(&zstd(&t))
    };
    v.push((
        "tar-header-name-fixed-cksum".into(),
        fixed(&|h| h.as_old_mut().name[18] ^= 1),
        "unexpected entry",
    ));
    v.push((
        "tar-header-size-fixed-cksum".into(),
        fixed(&|h| h.set_size(100)),
        DAMAGED,
    ));
    v.push((
        "tar-header-mode-fixed-cksum".into(),
        fixed(&|h| h.set_mode(0o755)),
        "not normalized",
    ));
    v.push((
        "tar-header-mtime-fixed-cksum".into(),
        fixed(&|h| h.set_mtime(1_700_000_000)),
        "not normalized",
    ));
    v.push((
        "tar-header-uid-fixed-cksum".into(),
        fixed(&|h| h.set_uid(1000)),
        "not normalized",
    ));
    v.push((
        "tar-header-uname-fixed-cksum".into(),
        fixed(&|h| h.set_username("radiology").unwrap()),
        "not normalized",
    ));
    v.push((
        "tar-header-type-symlink-fixed-cksum".into(),
        fixed(&|h| h.set_entry_type(tar::EntryType::Symlink)),
        "not a regular file",
    ));

    // Entry contents: the first and last instance, the identity record, manifest, tag.
    let contents = content_offsets(&tar);
    let instances: Vec<_> = contents.iter().filter(|c| c.0.starts_with("instances/")).collect();
    let chosen = [
        instances[0].clone(),
        (*instances.last().unwrap()).clone(),
        contents.iter().find(|c| c.0 == "identity.age").unwrap().clone(),
        contents.iter().find(|c| c.0 == "manifest.cbor").unwrap().clone(),
        contents.iter().find(|c| c.0 == "auth.cbor").unwrap().clone(),
    ];
    for (name, off, size) in chosen {
        for (where_, pos) in [("first", off), ("middle", off + size / 2), ("last", off + size - 1)] {
            let label = format!("content-{}-{where_}", name.replace('/', "_"));
            v.push((label, reseal(&zstd(&flip(&tar, pos))), ""));
        }
    }
    // Data after the end of the archive.
    let mut trailing = tar.clone();
    trailing.extend_from_slice(&[0x41; 512]);
    v.push(("data-after-tar-end".into(), reseal(&zstd(&trailing)), "after the end"));
    v
}

/// Re-ordered, duplicated, dropped and extra entries (valid tar, re-sealed).
fn entry_variants(s: &Setup, good: &[u8]) -> Vec<Variant> {
    let ours = [s.steward.recipient()];
    let entries = tar_entries(&unzstd(&decrypt(&s.steward, good)));
    let pack = |e: &[TarEntry]| seal(&ours, &zstd(&build_tar(e)));
    let idx = |n: &str| entries.iter().position(|e| e.name == n).unwrap();
    let mut v: Vec<Variant> = Vec::new();

    let mut e = entries.clone();
    e.swap(0, 1);
    v.push(("entries-first-two-swapped".into(), pack(&e), "unexpected entry"));
    let mut e = entries.clone();
    let (a, b) = (e[0].content.clone(), e[1].content.clone());
    e[0].content = b;
    e[1].content = a;
    v.push(("instance-contents-swapped".into(), pack(&e), "SHA-256"));
    let mut e = entries.clone();
    e.insert(1, entries[0].clone());
    v.push(("instance-duplicated".into(), pack(&e), "unexpected entry"));
    let mut e = entries.clone();
    let renamed = TarEntry {
        header: header_for("instances/000002.dcm", 0),
        name: "instances/000002.dcm".into(),
        content: entries[0].content.clone(),
    };
    e[1] = renamed;
    v.push(("instance-copied-over-next".into(), pack(&e), "SHA-256"));
    let mut e = entries.clone();
    e.remove(2);
    v.push(("instance-dropped-middle".into(), pack(&e), "unexpected entry"));
    let last_instance = idx("identity.age") - 1;
    let mut e = entries.clone();
    e.remove(last_instance);
    v.push(("instance-dropped-last".into(), pack(&e), "entries"));
    for name in ["identity.age", "manifest.cbor", "auth.cbor"] {
        let mut e = entries.clone();
        e.remove(idx(name));
        v.push((format!("dropped-{name}"), pack(&e), ""));
        let mut e = entries.clone();
        e.insert(idx(name), entries[idx(name)].clone());
        v.push((format!("duplicated-{name}"), pack(&e), "unexpected entry"));
    }
    let mut e = entries.clone();
    let auth = e.remove(idx("auth.cbor"));
    e.insert(idx("manifest.cbor"), auth);
    v.push(("auth-before-manifest".into(), pack(&e), "unexpected entry"));
    let mut e = entries.clone();
    let identity = e.remove(idx("identity.age"));
    e.insert(0, identity);
    v.push(("identity-first".into(), pack(&e), "unexpected entry"));
    let mut e = entries.clone();
    e.push(TarEntry {
        header: header_for("extra.txt", 0),
        name: "extra.txt".into(),
        content: b"extra".to_vec(),
    });
    v.push(("entry-after-auth".into(), pack(&e), "after auth.cbor"));
    let mut e = entries.clone();
    let mut h = header_for("instances/000001.dcm", 0);
    let field = &mut h.as_old_mut().name;
    field.fill(0);
    field[..11].copy_from_slice(b"../evil.dcm");
    e[0].header = h;
    v.push(("path-traversal-name".into(), pack(&e), ""));
    let mut e = entries.clone();
    e.truncate(idx("identity.age"));
    v.push(("instances-only".into(), pack(&e), "incomplete"));
    v.push(("empty-tar".into(), pack(&[]), "incomplete"));
    v
}

/// Forgeries by someone holding a site key (the enrolled one or another), and misdirected
/// bundles: another site's name, another steward, another bundle's identity record, a format
/// this reader does not know, an unknown site key, a bundle sealed to another steward.
fn forged_variants(s: &Setup, good: &[u8]) -> Vec<Variant> {
    let ours = [s.steward.recipient()];
    let entries = tar_entries(&unzstd(&decrypt(&s.steward, good)));
    let idx = |n: &str| entries.iter().position(|e| e.name == n).unwrap();
    let manifest = Manifest::from_cbor(&entries[idx("manifest.cbor")].content).unwrap();
    // Replaces manifest (and optionally the tag, and the identity record) and re-seals.
    let forge = |m: &Manifest, key: Option<&SiteSecretKey>, steward: Option<&pseal::keys::StewardRecipient>| {
        let mut e = entries.clone();
        let bytes = m.to_cbor();
        e[idx("manifest.cbor")].content = bytes.clone();
        if let Some(key) = key {
            let to = steward.cloned().unwrap_or_else(|| s.steward.recipient());
            e[idx("auth.cbor")].content = retag(key, &to, &bytes);
        }
        seal(&ours, &zstd(&build_tar(&e)))
    };
    let mut v: Vec<Variant> = Vec::new();

    let mut m = manifest.clone();
    m.site = "SITE-B".into();
    v.push((
        "manifest-site-edited".into(),
        forge(&m, None, None),
        "tag does not verify",
    ));
    v.push((
        "manifest-other-site-retagged".into(),
        forge(&m, Some(&s.site_key), None),
        "is enrolled for site SITE-A",
    ));

    let other_steward = StewardIdentity::generate().recipient();
    let mut m = manifest.clone();
    m.steward = other_steward.clone();
    v.push((
        "manifest-other-steward-retagged".into(),
        forge(&m, Some(&s.site_key), Some(&other_steward)),
        "was authenticated for steward",
    ));
    v.push((
        "tag-for-other-steward".into(),
        forge(&manifest, Some(&s.site_key), Some(&other_steward)),
        "tag does not verify",
    ));

    let mut m = manifest.clone();
    m.format = 2;
    v.push((
        "manifest-format-2-retagged".into(),
        forge(&m, Some(&s.site_key), None),
        "format version 2",
    ));

    let rogue = SiteSecretKey::generate();
    let mut m = manifest.clone();
    m.site_key = rogue.public();
    v.push((
        "unknown-site-key".into(),
        forge(&m, Some(&rogue), None),
        "is not enrolled for site SITE-A",
    ));

    let mut m = manifest.clone();
    m.bundle_id = "0".repeat(32);
    v.push((
        "manifest-bundle-id-edited".into(),
        forge(&m, None, None),
        "tag does not verify",
    ));

    // An instance changed and its manifest digest updated, without the site key.
    let mut e = entries.clone();
    e[0].content[200] ^= 1;
    let mut m = manifest.clone();
    m.entries[0].sha256 = pseal::bundle::sha256(&e[0].content).to_vec();
    e[idx("manifest.cbor")].content = m.to_cbor();
    v.push((
        "instance-and-digest-edited".into(),
        seal(&ours, &zstd(&build_tar(&e))),
        "tag does not verify",
    ));

    // Another bundle's sealed identity record moved in, manifest fixed and re-tagged by the
    // site key holder: the record's bundle ID betrays it.
    let other_entries = tar_entries(&unzstd(&decrypt(&s.steward, &std::fs::read(&s.other).unwrap())));
    let other_identity = other_entries
        .iter()
        .find(|e| e.name == "identity.age")
        .unwrap()
        .content
        .clone();
    let mut e = entries.clone();
    e[idx("identity.age")].content = other_identity.clone();
    let mut m = manifest.clone();
    let id_entry = m.entries.iter_mut().find(|x| x.name == "identity.age").unwrap();
    id_entry.size = other_identity.len() as u64;
    id_entry.sha256 = pseal::bundle::sha256(&other_identity).to_vec();
    let bytes = m.to_cbor();
    e[idx("manifest.cbor")].content = bytes.clone();
    e[idx("auth.cbor")].content = retag(&s.site_key, &s.steward.recipient(), &bytes);
    v.push((
        "identity-from-other-bundle".into(),
        seal(&ours, &zstd(&build_tar(&e))),
        "belongs to another bundle",
    ));

    // No instance at all, manifest fixed and re-tagged by the site key holder.
    let mut e: Vec<TarEntry> = entries
        .iter()
        .filter(|x| !x.name.starts_with("instances/"))
        .cloned()
        .collect();
    let mut m = manifest.clone();
    m.entries.retain(|x| x.name == "identity.age");
    let bytes = m.to_cbor();
    let mi = e.iter().position(|x| x.name == "manifest.cbor").unwrap();
    e[mi].content = bytes.clone();
    e[mi + 1].content = retag(&s.site_key, &s.steward.recipient(), &bytes);
    v.push((
        "no-instances-retagged".into(),
        seal(&ours, &zstd(&build_tar(&e))),
        "holds no instance",
    ));

    // The whole plaintext sealed to another steward only.
    let z = decrypt(&s.steward, good);
    v.push((
        "sealed-to-other-steward".into(),
        seal(&[other_steward], &z),
        "not sealed to this steward",
    ));
    v
}

fn refusal_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("REFUSED ")).collect()
}

fn write_variants(dir: &Path, variants: &[Variant]) -> Vec<PathBuf> {
    variants
        .iter()
        .map(|(label, bytes, _)| {
            let p = dir.join(format!("{label}.pseal"));
            write(&p, bytes);
            p
        })
        .collect()
}

#[test]
fn every_tampered_truncated_reordered_or_forged_bundle_is_refused_and_changes_nothing() {
    let s = setup();
    let good = std::fs::read(&s.bundle).unwrap();

    // Control: the unchanged plaintext re-sealed with the stock age crate is accepted by the
    // reader, so every refusal below is due to the change and not to the re-packing.
    let repacked = seal(&[s.steward.recipient()], &decrypt(&s.steward, &good));
    let staging = tempfile::tempdir().unwrap();
    let control = s.world.dir.path().join("control.pseal");
    write(&control, &repacked);
    pseal::bundle::BundleReader::new(&s.steward)
        .open(&control, staging.path())
        .unwrap();
    let entries = tar_entries(&unzstd(&decrypt(&s.steward, &good)));
    let rebuilt = s.world.dir.path().join("rebuilt.pseal");
    write(&rebuilt, &seal(&[s.steward.recipient()], &zstd(&build_tar(&entries))));
    pseal::bundle::BundleReader::new(&s.steward)
        .open(&rebuilt, staging.path())
        .unwrap();

    let mut variants = age_variants(&good);
    variants.extend(plaintext_variants(&s, &good));
    variants.extend(entry_variants(&s, &good));
    variants.extend(forged_variants(&s, &good));
    let mut labels: Vec<&String> = variants.iter().map(|v| &v.0).collect();
    labels.sort();
    labels.dedup();
    assert_eq!(labels.len(), variants.len(), "variant labels are unique");
    eprintln!("{} variants", variants.len());

    let dir = s.world.dir.path().join("variants");
    let paths = write_variants(&dir, &variants);
    let store_before = snapshot(&s.world.store());
    let archive_before = snapshot(&s.world.archive());
    assert!(!archive_before.is_empty());

    // All variants in one run (one passphrase unlock), each must be refused on its own.
    let out = s.world.import(&paths);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    // Results are on standard output. Some refusals quote age's own two-line message; only lines
    // that start with "imported" mean acceptance.
    let accepted: Vec<&str> = stdout.lines().filter(|l| l.starts_with("imported ")).collect();
    assert!(accepted.is_empty(), "variants not refused:\n{}", accepted.join("\n"));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "0 bundles imported (0 instances), 0 already imported, {} refused",
            variants.len()
        )),
        "{stdout}"
    );
    assert!(
        refusal_lines(&stderr).is_empty(),
        "refusals are results, on standard output: {stderr}"
    );
    let lines = refusal_lines(&stdout);
    assert_eq!(lines.len(), variants.len(), "{stdout}");
    for ((label, _, expect), path) in variants.iter().zip(&paths) {
        let name = path.display().to_string();
        let mine: Vec<&&str> = lines
            .iter()
            .filter(|l| l.contains(&format!("{name}:")) || l.contains(&format!("{name} ")))
            .collect();
        assert_eq!(
            mine.len(),
            1,
            "{label}: exactly one refusal naming the bundle\n{stdout}"
        );
        assert!(mine[0].contains(expect), "{label}: expected '{expect}' in: {}", mine[0]);
        // The refusal never quotes content from inside the bundle.
        assert!(mine[0].len() < 600, "{label}: over-long message: {}", mine[0]);
        // age's advice for a header it cannot parse ("have you tried upgrading") misleads here.
        assert!(
            !mine[0].contains("upgrading"),
            "{label}: misleading advice: {}",
            mine[0]
        );
    }
    assert_eq!(snapshot(&s.world.store()), store_before, "the store is unchanged");
    assert_eq!(snapshot(&s.world.archive()), archive_before, "the archive is unchanged");
    let left = staging_left(&s.world.archive());
    assert!(left.is_empty(), "{left:?}");

    // One variant of each class alone: exit status 1 and the bundle named.
    for label in [
        "age-header-mac",
        "age-chunk1-middle",
        "truncated-at-1",
        "zstd-frame-descriptor",
        "tar-header0-name-raw-instances_000001.dcm",
        "content-manifest.cbor-middle",
        "content-identity.age-middle",
        "content-auth.cbor-last",
        "entries-first-two-swapped",
        "manifest-other-site-retagged",
        "sealed-to-other-steward",
    ] {
        let path = dir.join(format!("{label}.pseal"));
        let out = s.world.import(std::slice::from_ref(&path));
        assert_eq!(out.status.code(), Some(1), "{label}");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains(&path.display().to_string()), "{label}: {said}");
    }
    assert_eq!(snapshot(&s.world.store()), store_before);
    assert_eq!(snapshot(&s.world.archive()), archive_before);

    // The untouched bundle still imports: the refusals were about the changes.
    let out = s.world.import(std::slice::from_ref(&s.bundle));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // What is authenticated is the content (the manifest and its digests), not its encoding: a
    // re-encoding of the same tar stream — another zstd window descriptor, another compression
    // level, another age file key — is the same bundle, recognised as already imported.
    let z = decrypt(&s.steward, &good);
    let ours = [s.steward.recipient()];
    let window_descriptor = 5;
    assert_eq!(z[4] & 0x20, 0, "the writer's zstd frame has a window descriptor");
    let reencoded = [
        (
            "zstd-window-descriptor-flipped",
            seal(&ours, &flip(&z, window_descriptor)),
        ),
        (
            "zstd-level-19",
            seal(&ours, &zstd::encode_all(unzstd(&z).as_slice(), 19).unwrap()),
        ),
        ("age-new-file-key", seal(&ours, &z)),
    ];
    let archive_before = snapshot(&s.world.archive());
    for (label, bytes) in reencoded {
        assert_eq!(
            unzstd(&decrypt(&s.steward, &bytes)),
            unzstd(&z),
            "{label}: same tar stream"
        );
        let path = dir.join(format!("{label}.pseal"));
        write(&path, &bytes);
        let out = s.world.import(std::slice::from_ref(&path));
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && said.contains("already imported"),
            "{label}: {said}"
        );
    }
    assert_eq!(snapshot(&s.world.archive()), archive_before);
}

#[test]
fn a_revoked_site_key_is_refused_and_changes_nothing() {
    let s = setup();
    let key = s.site_key.public().to_string();
    cmd("pseal-central")
        .args(["revoke", "--site", "SITE-A", "--key", &key, "--store"])
        .arg(s.world.store())
        .assert()
        .success();
    let store_before = snapshot(&s.world.store());
    let archive_before = snapshot(&s.world.archive());
    let out = s.world.import(std::slice::from_ref(&s.bundle));
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&s.bundle.display().to_string()) && said.contains("was revoked"),
        "{said}"
    );
    assert_eq!(snapshot(&s.world.store()), store_before);
    assert_eq!(snapshot(&s.world.archive()), archive_before);
    // Re-enrolling the revoked key does not bring it back silently either.
    let out = cmd("pseal-central")
        .args(["enroll", "--site", "SITE-A", "--key", &key, "--store"])
        .arg(s.world.store())
        .output()
        .unwrap();
    let again = s.world.import(std::slice::from_ref(&s.bundle));
    if out.status.success() {
        eprintln!("note: re-enrolment of a revoked key was accepted");
    }
    assert_eq!(again.status.code(), Some(1), "a revoked key stays revoked");
}

#[test]
fn wrong_passphrase_and_a_store_mixed_with_another_stewards_database_are_refused() {
    let s = setup();
    let store_before = snapshot(&s.world.store());
    let archive_before = snapshot(&s.world.archive());

    let out = cmd("pseal-central")
        .env("PSEAL_PASSPHRASE", "not the passphrase")
        .arg("import")
        .arg("--store")
        .arg(s.world.store())
        .arg("--archive")
        .arg(s.world.archive())
        .arg(&s.bundle)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("wrong passphrase") && err.contains("steward-identity.age"),
        "{err}"
    );
    assert!(!err.contains("not the passphrase"), "the passphrase is never echoed");

    // This steward's identity file next to another steward's database.
    let other = World::new();
    let mixed = s.world.dir.path().join("mixed-store");
    std::fs::create_dir_all(&mixed).unwrap();
    std::fs::copy(
        s.world.store().join("steward-identity.age"),
        mixed.join("steward-identity.age"),
    )
    .unwrap();
    std::fs::copy(other.store().join("store.sqlite"), mixed.join("store.sqlite")).unwrap();
    let mixed_before = snapshot(&mixed);
    for args in [vec!["import"], vec!["audit", "--verify"]] {
        let mut c = cmd("pseal-central");
        c.args(&args).arg("--store").arg(&mixed);
        if args[0] == "import" {
            c.arg("--archive").arg(s.world.archive()).arg(&s.bundle);
        }
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("belongs to steward") && err.contains("mixed up"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(snapshot(&mixed), mixed_before, "the mixed store is not changed");
    assert_eq!(snapshot(&s.world.store()), store_before);
    assert_eq!(snapshot(&s.world.archive()), archive_before);
}
