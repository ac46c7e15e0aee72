"""A minimal backend as the network's tool has one: Flask + Flask-SocketIO, running `pseal.export`
in a background task and streaming its progress events to the browser (the Electron + Vue UI).

Run it on the workstation (offline is fine):

    pip install flask flask-socketio pseal-*.whl
    PSEAL_CONFIG=/etc/pseal/pseal.toml python app.py

Socket.IO events
  client → server  "start_export" {"input": folder, "out": folder}    start an export
                   "cancel_export"                                     stop it cleanly
  server → client  "progress"  each pseal event, as `pseal export --json` prints it; the
                               last one has "event": "summary"
                   "export_finished" {"counts", "bundles", "failed"}  the report, shortened
                   "export_failed"   {"kind", "error"}                 kind: ConfigError,
                               BadKeyError, InputError, OutputError, Cancelled; error: the
                               message the CLI prints, to show the operator as it is

In the UI (socket.io-client):

    socket.on("progress", (e) => { if (e.event === "advance") bar.value = e.done / (e.total ?? e.done) });
    socket.emit("start_export", { input: "/media/usb", out: "/media/outbox" });

A quarantined event's "path" may hold patient names (folder names from the PACS): show it on the
workstation, never send it to a log that leaves the hospital. A real backend would also decide
which folders a client may name.
"""

import os
import threading

from flask import Flask, request
from flask_socketio import SocketIO

import pseal


def create_app(config_path):
    """The Flask app and its SocketIO server, exporting with the site configuration `config_path`."""
    app = Flask(__name__)
    # "threading": pseal releases the GIL while it works, so a plain thread is enough and the
    # server keeps answering other requests meanwhile.
    socketio = SocketIO(app, async_mode="threading")
    stop_buttons = {}

    def run_export(sid, input_folder, out_folder, stop):
        def progress(event):
            if stop.is_set():
                raise pseal.Cancelled("cancelled from the user interface")
            socketio.emit("progress", event, to=sid)

        try:
            report = pseal.export(config_path, input_folder, out_folder, progress=progress)
        except pseal.Error as e:
            socketio.emit("export_failed", {"kind": type(e).__name__, "error": str(e)}, to=sid)
        else:
            shortened = {key: report[key] for key in ("counts", "bundles", "failed")}
            socketio.emit("export_finished", shortened, to=sid)
        finally:
            stop_buttons.pop(sid, None)

    @app.get("/health")
    def health():
        return {"ok": True, "pseal": pseal.__version__}

    @socketio.on("start_export")
    def start_export(message):
        if request.sid in stop_buttons:
            return {"accepted": False, "reason": "an export is already running for this client"}
        stop = threading.Event()
        stop_buttons[request.sid] = stop
        socketio.start_background_task(run_export, request.sid, message["input"], message["out"], stop)
        return {"accepted": True}

    @socketio.on("cancel_export")
    def cancel_export():
        stop = stop_buttons.get(request.sid)
        if stop is not None:
            stop.set()

    return app, socketio


if __name__ == "__main__":
    app, socketio = create_app(os.environ["PSEAL_CONFIG"])
    # Only this workstation's UI talks to the backend.
    socketio.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "5000")))
