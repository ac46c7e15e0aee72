//! What the hospital operator, the data-protection officer and the steward see (issue 14): the
//! HTML review report, the review folder rule, domains, the passphrase rule, the kept earlier
//! report, messages that name the role of a path, standard output against standard error, one
//! JSON summary shape, help texts, completions and man pages, and progress on a terminal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use base64::Engine as _;
use std::path::{Path, PathBuf};

/// The planted cohort (every Table E.1-1 attribute carries a marker) plus the cohort's screenshot
/// with burned-in text, in one input folder.
fn planted_with_screenshot(world: &World) -> (PathBuf, pseal_fixtures::planted::PlantedCohort) {
    let input = world.dir.path().join("input");
    let planted = pseal_fixtures::planted::generate(&input, 7).unwrap();
    let cohort = one_site_cohort(world, 1, 1, true);
    let shot = walkdir(&cohort.sites[0].dir)
        .into_iter()
        .find(|p| p.to_string_lossy().contains("Screenshot"))
        .expect("the cohort has a screenshot");
    let dest = input.join("SHOT").join("IM0001.dcm");
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::copy(&shot, &dest).unwrap();
    (input, planted)
}

fn review(world: &World, input: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    cmd("pseal")
        .arg("review")
        .arg("--config")
        .arg(world.config("SITE-A"))
        .arg("--input")
        .arg(input)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_html_review_report_shows_outcomes_kept_values_sealed_fields_and_quarantined_pictures() {
    let world = World::new();
    world.add_site("SITE-A", true);
    let (input, planted) = planted_with_screenshot(&world);
    let out = world.dir.path().join("review");
    let run = review(&world, &input, &out, &[]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let html = std::fs::read_to_string(out.join("review-report.html")).unwrap();

    // Self-contained: no script, nothing fetched.
    for banned in ["<script", "http://", "https://", "<link", "@import"] {
        assert!(!html.contains(banned), "the report contains {banned}");
    }
    for section in [
        "What leaves the hospital, and what does not",
        "The words in this report",
        "Options in force and what each changes",
        "Values that leave",
        "What happened to each attribute",
        "What goes into the sealed record",
        "Quarantined files (stay at the hospital)",
        "Sign-off",
    ] {
        assert!(html.contains(section), "the report lacks the section {section}");
    }
    // The legend has every outcome word, in the order of the table's columns.
    let mut at = 0;
    for word in [
        "removed",
        "emptied",
        "replaced by a dummy",
        "replaced UID",
        "kept unchanged",
        "kept after a check",
        "removed after a check",
    ] {
        let needle = format!("<td><strong>{word}</strong></td>");
        let found = html[at..]
            .find(&needle)
            .unwrap_or_else(|| panic!("legend lacks {word}"));
        at += found;
    }
    // Counts: the planted instances are de-identified, the screenshot is quarantined.
    // Two patients: the planted one and the screenshot's.
    let counts = format!(
        "<td class=\"n\">{}</td><td class=\"n\">2</td><td class=\"n\">{}</td><td class=\"n\">1</td><td class=\"n\">0</td>",
        planted.instances.len() + 1,
        planted.instances.len()
    );
    assert!(html.contains(&counts), "counts row {counts} not in the report");
    // A kept value: the planted Series Description passes Clean Descriptors and leaves as it is.
    let series = planted
        .markers
        .iter()
        .find(|m| m.tag == 0x0008_103E && m.location == pseal_fixtures::planted::Location::Top)
        .and_then(|m| m.text())
        .unwrap();
    assert!(series.starts_with("T2 FLAIR"), "{series}");
    let heading = "(0008,103E) Series Description — kept after a check";
    let section = &html[html
        .find(heading)
        .expect("series description among the values that leave")..];
    let value_row = format!("<tr><td><code>{series}</code></td><td class=\"n\">");
    assert!(
        section[..2000.min(section.len())].contains(&value_row),
        "the kept value {series} is listed"
    );
    // An identifying value never appears among the values that leave.
    assert!(!html.contains(&planted.local_id), "the local ID is in the report");
    // The sealed record: field names, never values.
    assert!(html.contains("local patient ID (from <code>PatientID</code>)"));
    assert!(html.contains("original UIDs"));
    // The quarantined screenshot: grouped by reason, with its picture.
    assert!(
        html.contains("Burned-in annotation declared — 1 file"),
        "quarantine group and count"
    );
    assert!(html.contains("<code>SHOT/IM0001.dcm</code>"));
    let src = html.find("src=\"data:image/png;base64,").expect("an embedded picture");
    let data = &html[src + "src=\"data:image/png;base64,".len()..];
    let data = &data[..data.find('"').unwrap()];
    let png = base64::engine::general_purpose::STANDARD.decode(data).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let reader = decoder.read_info().unwrap();
    let info = reader.info();
    assert_eq!(
        (info.width, info.height),
        (192, 96),
        "the 256×128 screenshot scaled to 192 pixels"
    );
    // The Markdown report says the same.
    let md = std::fs::read_to_string(out.join("review-report.md")).unwrap();
    assert!(md.contains(heading));
    assert!(md.contains(&format!("| `{series}` |")));
    assert!(md.contains("### Burned-in annotation declared — 1 file"));
    assert!(md.contains("| **removed after a check** | no |"));
}

#[test]
fn review_refuses_a_non_empty_folder_and_replace_empties_only_an_earlier_review() {
    let (world, cohort) = one_site_world(2, 1, false);
    let input = &cohort.sites[0].dir;
    let out = world.dir.path().join("review");
    assert!(review(&world, input, &out, &[]).status.success());
    assert!(out.join("patient-0002").exists());

    let again = review(&world, input, &out, &[]);
    assert_eq!(again.status.code(), Some(2));
    let err = text(&again.stderr);
    assert!(err.contains("review folder") && err.contains("--replace"), "{err}");

    // Reviewing one patient with --replace leaves no folder of the earlier two.
    let one = world.dir.path().join("one-patient");
    let first = walkdir(input)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "dcm"))
        .unwrap();
    std::fs::create_dir_all(&one).unwrap();
    std::fs::copy(&first, one.join("IM1.dcm")).unwrap();
    let replaced = review(&world, &one, &out, &["--replace"]);
    assert!(replaced.status.success(), "{}", text(&replaced.stderr));
    assert!(out.join("patient-0001").exists());
    assert!(
        !out.join("patient-0002").exists(),
        "the earlier review's folders are gone"
    );

    // A folder a review did not write is never emptied.
    let foreign = world.dir.path().join("documents");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("letter.txt"), b"keep me").unwrap();
    let refused = review(&world, &one, &foreign, &["--replace"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused.stderr).contains("was not written by pseal review"));
    assert!(foreign.join("letter.txt").exists());
}

