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
    """TypedDict name → (required keys, every key), with those of its bases; a class declared
    with total=False adds optional keys."""
    classes = {node.name: node for node in stub_tree().body if isinstance(node, ast.ClassDef)}

    def optional(node):
        return any(k.arg == "total" and isinstance(k.value, ast.Constant) and k.value.value is False for k in node.keywords)

    def keys(name):
        node = classes[name]
        own = {s.target.id for s in node.body if isinstance(s, ast.AnnAssign)}
        required, every = set(), set()
        for b in node.bases:
            if isinstance(b, ast.Name) and b.id in classes:
                r, e = keys(b.id)
                required |= r
                every |= e
        return (required if optional(node) else required | own), every | own

    return {name: keys(name) for name, node in classes.items() if not issubclass_of_error(node)}


def fits(d, keys):
    """True when `d` has every required key and no key the stub does not name."""
    required, every = keys
    return required <= set(d) <= every


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
    assert fits(report, stubs["ExportReport"])
    assert fits(report["counts"], stubs["ExportCounts"])
    assert fits(report["profile"], stubs["Profile"])
    assert fits(report["bundles"][0], stubs["BundleSummary"])
    assert fits(report["quarantined"][0], stubs["LeftOut"])
    assert fits(report["actions"][0], stubs["ActionCount"])
    kinds = {
        "phase": "PhaseEvent", "quarantined": "QuarantinedEvent", "bundle_written": "BundleWrittenEvent",
        "size": "SizeEvent", "item": "ItemEvent", "summary": "ExportSummaryEvent",
    }
    for e in events:
        assert fits(e, stubs["AdvanceEvent" if e["event"] == "advance" else kinds[e["event"]]]), e

    events = []
    review = pseal.review(config, cohort, tmp_path / "r", progress=events.append)
    assert fits(review, stubs["ReviewReport"])
    assert all(fits(a, stubs["AttributeOutcomes"]) for a in review["attributes"])
    assert all(fits(v, stubs["TagValues"]) for v in review["values"].values())
    assert all(fits(g, stubs["QuarantineGroup"]) for g in review["quarantine_groups"])
    assert all(fits(f, stubs["QuarantinedFile"]) for g in review["quarantine_groups"] for f in g["files"])
    assert fits(review["counts"], stubs["ReviewCounts"])
    assert fits(review["files"][0], stubs["ReviewedFile"])
    assert fits(review["sealed_identity"], stubs["SealedSummary"])
    assert fits(events[-1], stubs["ReviewSummaryEvent"])

    assert fits(pseal.inspect(tmp_path / "e" / bundles_in(tmp_path / "e")[0]), stubs["BundleInfo"])
    assert fits(pseal.init_site(tmp_path / "s" / "s.toml", "SITE-S", world.recipient), stubs["InitReport"])
