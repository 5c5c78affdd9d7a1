"""Pydantic schemas for every artifact the study writes. One module, so a reader finds each file's shape
by its name (``Product`` -> ``library.json``, ``BenchPair`` -> ``pcg_bench.jsonl``, ``Storyboard`` ->
``plan.json`` ...). Stage-specific schemas that only one module uses may live beside it, but anything read
by a later notebook is defined here."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .config import AI_LABEL
from .topics import CameraMove


class Schema(BaseModel):
    """Base: unknown fields are errors, so a typo in a spec or a model answer is caught, not dropped."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --------------------------------------------------------------------------------------------- products
Category = Literal["electronics", "retail", "service"]
LicenseKind = Literal["public-domain", "CC0-1.0", "made-here", "CC-BY-4.0", "proprietary-licensed"]


class AssetLicense(Schema):
    license: LicenseKind
    source: str = Field(description="where the asset comes from (e.g. 'drawn procedurally by nextads_lib.products')")
    author: str = "NextAds Study"


class Asset(Schema):
    path: str = Field(description="file path; relative to the product's folder in a spec, resolved in library.json")
    kind: Literal["logo", "image"]
    caption: str = ""
    license: AssetLicense


class Product(Schema):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str = Field(min_length=1)
    brand: str = Field(min_length=1)
    category: Category
    subcategory: str
    description: str = Field(min_length=10)
    selling_points: list[str] = Field(min_length=3)
    slogan: str = Field(min_length=1)
    facts: dict[str, str] = Field(description="checkable claims: price, sizes, specs", min_length=1)
    forbidden_claims: list[str] = Field(default_factory=list, description="claims the creative must never make")
    topics: list[str] = Field(default_factory=list, description="topic ids the product naturally suits")
    palette: list[str] = Field(default_factory=list, description="brand colours, hex")
    logo: Asset
    images: list[Asset] = Field(min_length=2)

    @model_validator(mode="after")
    def _kinds(self) -> "Product":
        if self.logo.kind != "logo":
            raise ValueError("logo.kind must be 'logo'")
        if any(a.kind != "image" for a in self.images):
            raise ValueError("every entry of images must have kind 'image'")
        return self


class ProductLibrary(Schema):
    products_dir: str
    products: list[Product]
    skipped: list[dict[str, str]] = Field(default_factory=list, description="{'product': id or folder, 'error': ...}")

    def get(self, product_id: str) -> Product:
        for p in self.products:
            if p.id == product_id:
                return p
        raise KeyError(f"product '{product_id}' is not in the library ({len(self.products)} products)")


# ------------------------------------------------------------------------------------- users and history
Dataset = Literal["qilin", "microlens"]


class HistoryItem(Schema):
    item_id: str
    title: str = ""
    text: str = ""
    image_paths: list[str] = Field(default_factory=list, description="covers / note images (absolute or project-relative)")
    video_path: str | None = None
    timestamp: float | None = None


class UserHistory(Schema):
    dataset: Dataset
    user_id: str
    items: list[HistoryItem] = Field(description="oldest first")


class GroundTruth(Schema):
    """Hidden truth of an embedded-sample user. Written beside the sample; pipelines never read it."""

    dataset: Dataset
    user_id: str
    topics: dict[str, float] = Field(description="topic id -> weight, summing to 1")
    interests: dict[str, float] = Field(default_factory=dict, description="the sample's fine-grained interest "
                                        "(e.g. 'Winter Outfits') -> weight; each falls under one of the topics")
    tone: str
    narrative: str
    palette: str
    lighting: str
    motion: str


# ----------------------------------------------------------------------------------------- benchmarks
Task = Literal["pcg", "pci"]


class BenchPair(Schema):
    pair_id: str
    task: Task
    user_id: str
    product_id: str
    compatibility: float = Field(ge=0, le=1)
    matched_topic: str
    rank: int = Field(ge=1, description="1 = the user's most compatible product")
    host_item_id: str | None = None
    host_video: str | None = None
    host_title: str | None = None

    @model_validator(mode="after")
    def _host(self) -> "BenchPair":
        if self.task == "pci" and (not self.host_item_id or not self.host_video):
            raise ValueError("a PCI pair needs host_item_id and host_video")
        return self


class BuildReport(Schema):
    task: Task
    source: str = Field(description="'embedded sample' or the release directory")
    n_users_available: int
    n_users_passing: int
    n_users_selected: int
    thresholds: dict[str, float]
    notes: list[str] = Field(default_factory=list)
    skipped: list[dict[str, str]] = Field(default_factory=list, description="{'item' or 'user': id, 'reason': ...}")


