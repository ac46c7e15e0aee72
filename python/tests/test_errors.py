"""Each cause raises its exception type, with the message the CLI prints after `pseal: error: `."""

import shutil

import pytest

import pseal
from conftest import run

PREFIX = "pseal: error: "


def cli_message(*args) -> str:
    done = run("pseal", *args, check=False)
    assert done.returncode == 2, done
    text = done.stderr.strip()
    assert text.startswith(PREFIX), text
    return text[len(PREFIX):]


def raised(kind, call, *args, **kwargs) -> str:
    with pytest.raises(kind) as info:
        call(*args, **kwargs)
    assert type(info.value) is kind
    assert isinstance(info.value, pseal.Error)
    return str(info.value)


@pytest.fixture()
def copied_site(tmp_path, config):
    """A copy of the session's site configuration and key, to damage."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(config, site / "pseal.toml")
    shutil.copy(config.with_name("pseal.site-key"), site / "pseal.site-key")
    return site / "pseal.toml"


@pytest.mark.parametrize("command", ["export", "review"])
def test_runs_raise_by_cause_with_the_cli_message(tmp_path, config, cohort, copied_site, command):
    call = getattr(pseal, command)

    def same(kind, cfg, inp, out):
        message = raised(kind, call, cfg, inp, out)
        assert message == cli_message(command, "--config", cfg, "--input", inp, "--out", out)
        return message

    # Bad configuration: missing, then with a misspelt key.
    assert "No such file" in same(pseal.ConfigError, tmp_path / "missing.toml", cohort, tmp_path / "o")
    bad = tmp_path / "bad.toml"
    bad.write_text(copied_site.read_text().replace("site =", "sitename =", 1))
    assert "unknown field `sitename`" in same(pseal.ConfigError, bad, cohort, tmp_path / "o")
    # Key problem: the site key readable by others.
    key = copied_site.with_name("pseal.site-key")
    key.chmod(0o644)
    assert "readable by other users" in same(pseal.BadKeyError, copied_site, cohort, tmp_path / "o")
    key.chmod(0o600)
    # Unreadable input.
    assert "input folder" in same(pseal.InputError, config, tmp_path / "no-such-folder", tmp_path / "o")
    # Output not writable: a file where the folder should be.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert "is a file, not a folder" in same(pseal.OutputError, config, cohort, blocker)


def test_inspect_raises_input_error_with_the_cli_message(tmp_path):
    not_a_bundle = tmp_path / "notes.txt"
    not_a_bundle.write_text("hello\n")
    for path in [not_a_bundle, tmp_path / "missing.pseal"]:
        assert raised(pseal.InputError, pseal.inspect, path) == cli_message("inspect", path)


def test_init_site_raises_by_cause_with_the_cli_message(tmp_path, world):
    recipient = world.recipient

    def same(kind, site, recipients, flags=(), **options):
        config = tmp_path / "site.toml"
        message = raised(kind, pseal.init_site, config, site, recipients, options or None)
        args = ["init", "--config", config, "--site", site]
        for r in recipients:
            args += ["--recipient", r]
        assert message == cli_message(*args, *flags)
        return message

    assert "site name" in same(pseal.ConfigError, "KSB RAD", [recipient])
    assert "at least one --recipient" in same(pseal.ConfigError, "SITE-A", [])
    assert "not a valid age recipient" in same(pseal.BadKeyError, "SITE-A", ["age1notakey"])
    assert "unknown de-identification option" in same(
        pseal.ConfigError, "SITE-A", [recipient], ["--options", "clean-descriptor"], options="clean-descriptor"
    )
    assert "local_id.attribute" in same(
        pseal.ConfigError, "SITE-A", [recipient], ["--local-id-attribute", "HisPseudonym"],
        local_id_attribute="HisPseudonym",
    )
    pseal.init_site(tmp_path / "site.toml", "SITE-A", recipient)
    assert "refusing to overwrite" in same(pseal.OutputError, "SITE-A", [recipient])


def test_init_site_refuses_unknown_options_as_config_errors(tmp_path, world):
    message = raised(pseal.ConfigError, pseal.init_site, tmp_path / "s.toml", "SITE-A", world.recipient, {"site_key": "x"})
    assert message.startswith("init options: unknown field `site_key`")
    assert "local_id_attribute" in message
    raised(pseal.ConfigError, pseal.init_site, tmp_path / "s.toml", "SITE-A", world.recipient, {"options": 3})
    raised(pseal.ConfigError, pseal.init_site, tmp_path / "s.toml", "SITE-A", world.recipient, {"options": object()})
    assert not (tmp_path / "s.toml").exists() and not (tmp_path / "s.site-key").exists()


def test_the_exceptions_form_one_hierarchy():
    for kind in [pseal.ConfigError, pseal.BadKeyError, pseal.InputError, pseal.OutputError, pseal.Cancelled]:
        assert issubclass(kind, pseal.Error)
        assert kind.__module__ == "pseal"
        assert kind.__doc__
    assert issubclass(pseal.Error, Exception)


def test_a_progress_that_is_not_callable_is_refused_before_anything_runs(tmp_path, config, cohort):
    with pytest.raises(TypeError, match="progress must be callable"):
        pseal.export(config, cohort, tmp_path / "out", progress=[])
    assert not (tmp_path / "out").exists()
