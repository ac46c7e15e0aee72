//! The bundle writer and reader agree, and the reader refuses every alteration.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pseal::bundle::{BundleError, BundleReader, BundleWriter, Compressor, ProfileInfo};
use pseal::deid::Captured;
use pseal::identity::{IdentityHeader, IdentityOpener, IdentitySealer, InstanceRecord, LocalId, IDENTITY_VERSION};
use pseal::keys::{SiteSecretKey, StewardIdentity};
use std::io::Read;
use std::path::{Path, PathBuf};

struct Fixture {
    dir: tempfile::TempDir,
    steward: StewardIdentity,
    site: SiteSecretKey,
}

fn profile() -> ProfileInfo {
    ProfileInfo {
        options: vec!["clean-descriptors".into()],
        method: "test".into(),
    }
}

fn write_bundle(f: &Fixture, instances: &[Vec<u8>]) -> PathBuf {
    let out = f.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let recipients = vec![f.steward.recipient()];
    let mut writer = BundleWriter::create(&out, "SITE-A", &recipients).unwrap();
    let temp = tempfile::tempfile().unwrap();
    let header = IdentityHeader {
        version: IDENTITY_VERSION,
        bundle_id: writer.bundle_id().into(),
        local_id: LocalId::new("12345678").unwrap(),
        linkage: None,
    };
    let mut sealer = IdentitySealer::new(temp.try_clone().unwrap(), &recipients, &header).unwrap();
    for bytes in instances {
        let entry = writer.add_instance(bytes).unwrap();
        let captured = Captured {
            birth_date: Some("19700101".into()),
            ..Captured::default()
        };
        sealer.add(&InstanceRecord { entry, captured }).unwrap();
    }
    sealer.finish().unwrap();
    writer.finish(temp, profile(), &f.site).unwrap()
}

fn fixture() -> Fixture {
    Fixture {
        dir: tempfile::tempdir().unwrap(),
        steward: StewardIdentity::generate(),
        site: SiteSecretKey::generate(),
    }
}

fn staging(f: &Fixture) -> PathBuf {
    let s = f.dir.path().join("staging");
    std::fs::create_dir_all(&s).unwrap();
    s
}

fn staging_is_empty(f: &Fixture) -> bool {
    std::fs::read_dir(staging(f)).unwrap().next().is_none()
}

fn instances() -> Vec<Vec<u8>> {
    (0..3u8)
        .map(|i| (0..5000u32).map(|j| (j as u8).wrapping_mul(i + 1)).collect())
        .collect()
}