#[test]
fn domains_are_validated_listed_and_a_new_one_must_be_confirmed() {
    let (world, cohort) = one_site_world(1, 1, false);
    let bundles = world.export("SITE-A", &cohort.sites[0].dir, "outbox");

    let bad = world.import_with(&["--domain", "bad domain"], &[], &bundles);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("lower-case letters, digits and hyphens"),
        "{}",
        text(&bad.stderr)
    );
    let upper = world.import_with(&["--domain", "GLIO-7"], &[], &bundles);
    assert_eq!(upper.status.code(), Some(2));

    let unconfirmed = world.import_with(&["--domain", "glio-7"], &[], &bundles);
    assert_eq!(unconfirmed.status.code(), Some(2));
    assert!(
        text(&unconfirmed.stderr).contains("--new-domain"),
        "{}",
        text(&unconfirmed.stderr)
    );
    assert!(!world.archive().join("index.csv").exists(), "nothing imported");

    let confirmed = world.import_with(&["--domain", "glio-7", "--new-domain"], &[], &bundles);
    assert!(confirmed.status.success(), "{}", text(&confirmed.stderr));
    // Known now: no confirmation needed again; `default` never needs one.
    assert!(world
        .import_with(&["--domain", "glio-7"], &[], &bundles)
        .status
        .success());
    assert!(world.import(&bundles).status.success());

    let listed = world.central("domains", &["--json"]);
    assert!(listed.status.success());
    let lines: Vec<serde_json::Value> = text(&listed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let instances = cohort.spec.mr_instance_count() as u64;
    let glio = lines.iter().find(|l| l["domain"] == "glio-7").unwrap();
    assert_eq!(
        (glio["patients"].as_u64(), glio["instances"].as_u64()),
        (Some(1), Some(instances))
    );
    let default = lines.iter().find(|l| l["domain"] == "default").unwrap();
    assert_eq!(default["patients"], 1);
    assert_eq!(lines.last().unwrap()["event"], "summary");

    // A look-up in a domain the store does not have is refused, not answered "not found".
    let lookup = world.central(
        "lookup",
        &[
            "--site",
            "SITE-A",
            "--local-id",
            "1",
            "--reason",
            "test",
            "--domain",
            "glio-8",
        ],
    );
    assert_eq!(lookup.status.code(), Some(2));
    assert!(text(&lookup.stderr).contains("no domain 'glio-8'"));
}

