//! Criterion: re-key one de-identified 256×256 MR instance, the per-instance hot path of import.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pseal::deid::{DeidConfig, Options, Profile, UidPlaceholderKey};
use pseal_central::rekey::{self, RekeyContext};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.dcm");
    std::fs::write(&source, pseal_fixtures::sample::mr_instance(256).unwrap()).unwrap();
    let config = DeidConfig {
        options: Options::parse_list("default").unwrap(),
        ..DeidConfig::default()
    };
    let profile = Profile::new(&config);
    let done = pseal::export::instance::deidentify_path(&source, &profile, &UidPlaceholderKey::random()).unwrap();
    let staged = dir.path().join("000001.dcm");
    let mut file = std::fs::File::create(&staged).unwrap();
    done.encoded.write_to(&mut file).unwrap();
    drop(file);
    let size = std::fs::metadata(&staged).unwrap().len();
    let pseudonym = pseal::pseudonym::Pseudonym::random();
    let archive_uid = |uid: &str| pseal::uid::derive_uid(&[7u8; 32], uid);
    let ctx = RekeyContext {
        pseudonym: &pseudonym,
        date_offset_days: -1234,
        domain: "default",
        archive_uid: &archive_uid,
    };

    let mut group = c.benchmark_group("rekey");
    group.throughput(Throughput::Bytes(size));
    // What import does per staged instance: parse the header, re-key, encode, copy the pixel data
    // (into memory here; import copies into the archive file).
    group.bench_function("instance_256x256", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(size as usize + 4096);
            let (rekeyed, row) =
                rekey::rekey_file(black_box(&staged), "instances/000001.dcm", &done.captured, &ctx).unwrap();
            rekeyed.write_to(&mut out).unwrap();
            black_box((out.len(), row.sop_uid.len()))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