#[test]
fn what_is_written_is_read_back_identical() {
    let f = fixture();
    let data = instances();
    let path = write_bundle(&f, &data);
    assert!(path.file_name().unwrap().to_string_lossy().starts_with("SITE-A-"));
    let verified = BundleReader::new(&f.steward).open(&path, &staging(&f)).unwrap();
    assert_eq!(verified.manifest.site, "SITE-A");
    assert_eq!(verified.manifest.site_key, f.site.public());
    assert_eq!(verified.manifest.instance_count(), 3);
    for ((name, staged), original) in verified.instances().iter().zip(&data) {
        assert!(name.starts_with("instances/"));
        assert_eq!(&std::fs::read(staged).unwrap(), original);
    }
    let file = std::fs::File::open(verified.identity_path()).unwrap();
    let mut opener = IdentityOpener::open(file, &f.steward).unwrap();
    assert_eq!(opener.header().local_id.expose(), "12345678");
    assert_eq!(opener.header().bundle_id, verified.manifest.bundle_id);
    let mut n = 0;
    while let Some(rec) = opener.next_record().unwrap() {
        assert_eq!(rec.entry, verified.instances()[n].0);
        assert_eq!(rec.captured.birth_date.as_deref(), Some("19700101"));
        n += 1;
    }
    assert_eq!(n, 3);
    drop(verified);
    assert!(staging_is_empty(&f), "staging is removed with the verified bundle");
    // No partial files are left next to the bundle.
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

#[test]
fn a_compressor_kept_from_one_bundle_to_the_next_writes_each_whole() {
    // Export passes compressors from one patient's bundle to a later one; every bundle must be a
    // fresh, complete zstd frame that holds only its own entries.
    let f = fixture();
    let out = f.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let recipients = vec![f.steward.recipient()];
    let mut compressor = Compressor::new().unwrap();
    let mut written = Vec::new();
    for round in 0..3u8 {
        let mut writer = BundleWriter::create_with(&out, "SITE-A", &recipients, compressor).unwrap();
        let identity = tempfile::tempfile().unwrap();
        let header = IdentityHeader {
            version: IDENTITY_VERSION,
            bundle_id: writer.bundle_id().into(),
            local_id: LocalId::new(&format!("patient-{round}")).unwrap(),
            linkage: None,
        };
        let mut sealer = IdentitySealer::new(identity.try_clone().unwrap(), &recipients, &header).unwrap();
        // Several MiB per bundle, so the multi-threaded compressor runs more than one job.
        let data: Vec<Vec<u8>> = (0..4u32)
            .map(|i| {
                (0..(1u32 << 20))
                    .map(|j| (j.wrapping_mul(31 + i) >> 7) as u8 ^ round)
                    .collect()
            })
            .collect();
        for bytes in &data {
            let entry = writer.add_instance(bytes).unwrap();
            sealer
                .add(&InstanceRecord {
                    entry,
                    captured: Captured::default(),
                })
                .unwrap();
        }
        sealer.finish().unwrap();
        let (path, back) = writer.finish_keeping_compressor(identity, profile(), &f.site).unwrap();
        compressor = back;
        written.push((path, data));
    }
    for (round, (path, data)) in written.iter().enumerate() {
        let staging = f.dir.path().join(format!("staging-{round}"));
        std::fs::create_dir_all(&staging).unwrap();
        let verified = BundleReader::new(&f.steward).open(path, &staging).unwrap();
        assert_eq!(verified.manifest.instance_count(), data.len(), "bundle {round}");
        for ((_, staged), original) in verified.instances().iter().zip(data) {
            assert!(
                std::fs::read(staged).unwrap() == *original,
                "bundle {round}: an instance changed"
            );
        }
        let file = std::fs::File::open(verified.identity_path()).unwrap();
        let opener = IdentityOpener::open(file, &f.steward).unwrap();
        assert_eq!(opener.header().local_id.expose(), format!("patient-{round}"));
    }
}

#[test]
fn another_steward_cannot_open_it() {
    let f = fixture();
    let path = write_bundle(&f, &instances());
    let other = StewardIdentity::generate();
    let err = BundleReader::new(&other).open(&path, &staging(&f)).unwrap_err();
    assert!(matches!(err, BundleError::NotForThisSteward { .. }), "{err}");
    assert!(err.to_string().contains(&path.display().to_string()));
}

#[test]
fn every_flipped_byte_and_truncation_is_refused() {
    let f = fixture();
    let path = write_bundle(&f, &instances());
    let good = std::fs::read(&path).unwrap();
    let reader = BundleReader::new(&f.steward);
    let bad = f.dir.path().join("bad.pseal");
    // A spread of positions across the age header, the payload chunks and the end.
    let mut positions: Vec<usize> = (0..good.len()).step_by(good.len() / 97 + 1).collect();
    positions.extend([0, 10, 40, 100, 200, good.len() - 1, good.len() - 17]);
    for pos in positions {
        let mut bytes = good.clone();
        bytes[pos] ^= 0x40;
        std::fs::write(&bad, &bytes).unwrap();
        let err = reader.open(&bad, &staging(&f));
        assert!(err.is_err(), "flipping byte {pos} was not detected");
        assert!(err.unwrap_err().to_string().contains("bad.pseal"));
        assert!(staging_is_empty(&f));
    }
    for len in [
        0,
        1,
        21,
        100,
        good.len() / 3,
        good.len() / 2,
        good.len() - 1000,
        good.len() - 1,
    ] {
        std::fs::write(&bad, &good[..len]).unwrap();
        assert!(
            reader.open(&bad, &staging(&f)).is_err(),
            "truncation at {len} was not detected"
        );
        assert!(staging_is_empty(&f));
    }
}

/// Re-packs a bundle's plaintext with a change, sealing it again to the same steward: the
/// forger knows the steward's public recipient but not the site key.
fn repack(f: &Fixture, bundle: &Path, change: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>) -> PathBuf {
    let file = std::fs::File::open(bundle).unwrap();
    let dec = age::Decryptor::new_buffered(std::io::BufReader::new(file)).unwrap();
    let r = dec
        .decrypt(std::iter::once(f.steward.age_identity() as &dyn age::Identity))
        .unwrap();
    let mut plain = Vec::new();
    zstd::stream::read::Decoder::new(r)
        .unwrap()
        .read_to_end(&mut plain)
        .unwrap();
    let mut builder = tar::Builder::new(Vec::new());
    for entry in tar::Archive::new(plain.as_slice()).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().to_string();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        if let Some(content) = change(&name, content) {
            let mut h = entry.header().clone();
            h.set_size(content.len() as u64);
            h.set_cksum();
            builder.append(&h, content.as_slice()).unwrap();
        }
    }
    let tar = builder.into_inner().unwrap();
    let compressed = zstd::encode_all(tar.as_slice(), 3).unwrap();
    let recipient = f.steward.recipient().age_recipient();
    let enc = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient)).unwrap();
    let mut out = Vec::new();
    let mut w = enc.wrap_output(&mut out).unwrap();
    std::io::Write::write_all(&mut w, &compressed).unwrap();
    w.finish().unwrap();
    let path = f.dir.path().join("forged.pseal");
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn altered_dropped_or_reordered_entries_are_refused() {
    let f = fixture();
    let path = write_bundle(&f, &instances());
    let reader = BundleReader::new(&f.steward);
    // Unchanged re-pack still verifies: the checks below fail for the change, not the re-pack.
    let same = repack(&f, &path, |_, c| Some(c));
    reader.open(&same, &staging(&f)).unwrap();

    let altered = repack(&f, &path, |n, mut c| {
        if n == "instances/000002.dcm" {
            c[10] ^= 1;
        }
        Some(c)
    });
    let err = reader.open(&altered, &staging(&f)).unwrap_err().to_string();
    assert!(err.contains("instances/000002.dcm") && err.contains("SHA-256"), "{err}");

    let dropped = repack(&f, &path, |n, c| (n != "instances/000003.dcm").then_some(c));
    assert!(reader.open(&dropped, &staging(&f)).is_err());

    let manifest_edited = repack(&f, &path, |n, mut c| {
        if n == "manifest.cbor" {
            let last = c.len() - 1;
            c[last] ^= 1;
        }
        Some(c)
    });
    let err = reader.open(&manifest_edited, &staging(&f)).unwrap_err();
    assert!(
        matches!(err, BundleError::SiteTag { .. } | BundleError::Corrupt { .. }),
        "{err}"
    );

    let no_auth = repack(&f, &path, |n, c| (n != "auth.cbor").then_some(c));
    assert!(reader
        .open(&no_auth, &staging(&f))
        .unwrap_err()
        .to_string()
        .contains("incomplete"));
    assert!(staging_is_empty(&f));
}
