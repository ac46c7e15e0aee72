//! Criterion: de-identify one 256×256 MR instance, the per-instance hot path of export and review.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pseal::deid::{DeidConfig, Options, Profile, UidPlaceholderKey};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("instance.dcm");
    let bytes = pseal_fixtures::sample::mr_instance(256).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let config = DeidConfig {
        options: Options::parse_list("default").unwrap(),
        ..DeidConfig::default()
    };
    let profile = Profile::new(&config);
    let uids = UidPlaceholderKey::random();

    let mut group = c.benchmark_group("deidentify");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    // What export and review do per file: open, de-identify, encode.
    group.bench_function("instance_256x256_from_file", |b| {
        b.iter(|| {
            let done = pseal::export::instance::deidentify_path(black_box(&path), &profile, &uids).unwrap();
            black_box(done.encoded.len())
        })
    });
    // The profile engine alone, on a parsed object.
    let object = dicom_object::OpenFileOptions::new().open_file(&path).unwrap();
    group.bench_function("engine_only", |b| {
        b.iter_batched(
            || object.clone(),
            |o| black_box(pseal::deid::deidentify(o, &profile, &uids).unwrap().captured.uids.len()),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