# ------------------------------------------------------------------------------------------- director
class TopicPreference(Schema):
    topic: str
    weight: float = Field(ge=0, le=1)
    label: str = Field("", description="the interest in the history's own words (e.g. 'wool coat, winter "
                       "outfits'); ``topic`` is the taxonomy topic it maps to")
    evidence: list[str] = Field(default_factory=list, description="history item ids that support it")


class PresentationStyle(Schema):
    tone: str
    narrative: str
    information_density: Literal["low", "medium", "high"]


class VisualStyle(Schema):
    palette: list[str] = Field(default_factory=list, description="preferred colours, hex")
    palette_name: str = ""
    lighting: str = ""
    motion: str = ""
    elements: list[str] = Field(default_factory=list, description="preferred visual elements, words")
    evidence: list[str] = Field(default_factory=list)


class UserProfile(Schema):
    user_id: str
    dataset: Dataset
    backend: str
    topics: list[TopicPreference] = Field(min_length=1)
    presentation: PresentationStyle
    visual: VisualStyle
    summary: str = ""


class TopicCompatibility(Schema):
    topic: str
    score: float = Field(ge=0, le=1)
    reason: str


class MatchResult(Schema):
    user_id: str
    product_id: str
    backend: str
    candidates: list[TopicCompatibility]
    best_topic: str
    best_score: float = Field(ge=0, le=1)
    selling_points: list[str] = Field(description="the product's points prioritised for this user")
    fallback: bool = Field(description="True: below threshold, a generic plan is made instead")
    fallback_reason: str = ""


class Slot(Schema):
    index: int = Field(ge=0)
    start_s: float = Field(ge=0)
    end_s: float
    role: Literal["hook", "body", "cta"]
    camera: CameraMove
    composition: str
    narration: str = ""
    on_screen_text: str = ""
    pacing: Literal["slow", "medium", "fast"] = "medium"
    assets: list[str] = Field(default_factory=list, description="grounding asset ids shown in the slot")

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class Storyboard(Schema):
    """The executable, scene-level script (``plan.json``)."""

    product_id: str
    user_id: str | None = Field(default=None, description="None for a generic plan")
    backend: str
    personalized: bool
    hook: str
    matched_topic: str | None = None
    aspect_ratio: Literal["9:16", "16:9", "1:1"] = "9:16"
    duration_s: float
    slots: list[Slot] = Field(min_length=1)
    cta: str
    disclosure: str = AI_LABEL
    host_connection: str | None = Field(default=None, description="PCI: how the segment connects to the host")
    starts_from_frame: str | None = Field(default=None, description="PCI: the integration frame (png)")
    returns_to_frame: bool = False

    @field_validator("disclosure")
    @classmethod
    def _label(cls, v: str) -> str:
        if v != AI_LABEL:
            raise ValueError(f"disclosure must be exactly '{AI_LABEL}'")
        return v


class GroundingSource(Schema):
    asset_id: str
    path: str
    kind: Literal["product_image", "logo", "user_visual", "start_frame", "palette"]
    origin: str = Field(description="product id, history item id, or host item id")


class Grounding(Schema):
    collage_path: str
    sources: list[GroundingSource]


# ------------------------------------------------------------------------------------------- producer
class ProducerRequest(Schema):
    storyboard: Storyboard
    collage_path: str | None = None
    assets: dict[str, str] = Field(default_factory=dict, description="asset id (Slot.assets) -> image path")
    reference_images: list[str] = Field(default_factory=list)
    first_frame: str | None = None
    last_frame: str | None = None
    aspect_ratio: Literal["9:16", "16:9", "1:1"] = "9:16"
    width: int | None = None
    height: int | None = None
    fps: float = 15.0
    seed: int = 0
    palette: list[str] = Field(default_factory=list, description="colours (hex) for backgrounds and the CTA card; "
                               "empty = taken from the collage")


class ProducerManifest(Schema):
    backend: str
    model: str
    settings: dict[str, object] = Field(default_factory=dict)
    seed: int
    seconds: float = Field(description="wall time spent producing")
    cost_usd: float = 0.0
    video_path: str
    width: int
    height: int
    fps: float
    n_frames: int
    duration_s: float
    failure: str | None = None


# --------------------------------------------------------------------------------------------- usage
class Usage(Schema):
    """Tokens, latency and estimated cost of one model call (summed per run)."""

    backend: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    cost_usd: float = 0.0
    cached: bool = False


