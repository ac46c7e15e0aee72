//! `pseal-central publish` into a real Orthanc with the DICOMweb plug-in (Debian `orthanc` and
//! `orthanc-dicomweb`), each test on its own loopback port with a fresh storage folder and
//! authentication on: every instance arrives byte for byte, a second run sends nothing, a run
//! killed part-way finishes on the next, wrong credentials are a clear error, instances the server
//! refuses are reported while the others are stored, and HTTPS works with a CA file. Orthanc is
//! checked through its own QIDO-RS and WADO-RS, with an HTTP client of the test's own.
//! Where Orthanc is absent every test says SKIPPED and passes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{cmd, say_skipped, World, PASSPHRASE};
use pseal_fixtures::orthanc::{self, Orthanc, OrthancConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::OnceLock;

const USER: &str = "pseal";
const PASSWORD: &str = "orthanc-test-password-17";

/// One row of the release's index.csv.
#[derive(Debug, Clone)]
struct Row {
    /// Path inside the release (`archive/…`).
    path: String,
    study: String,
    series: String,
    sop: String,
}

/// A steward world with an imported cohort and its releases, made once for all tests.
struct Fixture {
    world: World,
    /// A researcher-style plain age key (age-keygen) and the release encrypted to it.
    plain_key: PathBuf,
    release: PathBuf,
    /// A passphrase-protected age identity (age -p) and the release encrypted to it.
    protected_key: PathBuf,
    release_protected: PathBuf,
    /// A release (to the plain key) in which one instance lacks its Series Instance UID.
    release_broken: PathBuf,
    broken: Row,
    rows: Vec<Row>,
}

impl Fixture {
    fn archive_file(&self, row: &Row) -> PathBuf {
        self.world.archive().join(row.path.trim_start_matches("archive/"))
    }
}

fn release_to(world: &World, recipient: &str, out: &Path) {
    cmd("pseal-central")
        .arg("release")
        .arg("--store")
        .arg(world.store())
        .arg("--archive")
        .arg(world.archive())
        .args(["--to", recipient, "--all", "--out"])
        .arg(out)
        .assert()
        .success();
}

fn write_owner_only(path: &Path, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        // Under the target folder, emptied on each run: a static is never dropped, so a temporary
        // folder of its own would be left behind.
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("publish-orthanc");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let dir = tempfile::Builder::new().tempdir_in(&root).unwrap();
        let out = cmd("pseal-central")
            .arg("init")
            .arg("--store")
            .arg(dir.path().join("store"))
            .assert()
            .success();
        let recipient = crate::common::last_line(&out.get_output().clone());
        let world = World { dir, recipient };
        let cohort = crate::common::one_site_cohort(&world, 3, 2, false);
        world.add_site("SITE-A", true);
        let bundles = world.export("SITE-A", &cohort.sites[0].dir, "out");
        assert!(world.import(&bundles).status.success());

        let rows: Vec<Row> = crate::common::index_records(&world.archive())
            .iter()
            .map(|r| Row {
                path: format!("archive/{}", &r[7]),
                study: r[1].to_string(),
                series: r[2].to_string(),
                sop: r[3].to_string(),
            })
            .collect();
        assert_eq!(rows.len(), cohort.spec.mr_instance_count());

        use age::secrecy::ExposeSecret;
        let plain = age::x25519::Identity::generate();
        let plain_key = world.dir.path().join("researcher.key");
        write_owner_only(
            &plain_key,
            &format!(
                "# public key: {}\n{}\n",
                plain.to_public(),
                plain.to_string().expose_secret()
            ),
        );
        let release = world.dir.path().join("release.age");
        release_to(&world, &plain.to_public().to_string(), &release);

        let protected = pseal::keys::StewardIdentity::generate();
        let protected_key = world.dir.path().join("database-host.age");
        protected
            .write_encrypted(
                &protected_key,
                &pseal::keys::Passphrase::new(PASSPHRASE.into()).unwrap(),
            )
            .unwrap();
        let release_protected = world.dir.path().join("release-protected.age");
        release_to(&world, &protected.recipient().to_string(), &release_protected);

        // One archive file without its Series Instance UID, released, then put back.
        let broken = rows[4].clone();
        let file = world.archive().join(broken.path.trim_start_matches("archive/"));
        let original = std::fs::read(&file).unwrap();
        let mut obj = dicom_object::open_file(&file).unwrap();
        obj.remove_element(dicom_dictionary_std::tags::SERIES_INSTANCE_UID);
        obj.write_to_file(&file).unwrap();
        let release_broken = world.dir.path().join("release-broken.age");
        release_to(&world, &plain.to_public().to_string(), &release_broken);
        std::fs::write(&file, original).unwrap();

        Fixture {
            world,
            plain_key,
            release,
            protected_key,
            release_protected,
            release_broken,
            broken,
            rows,
        }
    })
}

