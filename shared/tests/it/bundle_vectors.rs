//! Test vectors for the bundle format (docs/vectors/): each file with its keys and expected outcome.
//!
//! `cargo test -p pseal --test it bundle_vectors::` checks every vector against the reader.
//! `PSEAL_REGENERATE=1 cargo test -p pseal --test it bundle_vectors::` writes them anew (age and HPKE
//! are randomized, so the bytes change; the outcomes do not). The keys are test keys, published.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use age::secrecy::ExposeSecret;
use pseal::auth::seal_tag;
use pseal::bundle::manifest::{Entry, EntryKind, Manifest, ProfileInfo, FORMAT_VERSION};
use pseal::bundle::writer::normalized_header;
use pseal::bundle::{sha256, BundleReader};
use pseal::deid::{Captured, CapturedValue, UidPair};
use pseal::identity::{IdentityHeader, IdentityOpener, IdentitySealer, InstanceRecord, LocalId, IDENTITY_VERSION};
use pseal::keys::{SiteSecretKey, StewardIdentity, StewardRecipient};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Serialize, Deserialize)]
struct VectorSet {
    note: String,
    steward_identity: String,
    backup_identity: String,
    other_steward_identity: String,
    site: String,
    site_key_public: String,
    site_key_secret: String,
    vectors: Vec<Vector>,
}

#[derive(Serialize, Deserialize)]
struct Vector {
    file: String,
    /// `success`, or the refusal kind (`BundleError::kind`).
    expect: String,
    /// Which identity opens it: `steward` or `backup`.
    identity: String,
    comment: String,
    /// On success: the local ID in the identity record and each instance's SHA-256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    local_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    instances: Vec<String>,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/vectors")
}

struct Keys {
    steward: StewardIdentity,
    backup: StewardIdentity,
    other: StewardIdentity,
    site: SiteSecretKey,
}

fn instances() -> Vec<Vec<u8>> {
    // Stand-ins for de-identified Part 10 files: the format does not look inside them.
    (1..=2u8)
        .map(|i| {
            let mut v = vec![0u8; 128];
            v.extend_from_slice(b"DICM");
            v.extend((0..600u32).map(|j| (j as u8).wrapping_mul(i)));
            v
        })
        .collect()
}

fn identity_record(bundle_id: &str, recipients: &[StewardRecipient], entries: &[String]) -> Vec<u8> {
    let header = IdentityHeader {
        version: IDENTITY_VERSION,
        bundle_id: bundle_id.into(),
        local_id: LocalId::new("TEST-0000001").unwrap(),
        linkage: None,
    };
    let mut sealer = IdentitySealer::new(Vec::new(), recipients, &header).unwrap();
    for (n, entry) in entries.iter().enumerate() {
        let captured = Captured {
            uids: vec![UidPair {
                placeholder: format!("2.25.{}", 1000 + n),
                original: format!("1.2.3.4.{n}"),
            }],
            values: vec![CapturedValue {
                path: vec![],
                tag: 0x0008_0020,
                vr: "DA".into(),
                value: "20240102".into(),
            }],
            birth_date: Some("19700101".into()),
        };
        sealer
            .add(&InstanceRecord {
                entry: entry.clone(),
                captured,
            })
            .unwrap();
    }
    sealer.finish().unwrap()
}

/// Everything a packer may get wrong on purpose.
struct Plan {
    recipients: Vec<StewardRecipient>,
    manifest_steward: StewardRecipient,
    format: u32,
    /// Changes applied to the (name, content) list after the manifest and tag are made.
    tamper: fn(&mut Vec<(String, Vec<u8>)>),
}