#[test]
fn a_weak_steward_passphrase_is_refused_with_the_reason_unless_a_test_set_up_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let weak = cmd("pseal-central")
        .env("PSEAL_PASSPHRASE", "password1")
        .arg("init")
        .arg("--store")
        .arg(dir.path().join("store"))
        .output()
        .unwrap();
    assert_eq!(weak.status.code(), Some(2));
    let err = text(&weak.stderr);
    assert!(err.contains("the passphrase is too weak"), "{err}");
    assert!(err.contains("common password"), "zxcvbn's reason: {err}");
    assert!(!dir.path().join("store").join("steward-identity.age").exists());

    let test_set_up = cmd("pseal-central")
        .env("PSEAL_PASSPHRASE", "password1")
        .args(["init", "--allow-weak-passphrase", "--store"])
        .arg(dir.path().join("store"))
        .output()
        .unwrap();
    assert!(test_set_up.status.success(), "{}", text(&test_set_up.stderr));

    let change = cmd("pseal-central")
        .env("PSEAL_PASSPHRASE", "password1")
        .env("PSEAL_NEW_PASSPHRASE", "qwerty")
        .args(["passphrase", "--store"])
        .arg(dir.path().join("store"))
        .output()
        .unwrap();
    assert_eq!(change.status.code(), Some(2));
    assert!(text(&change.stderr).contains("the passphrase is too weak"));
}

#[test]
fn an_export_keeps_the_earlier_report_under_a_dated_name() {
    let (world, cohort) = one_site_world(1, 1, false);
    let out = world.dir.path().join("outbox");
    let export = || {
        cmd("pseal")
            .arg("export")
            .arg("--config")
            .arg(world.config("SITE-A"))
            .arg("--input")
            .arg(&cohort.sites[0].dir)
            .arg("--out")
            .arg(&out)
            .arg("--json")
            .output()
            .unwrap()
    };
    assert!(export().status.success());
    let first = std::fs::read(out.join("export-report.json")).unwrap();
    let second = export();
    assert!(second.status.success());
    let summary: serde_json::Value = serde_json::from_str(&last_line(&second)).unwrap();
    let kept = PathBuf::from(
        summary["earlier_report_kept_as"]
            .as_str()
            .expect("the summary names it"),
    );
    let name = kept.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("export-report-") && name.ends_with("Z.json"), "{name}");
    assert_eq!(std::fs::read(&kept).unwrap(), first, "the earlier report, unchanged");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("export-report.json")).unwrap()).unwrap();
    assert_eq!(report["earlier_report_kept_as"], name.as_str());
}

#[test]
fn errors_name_the_role_of_the_path_and_never_a_temporary_name() {
    let (world, cohort) = one_site_world(1, 1, false);
    let export = |input: &Path, out: &Path| {
        cmd("pseal")
            .arg("export")
            .arg("--config")
            .arg(world.config("SITE-A"))
            .arg("--input")
            .arg(input)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let check = |out: &std::process::Output, role: &str| {
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(role), "the message names the {role}: {err}");
        assert!(!err.contains(".pseal-"), "a temporary name in: {err}");
        assert!(!err.contains("at path"), "{err}");
    };
    // The report file is a folder (root ignores file modes, so a read-only disk cannot be faked).
    let out = world.dir.path().join("outbox");
    std::fs::create_dir_all(out.join("export-report.json")).unwrap();
    check(&export(&cohort.sites[0].dir, &out), "report file");
    check(
        &export(&world.dir.path().join("no-such-input"), &world.dir.path().join("o2")),
        "input folder",
    );
    let file = world.dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    check(&export(&cohort.sites[0].dir, &file), "outbox");
    check(&review(&world, &cohort.sites[0].dir, &file, &[]), "review folder");

    // The steward side.
    let bundles = world.export("SITE-A", &cohort.sites[0].dir, "outbox2");
    let archive_file = world.dir.path().join("archfile");
    std::fs::write(&archive_file, b"x").unwrap();
    let import = cmd("pseal-central")
        .arg("import")
        .arg("--store")
        .arg(world.store())
        .arg("--archive")
        .arg(&archive_file)
        .args(&bundles)
        .output()
        .unwrap();
    check(&import, "archive folder");
    assert!(world.import(&bundles).status.success());
    let (researcher, _) = researcher_key();
    let release = world.central(
        "release",
        &[
            "--archive",
            world.archive().to_str().unwrap(),
            "--to",
            &researcher,
            "--all",
            "--out",
            world.dir.path().join("nodir/r.tar.zst.age").to_str().unwrap(),
        ],
    );
    check(&release, "release file");
    assert!(text(&release.stderr).contains("does not exist"));
    // No selection: the message says what to choose.
    let none = world.central(
        "release",
        &[
            "--archive",
            world.archive().to_str().unwrap(),
            "--to",
            &researcher,
            "--out",
            "x.age",
        ],
    );
    assert_eq!(none.status.code(), Some(2));
    assert!(
        text(&none.stderr).contains("choose --all or --pseudonyms FILE"),
        "{}",
        text(&none.stderr)
    );
}

