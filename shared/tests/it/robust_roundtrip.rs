//! Property: whatever is written with `BundleWriter` + `IdentitySealer` reads back identical
//! through `BundleReader` + `IdentityOpener`; and regressions for what the reader used to accept.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use pseal::bundle::{BundleReader, BundleWriter, ProfileInfo};
use pseal::deid::{Captured, CapturedValue, UidPair};
use pseal::identity::{IdentityHeader, IdentityOpener, IdentitySealer, InstanceRecord, LocalId, IDENTITY_VERSION};
use pseal::keys::{SiteSecretKey, StewardIdentity};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn keys() -> &'static (StewardIdentity, SiteSecretKey) {
    static K: OnceLock<(StewardIdentity, SiteSecretKey)> = OnceLock::new();
    K.get_or_init(|| (StewardIdentity::generate(), SiteSecretKey::generate()))
}

/// Instance bytes from (length, seed): cheap to generate, up to several age chunks long.
fn bytes_of(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn captured() -> impl Strategy<Value = Captured> {
    let uid = "[0-9]{1,8}(\\.[0-9]{1,8}){0,6}";
    let uids = prop::collection::vec((uid, uid), 0..4).prop_map(|v| {
        v.into_iter()
            .map(|(placeholder, original)| UidPair { placeholder, original })
            .collect()
    });
    let value = (
        prop::collection::vec((any::<u32>(), 0u32..100), 0..3),
        any::<u32>(),
        prop::sample::select(vec!["DA", "DT", "TM"]),
        "[0-9.+-]{0,26}",
    )
        .prop_map(|(path, tag, vr, value)| CapturedValue {
            path,
            tag,
            vr: vr.into(),
            value,
        });
    let values = prop::collection::vec(value, 0..4);
    (uids, values, prop::option::of("[0-9]{8}")).prop_map(|(uids, values, birth_date)| Captured {
        uids,
        values,
        birth_date,
    })
}

fn write_bundle(
    dir: &Path,
    site: &str,
    local_id: &str,
    instances: &[Vec<u8>],
    records: &[Captured],
) -> (PathBuf, String) {
    let (steward, site_key) = keys();
    let recipients = vec![steward.recipient()];
    let mut writer = BundleWriter::create(dir, site, &recipients).unwrap();
    let temp = tempfile::tempfile().unwrap();
    let header = IdentityHeader {
        version: IDENTITY_VERSION,
        bundle_id: writer.bundle_id().into(),
        local_id: LocalId::new(local_id).unwrap(),
        linkage: None,
    };
    let mut sealer = IdentitySealer::new(temp.try_clone().unwrap(), &recipients, &header).unwrap();
    for (bytes, captured) in instances.iter().zip(records) {
        let entry = writer.add_instance(bytes).unwrap();
        sealer
            .add(&InstanceRecord {
                entry,
                captured: captured.clone(),
            })
            .unwrap();
    }
    sealer.finish().unwrap();
    let id = writer.bundle_id().to_string();
    let profile = ProfileInfo {
        options: vec!["clean-descriptors".into()],
        method: "round trip".into(),
    };
    (writer.finish(temp, profile, site_key).unwrap(), id)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn anything_written_reads_back_identical(
        sizes in prop::collection::vec((prop_oneof![0usize..600, 60_000usize..140_000], any::<u64>()), 1..5),
        records in prop::collection::vec(captured(), 5),
        site in "[A-Za-z0-9][A-Za-z0-9._-]{0,20}",
        local_id in "[A-Za-z0-9^ -]{0,30}[A-Za-z0-9]",
    ) {
        let dir = tempfile::tempdir().unwrap();
        let instances: Vec<Vec<u8>> = sizes.iter().map(|&(len, seed)| bytes_of(len, seed)).collect();
        let (path, bundle_id) = write_bundle(dir.path(), &site, &local_id, &instances, &records);
        let staging = dir.path().join("staging");
        std::fs::create_dir_all(&staging).unwrap();
        let (steward, site_key) = keys();
        let verified = BundleReader::new(steward).open(&path, &staging).unwrap();
        prop_assert_eq!(&verified.manifest.site, &site);
        prop_assert_eq!(&verified.manifest.bundle_id, &bundle_id);
        prop_assert_eq!(verified.manifest.site_key, site_key.public());
        prop_assert_eq!(verified.instances().len(), instances.len());
        for (i, ((name, staged), original)) in verified.instances().iter().zip(&instances).enumerate() {
            prop_assert_eq!(name, &format!("instances/{:06}.dcm", i + 1));
            prop_assert_eq!(&std::fs::read(staged).unwrap(), original);
        }
        let file = std::fs::File::open(verified.identity_path()).unwrap();
        let mut opener = IdentityOpener::open(file, steward).unwrap();
        prop_assert_eq!(opener.header().local_id.expose(), local_id.trim());
        prop_assert_eq!(&opener.header().bundle_id, &bundle_id);
        for (i, record) in records.iter().take(instances.len()).enumerate() {
            let back = opener.next_record().unwrap().unwrap();
            prop_assert_eq!(&back.entry, &verified.instances()[i].0);
            prop_assert_eq!(&back.captured, record);
        }
        prop_assert!(opener.next_record().unwrap().is_none());
        drop(verified);
        prop_assert!(std::fs::read_dir(&staging).unwrap().next().is_none(), "staging cleaned");
    }
}

/// Decrypts, lets `change` edit the tar stream, re-seals to the same steward.
fn repack(path: &Path, out: &Path, change: impl Fn(&mut Vec<u8>)) {
    let (steward, _) = keys();
    let file = std::fs::read(path).unwrap();
    let dec = age::Decryptor::new_buffered(file.as_slice()).unwrap();
    let mut r = dec
        .decrypt(std::iter::once(steward.age_identity() as &dyn age::Identity))
        .unwrap();
    let mut z = Vec::new();
    r.read_to_end(&mut z).unwrap();
    let mut tar = zstd::decode_all(z.as_slice()).unwrap();
    change(&mut tar);
    let z = zstd::encode_all(tar.as_slice(), 3).unwrap();
    let recipient = steward.recipient().age_recipient();
    let enc = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient)).unwrap();
    let mut sealed = Vec::new();
    let mut w = enc.wrap_output(&mut sealed).unwrap();
    w.write_all(&z).unwrap();
    w.finish().unwrap();
    std::fs::write(out, sealed).unwrap();
}

