//! Stock tools read a bundle: `age -d -i steward-identity.age x.pseal | zstd -d | tar -t`.
//!
//! The reference `age` CLI asks for the identity file's passphrase on a terminal, so the test runs
//! it under `script` (util-linux), which gives it a pseudo-terminal fed from our standard input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use std::io::Write;
use std::process::{Command, Stdio};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn stock_age_zstd_and_tar_list_a_bundle() {
    for tool in ["age", "zstd", "tar", "script"] {
        if !have(tool) {
            crate::common::say_skipped(format!(
                "`{tool}` is not installed (.ci/run installs age and zstd from Debian packages)"
            ));
            return;
        }
    }
    let (world, cohort) = one_site_world(1, 1, true);
    let bundles = world.export("SITE-A", &cohort.sites[0].dir, "out");
    assert_eq!(bundles.len(), 1);
    let plain = world.dir.path().join("plain.tar.zst");
    let inner = format!(
        "age -d -i {} -o {} {}",
        world.store().join("steward-identity.age").display(),
        plain.display(),
        bundles[0].display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Give age time to open the terminal, then type the passphrase.
    std::thread::sleep(std::time::Duration::from_millis(500));
    writeln!(child.stdin.as_mut().unwrap(), "{PASSPHRASE}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "age -d failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let listing = Command::new("sh")
        .arg("-c")
        .arg(format!("zstd -dc {} | tar -tv", plain.display()))
        .output()
        .unwrap();
    assert!(listing.status.success(), "{}", String::from_utf8_lossy(&listing.stderr));
    let text = String::from_utf8_lossy(&listing.stdout);
    let names: Vec<&str> = text.lines().map(|l| l.rsplit(' ').next().unwrap()).collect();
    assert_eq!(names.first().copied(), Some("instances/000001.dcm"));
    assert_eq!(
        &names[names.len() - 3..],
        ["identity.age", "manifest.cbor", "auth.cbor"]
    );
    for line in text.lines() {
        assert!(
            line.contains(" 0/0 ") && line.contains("1970-01-01"),
            "header not normalized: {line}"
        );
    }
}