fn researcher_key() -> (String, age::x25519::Identity) {
    let id = age::x25519::Identity::generate();
    (id.to_public().to_string(), id)
}

#[test]
fn results_go_to_standard_output_and_plurals_are_right() {
    let (world, cohort) = one_site_world(1, 1, false);
    let mut bundles = world.export("SITE-A", &cohort.sites[0].dir, "outbox");
    let junk = world.dir.path().join("junk.pseal");
    std::fs::write(&junk, b"not a bundle").unwrap();
    bundles.push(junk);
    let out = world.import(&bundles);
    assert_eq!(out.status.code(), Some(1));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        stdout.contains("REFUSED ") && stdout.contains("junk.pseal"),
        "refusals are results: {stdout}"
    );
    assert!(stdout.contains("imported "), "{stdout}");
    assert!(
        stdout.contains("1 bundle imported") && stdout.contains("1 refused"),
        "the summary, singular: {stdout}"
    );
    assert!(
        !stderr.contains("REFUSED"),
        "nothing of the results on standard error: {stderr}"
    );
    assert!(!stdout.contains("(s)"), "{stdout}");
}

#[test]
fn check_lookup_and_release_print_one_json_summary_shape() {
    let (world, cohort) = one_site_world(1, 1, false);
    let bundles = world.export("SITE-A", &cohort.sites[0].dir, "outbox");
    assert!(world.import(&bundles).status.success());
    let summary = |out: &std::process::Output| -> serde_json::Value {
        let line = last_line(out);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(v["event"], "summary", "{line}");
        v
    };
    let good = cmd("pseal-central")
        .args(["check", "--json", "4DW3-34RH-EFV4R"])
        .output()
        .unwrap();
    assert_eq!(good.status.code(), Some(0));
    assert_eq!(summary(&good)["valid"], true);
    let bad = cmd("pseal-central")
        .args(["check", "--json", "4DW3-34HR-EFV4R"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let v = summary(&bad);
    assert_eq!(v["valid"], false);
    assert!(v["reason"].as_str().unwrap().contains("check symbol"));

    let local_id = &cohort.sites[0].patients[0].local_id;
    let found = world.central(
        "lookup",
        &["--site", "SITE-A", "--local-id", local_id, "--reason", "test", "--json"],
    );
    assert!(found.status.success(), "{}", text(&found.stderr));
    let v = summary(&found);
    assert_eq!(v["found"], true);
    assert!(v["pseudonym"]
        .as_str()
        .unwrap()
        .parse::<pseal::pseudonym::Pseudonym>()
        .is_ok());
    let missing = world.central(
        "lookup",
        &[
            "--site",
            "SITE-A",
            "--local-id",
            "no-such-id",
            "--reason",
            "test",
            "--json",
        ],
    );
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(summary(&missing)["found"], false);

    let (researcher, _) = researcher_key();
    let out = world.dir.path().join("r.tar.zst.age");
    let release = world.central(
        "release",
        &[
            "--archive",
            world.archive().to_str().unwrap(),
            "--to",
            &researcher,
            "--all",
            "--json",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(release.status.success(), "{}", text(&release.stderr));
    let v = summary(&release);
    assert_eq!(v["patients"], 1, "flat, like every other summary: {v}");
    assert!(v["sha256"].as_str().is_some());
}

#[test]
fn help_shows_an_example_and_the_environment_and_completions_and_man_pages_come_from_clap() {
    for (bin, sub) in [
        ("pseal", "export"),
        ("pseal", "review"),
        ("pseal-central", "import"),
        ("pseal-central", "check"),
    ] {
        let help = cmd(bin).args([sub, "--help"]).output().unwrap();
        let help = text(&help.stdout);
        assert!(help.contains("Example:"), "{bin} {sub} --help: {help}");
        assert!(help.contains("Environment:"), "{bin} {sub} --help: {help}");
    }
    let import_help = text(&cmd("pseal-central").args(["import", "--help"]).output().unwrap().stdout);
    assert!(import_help.contains("PSEAL_PASSPHRASE"));
    let bash = cmd("pseal").args(["completions", "bash"]).output().unwrap();
    assert!(bash.status.success());
    assert!(text(&bash.stdout).contains("review") && text(&bash.stdout).contains("--replace"));
    let dir = tempfile::tempdir().unwrap();
    let man = cmd("pseal-central").arg("manpages").arg(dir.path()).output().unwrap();
    assert!(man.status.success(), "{}", text(&man.stderr));
    let page = std::fs::read_to_string(dir.path().join("pseal-central-import.1")).unwrap();
    assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
    assert!(page.contains("new\\-domain"), "the flags are in the page");
}

/// The numbers `a/b` in a line of terminal output (ANSI escapes removed).
fn fractions(line: &str) -> Vec<(u64, u64)> {
    let clean: String = {
        let mut out = String::new();
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                // CSI: ESC [ … final byte in @–~.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                continue;
            }
            out.push(c);
        }
        out
    };
    let bytes = clean.as_bytes();
    let mut found = Vec::new();
    let number_at = |mut i: usize, forward: bool| -> Option<(u64, usize)> {
        let mut digits = String::new();
        loop {
            let b = *bytes.get(i)?;
            if b.is_ascii_digit() {
                digits.push(b as char);
            } else if b != b',' {
                break;
            }
            if forward {
                i += 1;
            } else if i == 0 {
                break;
            } else {
                i -= 1;
            }
        }
        if !forward {
            digits = digits.chars().rev().collect();
        }
        digits.parse().ok().map(|n| (n, i))
    };
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'/' && i > 0 {
            if let (Some((a, _)), Some((t, _))) = (number_at(i - 1, false), number_at(i + 1, true)) {
                found.push((a, t));
            }
        }
    }
    found
}

#[test]
fn under_a_terminal_no_progress_count_exceeds_its_total() {
    if std::process::Command::new("script").arg("--version").output().is_err() {
        say_skipped("`script` (util-linux) is not installed: the pseudo-terminal test needs it");
        return;
    }
    let (world, cohort) = one_site_world(4, 2, true);
    let out = world.dir.path().join("outbox");
    let quote = |p: &Path| format!("'{}'", p.display());
    let run = |command: String| -> String {
        let shell = format!("stty cols 160 rows 40; {command}");
        let output = std::process::Command::new("script")
            .args(["-qefc", &shell, "/dev/null"])
            .env("PSEAL_PASSPHRASE", PASSPHRASE)
            .output()
            .unwrap();
        let seen = text(&output.stdout);
        assert!(output.status.success(), "{command}:\n{seen}");
        seen
    };
    let export = run(format!(
        "{} export --config {} --input {} --out {}",
        quote(&bin("pseal")),
        quote(&world.config("SITE-A")),
        quote(&cohort.sites[0].dir),
        quote(&out)
    ));
    let bundles = bundles_in(&out);
    let import = run(format!(
        "{} import --store {} --archive {} {}",
        quote(&bin("pseal-central")),
        quote(&world.store()),
        quote(&world.archive()),
        bundles.iter().map(|b| quote(b)).collect::<Vec<_>>().join(" ")
    ));
    for (what, seen, item) in [("export", &export, "patient "), ("import", &import, "bundle ")] {
        // Progress lines are the bar's (its parts are joined by " · "); result lines name paths.
        let lines: Vec<&str> = seen.split(['\r', '\n']).filter(|l| l.contains(" · ")).collect();
        let progress: Vec<&&str> = lines.iter().filter(|l| l.contains(item)).collect();
        assert!(!progress.is_empty(), "{what} drew no progress line:\n{seen}");
        for line in &lines {
            for (done, total) in fractions(line) {
                assert!(done <= total, "{what}: {done}/{total} in {line:?}");
            }
        }
        // A rate appears only once a phase has run for a while (a fast machine may finish first);
        // where one is drawn it carries its unit. The rate's format is pinned by render's unit tests.
        for line in progress.iter().filter(|l| l.contains("/s")) {
            assert!(
                line.split(" · ")
                    .any(|part| part.ends_with("B/s") || part.ends_with("s/s")),
                "{what} shows a rate without its unit: {line:?}"
            );
        }
    }
    assert!(export.contains("files"), "{export}");
    assert!(import.contains("bundle 1/"), "{import}");
}