# ----------------------------------------------------------------------------------------- pipeline runs
System = Literal["nextads", "generic", "retrieval"]
PairStatus = Literal["done", "fallback", "failed"]


class PairManifest(Schema):
    """``manifest.json`` of one pair of one run: what produced it, how long, what it cost, what failed."""

    pair_id: str
    task: Task
    run_name: str
    system: System
    director_backend: str
    producer_backend: str
    user_id: str
    product_id: str
    status: PairStatus
    stage_failed: str | None = None
    failure: str | None = None
    seed: int
    seconds: dict[str, float] = Field(default_factory=dict, description="stage -> wall seconds")
    usage: list[Usage] = Field(default_factory=list)
    cost_usd: float = 0.0
    artifacts: dict[str, str] = Field(default_factory=dict, description="name -> path relative to the pair dir")
    protocol: str | None = Field(default=None, description="the protocol's label (paper, extended, paper+...); "
                                 "None in manifests written before protocols existed")
    switches: dict[str, object] = Field(default_factory=dict, description="the protocol's switch values")


class RunFailure(Schema):
    pair_id: str
    stage: str
    reason: str


class RunSummary(Schema):
    """``summary.json`` of a run directory ``data/runs/<task>/<run_name>/``."""

    task: Task
    run_name: str
    system: System
    director_backend: str
    producer_backend: str
    n_pairs: int
    done: int
    fallback: int
    failed: int
    failures: list[RunFailure] = Field(default_factory=list)
    seconds: float
    cost_usd: float
    input_tokens: int = 0
    output_tokens: int = 0
    settings: dict[str, object] = Field(default_factory=dict)
    protocol: str | None = Field(default=None, description="the protocol's label; None before protocols existed")
    switches: dict[str, object] = Field(default_factory=dict, description="the protocol's switch values")


def run_name(system: str, director_backend: str, producer_backend: str, protocol: str | None = None) -> str:
    """``<system>__<director>__<producer>[__<protocol label>]`` with each part made path-safe (a label such as
    ``paper+compat_threshold=0.2`` becomes ``paper-compat_threshold-0.2``). The system stays the first
    ``__``-separated part, so readers that split on ``__`` keep working."""

    def slug(s: str) -> str:
        import re  # noqa: PLC0415

        return re.sub(r"[^A-Za-z0-9._-]+", "-", s).strip("-") or "none"

    name = f"{system}__{slug(director_backend)}__{slug(producer_backend)}"
    return f"{name}__{slug(protocol)}" if protocol else name


# ============================================================ verifier, reflector, evolution (helper D, issue 8)
CheckName = Literal["safety", "privacy", "fairness", "copyright", "disclosure", "rendering"]
VerifyDecision = Literal["accept", "revise", "reject"]
UtilityDimension = Literal["video_quality", "personalization", "product_alignment", "context_alignment"]


class Evidence(Schema):
    """Where a violation is: a slot and its time range, the offending text, a frame or an asset."""

    slot: int | None = None
    start_s: float | None = None
    end_s: float | None = None
    field: str = Field(default="", description="narration | on_screen_text | hook | cta | composition | frame | asset")
    text: str = Field(default="", description="the offending text (the matched token or claim)")
    context: str = Field(default="", description="the whole text the token was found in")
    frame_index: int | None = None
    frame_path: str | None = None
    asset_id: str | None = None


class Violation(Schema):
    check: CheckName
    rule: str = Field(description="e.g. forbidden_claim, unsupported_number, personal_data, other_brand")
    severity: Literal["minor", "severe"]
    message: str
    evidence: Evidence


class ComplianceCheck(Schema):
    """One check of the compliance track (or the rendering check) with every violation and its evidence."""

    check: CheckName
    passed: bool
    violations: list[Violation] = Field(default_factory=list)
    checked: dict[str, object] = Field(default_factory=dict, description="what was looked at (counts, lexicon)")


class UtilityScore(Schema):
    """One utility dimension, normalised to 0..1 (judge 0..10 / 10; video quality mean of its metrics)."""

    dimension: UtilityDimension
    score: float | None = None
    raw: dict[str, float | None] = Field(default_factory=dict)
    backend: str = ""
    proxy: bool = True
    label: str = ""
    error: str | None = None