/// A named change to a tar header.
type HeaderEdit = (&'static str, Box<dyn Fn(&mut tar::Header)>);

/// Regression: tar headers are not covered by the site tag, and the reader did not check the
/// fields the format fixes (mode, uid, gid, mtime, names), so a bundle with a header changed and
/// its checksum recomputed was accepted (`robust_tamper` found it through the real import).
#[test]
fn regression_reader_refuses_non_normalized_tar_headers() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_bundle(dir.path(), "SITE-A", "123", &[vec![1, 2, 3]], &[Captured::default()]);
    let staging = dir.path().join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    let reader = BundleReader::new(&keys().0);
    let edits: Vec<HeaderEdit> = vec![
        ("mode", Box::new(|h| h.set_mode(0o600))),
        ("mtime", Box::new(|h| h.set_mtime(1))),
        ("uid", Box::new(|h| h.set_uid(1))),
        ("gid", Box::new(|h| h.set_gid(1))),
        ("user", Box::new(|h| h.set_username("nurse").unwrap())),
        ("group", Box::new(|h| h.set_groupname("radiology").unwrap())),
        ("link", Box::new(|h| h.set_link_name("x").unwrap())),
        ("device", Box::new(|h| h.set_device_major(1).unwrap())),
        ("prefix", Box::new(|h| h.as_ustar_mut().unwrap().prefix[0] = b'a')),
    ];
    for (what, edit) in &edits {
        for entry in 0..4 {
            let out = dir.path().join(format!("{what}-{entry}.pseal"));
            repack(&path, &out, |tar| {
                let off = header_offset(tar, entry);
                let mut h = tar::Header::new_old();
                h.as_mut_bytes().copy_from_slice(&tar[off..off + 512]);
                edit(&mut h);
                h.set_cksum();
                tar[off..off + 512].copy_from_slice(h.as_bytes());
            });
            let err = reader.open(&out, &staging).unwrap_err().to_string();
            assert!(
                err.contains("is not normalized") && err.contains(&format!("{what}-{entry}.pseal")),
                "{what} {entry}: {err}"
            );
        }
    }
    // The unchanged re-pack is accepted: the refusals are about the headers.
    let same = dir.path().join("same.pseal");
    repack(&path, &same, |_| {});
    reader.open(&same, &staging).unwrap();
}

/// Offset of the `n`-th tar header.
fn header_offset(tar: &[u8], n: usize) -> usize {
    let mut archive = tar::Archive::new(tar);
    let entry = archive.entries().unwrap().nth(n).unwrap().unwrap();
    entry.raw_header_position() as usize
}

/// Regression: format section 3 says a bundle has at least one instance, but the reader accepted
/// a bundle whose first entry is the identity record; an import then minted a pseudonym and
/// recorded a bundle with no images (and an audit entry with an empty pseudonym).
#[test]
fn regression_reader_refuses_a_bundle_without_instances() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_bundle(dir.path(), "SITE-A", "123", &[], &[]);
    let staging = dir.path().join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    let err = BundleReader::new(&keys().0)
        .open(&path, &staging)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no instance") && err.contains(&path.display().to_string()),
        "{err}"
    );
}
