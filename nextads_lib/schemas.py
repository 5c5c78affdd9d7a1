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


def run_name(system: str, director_backend: str, producer_backend: str) -> str:
    """``<system>__<director>__<producer>`` with each backend string made path-safe."""

    def slug(s: str) -> str:
        import re  # noqa: PLC0415

        return re.sub(r"[^A-Za-z0-9._-]+", "-", s).strip("-") or "none"

    return f"{system}__{slug(director_backend)}__{slug(producer_backend)}"