class Verification(Schema):
    """``verification.json`` of one creative in one round."""

    pair_id: str
    task: Task
    run: str
    round: int = Field(ge=0)
    video_path: str
    decision: VerifyDecision
    utility: list[UtilityScore] = Field(default_factory=list)
    utility_score: float | None = Field(default=None, description="mean of the available dimensions, 0..1")
    compliance: list[ComplianceCheck] = Field(default_factory=list)
    rationales: list[str] = Field(default_factory=list)
    thresholds: dict[str, float] = Field(default_factory=dict)
    verifier_backend: str
    vq_backend: str = ""
    usage: list[Usage] = Field(default_factory=list)
    cost_usd: float = 0.0

    @property
    def violations(self) -> list[Violation]:
        return [v for c in self.compliance for v in c.violations]


DirectiveKind = Literal["replace_text", "change_hook", "add_constraint", "swap_asset", "recaption", "relabel",
                        "trim_slot", "regenerate_slot"]


class Directive(Schema):
    """A minimal, typed revision. ``target`` routes it: ``director`` = a plan patch (then the changed slots are
    re-rendered), ``producer`` = an edit of the rendered slots only."""

    kind: DirectiveKind
    target: Literal["director", "producer"]
    level: Literal["plan", "execution"]
    slot: int | None = None
    field: str | None = Field(default=None, description="narration | on_screen_text | hook | cta | assets | camera")
    old: str = ""
    new: str = ""
    forbid: list[str] = Field(default_factory=list, description="add_constraint: strings the plan must never contain")
    frames: int | None = Field(default=None, description="trim_slot: how many frames to cut from the slot's end")
    reason: str = ""
    rule: str | None = Field(default=None, description="the violation rule or utility dimension it answers")


class RoundRecord(Schema):
    """``round.json``: one Verifier -> Reflector -> edit round of one pair."""

    pair_id: str
    round: int = Field(ge=1)
    decision_before: VerifyDecision
    decision_after: VerifyDecision | None = None
    attribution: list[str] = Field(default_factory=list, description="plan-level / execution-level findings")
    directives: list[Directive] = Field(default_factory=list)
    applied: list[str] = Field(default_factory=list, description="what changed, one line per applied directive")
    skipped: list[str] = Field(default_factory=list, description="directives that could not be applied, and why")
    slots_rerendered: list[int] = Field(default_factory=list)
    frames_rerendered: int = 0
    utility_before: float | None = None
    utility_after: float | None = None
    violations_before: int = 0
    violations_after: int | None = None
    reflector_backend: str
    cost_usd: float = 0.0
    seconds: float = 0.0
    failure: str | None = None


class ReleaseRecord(Schema):
    """``released.json``: the accepted creative of a pair (labelled, verified) that the run releases."""

    pair_id: str
    round: int
    video_path: str = Field(description="relative to the pair dir")
    plan_path: str
    label_verified: bool
    decision: VerifyDecision
    verifier_backend: str
    source_video: str = Field(default="", description="the accepted creative the released copy was made from")
    c2pa_verified: bool = Field(default=False, description="a C2PA manifest (AI-created) read back and valid")
    aigc_verified: bool = Field(default=False, description="the MP4's AIGC metadata (Label 1) read back")
    c2pa_signer: str = Field(default="", description="the signing certificate (the study's untrusted one)")
    backends: dict[str, str] = Field(default_factory=dict, description="backends stated in the manifest")
    sign_seconds: float | None = None


class ImpressionFeedback(Schema):
    """What a (simulated) user did with one shown creative."""

    dwell_s: float = Field(ge=0)
    watch_fraction: float = Field(ge=0, le=1)
    skipped: bool
    replayed: bool
    converted: bool
    rationale: str = ""


# ------------------------------------------------------------------------------------ PCI (owner: helper B)
class VideoAnnotation(Schema):
    """``director.annotate_video``: one history video's preliminary attributes (paper 5.2.1, user modeling),
    cached per video content so a video several users watched is annotated once."""

    item_id: str
    video_path: str
    video_sha256: str = Field(description="content key of the video file the annotation was made from")
    backend: str
    topic: str = Field(description="a taxonomy id (topics.TOPIC_IDS) or free text")
    topic_scores: dict[str, float] = Field(default_factory=dict, description="topic id -> score, top ones")
    tone: str
    narrative: str
    information_density: Literal["low", "medium", "high"]
    visual_tone: str = Field(description="lighting / visual tone (topics.LIGHTINGS)")
    palette: list[str] = Field(default_factory=list, description="dominant colours, hex")
    palette_name: str = ""
    motion: Literal["static", "slow", "dynamic"]
    camera: CameraMove = "static"
    motion_magnitude: float | None = Field(default=None, description="mean abs frame difference, 0..1")
    summary: str = ""


