"""Type stubs of the pseal package (the extension module built from python/src).

The dicts are what the `pseal` command writes as JSON (reports) and prints with `--json`
(events); python/tests/test_stubs.py checks these names against the running package.
"""

from os import PathLike
from typing import Any, Callable, List, Literal, Mapping, Optional, Sequence, TypedDict, Union

__version__: str

StrPath = Union[str, "PathLike[str]"]

# ----- exceptions -----

class Error(Exception):
    """Base class of every error pseal raises; str(e) is the message the CLI prints."""

class ConfigError(Error):
    """The site configuration is missing or not valid, or an init_site value is not."""

class BadKeyError(Error):
    """The site key is missing, unreadable, readable by others or damaged; a recipient is not an age recipient."""

class InputError(Error):
    """The input folder, or the file given to inspect, cannot be read or is not a bundle."""

class OutputError(Error):
    """The output folder cannot be made or written; init_site's configuration exists already."""

class Cancelled(Error):
    """The run was cancelled by its progress callback; nothing partial was left, no report written."""

    bundles: List[str]  # file names of the bundles finished (whole) before the run stopped

# ----- progress events (the objects `--json` prints) -----

class PhaseEvent(TypedDict):
    event: Literal["phase"]
    name: str  # "scan", "review", "export"
    total: Optional[int]

class _AdvanceEvent(TypedDict):
    event: Literal["advance"]
    n: int
    done: int
    phase: str

class AdvanceEvent(_AdvanceEvent, total=False):
    total: int  # absent while the phase's total is unknown (the scan)

class QuarantinedEvent(TypedDict):
    event: Literal["quarantined"]
    path: str  # relative to the input; may hold patient names: show it, never log it off-site
    reason: str

class BundleWrittenEvent(TypedDict):
    event: Literal["bundle_written"]
    file: str
    instances: int

class ExportSummaryEvent(TypedDict):
    event: Literal["summary"]
    bundles: int
    exported: int
    quarantined: int
    skipped: int
    failed: int
    report: str

class ReviewSummaryEvent(TypedDict):
    event: Literal["summary"]
    reviewed: int
    quarantined: int
    skipped: int
    report: str

ProgressEvent = Union[
    PhaseEvent, AdvanceEvent, QuarantinedEvent, BundleWrittenEvent, ExportSummaryEvent, ReviewSummaryEvent
]
# Ignore events and fields you do not know: later versions may add some.
ProgressCallback = Callable[[ProgressEvent], object]

# ----- reports -----

class Profile(TypedDict):
    options: List[str]
    method: str

class LeftOut(TypedDict):
    path: str
    reason: str

class ActionCount(TypedDict):
    tag: int
    tag_string: str
    name: str
    action: str
    count: int

class ExportCounts(TypedDict):
    files_seen: int
    skipped: int
    patients: int
    exported: int
    quarantined: int
    bundles: int
    failed: int

class BundleSummary(TypedDict):
    file: str
    bundle_id: str
    instances: int

class FailedPatient(TypedDict):
    patient: int
    files: int
    reason: str

class ExportReport(TypedDict):
    tool: str
    site: str
    profile: Profile
    counts: ExportCounts
    bundles: List[BundleSummary]
    quarantined: List[LeftOut]
    skipped: List[LeftOut]
    failed: List[FailedPatient]
    actions: List[ActionCount]

class ReviewCounts(TypedDict):
    files_seen: int
    patients: int
    reviewed: int
    quarantined: int
    skipped: int

class ReviewedFile(TypedDict):
    input: str
    output: str

class SealedSummary(TypedDict):
    local_ids: int
    uids: int
    values: dict[str, int]
    birth_dates: int

class ReviewReport(TypedDict):
    tool: str
    site: str
    profile: Profile
    local_id_attribute: str
    counts: ReviewCounts
    files: List[ReviewedFile]
    quarantined: List[LeftOut]
    skipped: List[LeftOut]
    actions: List[ActionCount]
    sealed_identity: SealedSummary

class BundleInfo(TypedDict):
    path: str
    size: int
    format: str
    recipients: List[List[Union[str, int]]]  # [stanza type, count] pairs

class InitReport(TypedDict):
    config: str
    site_key: str
    site: str
    public_key: str

# ----- functions -----

def init_site(
    config: StrPath,
    site: str,
    recipient: Union[str, Sequence[str]],
    options: Optional[Mapping[str, Any]] = None,
) -> InitReport:
    """Set up this workstation as `pseal init` does; see help(pseal.init_site)."""

def review(
    config: StrPath,
    input: StrPath,
    out: StrPath,
    progress: Optional[ProgressCallback] = None,
) -> ReviewReport:
    """De-identify into plain files for the DPO, as `pseal review` does; see help(pseal.review)."""

def export(
    config: StrPath,
    input: StrPath,
    out: StrPath,
    progress: Optional[ProgressCallback] = None,
) -> ExportReport:
    """One sealed bundle per patient, as `pseal export` does; see help(pseal.export)."""

def inspect(bundle: StrPath) -> BundleInfo:
    """What a bundle shows without the steward's key, as `pseal inspect --json`."""
