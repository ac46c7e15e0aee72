//! The steward's store: pseudonym stability, blind index, sealed identities, sites, audit chain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pseal::identity::LocalId;
use pseal::keys::{Passphrase, SiteSecretKey};
use pseal_central::store::{SiteStatus, DATABASE_FILE};
use pseal_central::{Store, StoreError};

pub(crate) fn pass() -> Passphrase {
    Passphrase::new("a test passphrase".into()).unwrap()
}

pub(crate) fn id(s: &str) -> LocalId {
    LocalId::new(s).unwrap()
}

#[test]
fn pseudonyms_are_stable_per_site_and_domain_and_the_file_reveals_no_local_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create(dir.path(), &pass(), &[]).unwrap();
    let a1 = store.lookup_or_mint("default", "SITE-A", &id("PID-00424242")).unwrap();
    assert!(a1.minted);
    let a2 = store.lookup_or_mint("default", "SITE-A", &id("PID-00424242")).unwrap();
    assert!(!a2.minted);
    assert_eq!(a1.pseudonym, a2.pseudonym);
    assert_eq!(a1.date_offset_days, a2.date_offset_days);
    assert!((-3652..=-366).contains(&a1.date_offset_days));
    let b = store.lookup_or_mint("default", "SITE-B", &id("PID-00424242")).unwrap();
    assert_ne!(
        a1.pseudonym, b.pseudonym,
        "same local ID at another site is another patient"
    );
    let other_domain = store
        .lookup_or_mint("glioma-2027", "SITE-A", &id("PID-00424242"))
        .unwrap();
    assert_ne!(a1.pseudonym, other_domain.pseudonym, "domains get unrelated pseudonyms");

    let found = store
        .reidentify(&a1.pseudonym, "test: the sealed identity opens")
        .unwrap();
    let (domain, opened) = (found.domain, found.identity);
    assert_eq!(domain, "default");
    assert_eq!(opened.site, "SITE-A");
    assert_eq!(opened.local_id.expose(), "PID-00424242");

    // Reopen (new process) and find the same pseudonym.
    drop(store);
    let mut store = Store::open(dir.path(), &pass()).unwrap();
    assert_eq!(
        store
            .lookup_or_mint("default", "SITE-A", &id("PID-00424242"))
            .unwrap()
            .pseudonym,
        a1.pseudonym
    );
    drop(store);

    // A stolen database file reveals no local ID.
    for name in [DATABASE_FILE.to_string(), format!("{DATABASE_FILE}-wal")] {
        if let Ok(bytes) = std::fs::read(dir.path().join(&name)) {
            assert!(
                !bytes.windows(12).any(|w| w == b"PID-00424242"),
                "{name} holds a local ID in clear"
            );
        }
    }
}

#[test]
fn reidentify_and_lookup_refuse_without_a_reason_and_audit_before_answering() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create(dir.path(), &pass(), &[]).unwrap();
    let patient = store.lookup_or_mint("default", "SITE-A", &id("PID-00424242")).unwrap();
    let entries = |store: &Store| store.audit_entries().unwrap();
    let before = entries(&store).len();

    for reason in ["", "   \t"] {
        let refused = store.reidentify(&patient.pseudonym, reason);
        assert!(
            matches!(refused, Err(StoreError::NoReason)),
            "reidentify with reason {reason:?} must be refused, got {refused:?}"
        );
        let refused = store.lookup_audited("default", "SITE-A", &id("PID-00424242"), reason);
        assert!(matches!(refused, Err(StoreError::NoReason)), "{refused:?}");
    }
    assert_eq!(entries(&store).len(), before, "a refused look-up writes no audit entry");

    let unknown: pseal::pseudonym::Pseudonym = pseal::pseudonym::Pseudonym::random();
    assert!(matches!(
        store.reidentify(&unknown, "REQ-1"),
        Err(StoreError::UnknownPseudonym(_))
    ));
    assert_eq!(
        entries(&store).len(),
        before,
        "an unknown pseudonym writes no audit entry"
    );

    let found = store.reidentify(&patient.pseudonym, "REQ-2026-017 approved").unwrap();
    assert_eq!(found.identity.local_id.expose(), "PID-00424242");
    assert_eq!(found.identity.site, "SITE-A");
    assert!(found.also.is_empty() && found.merged_into.is_none());
    let after = entries(&store);
    assert_eq!(after.len(), before + 1, "exactly one entry per re-identification");
    let entry = after.last().unwrap();
    assert_eq!(entry.action, "reidentify");
    let detail: serde_json::Value = serde_json::from_str(&entry.detail).unwrap();
    assert_eq!(detail["reason"], "REQ-2026-017 approved");
    assert_eq!(detail["pseudonym"], patient.pseudonym.to_string());
    assert!(!entry.detail.contains("PID-00424242"), "the log never holds a local ID");

    let looked = store
        .lookup_audited("default", "SITE-A", &id("PID-00424242"), "consent withdrawn")
        .unwrap();
    assert_eq!(looked.pseudonym, Some(patient.pseudonym.clone()));
    let missing = store
        .lookup_audited("default", "SITE-A", &id("PID-99"), "consent withdrawn")
        .unwrap();
    assert_eq!(missing.pseudonym, None);
    let actions: Vec<String> = entries(&store).into_iter().skip(before).map(|e| e.action).collect();
    assert_eq!(actions, ["reidentify", "lookup", "lookup"], "a miss is audited too");
    assert!(store.verify_audit().unwrap().is_none());
}