class HostSummary(Schema):
    """``host_summary.json``: the host video's structured summary (topic, content, visual presentation, audio)."""

    host_item_id: str
    host_video: str
    backend: str
    title: str = ""
    topic: str
    content: str
    visual_presentation: str
    audio_characteristics: str
    duration_s: float = Field(ge=0)
    width: int
    height: int
    fps: float
    n_shots: int = Field(ge=1)
    has_audio: bool
    loudness_dbfs: float | None = None
    silence_fraction: float | None = Field(default=None, ge=0, le=1)


class IntegrationCandidate(Schema):
    """A candidate integration point found by video analysis (shot boundaries, low motion)."""

    index: int = Field(ge=0)
    timestamp_s: float = Field(ge=0)
    frame_index: int = Field(ge=0)
    kind: Literal["after_shot_boundary", "low_motion", "middle"]
    motion: float = Field(ge=0, description="mean abs grey difference around the frame, 0..1")
    boundary_strength: float = Field(default=0.0, ge=0, description="histogram change of the nearest cut, 0..1")
    frame_path: str | None = None


class IntegrationDecision(Schema):
    """``decision.json``: the chosen point, its frame (PNG) and the rationale."""

    host_item_id: str
    host_video: str
    timestamp_s: float = Field(ge=0)
    frame_index: int = Field(default=0, ge=0)
    frame_path: str
    rationale: str
    candidates: list[IntegrationCandidate] = Field(default_factory=list)
    chosen_index: int | None = Field(default=None, description="index into candidates; None for a fixed mid-roll")
    backend: str


class Integration(Schema):
    """``integration.json``: where the segment went and how smooth the seams are (times in the integrated video;
    changes are mean abs differences of 64x64 grey frames outside the label box, 0..1)."""

    host_video: str
    host_duration_s: float
    insert_at_s: float = Field(description="host time where the segment goes in: just after the integration frame")
    segment_duration_s: float
    integrated_duration_s: float
    seam_in_s: float
    seam_out_s: float
    seam_change_in: float
    seam_change_out: float
    host_median_change: float
    width: int
    height: int
    fps: float
    host_frame_index: int = 0
    seam_ratio_in: float | None = Field(default=None, description="seam_change_in / host_median_change")
    seam_ratio_out: float | None = None
    segment_fit: Literal["exact", "resize", "letterbox", "retime"] = "exact"
    audio: str = Field(default="", description="how the audio was made (host paused over the segment ...)")
    audio_rate: int | None = None


class HostContinuity(Schema):
    """``continuity.json`` of a PCI pair: does the plan start from and return to the integration frame, and how
    close the Producer's first and last frames come to it (64x64 grey mean abs difference outside the label's
    box, 0..1; measured on ``creative.mp4``, so under the paper protocol it measures the Producer, not a blend)."""

    frame_path: str = Field(description="the integration frame (png)")
    plan_starts_from_frame: bool = Field(description="slot 0 of the plan opens on the integration frame")
    plan_returns_to_frame: bool = Field(description="the last slot of the plan returns to the integration frame")
    plan_host_connection: bool = Field(description="the plan states how the segment connects to the host")
    errors: list[str] = Field(default_factory=list, description="what the plan failed (empty = valid)")
    enforced: bool = Field(description="True: a failed check fails the pair (paper); False: the flags were set "
                           "by code and the frames overwritten (frame_overwrite)")
    start_change: float | None = Field(default=None, description="creative's first frame vs the integration frame")
    return_change: float | None = Field(default=None, description="creative's last frame vs the integration frame")
    host_median_change: float | None = None


class SeamSummary(Schema):
    """``seams.json`` of a PCI run: seam continuity over its integrated pairs."""

    run_name: str
    system: str
    n: int
    seam_change_in_mean: float | None = None
    seam_change_out_mean: float | None = None
    host_median_change_mean: float | None = None
    seam_ratio_in_median: float | None = None
    seam_ratio_out_median: float | None = None
    smooth_fraction: float | None = Field(default=None, description="share of seams whose change <= max(3 x the host's median, 0.01)")
    protocol: str | None = Field(default=None, description="the run's protocol label")
    host_checked: int = Field(default=0, description="pairs whose plan start/return was checked (continuity.json)")
    host_check_failed: int = Field(default=0, description="of those, plans that do not start from or return to the "
                                   "integration frame")
    start_change_median: float | None = Field(default=None, description="creative's first frame vs the integration "
                                              "frame, median over checked pairs")
    return_change_median: float | None = None