fn pack(keys: &Keys, plan: &Plan) -> Vec<u8> {
    let bundle_id = "00112233445566778899aabbccddeeff".to_string();
    let names: Vec<String> = (1..=2).map(pseal::bundle::instance_entry_name).collect();
    let mut list: Vec<(String, Vec<u8>)> = names.iter().cloned().zip(instances()).collect();
    list.push((
        "identity.age".into(),
        identity_record(&bundle_id, &plan.recipients, &names),
    ));
    let entries: Vec<Entry> = list
        .iter()
        .map(|(n, c)| Entry {
            name: n.clone(),
            kind: if n == "identity.age" {
                EntryKind::Identity
            } else {
                EntryKind::Instance
            },
            size: c.len() as u64,
            sha256: sha256(c).to_vec(),
        })
        .collect();
    let manifest = Manifest {
        format: plan.format,
        bundle_id,
        site: "SITE-A".into(),
        site_key: keys.site.public(),
        steward: plan.manifest_steward.clone(),
        tool: "pseal test vectors".into(),
        profile: ProfileInfo {
            options: vec!["clean-descriptors".into()],
            method: "test".into(),
        },
        entries,
    };
    let manifest_bytes = manifest.to_cbor();
    let tag = seal_tag(&keys.site, &plan.manifest_steward, &sha256(&manifest_bytes)).unwrap();
    let mut tag_bytes = Vec::new();
    ciborium::into_writer(&tag, &mut tag_bytes).unwrap();
    list.push(("manifest.cbor".into(), manifest_bytes));
    list.push(("auth.cbor".into(), tag_bytes));
    (plan.tamper)(&mut list);

    let mut tar = tar::Builder::new(Vec::new());
    for (name, content) in &list {
        tar.append(
            &normalized_header(name, content.len() as u64).unwrap(),
            content.as_slice(),
        )
        .unwrap();
    }
    let compressed = zstd::encode_all(tar.into_inner().unwrap().as_slice(), 3).unwrap();
    let ages: Vec<age::x25519::Recipient> = plan.recipients.iter().map(StewardRecipient::age_recipient).collect();
    let enc = age::Encryptor::with_recipients(ages.iter().map(|r| r as &dyn age::Recipient)).unwrap();
    let mut out = Vec::new();
    let mut w = enc.wrap_output(&mut out).unwrap();
    w.write_all(&compressed).unwrap();
    w.finish().unwrap();
    out
}

fn none(_: &mut Vec<(String, Vec<u8>)>) {}