#[test]
fn wrong_passphrase_and_foreign_database_are_refused() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    drop(Store::create(a.path(), &pass(), &[]).unwrap());
    drop(Store::create(b.path(), &pass(), &[]).unwrap());
    let wrong = Passphrase::new("not it".into()).unwrap();
    let err = Store::open(a.path(), &wrong).err().unwrap().to_string();
    assert!(err.contains("wrong passphrase"), "{err}");
    assert!(matches!(
        Store::create(a.path(), &pass(), &[]),
        Err(StoreError::Exists(_))
    ));
    // b's database beside a's identity.
    std::fs::copy(b.path().join(DATABASE_FILE), a.path().join(DATABASE_FILE)).unwrap();
    let _ = std::fs::remove_file(a.path().join(format!("{DATABASE_FILE}-wal")));
    let _ = std::fs::remove_file(a.path().join(format!("{DATABASE_FILE}-shm")));
    let err = Store::open(a.path(), &pass()).err().unwrap();
    assert!(matches!(err, StoreError::ForeignDatabase { .. }), "{err}");
}

#[test]
fn enrolment_and_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create(dir.path(), &pass(), &[]).unwrap();
    let k1 = SiteSecretKey::generate().public();
    let k2 = SiteSecretKey::generate().public();
    assert_eq!(store.site_status("SITE-A", &k1).unwrap(), SiteStatus::Unknown);
    assert!(store.enroll("SITE-A", &k1).unwrap());
    assert!(!store.enroll("SITE-A", &k1).unwrap(), "enrolling twice is a no-op");
    assert!(store.enroll("SITE-A", &k2).unwrap(), "a site may have several keys");
    assert_eq!(store.site_status("SITE-A", &k1).unwrap(), SiteStatus::Enrolled);
    assert_eq!(
        store.site_status("SITE-B", &k1).unwrap(),
        SiteStatus::OtherSite("SITE-A".into())
    );
    assert!(store.enroll("SITE-B", &k1).is_err(), "a key belongs to one site");
    store.revoke("SITE-A", &k1).unwrap();
    assert_eq!(store.site_status("SITE-A", &k1).unwrap(), SiteStatus::Revoked);
    assert_eq!(store.site_status("SITE-A", &k2).unwrap(), SiteStatus::Enrolled);
    assert!(store.enroll("SITE-A", &k1).is_err(), "a revoked key stays revoked");
    assert!(store.verify_audit().unwrap().is_none());
    let actions: Vec<String> = store.audit_entries().unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(actions, ["init", "enroll", "enroll", "revoke"]);
}

#[test]
fn any_edit_or_deletion_of_the_audit_log_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create(dir.path(), &pass(), &[]).unwrap();
    for i in 0..5 {
        store.audit("test", &serde_json::json!({ "i": i })).unwrap();
    }
    assert!(store.verify_audit().unwrap().is_none());
    drop(store);
    let db = dir.path().join(DATABASE_FILE);
    let tamper = |sql: &str| {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(sql).unwrap();
    };
    let copy = tempfile::tempdir().unwrap();
    let pristine = copy.path().join("pristine.sqlite");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(&format!("VACUUM INTO '{}'", pristine.display()))
            .unwrap();
    }
    let restore = || {
        let _ = std::fs::remove_file(dir.path().join(format!("{DATABASE_FILE}-wal")));
        let _ = std::fs::remove_file(dir.path().join(format!("{DATABASE_FILE}-shm")));
        std::fs::copy(&pristine, &db).unwrap();
    };
    for (what, sql) in [
        ("edit", "UPDATE audit SET detail = '{\"i\":99}' WHERE seq = 3"),
        ("delete middle", "DELETE FROM audit WHERE seq = 2"),
        ("delete newest", "DELETE FROM audit WHERE seq = 6"),
        ("reorder time", "UPDATE audit SET at = at + 1 WHERE seq = 4"),
    ] {
        restore();
        tamper(sql);
        let store = Store::open(dir.path(), &pass()).unwrap();
        assert!(store.verify_audit().unwrap().is_some(), "{what} was not detected");
    }
    restore();
    assert!(Store::open(dir.path(), &pass())
        .unwrap()
        .verify_audit()
        .unwrap()
        .is_none());
}
