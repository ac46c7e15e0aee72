//! Key files under stress: the steward identity's passphrase protection does not depend on how
//! busy the machine was, hostile work factors are bounded, and key files are owner-only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pseal::keys::{KeyError, Passphrase, SiteSecretKey, StewardIdentity, MAX_SCRYPT_WORK_FACTOR, SCRYPT_WORK_FACTOR};

fn pass() -> Passphrase {
    Passphrase::new("a passphrase for tests".into()).unwrap()
}

fn scrypt_line(file: &[u8]) -> String {
    let text = String::from_utf8_lossy(file);
    text.lines().find(|l| l.starts_with("-> scrypt ")).unwrap().to_string()
}

/// Regression: the identity file's scrypt work factor came from age's one-second calibration,
/// so `pseal-central init` on a busy machine wrote a weaker file, and opening it on a busy machine
/// failed with "Excessive work parameter" (seen as a flaky refusal in the tamper tests). The work
/// factor is now fixed on writing and bounded by a fixed ceiling on reading.
#[test]
fn regression_steward_identity_work_factor_is_fixed_not_calibrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("steward-identity.age");
    let id = StewardIdentity::generate();
    id.write_encrypted(&path, &pass()).unwrap();
    let line = scrypt_line(&std::fs::read(&path).unwrap());
    assert_eq!(
        line.rsplit(' ').next().unwrap(),
        SCRYPT_WORK_FACTOR.to_string(),
        "{line}"
    );
    assert_eq!(SCRYPT_WORK_FACTOR, 18);
    // It opens even while both cores are busy (age's own ceiling was measured under that load).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let burners: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                }
                x
            })
        })
        .collect();
    let opened = StewardIdentity::read_encrypted(&path, &pass());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for b in burners {
        b.join().unwrap();
    }
    assert_eq!(opened.unwrap().recipient(), id.recipient());
}

/// A file demanding more than the ceiling is refused before any scrypt work, naming the file.
#[test]
fn an_identity_file_demanding_excessive_scrypt_work_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("steward-identity.age");
    StewardIdentity::generate().write_encrypted(&path, &pass()).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let line = scrypt_line(&bytes);
    let hostile = line.replace(
        &format!(" {SCRYPT_WORK_FACTOR}"),
        &format!(" {}", MAX_SCRYPT_WORK_FACTOR + 1),
    );
    let text = String::from_utf8_lossy(&bytes).replace(&line, &hostile);
    let forged = dir.path().join("hostile.age");
    std::fs::write(&forged, text.as_bytes()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&forged, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let started = std::time::Instant::now();
    let err = StewardIdentity::read_encrypted(&forged, &pass()).unwrap_err();
    assert!(started.elapsed().as_secs() < 10, "refused before doing the work");
    assert!(matches!(err, KeyError::IdentityLocked { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("hostile.age") && text.contains("work"), "{text}");
}

#[cfg(unix)]
#[test]
fn key_files_are_created_owner_only_and_open_ones_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site.key");
    SiteSecretKey::generate().write_new(&site, "SITE-A").unwrap();
    let steward = dir.path().join("steward-identity.age");
    StewardIdentity::generate().write_encrypted(&steward, &pass()).unwrap();
    for path in [&site, &steward] {
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
    for mode in [0o640, 0o604, 0o644, 0o666] {
        std::fs::set_permissions(&site, std::fs::Permissions::from_mode(mode)).unwrap();
        std::fs::set_permissions(&steward, std::fs::Permissions::from_mode(mode)).unwrap();
        let e1 = SiteSecretKey::read(&site).unwrap_err().to_string();
        let e2 = StewardIdentity::read_encrypted(&steward, &pass())
            .unwrap_err()
            .to_string();
        for (e, p) in [(e1, &site), (e2, &steward)] {
            assert!(
                e.contains(&p.display().to_string())
                    && e.contains("readable by other users")
                    && e.contains("chmod 600"),
                "{e}"
            );
        }
    }
}

/// `read_file` opens both kinds of age identity file — a plain `age-keygen` key and an `age -p`
/// protected one — asks for a passphrase only for the protected kind, and names the file when
/// it is neither.
#[test]
fn read_file_opens_plain_and_passphrase_protected_identities() {
    use age::secrecy::ExposeSecret;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = tempfile::tempdir().unwrap();
    let id = StewardIdentity::generate();
    let protected = dir.path().join("protected.age");
    id.write_encrypted(&protected, &pass()).unwrap();
    let opened = StewardIdentity::read_file(&protected, || Ok(pass())).unwrap();
    assert_eq!(opened.recipient(), id.recipient());

    let plain = dir.path().join("plain.key");
    let key = age::x25519::Identity::generate();
    let text = format!(
        "# created: today\n# public key: {}\n{}\n",
        key.to_public(),
        key.to_string().expose_secret()
    );
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&plain)
        .unwrap();
    std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
    let opened = StewardIdentity::read_file(&plain, || panic!("a plain key needs no passphrase")).unwrap();
    assert_eq!(opened.recipient().to_string(), key.to_public().to_string());

    let wrong = StewardIdentity::read_file(&protected, || Ok(Passphrase::new("not it".into()).unwrap()))
        .unwrap_err()
        .to_string();
    assert!(
        wrong.contains("wrong passphrase") && wrong.contains("protected.age"),
        "{wrong}"
    );

    let junk = dir.path().join("junk.key");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&junk)
        .unwrap();
    std::io::Write::write_all(&mut f, b"hello\n").unwrap();
    let err = StewardIdentity::read_file(&junk, || Ok(pass()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("junk.key"), "{err}");
    assert!(matches!(
        StewardIdentity::read_file(&junk, || Ok(pass())),
        Err(KeyError::Malformed { .. })
    ));
}
