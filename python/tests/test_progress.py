"""Progress events: the objects `--json` prints, in order, ending with the summary."""

import threading

import pseal
from conftest import json_lines, run


def without_bundle_events(events):
    return [e for e in events if e["event"] != "bundle_written"]


def check_counting(events, phases):
    """Phases come in the given order; each phase's advance events count 1, 2, 3… up to its total."""
    seen = []
    done = None
    for e in events:
        if e["event"] == "phase":
            if done is not None and seen[-1][1] is not None:
                assert done == seen[-1][1], f"phase {seen[-1][0]} ended at {done} of {seen[-1][1]}"
            seen.append((e["name"], e["total"]))
            done = 0
        elif e["event"] == "advance":
            done += 1
            assert e == {**e, "n": 1, "done": done, "phase": seen[-1][0]}
            if seen[-1][1] is not None:
                assert e["total"] == seen[-1][1]
            else:
                assert "total" not in e
    if seen and seen[-1][1] is not None:
        assert done == seen[-1][1], f"phase {seen[-1][0]} ended at {done} of {seen[-1][1]}"
    assert [name for name, _ in seen] == phases


def test_export_events_are_the_json_lines_in_order(tmp_path, config, cohort):
    events = []
    report = pseal.export(config, cohort, tmp_path / "py", progress=events.append)
    cli = json_lines(run("pseal", "export", "--json", "--config", config, "--input", cohort, "--out", tmp_path / "cli").stdout)

    check_counting(events, ["scan", "export"])
    assert events[0] == {"event": "phase", "name": "scan", "total": None}
    assert sum(e["event"] == "advance" and e["phase"] == "scan" for e in events) == 99
    assert {"event": "phase", "name": "export", "total": 97} in events
    assert events[-1] == {
        "event": "summary", "bundles": 2, "exported": 96, "quarantined": 1, "skipped": 2, "failed": 0,
        "report": str(tmp_path / "py" / "export-report.json"), "earlier_report_kept_as": None,
    }
    quarantined = [e for e in events if e["event"] == "quarantined"]
    assert len(quarantined) == 1 and "Burned In Annotation" in quarantined[0]["reason"]
    # Bundles are announced in patient order, each once it is whole.
    written = [e for e in events if e["event"] == "bundle_written"]
    assert [(e["file"], e["instances"]) for e in written] == [(b["file"], b["instances"]) for b in report["bundles"]]

    # The same stream as the CLI's, but for the bundles' random names and the report's folder
    # (and where a bundle's announcement falls among the next patient's steps, which depends on
    # when its writing thread ends).
    assert without_bundle_events(events[:-1]) == without_bundle_events(cli[:-1])
    assert [e["instances"] for e in written] == [e["instances"] for e in cli if e["event"] == "bundle_written"]
    assert {**events[-1], "report": None} == {**cli[-1], "report": None}


def test_review_events_are_the_json_lines_in_order(tmp_path, config, cohort):
    events = []
    pseal.review(config, cohort, tmp_path / "py", progress=events.append)
    cli = json_lines(run("pseal", "review", "--json", "--config", config, "--input", cohort, "--out", tmp_path / "cli").stdout)
    check_counting(events, ["scan", "review"])
    assert events[:-1] == cli[:-1]
    assert events[-1] == {
        "event": "summary", "reviewed": 96, "quarantined": 1, "skipped": 2,
        "report": str(tmp_path / "py" / "review-report.json"),
        "report_html": str(tmp_path / "py" / "review-report.html"),
        "report_md": str(tmp_path / "py" / "review-report.md"),
    }
    paths = {"report": None, "report_html": None, "report_md": None}
    assert {**events[-1], **paths} == {**cli[-1], **paths}


def test_the_callback_runs_on_the_calling_thread(tmp_path, config, cohort):
    threads = set()
    pseal.export(config, cohort, tmp_path, progress=lambda e: threads.add(threading.get_ident()))
    assert threads == {threading.get_ident()}
