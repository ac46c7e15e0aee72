//! Criterion: look up or mint one pseudonym in a store (each call its own transaction, as an
//! import makes it), and the batched form used for bulk enrolment.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use pseal::identity::LocalId;
use pseal::keys::Passphrase;
use pseal_central::Store;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let passphrase = Passphrase::new("pseal bench passphrase".into()).unwrap();
    let mut store = Store::create(&dir.path().join("store"), &passphrase, &[]).unwrap();
    let id = |i: u64| LocalId::new(&format!("L{i:010}")).unwrap();
    let ids: Vec<(&str, LocalId)> = (0..10_000).map(|i| ("SITE-A", id(i))).collect();
    store.lookup_or_mint_many("default", &ids).unwrap();

    let mut group = c.benchmark_group("pseudonym");
    let mut next = 1_000_000u64;
    // A new patient: seal the identity, insert, commit (one synced transaction).
    group.bench_function("mint_one", |b| {
        b.iter(|| {
            next += 1;
            black_box(store.lookup_or_mint("default", "SITE-A", &id(next)).unwrap().minted)
        })
    });
    let mut k = 0u64;
    // A known patient: blind index and one indexed read.
    group.bench_function("lookup_one", |b| {
        b.iter(|| {
            k = (k + 7919) % 10_000;
            black_box(store.lookup_or_mint("default", "SITE-A", &id(k)).unwrap().id)
        })
    });
    let mut base = 10_000_000u64;
    group.throughput(criterion::Throughput::Elements(1000));
    // 1,000 new patients in one transaction.
    group.bench_function("mint_batch_1000", |b| {
        b.iter(|| {
            let batch: Vec<(&str, LocalId)> = (base..base + 1000).map(|i| ("SITE-A", id(i))).collect();
            base += 1000;
            black_box(store.lookup_or_mint_many("default", &batch).unwrap().len())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
