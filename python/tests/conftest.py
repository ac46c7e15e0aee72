"""Shared fixtures of the pseal package's tests: the workspace's binaries, a steward, a site, a
generated cohort.

The binaries (pseal, pseal-central, pseal-fixtures) come from the workspace build that
python/ci.sh runs before pytest; PSEAL_BIN_DIR names their folder (default: the cargo target
folder's debug/).
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pseal

REPO = Path(__file__).resolve().parents[2]
PASSPHRASE = "correct horse battery staple for python tests"


def bin_dir() -> Path:
    if os.environ.get("PSEAL_BIN_DIR"):
        return Path(os.environ["PSEAL_BIN_DIR"])
    return Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug"


def tool(name: str) -> Path:
    path = bin_dir() / name
    if not path.exists():
        reason = f"{name} is not built in {bin_dir()} (run python/ci.sh, or set PSEAL_BIN_DIR)"
        print(f"SKIPPED: {reason}", file=sys.stderr)
        pytest.skip(reason)
    return path


def run(name: str, *args, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PSEAL_PASSPHRASE=PASSPHRASE)
    done = subprocess.run(
        [str(tool(name)), *map(str, args)], env=env, capture_output=True, text=True, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{name} {args} exited {done.returncode}: {done.stderr}")
    return done


def json_lines(text: str) -> list:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def bundles_in(folder: Path) -> list:
    return sorted(p.name for p in Path(folder).glob("*.pseal"))


def everything_in(folder: Path) -> list:
    """Every file and folder under `folder`, as sorted relative paths."""
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))


def snapshot(folder: Path) -> dict:
    """Every regular file under `folder` with the SHA-256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(folder).rglob("*"))
        if p.is_file()
    }


class World:
    """A steward's store and archive in one folder, with sites set up through the package."""

    def __init__(self, root: Path):
        self.root = root
        self.store = root / "store"
        self.archive = root / "archive"
        self.recipient = run("pseal-central", "init", "--store", self.store).stdout.strip().splitlines()[-1]
        assert self.recipient.startswith("age1"), self.recipient

    def add_site(self, site: str) -> Path:
        """pseal.init_site for `site`, enrolled at the steward; returns the configuration."""
        config = self.root / site / "pseal.toml"
        done = pseal.init_site(config, site, self.recipient)
        run("pseal-central", "enroll", "--store", self.store, "--site", site, "--key", done["public_key"])
        return config

    def import_bundles(self, folder: Path) -> list:
        """pseal-central import --json of every bundle in `folder`; returns the events."""
        bundles = [folder / name for name in bundles_in(folder)]
        done = run("pseal-central", "import", "--json", "--store", self.store, "--archive", self.archive, *bundles)
        return json_lines(done.stdout)


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    return World(tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="session")
def config(world) -> Path:
    return world.add_site("SITE-A")


@pytest.fixture(scope="session")
def cohort(tmp_path_factory) -> Path:
    """Two patients of 48 MR instances each, a screenshot with burned-in text (quarantined) and
    two files that are not DICOM (skipped)."""
    root = tmp_path_factory.mktemp("hospital")
    run(
        "pseal-fixtures", "generate", "--out", root, "--preset", "small", "--sites", "SITE-A",
        "--shared-local-ids", "0", "--patients", "2", "--timepoints", "2", "--series", "2", "--slices", "12",
    )
    return root / "SITE-A"
