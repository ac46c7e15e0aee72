"""The Flask-SocketIO example: a client starts an export and receives its progress and summary."""

import sys
import time
from pathlib import Path

import pytest

flask_socketio = pytest.importorskip("flask_socketio", reason="Flask-SocketIO is not installed (python/ci.sh installs it)")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "flask_socketio"))
import app as example  # noqa: E402


def received_until(client, name, seconds=120):
    messages = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        messages += client.get_received()
        if any(m["name"] == name for m in messages):
            return messages
        time.sleep(0.02)
    raise AssertionError(f"no {name} within {seconds} s; got {[m['name'] for m in messages]}")


def test_a_socketio_client_receives_progress_and_the_summary(tmp_path, config, cohort):
    app, socketio = example.create_app(str(config))
    client = socketio.test_client(app)
    assert client.is_connected()
    ack = client.emit("start_export", {"input": str(cohort), "out": str(tmp_path)}, callback=True)
    assert ack == {"accepted": True}
    messages = received_until(client, "export_finished")

    progress = [m["args"][0] for m in messages if m["name"] == "progress"]
    assert progress[0] == {"event": "phase", "name": "scan", "total": None}
    assert {"event": "phase", "name": "export", "total": 97} in progress
    assert sum(e["event"] == "advance" and e["phase"] == "export" for e in progress) == 97
    assert [e["instances"] for e in progress if e["event"] == "bundle_written"] == [48, 48]
    summary = progress[-1]
    assert summary["event"] == "summary"
    assert (summary["bundles"], summary["exported"], summary["quarantined"]) == (2, 96, 1)
    finished = [m["args"][0] for m in messages if m["name"] == "export_finished"][0]
    assert finished["counts"]["bundles"] == 2
    assert sorted(b["file"] for b in finished["bundles"]) == sorted(p.name for p in tmp_path.glob("*.pseal"))
    assert app.test_client().get("/health").get_json()["ok"] is True


def test_a_failed_export_reaches_the_client_as_its_exception_kind(tmp_path, config):
    app, socketio = example.create_app(str(config))
    client = socketio.test_client(app)
    client.emit("start_export", {"input": str(tmp_path / "not-mounted"), "out": str(tmp_path / "out")})
    failed = [m["args"][0] for m in received_until(client, "export_failed") if m["name"] == "export_failed"][0]
    assert failed["kind"] == "InputError"
    assert "input folder" in failed["error"]