fn generate() {
    let keys = Keys {
        steward: StewardIdentity::generate(),
        backup: StewardIdentity::generate(),
        other: StewardIdentity::generate(),
        site: SiteSecretKey::generate(),
    };
    let us = keys.steward.recipient();
    let both = vec![us.clone(), keys.backup.recipient()];
    let plan = |recipients: Vec<StewardRecipient>, tamper: fn(&mut Vec<(String, Vec<u8>)>)| Plan {
        recipients,
        manifest_steward: us.clone(),
        format: FORMAT_VERSION,
        tamper,
    };
    let hashes: Vec<String> = instances().iter().map(|i| hex::encode(sha256(i))).collect();
    let ok = |file: &str, identity: &str, comment: &str| Vector {
        file: file.into(),
        expect: "success".into(),
        identity: identity.into(),
        comment: comment.into(),
        local_id: Some("TEST-0000001".into()),
        instances: hashes.clone(),
    };
    let fail = |file: &str, expect: &str, comment: &str| Vector {
        file: file.into(),
        expect: expect.into(),
        identity: "steward".into(),
        comment: comment.into(),
        local_id: None,
        instances: vec![],
    };

    let mut files: Vec<(Vector, Vec<u8>)> = Vec::new();
    let good = pack(&keys, &plan(vec![us.clone()], none));
    files.push((
        ok("good_steward.pseal", "steward", "two instances sealed to the steward"),
        good.clone(),
    ));
    files.push((ok("good_backup.pseal", "backup", "sealed to the steward and a backup recipient; opened with the backup identity (the site tag still verifies with the steward's public key)"), pack(&keys, &plan(both.clone(), none))));
    let mut flipped = good.clone();
    let at = flipped.len() - 40;
    flipped[at] ^= 0x01;
    files.push((
        fail(
            "fail_flipped_payload.pseal",
            "corrupt",
            "one bit flipped in the last age payload chunk",
        ),
        flipped,
    ));
    files.push((
        fail("fail_truncated.pseal", "corrupt", "the last 100 bytes cut off"),
        good[..good.len() - 100].to_vec(),
    ));
    files.push((
        fail("fail_not_age.pseal", "not-age", "not an age file"),
        b"PK\x03\x04 this is a zip file, not a bundle".to_vec(),
    ));
    files.push((
        fail(
            "fail_other_steward.pseal",
            "not-for-this-steward",
            "sealed only to another steward",
        ),
        pack(
            &keys,
            &Plan {
                recipients: vec![keys.other.recipient()],
                manifest_steward: keys.other.recipient(),
                format: FORMAT_VERSION,
                tamper: none,
            },
        ),
    ));
    files.push((
        fail(
            "fail_manifest_for_other_steward.pseal",
            "wrong-steward",
            "sealed to us, but the manifest and tag are addressed to another steward",
        ),
        pack(
            &keys,
            &Plan {
                recipients: vec![us.clone()],
                manifest_steward: keys.other.recipient(),
                format: FORMAT_VERSION,
                tamper: none,
            },
        ),
    ));
    files.push((
        fail(
            "fail_version_2.pseal",
            "unsupported-version",
            "a correctly authenticated manifest of format 2",
        ),
        pack(
            &keys,
            &Plan {
                recipients: vec![us.clone()],
                manifest_steward: us.clone(),
                format: 2,
                tamper: none,
            },
        ),
    ));
    files.push((
        fail(
            "fail_instance_altered.pseal",
            "corrupt",
            "an instance changed after the manifest was made: its SHA-256 does not match",
        ),
        pack(&keys, &plan(vec![us.clone()], |l| l[1].1[200] ^= 1)),
    ));
    files.push((
        fail(
            "fail_manifest_altered.pseal",
            "site-tag",
            "the manifest changed after the tag was made",
        ),
        pack(
            &keys,
            &plan(vec![us.clone()], |l| {
                let m = l.iter_mut().find(|(n, _)| n == "manifest.cbor").unwrap();
                let last = m.1.len() - 1;
                m.1[last] ^= 1;
            }),
        ),
    ));
    files.push((
        fail("fail_entries_reordered.pseal", "corrupt", "the two instances swapped"),
        pack(&keys, &plan(vec![us.clone()], |l| l.swap(0, 1))),
    ));
    files.push((
        fail("fail_instance_dropped.pseal", "corrupt", "the second instance removed"),
        pack(
            &keys,
            &plan(vec![us.clone()], |l| {
                l.remove(1);
            }),
        ),
    ));
    files.push((
        fail(
            "fail_entry_after_auth.pseal",
            "corrupt",
            "an extra entry after auth.cbor",
        ),
        pack(
            &keys,
            &plan(vec![us.clone()], |l| l.push(("extra.txt".into(), b"x".to_vec()))),
        ),
    ));
    files.push((
        fail("fail_no_auth.pseal", "corrupt", "auth.cbor missing"),
        pack(
            &keys,
            &plan(vec![us.clone()], |l| {
                l.pop();
            }),
        ),
    ));

    let out = dir();
    std::fs::create_dir_all(&out).unwrap();
    let mut set = VectorSet {
        note: "Test keys, published on purpose: never use them for real data. Generated by `PSEAL_REGENERATE=1 cargo test -p pseal --test it bundle_vectors::`.".into(),
        steward_identity: keys.steward.age_identity().to_string().expose_secret().to_string(),
        backup_identity: keys.backup.age_identity().to_string().expose_secret().to_string(),
        other_steward_identity: keys.other.age_identity().to_string().expose_secret().to_string(),
        site: "SITE-A".into(),
        site_key_public: keys.site.public().to_string(),
        site_key_secret: String::new(),
        vectors: Vec::new(),
    };
    set.site_key_secret = {
        let p = out.join(".site.key.tmp");
        let _ = std::fs::remove_file(&p);
        keys.site.write_new(&p, "SITE-A").unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::remove_file(&p).unwrap();
        text.lines().find(|l| !l.starts_with('#')).unwrap().to_string()
    };
    for (v, bytes) in files {
        std::fs::write(out.join(&v.file), bytes).unwrap();
        set.vectors.push(v);
    }
    std::fs::write(
        out.join("vectors.json"),
        serde_json::to_string_pretty(&set).unwrap() + "\n",
    )
    .unwrap();
}

