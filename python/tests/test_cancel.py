"""A progress callback that raises stops the run cleanly: nothing partial, no report."""

import subprocess
import sys

import pytest

import pseal
from conftest import World, bundles_in, everything_in


def cancel_when(predicate):
    seen = []

    def progress(event):
        seen.append(event)
        if predicate(event):
            raise pseal.Cancelled("stop button")

    return progress, seen


def test_cancelling_at_the_first_export_step_leaves_no_bundle(tmp_path, config, cohort):
    out = tmp_path / "out"
    progress, seen = cancel_when(lambda e: e["event"] == "advance" and e["phase"] == "export")
    with pytest.raises(pseal.Cancelled) as raised:
        pseal.export(config, cohort, out, progress=progress)
    # The library's account of what was left, caused by the callback's own exception.
    assert "no report was written" in str(raised.value)
    assert isinstance(raised.value.__cause__, pseal.Cancelled)
    assert str(raised.value.__cause__) == "stop button"
    assert everything_in(out) == []
    assert raised.value.bundles == []
    # Nothing after the cancel reached the callback.
    assert seen[-1]["event"] == "advance" and seen[-1]["done"] == 1


def test_cancelling_during_the_scan_leaves_nothing(tmp_path, config, cohort):
    progress, _ = cancel_when(lambda e: e["event"] == "advance")
    with pytest.raises(pseal.Cancelled):
        pseal.review(config, cohort, tmp_path / "review", progress=progress)
    # Only the marker that says a review owns this folder (so `--replace` may empty it).
    assert everything_in(tmp_path / "review") == [".pseal-review"]
    with pytest.raises(pseal.Cancelled):
        pseal.export(config, cohort, tmp_path / "export", progress=progress)
    assert everything_in(tmp_path / "export") == []


def test_cancelling_after_a_bundle_keeps_that_bundle_whole_and_nothing_else(tmp_path, cohort):
    world = World(tmp_path / "steward")
    config = world.add_site("SITE-A")
    out = tmp_path / "out"
    progress, seen = cancel_when(lambda e: e["event"] == "bundle_written")
    with pytest.raises(pseal.Cancelled) as raised:
        pseal.export(config, cohort, out, progress=progress)
    announced = [e["file"] for e in seen if e["event"] == "bundle_written"]
    assert len(announced) == 1
    assert raised.value.bundles == announced
    # The run waited for the callback at the bundle: the next patient's bundle was never finished.
    assert everything_in(out) == announced
    imported = [e for e in world.import_bundles(out) if e["event"] == "imported"]
    assert [(e["outcome"], e["instances"]) for e in imported] == [("imported", 48)]


def test_a_review_cancelled_midway_leaves_only_finished_files(tmp_path, config, cohort):
    out = tmp_path / "out"
    progress, _ = cancel_when(lambda e: e["event"] == "advance" and e["phase"] == "review" and e["done"] == 10)
    with pytest.raises(pseal.Cancelled):
        pseal.review(config, cohort, out, progress=progress)
    left = everything_in(out)
    assert not any("pending" in name or "report" in name for name in left), left
    files = [name for name in left if name.endswith(".dcm")]
    assert files == [f"patient-0001/instances/{k:06}.dcm" for k in range(1, len(files) + 1)]


def test_another_exception_in_the_callback_stops_the_run_and_comes_back_as_it_was(tmp_path, config, cohort):
    def broken(event):
        if event["event"] == "advance" and event["phase"] == "export":
            raise ZeroDivisionError("a bug in the callback")

    with pytest.raises(ZeroDivisionError, match="a bug in the callback"):
        pseal.export(config, cohort, tmp_path, progress=broken)
    assert everything_in(tmp_path) == []


def test_an_exception_on_the_summary_comes_back_after_a_complete_run(tmp_path, config, cohort):
    def on_summary(event):
        if event["event"] == "summary":
            raise RuntimeError("summary refused")

    with pytest.raises(RuntimeError, match="summary refused"):
        pseal.export(config, cohort, tmp_path, progress=on_summary)
    assert sorted(everything_in(tmp_path)) == sorted(bundles_in(tmp_path) + ["export-report.json"])
    assert len(bundles_in(tmp_path)) == 2


def test_the_exception_lists_the_bundles_finished_before_the_run_stopped(tmp_path, config, cohort):
    """Raised on the last export step (the second patient's last file), the cancel comes while the first patient's
    bundle is finishing: that bundle is kept whole and listed, the second is dropped."""
    out = tmp_path / "out"
    progress, seen = cancel_when(lambda e: e["event"] == "advance" and e["phase"] == "export" and e["done"] == 97)
    with pytest.raises(pseal.Cancelled) as raised:
        pseal.export(config, cohort, out, progress=progress)
    assert raised.value.bundles == bundles_in(out)
    assert len(raised.value.bundles) == 1
    assert everything_in(out) == raised.value.bundles


def test_ctrl_c_stops_a_run_without_a_callback_as_a_cancel_does(tmp_path, config, cohort):
    """SIGINT while the main thread waits for pseal: KeyboardInterrupt, nothing partial, no report.
    In a child process, because pytest treats a KeyboardInterrupt as "stop the session"."""
    out = tmp_path / "out"
    script = f"""
import os, signal, sys, threading, time
import pseal

def interrupt_once_running():
    while not os.path.isdir({str(out)!r}):
        time.sleep(0.0005)
    os.kill(os.getpid(), signal.SIGINT)

threading.Thread(target=interrupt_once_running, daemon=True).start()
try:
    pseal.export({str(config)!r}, {str(cohort)!r}, {str(out)!r})
except KeyboardInterrupt:
    sys.exit(42)
sys.exit(0)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 42, done.stderr
    left = everything_in(out)
    assert "export-report.json" not in left
    assert not [name for name in left if name.startswith(".")], left
