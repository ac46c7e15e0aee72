//! Batched look-up-or-mint agrees with the single form: the same patient gets the same pseudonym
//! whichever form found or minted it, duplicates inside a batch mint once, and a batch survives
//! reopening the store (it was committed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::store::{id, pass};
use pseal_central::Store;

#[test]
fn batched_and_single_look_ups_agree_and_batches_are_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create(dir.path(), &pass(), &[]).unwrap();
    let single = store.lookup_or_mint("default", "SITE-A", &id("PID-1")).unwrap();
    let batch = vec![
        ("SITE-A", id("PID-1")),
        ("SITE-A", id("PID-2")),
        ("SITE-B", id("PID-1")),
        ("SITE-A", id("PID-2")),
    ];
    let got = store.lookup_or_mint_many("default", &batch).unwrap();
    assert_eq!(got.len(), 4);
    assert!(!got[0].minted, "known patient found, not minted");
    assert_eq!(got[0].pseudonym, single.pseudonym);
    assert!(got[1].minted && got[2].minted);
    assert_ne!(got[1].pseudonym, got[2].pseudonym, "another site is another patient");
    assert!(
        !got[3].minted,
        "a duplicate inside the batch is found, not minted twice"
    );
    assert_eq!(got[3].pseudonym, got[1].pseudonym);
    assert_eq!(store.patient_count("default").unwrap(), 3);
    drop(store);

    let mut store = Store::open(dir.path(), &pass()).unwrap();
    assert_eq!(store.patient_count("default").unwrap(), 3, "the batch was committed");
    let again = store.lookup_or_mint("default", "SITE-B", &id("PID-1")).unwrap();
    assert!(!again.minted);
    assert_eq!(again.pseudonym, got[2].pseudonym);
    assert_eq!(again.date_offset_days, got[2].date_offset_days);
    let sealed = store
        .reidentify(&got[1].pseudonym, "test: the batch sealed it")
        .unwrap()
        .identity;
    assert_eq!(sealed.site, "SITE-A");
    assert_eq!(sealed.local_id.expose(), "PID-2");
    assert!(store.lookup_or_mint_many::<&str>("default", &[]).unwrap().is_empty());
}