#[test]
fn every_vector_has_its_expected_outcome() {
    if std::env::var_os("PSEAL_REGENERATE").is_some() {
        generate();
    }
    let set: VectorSet =
        serde_json::from_slice(&std::fs::read(dir().join("vectors.json")).expect("docs/vectors/vectors.json")).unwrap();
    let steward = StewardIdentity::parse(&set.steward_identity).unwrap();
    let backup = StewardIdentity::parse(&set.backup_identity).unwrap();
    let site = SiteSecretKey::parse(&set.site_key_secret).unwrap();
    assert_eq!(site.public().to_string(), set.site_key_public);
    assert!(set.vectors.len() >= 10);
    for v in &set.vectors {
        let staging = tempfile::tempdir().unwrap();
        let identity = if v.identity == "backup" { &backup } else { &steward };
        let path = dir().join(&v.file);
        let result = if v.identity == "backup" {
            // A backup identity decrypts; the tag is checked against the steward key the manifest names.
            open_with_backup(identity, &steward, &path)
        } else {
            BundleReader::new(identity).open(&path, staging.path()).map(|b| {
                let file = std::fs::File::open(b.identity_path()).unwrap();
                let opener = IdentityOpener::open(file, identity).unwrap();
                let hashes: Vec<String> = b
                    .instances()
                    .iter()
                    .map(|(_, p)| hex::encode(sha256(&std::fs::read(p).unwrap())))
                    .collect();
                (opener.header().local_id.expose().to_string(), hashes)
            })
        };
        match (v.expect.as_str(), result) {
            ("success", Ok((local_id, hashes))) => {
                assert_eq!(Some(local_id), v.local_id, "{}", v.file);
                assert_eq!(hashes, v.instances, "{}", v.file);
            }
            ("success", Err(e)) => panic!("{} should open: {e}", v.file),
            (kind, Ok(_)) => panic!("{} should be refused as {kind}", v.file),
            (kind, Err(e)) => assert_eq!(e.kind(), kind, "{}: {e}", v.file),
        }
    }
}

/// The backup identity opens the age layers; the steward's public key verifies the tag.
fn open_with_backup(
    backup: &StewardIdentity,
    steward: &StewardIdentity,
    path: &Path,
) -> Result<(String, Vec<String>), pseal::bundle::BundleError> {
    use std::io::Read;
    let file = std::fs::File::open(path).unwrap();
    let dec = age::Decryptor::new_buffered(std::io::BufReader::new(file)).unwrap();
    let plain = dec
        .decrypt(std::iter::once(backup.age_identity() as &dyn age::Identity))
        .unwrap();
    let mut tar_bytes = Vec::new();
    zstd::stream::read::Decoder::new(plain)
        .unwrap()
        .read_to_end(&mut tar_bytes)
        .unwrap();
    let mut local = String::new();
    let mut hashes = Vec::new();
    let mut manifest = None;
    for entry in tar::Archive::new(tar_bytes.as_slice()).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().to_string();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        match name.as_str() {
            "identity.age" => {
                local = IdentityOpener::open(content.as_slice(), backup)
                    .unwrap()
                    .header()
                    .local_id
                    .expose()
                    .to_string()
            }
            "manifest.cbor" => manifest = Some(content),
            "auth.cbor" => {
                let m = manifest.clone().unwrap();
                let parsed = Manifest::from_cbor(&m).unwrap();
                assert_eq!(parsed.steward, steward.recipient());
                let tag: pseal::auth::SiteTag = ciborium::from_reader(content.as_slice()).unwrap();
                pseal::auth::open_tag(steward, &parsed.site_key, &sha256(&m), &tag).unwrap();
            }
            _ => hashes.push(hex::encode(sha256(&content))),
        }
    }
    Ok((local, hashes))
}
