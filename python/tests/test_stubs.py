"""The type stubs ship with the package and say what the package does: the same functions with
the same parameters, the same exceptions, and report dicts with exactly the stubs' keys."""

import ast
import inspect
from pathlib import Path

import pseal
from conftest import bundles_in

STUBS = Path(__file__).resolve().parents[1] / "pseal.pyi"


def stub_tree():
    return ast.parse(STUBS.read_text())


def typed_dicts():
    """TypedDict name → its keys (with those of its bases)."""
    classes = {node.name: node for node in stub_tree().body if isinstance(node, ast.ClassDef)}

    def keys(name):
        node = classes[name]
        own = [s.target.id for s in node.body if isinstance(s, ast.AnnAssign)]
        inherited = [k for b in node.bases if isinstance(b, ast.Name) and b.id in classes for k in keys(b.id)]
        return inherited + own

    return {name: set(keys(name)) for name, node in classes.items() if not issubclass_of_error(node)}


def issubclass_of_error(node):
    return any(isinstance(b, ast.Name) and b.id in ("Exception", "Error") for b in node.bases)


def test_the_installed_package_carries_the_stubs_and_py_typed():
    folder = Path(pseal.__file__).parent
    assert (folder / "py.typed").exists()
    assert (folder / "__init__.pyi").read_text() == STUBS.read_text()


def test_functions_and_exceptions_are_those_of_the_stubs():
    tree = stub_tree()
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert set(functions) == {"init_site", "review", "export", "inspect"}
    for name, node in functions.items():
        args = node.args.args
        first_default = len(args) - len(node.args.defaults)
        stub_params = [(a.arg, i >= first_default) for i, a in enumerate(args)]
        runtime = inspect.signature(getattr(pseal, name)).parameters.values()
        assert stub_params == [(p.name, p.default is not inspect.Parameter.empty) for p in runtime], name
        assert "Raises" in getattr(pseal, name).__doc__ or name == "inspect"
    errors = {node.name for node in tree.body if isinstance(node, ast.ClassDef) and issubclass_of_error(node)}
    assert errors == {name for name in dir(pseal) if isinstance(getattr(pseal, name), type) and issubclass(getattr(pseal, name), pseal.Error)}


def test_reports_and_events_have_the_stubs_keys(tmp_path, world, config, cohort):
    stubs = typed_dicts()
    events = []
    report = pseal.export(config, cohort, tmp_path / "e", progress=events.append)
    assert set(report) == stubs["ExportReport"]
    assert set(report["counts"]) == stubs["ExportCounts"]
    assert set(report["profile"]) == stubs["Profile"]
    assert set(report["bundles"][0]) == stubs["BundleSummary"]
    assert set(report["quarantined"][0]) == stubs["LeftOut"]
    assert set(report["actions"][0]) == stubs["ActionCount"]
    kinds = {
        "phase": "PhaseEvent", "quarantined": "QuarantinedEvent", "bundle_written": "BundleWrittenEvent",
        "summary": "ExportSummaryEvent",
    }
    for e in events:
        if e["event"] == "advance":
            assert stubs["AdvanceEvent"] - {"total"} <= set(e) <= stubs["AdvanceEvent"]
        else:
            assert set(e) == stubs[kinds[e["event"]]]

    events = []
    review = pseal.review(config, cohort, tmp_path / "r", progress=events.append)
    assert set(review) == stubs["ReviewReport"]
    assert set(review["counts"]) == stubs["ReviewCounts"]
    assert set(review["files"][0]) == stubs["ReviewedFile"]
    assert set(review["sealed_identity"]) == stubs["SealedSummary"]
    assert set(events[-1]) == stubs["ReviewSummaryEvent"]

    assert set(pseal.inspect(tmp_path / "e" / bundles_in(tmp_path / "e")[0])) == stubs["BundleInfo"]
    assert set(pseal.init_site(tmp_path / "s" / "s.toml", "SITE-S", world.recipient)) == stubs["InitReport"]
