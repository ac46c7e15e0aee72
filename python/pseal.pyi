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
    """The output folder cannot be made or written, or a review folder holds files (pass a new one); init_site's configuration exists already."""

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
    bytes: int  # bytes read since the previous advance (with the three below, once any were read)
    bytes_done: int
    bytes_total: int  # absent until the phase's size is known

class SizeEvent(TypedDict):
    event: Literal["size"]
    bytes: int  # the phase's total size, once known

class ItemEvent(TypedDict):
    event: Literal["item"]
    unit: str  # "patient"
    index: int  # from 1
    total: int

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
    earlier_report_kept_as: Optional[str]  # where an earlier export's report into the same folder was kept

class ReviewSummaryEvent(TypedDict):
    event: Literal["summary"]
    reviewed: int
    quarantined: int
    skipped: int
    report: str  # review-report.json
    report_html: str  # review-report.html, the one a DPO reads and signs
    report_md: str

ProgressEvent = Union[
    PhaseEvent, AdvanceEvent, SizeEvent, ItemEvent, QuarantinedEvent, BundleWrittenEvent, ExportSummaryEvent,
    ReviewSummaryEvent,
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

class LinkageConflict(TypedDict):
    patient: int  # position among this export's patients, never an ID
    fields: dict[str, int]  # field name -> number of distinct values among the patient's files

class LinkageSummary(TypedDict):
    sealed_fields: List[str]  # names of fields, never values
    conflicts: List[LinkageConflict]

class _ExportReport(TypedDict):
    tool: str
    site: str
    profile: Profile
    counts: ExportCounts
    bundles: List[BundleSummary]
    quarantined: List[LeftOut]
    skipped: List[LeftOut]
    failed: List[FailedPatient]
    actions: List[ActionCount]

class ExportReport(_ExportReport, total=False):
    earlier_report_kept_as: str  # an earlier export's report into the same folder, kept under this name
    linkage: LinkageSummary  # with cross-site linkage on

class ReviewCounts(TypedDict):
    files_seen: int
    patients: int
    reviewed: int
    quarantined: int
    skipped: int

class ReviewedFile(TypedDict):
    input: str
    output: str

class _SealedSummary(TypedDict):
    local_ids: int
    uids: int
    values: dict[str, int]
    birth_dates: int

class SealedSummary(_SealedSummary, total=False):
    linkage_fields: List[str]  # with cross-site linkage on: names of the fields sealed, never values

class AttributeOutcomes(TypedDict):
    tag: str  # "(GGGG,EEEE)"
    name: str
    outcomes: dict[str, int]  # outcome (removed, emptied, dummy, replaced-uid, kept, …) -> occurrences
    sealed: int

class TagValues(TypedDict):
    values: dict[str, int]  # distinct value kept -> occurrences
    more: int

class _QuarantinedFile(TypedDict):
    path: str

class QuarantinedFile(_QuarantinedFile, total=False):
    no_thumbnail: str  # why no thumbnail is shown

class QuarantineGroup(TypedDict):
    code: str
    reason: str
    files: List[QuarantinedFile]

class ClassCount(TypedDict):
    sop_class_uid: str
    instances: int

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
    attributes: List[AttributeOutcomes]
    values: dict[str, TagValues]  # "(GGGG,EEEE)" -> the values kept
    quarantine_groups: List[QuarantineGroup]
    allow_burned_in: List[str]
    without_iod_data: List[ClassCount]  # SOP classes pseal's IOD tables do not hold, with their instance counts

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
    linkage: bool

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
