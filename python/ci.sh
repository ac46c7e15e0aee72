#!/usr/bin/env bash
# The Python package's CI (called by .ci/run after `cargo test --workspace`): builds the wheel with
# maturin, installs it into a fresh virtual environment with pytest and Flask-SocketIO, and runs
# python/tests against the workspace's own binaries.
#
# Cost: the wheel is built with the dev profile in the workspace's target folder, so it reuses
# what `cargo test --workspace` compiled, except pyo3, the binding and about a dozen crates
# (pseal, age, serde, ciborium, …) whose features or build settings come out differently when
# maturin builds the binding's package alone; the release profile would compile everything
# again. Measured after `cargo test --workspace` on the 2-core machine shared with other builds:
# wheel 187 s (about 100 CPU-seconds), virtual environment and installs 17 s, pytest 21 s.
# A dev wheel is for tests only; releases are built as README.md says.
#
# Where maturin, a virtual environment or pytest cannot be had, it says SKIPPED and exits 0.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1
cd "$(dirname "$0")/.."

skip() {
    echo "ci: SKIPPED: Python package tests ($*)"
    exit 0
}

python=${PYTHON:-python3}
command -v "$python" >/dev/null 2>&1 || skip "no $python"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 9))' || skip "$python is older than 3.9"

target=${CARGO_TARGET_DIR:-$PWD/target}
work="$target/python-ci"
rm -rf "$work"
mkdir -p "$work"
start=$(date +%s)

if ! command -v maturin >/dev/null 2>&1; then
    echo "ci: installing maturin from PyPI"
    "$python" -m pip install -q 'maturin>=1.9.4,<2' >/dev/null 2>&1 || skip "maturin could not be installed"
fi

# The binaries the tests compare with, import through and generate the cohort with (pseal,
# pseal-central, pseal-fixtures in target/debug). `cargo test --workspace` builds them; after it
# (as in .ci/run) this finds everything fresh. A plain `cargo build` would not: without the
# dev-dependencies some crates resolve to other features, and pseal would be compiled again.
echo "ci: cargo test --workspace --no-run (the binaries the tests use)"
cargo test --quiet --workspace --no-run

echo "ci: maturin build --profile dev (the wheel the tests install)"
# Stripped, so that the wheel is a few MiB instead of about 25 (debug information); stripping is
# a link option of the last crate only.
maturin build --quiet --profile dev --strip --manifest-path python/Cargo.toml --out "$work/wheels"
wheel=$(ls "$work"/wheels/pseal-*.whl)
built=$(date +%s)

"$python" -m venv "$work/venv" >/dev/null 2>&1 || skip "$python -m venv failed (Debian: apt-get install python3-venv)"
venv_python="$work/venv/bin/python"
"$venv_python" -m pip install -q "$wheel" pytest >/dev/null 2>&1 || skip "pip could not install the wheel and pytest"
if ! "$venv_python" -m pip install -q flask flask-socketio >/dev/null 2>&1; then
    echo "ci: WARNING: Flask-SocketIO could not be installed; the example's test will say it is skipped"
fi
installed=$(date +%s)

echo "ci: pytest python/tests"
# -rs lists every skipped test with its reason; -p no:cacheprovider keeps the source tree clean.
PSEAL_BIN_DIR="$target/debug" "$venv_python" -m pytest -q -rs -p no:cacheprovider python/tests
done_at=$(date +%s)
echo "ci: Python package: wheel $((built - start))s, venv and installs $((installed - built))s, pytest $((done_at - installed))s"
