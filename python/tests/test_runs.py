"""export, review and inspect give what the CLI gives: the same reports, bundles that import
into the same archive, the same inspection."""

import json

import pseal
from conftest import World, bundles_in, everything_in, json_lines, run, snapshot


def test_export_returns_its_report_and_its_bundles_import_into_the_archive_the_cli_bundles_give(tmp_path, cohort):
    world = World(tmp_path / "steward")
    config = world.add_site("SITE-A")

    py_out = tmp_path / "py-out"
    report = pseal.export(config, cohort, py_out)
    assert report == json.loads((py_out / "export-report.json").read_text())
    assert report["counts"]["patients"] == 2
    assert report["counts"]["exported"] == 96
    assert report["counts"]["quarantined"] == 1
    assert report["counts"]["skipped"] == 2
    assert report["failed"] == []
    assert sorted(b["file"] for b in report["bundles"]) == bundles_in(py_out)
    assert everything_in(py_out) == sorted(bundles_in(py_out) + ["export-report.json"])

    imported = [e for e in world.import_bundles(py_out) if e["event"] == "imported"]
    assert [(e["outcome"], e["instances"]) for e in imported] == [("imported", 48), ("imported", 48)]
    archive = snapshot(world.archive)
    assert len([name for name in archive if name.endswith(".dcm")]) == 96

    # The CLI's export of the same files: other bundles (new IDs, new placeholders), which the
    # steward re-keys into exactly the same files at the same paths.
    cli_out = tmp_path / "cli-out"
    cli = run("pseal", "export", "--config", config, "--input", cohort, "--out", cli_out)
    assert cli.returncode == 0
    cli_report = json.loads((cli_out / "export-report.json").read_text())
    assert {k: v for k, v in cli_report.items() if k != "bundles"} == {
        k: v for k, v in report.items() if k != "bundles"
    }
    assert set(bundles_in(cli_out)).isdisjoint(bundles_in(py_out))
    imported = [e for e in world.import_bundles(cli_out) if e["event"] == "imported"]
    assert [(e["outcome"], e["instances"]) for e in imported] == [("imported", 48), ("imported", 48)]
    assert snapshot(world.archive) == archive


def test_review_returns_the_report_the_cli_writes(tmp_path, config, cohort):
    report = pseal.review(config, cohort, tmp_path / "py")
    assert report == json.loads((tmp_path / "py" / "review-report.json").read_text())
    run("pseal", "review", "--config", config, "--input", cohort, "--out", tmp_path / "cli")
    assert report == json.loads((tmp_path / "cli" / "review-report.json").read_text())
    assert (tmp_path / "py" / "review-report.md").read_text() == (tmp_path / "cli" / "review-report.md").read_text()
    assert report["counts"]["reviewed"] == 96
    assert everything_in(tmp_path / "py") == everything_in(tmp_path / "cli")


def test_inspect_returns_what_the_cli_prints(tmp_path, config, cohort):
    pseal.export(config, cohort, tmp_path)
    bundle = tmp_path / bundles_in(tmp_path)[0]
    info = pseal.inspect(bundle)
    # The CLI's line is the same object marked as its summary line.
    assert {**info, "event": "summary"} == json.loads(run("pseal", "inspect", "--json", bundle).stdout)
    assert info["format"] == "age-encryption.org/v1"
    assert info["recipients"] == [["X25519", 1]]
    assert pseal.inspect(str(bundle)) == info


def test_init_site_writes_what_pseal_init_writes(tmp_path, world):
    options = {"options": ["retain-patient-characteristics", "clean-descriptors"], "local_id_attribute": "(0012,0040)"}
    done = pseal.init_site(tmp_path / "py" / "site.toml", "UKB-NEURO", [world.recipient], options)
    assert set(done) == {"config", "site_key", "site", "public_key", "linkage"}
    assert done["site"] == "UKB-NEURO"
    assert done["public_key"].startswith("psealsite1")
    assert done["site_key"] == str(tmp_path / "py" / "site.site-key")
    assert (tmp_path / "py" / "site.site-key").stat().st_mode & 0o777 == 0o600
    cli = run(
        "pseal", "init", "--config", tmp_path / "cli" / "site.toml", "--site", "UKB-NEURO",
        "--recipient", world.recipient, "--options", "retain-patient-characteristics,clean-descriptors",
        "--local-id-attribute", "(0012,0040)",
    )
    assert cli.stdout.strip().splitlines()[-1].startswith("psealsite1")
    assert (tmp_path / "py" / "site.toml").read_text() == (tmp_path / "cli" / "site.toml").read_text()
    # Defaults are the CLI's defaults.
    pseal.init_site(tmp_path / "py2" / "site.toml", "UKB-NEURO", world.recipient)
    run("pseal", "init", "--config", tmp_path / "cli2" / "site.toml", "--site", "UKB-NEURO", "--recipient", world.recipient)
    assert (tmp_path / "py2" / "site.toml").read_text() == (tmp_path / "cli2" / "site.toml").read_text()