/// Starts Orthanc, or says SKIPPED and gives `None`.
fn start(name: &str, config: &OrthancConfig) -> Option<(tempfile::TempDir, Orthanc)> {
    if let Some(why) = orthanc::unavailable() {
        say_skipped(format!("{name}: {why}"));
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Orthanc::start(dir.path(), config).unwrap();
    Some((dir, server))
}

fn basic_auth() -> OrthancConfig {
    OrthancConfig {
        users: vec![(USER.into(), PASSWORD.into())],
        ..OrthancConfig::default()
    }
}

/// `pseal-central publish` with the test user's password in the environment.
fn publish(server: &Orthanc, key: &Path, release: &Path, args: &[&str]) -> Output {
    cmd("pseal-central")
        .env("PSEAL_DICOMWEB_PASSWORD", PASSWORD)
        .arg("publish")
        .arg("--identity")
        .arg(key)
        .args(["--dicomweb", &server.dicomweb_url(), "--user", USER])
        .args(args)
        .arg(release)
        .output()
        .unwrap()
}

fn summary(out: &Output) -> serde_json::Value {
    let line = crate::common::last_line(out);
    let v: serde_json::Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("{e}: {line}\nstderr: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(v["event"], "summary", "{line}");
    v
}

fn counts(v: &serde_json::Value) -> (u64, u64, u64) {
    (
        v["sent"].as_u64().unwrap(),
        v["already_present"].as_u64().unwrap(),
        v["failed"].as_u64().unwrap(),
    )
}

/// The test's own DICOMweb reader (not pseal's client).
struct Reader {
    agent: ureq::Agent,
    base: String,
    auth: String,
}

impl Reader {
    fn new(server: &Orthanc) -> Reader {
        use base64::Engine as _;
        Reader {
            agent: ureq::Agent::config_builder().http_status_as_error(false).build().into(),
            base: server.dicomweb_url(),
            auth: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
            ),
        }
    }

    /// SOP Instance UID → Series Instance UID of every instance of `study` (QIDO-RS).
    fn instances(&self, study: &str) -> BTreeMap<String, String> {
        let mut resp = self
            .agent
            .get(format!("{}/studies/{study}/instances", self.base))
            .header("Authorization", &self.auth)
            .header("Accept", "application/dicom+json")
            .call()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let items: Vec<serde_json::Value> = serde_json::from_slice(&resp.body_mut().read_to_vec().unwrap()).unwrap();
        items
            .iter()
            .map(|i| {
                (
                    i["00080018"]["Value"][0].as_str().unwrap().to_string(),
                    i["0020000E"]["Value"][0].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// Every instance of the studies of `rows` that the server holds.
    fn held(&self, rows: &[Row]) -> BTreeSet<String> {
        let studies: BTreeSet<&str> = rows.iter().map(|r| r.study.as_str()).collect();
        studies
            .into_iter()
            .flat_map(|s| self.instances(s).into_keys())
            .collect()
    }

    /// One instance as WADO-RS returns it, in the transfer syntax it was stored in.
    fn retrieve(&self, row: &Row) -> Vec<u8> {
        use futures_util::{FutureExt, StreamExt};
        let mut resp = self
            .agent
            .get(format!(
                "{}/studies/{}/series/{}/instances/{}",
                self.base, row.study, row.series, row.sop
            ))
            .header("Authorization", &self.auth)
            .header(
                "Accept",
                "multipart/related; type=\"application/dicom\"; transfer-syntax=*",
            )
            .call()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{}", row.path);
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
        let body = resp.body_mut().with_config().limit(1 << 30).read_to_vec().unwrap();
        let mut parts = multipart_rs::MultipartReader::<std::io::Error>::from_data_with_headers(
            &body,
            &[("Content-Type".to_string(), content_type)],
        )
        .unwrap();
        let first = parts.next().now_or_never().unwrap().unwrap().unwrap();
        assert!(
            parts.next().now_or_never().unwrap().is_none(),
            "one part for one instance"
        );
        first.data.to_vec()
    }
}

#[test]
fn publish_stores_every_instance_byte_for_byte_and_a_second_run_sends_nothing() {
    let Some((_dir, server)) = start("publish into Orthanc", &basic_auth()) else {
        return;
    };
    let f = fixture();
    let n = f.rows.len() as u64;
    let out = publish(&server, &f.plain_key, &f.release, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let first = summary(&out);
    assert_eq!(counts(&first), (n, 0, 0), "{first}");
    // Standard output is JSON lines only, and progress went there.
    let lines = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(lines
        .lines()
        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    assert!(lines.contains("\"event\":\"advance\""), "{lines}");

    let reader = Reader::new(&server);
    let mut by_study: BTreeMap<&str, BTreeMap<String, String>> = BTreeMap::new();
    for r in &f.rows {
        by_study
            .entry(&r.study)
            .or_default()
            .insert(r.sop.clone(), r.series.clone());
    }
    for (study, expected) in &by_study {
        assert_eq!(&reader.instances(study), expected, "QIDO-RS of study {study}");
    }
    // Byte for byte: the same file meta, attributes and pixel data as the archive (Orthanc
    // stores what STOW-RS gave it and WADO-RS with transfer-syntax=* returns it unchanged).
    for r in &f.rows {
        let stored = reader.retrieve(r);
        let archived = std::fs::read(f.archive_file(r)).unwrap();
        assert!(stored == archived, "{} differs from the archive file", r.path);
    }

    let again = publish(&server, &f.plain_key, &f.release, &["--json"]);
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(counts(&summary(&again)), (0, n, 0), "a second run sends nothing");

    let checked = publish(&server, &f.plain_key, &f.release, &["--verify"]);
    assert_eq!(
        checked.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let text = String::from_utf8_lossy(&checked.stdout);
    assert!(
        text.contains(&format!("0 sent, {n} already present, 0 failed")),
        "{text}"
    );
    assert!(text.contains("they match"), "{text}");
}

#[test]
fn a_killed_publish_finishes_on_the_next_run() {
    // Orthanc takes about 30 ms per instance here, so the run is still going when it is killed.
    let config = OrthancConfig {
        lua: Some(
            "function ReceivedInstanceFilter(dicom, origin, info)\n  local t0 = os.clock()\n  while os.clock() - t0 < 0.03 do end\n  return true\nend\n"
                .into(),
        ),
        ..basic_auth()
    };
    let Some((_dir, server)) = start("killed publish", &config) else {
        return;
    };
    let f = fixture();
    let n = f.rows.len();
    // A passphrase-protected identity (the passphrase from PSEAL_PASSPHRASE, as cmd() sets it).
    let mut child = std::process::Command::new(crate::common::bin("pseal-central"))
        .env("PSEAL_PASSPHRASE", PASSPHRASE)
        .env("PSEAL_DICOMWEB_PASSWORD", PASSWORD)
        .arg("publish")
        .arg("--identity")
        .arg(&f.protected_key)
        .args(["--dicomweb", &server.dicomweb_url(), "--user", USER])
        .args(["--json", "--batch", "1", "--jobs", "1"])
        .arg(&f.release_protected)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    for line in std::io::BufReader::new(stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        if v["event"] == "advance" && v["done"].as_u64().unwrap() >= (n / 4) as u64 {
            break;
        }
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed, not finished");
    // Let Orthanc finish the request it may have been in.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let reader = Reader::new(&server);
    let held = reader.held(&f.rows).len();
    assert!(held >= n / 4 && held < n, "killed part-way: {held} of {n} stored");

    let out = cmd("pseal-central")
        .env("PSEAL_DICOMWEB_PASSWORD", PASSWORD)
        .arg("publish")
        .arg("--identity")
        .arg(&f.protected_key)
        .args([
            "--dicomweb",
            &server.dicomweb_url(),
            "--user",
            USER,
            "--json",
            "--verify",
        ])
        .arg(&f.release_protected)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let s = summary(&out);
    assert_eq!(counts(&s), ((n - held) as u64, held as u64, 0), "{s}");
    assert_eq!(s["verify"]["missing"].as_array().unwrap().len(), 0, "{s}");
    assert_eq!(reader.held(&f.rows).len(), n);
}

#[test]
fn wrong_credentials_are_a_clear_error_and_a_bearer_token_works() {
    let Some((_dir, server)) = start("credentials", &basic_auth()) else {
        return;
    };
    let f = fixture();
    let wrong = cmd("pseal-central")
        .env("PSEAL_DICOMWEB_PASSWORD", "not-the-password")
        .arg("publish")
        .arg("--identity")
        .arg(&f.plain_key)
        .args(["--dicomweb", &server.dicomweb_url(), "--user", USER])
        .arg(&f.release)
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(2));
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        err.contains("HTTP 401 Unauthorized")
            && err.contains("refused user pseal")
            && err.contains("PSEAL_DICOMWEB_PASSWORD"),
        "{err}"
    );
    assert!(
        !err.contains("not-the-password"),
        "the password is never printed: {err}"
    );
    assert!(Reader::new(&server).held(&f.rows).is_empty(), "nothing was sent");

    let none = cmd("pseal-central")
        .env_remove("PSEAL_DICOMWEB_PASSWORD")
        .arg("publish")
        .arg("--identity")
        .arg(&f.plain_key)
        .args(["--dicomweb", &server.dicomweb_url(), "--user", USER])
        .arg(&f.release)
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(2));
    let err = String::from_utf8_lossy(&none.stderr);
    assert!(err.contains("--user pseal needs a password"), "{err}");

    // Bearer tokens (the cloud services' way), checked by a Lua filter on every request.
    let token = "pseal-test-token-0123456789";
    let config = OrthancConfig {
        lua: Some(format!(
            "function IncomingHttpRequestFilter(method, uri, ip, username, httpHeaders)\n  return httpHeaders['authorization'] == 'Bearer {token}'\nend\n"
        )),
        ..OrthancConfig::default()
    };
    let Some((_dir2, bearer)) = start("bearer token", &config) else {
        return;
    };
    let token_file = tempfile::tempdir().unwrap();
    let good = token_file.path().join("token");
    write_owner_only(&good, &format!("{token}\n"));
    let out = cmd("pseal-central")
        .arg("publish")
        .arg("--identity")
        .arg(&f.plain_key)
        .args(["--dicomweb", &bearer.dicomweb_url(), "--json", "--token-file"])
        .arg(&good)
        .arg(&f.release)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(counts(&summary(&out)), (f.rows.len() as u64, 0, 0));
    let refused = cmd("pseal-central")
        .env("PSEAL_DICOMWEB_TOKEN", "an-expired-token")
        .arg("publish")
        .arg("--identity")
        .arg(&f.plain_key)
        .args(["--dicomweb", &bearer.dicomweb_url()])
        .arg(&f.release)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("HTTP 403") && !err.contains("an-expired-token"), "{err}");
}

#[test]
fn instances_the_server_refuses_are_reported_and_the_others_stored() {
    let f = fixture();
    let filtered = f.rows[f.rows.len() - 3].clone();
    let config = OrthancConfig {
        lua: Some(format!(
            "function ReceivedInstanceFilter(dicom, origin, info)\n  return dicom.SOPInstanceUID ~= '{}'\nend\n",
            filtered.sop
        )),
        ..basic_auth()
    };
    let Some((_dir, server)) = start("refused instances", &config) else {
        return;
    };
    let n = f.rows.len() as u64;
    let out = publish(&server, &f.plain_key, &f.release_broken, &["--json", "--batch", "8"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let s = summary(&out);
    assert_eq!(counts(&s), (n - 2, 0, 2), "{s}");
    let failed: BTreeMap<String, String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "failed")
        .map(|v| {
            (
                v["path"].as_str().unwrap().to_string(),
                v["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    // Orthanc lists the instance without a Series Instance UID in the Failed SOP Sequence…
    assert!(failed[&f.broken.path].contains("failure reason C000H"), "{failed:?}");
    // …and reports the one its Lua filter discarded as stored: the check afterwards finds it absent.
    assert!(failed[&filtered.path].contains("does not hold it"), "{failed:?}");

    let held = Reader::new(&server).held(&f.rows);
    for r in &f.rows {
        let refused = r.path == f.broken.path || r.path == filtered.path;
        assert_eq!(held.contains(&r.sop), !refused, "{}", r.path);
    }

    let checked = publish(&server, &f.plain_key, &f.release_broken, &["--verify-only"]);
    assert_eq!(checked.status.code(), Some(1));
    let text = String::from_utf8_lossy(&checked.stdout);
    assert!(text.contains("missing on the server (2)"), "{text}");
    assert!(text.contains(&f.broken.path) && text.contains(&filtered.path), "{text}");
}

#[test]
fn https_with_a_ca_file_and_a_clear_error_without_it() {
    if std::process::Command::new("openssl").arg("version").output().is_err() {
        say_skipped("https publish: openssl is not installed to make a test certificate authority");
        return;
    }
    let pki = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .current_dir(pki.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=pseal test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        pki.path().join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    let pem = [
        std::fs::read(pki.path().join("server.pem")).unwrap(),
        std::fs::read(pki.path().join("server.key")).unwrap(),
    ]
    .concat();
    std::fs::write(pki.path().join("orthanc.pem"), pem).unwrap();
    let config = OrthancConfig {
        tls_pem: Some(pki.path().join("orthanc.pem")),
        ..basic_auth()
    };
    if let Some(why) = orthanc::tls_unavailable() {
        say_skipped(format!("https publish: {why}"));
        return;
    }
    let Some((_dir, server)) = start("https", &config) else {
        return;
    };
    assert!(server.dicomweb_url().starts_with("https://"));
    let f = fixture();
    let untrusted = publish(&server, &f.plain_key, &f.release, &[]);
    assert_eq!(untrusted.status.code(), Some(2));
    let err = String::from_utf8_lossy(&untrusted.stderr);
    assert!(err.to_lowercase().contains("certificate"), "{err}");

    let ca = pki.path().join("ca.pem");
    let out = publish(
        &server,
        &f.plain_key,
        &f.release,
        &["--json", "--ca-file", ca.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(counts(&summary(&out)), (f.rows.len() as u64, 0, 0));
}
