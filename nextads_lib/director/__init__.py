"""The Director (paper section 3.2.1, Figure 6): user modeling, user-product matching, storyboard, asset grounding.

One module per stage of Figure 6, plus the rules every plan must pass:

- :mod:`.user_modeling`: the user's profile from the history (:func:`model_user`; PCI: per-video annotations
  aggregated with the covers, :func:`model_user_from_videos`);
- :mod:`.matching`: user-product matching and the low-compatibility fallback (:func:`match_product`);
- :mod:`.storyboard`: the scene-level plan, its narration budget and its revision (:func:`plan_storyboard`);
- :mod:`.grounding`: the reference collage (:func:`ground_assets`);
- :mod:`.validation`: :func:`validate_storyboard` and :func:`personal_tokens`;
- :mod:`.common`: the code version, limits, errors and helpers the stages share.

Every name is importable from ``nextads_lib.director`` itself.

Each stage is one function that builds a :class:`~nextads_lib.backends.ModelRequest` (the prompt, the parts and
a JSON-able ``context`` of structured inputs), sends it through a backend and validates the answer into a
schema of :mod:`nextads_lib.schemas`. Nothing here calls a model around the backend: a VLM Director
(``openai:gpt-4o``, ``hf:Qwen/Qwen3-VL-8B-Instruct`` ...) and the ``offline`` default see the same requests.

The offline handlers each stage module registers are transparent heuristics over the request's
``context`` (sentence embeddings from MiniLM, colour statistics of the history images, templates). Their
artifacts carry ``backend="offline"``; they are never presented as VLM output.

Stages, in the order the PCG pipeline runs them::

    profile = model_user(history, backend, cache)                      # once per user
    match   = match_product(profile, product, backend, threshold)      # per pair; fallback below threshold
    plan    = plan_storyboard(product, backend, profile=..., match=..., duration_s=12, aspect_ratio="9:16")
    ground  = ground_assets(product, pair_dir, profile=..., history=...)  # collage.png + sources

PCI passes a :class:`HostContext` to :func:`plan_storyboard` (start from the integration frame, return to
it) and the integration frame to :func:`ground_assets` as ``start_frame``.
"""

from __future__ import annotations

from ..backends import BackendError
from .common import (
    CODE_VERSION,
    MAX_NARRATION_WPS,
    MAX_SLOT_S,
    MIN_SLOT_S,
    NARRATION_WPS,
    DirectorError,
    HostContext,
    StoryboardError,
    _rgb_arr,
    item_text,
    narration_budget,
    product_brief,
)
from .grounding import COLLAGE_CELL, best_palette_crop, ground_assets, grounding_asset_paths
from .matching import (
    DEFAULT_COMPAT_THRESHOLD,
    MATCH_SYSTEM,
    MatchAnswer,
    build_match_request,
    match_product,
    offline_match,
)
from .storyboard import (
    GENERIC_HOOKS,
    NARRATIVE_PREFIX,
    REVISE_SYSTEM,
    SCENARIOS,
    STORYBOARD_SYSTEM,
    TONE_TEMPLATES,
    StoryboardAnswer,
    asset_catalog,
    build_revise_request,
    build_storyboard_request,
    compose_storyboard,
    fit_line,
    n_user_visuals,
    offline_storyboard,
    offline_storyboard_revise,
    plan_storyboard,
    slot_times,
    speakable,
)
from .user_modeling import (
    ANNOTATE_SYSTEM,
    MOTION_SLOW,
    MOTION_STATIC,
    NARRATIVE_TEXTS,
    PROFILE_SYSTEM,
    TONE_TEXTS,
    VIDEO_PROFILE_SYSTEM,
    AnnotationAnswer,
    ProfileAnswer,
    annotate_video,
    build_annotation_request,
    build_profile_request,
    build_video_profile_request,
    dominant_colours,
    flow_motion,
    lighting_of,
    model_user,
    model_user_from_videos,
    motion_of_video,
    motion_of_videos,
    nearest_palette,
    palette_distances,
    palette_of_pixels,
    palette_vote,
    offline_annotate_video,
    offline_user_profile,
    offline_video_profile,
)
from .validation import personal_tokens, validate_storyboard

__all__ = [
    "CODE_VERSION", "DEFAULT_COMPAT_THRESHOLD", "DirectorError", "StoryboardError", "HostContext",
    "ProfileAnswer", "MatchAnswer", "StoryboardAnswer", "model_user", "match_product", "plan_storyboard",
    "validate_storyboard", "ground_assets", "asset_catalog", "slot_times", "personal_tokens",
    "build_profile_request", "build_match_request", "build_storyboard_request", "build_revise_request",
    "compose_storyboard", "grounding_asset_paths", "product_brief", "BackendError",
    "AnnotationAnswer", "annotate_video", "build_annotation_request", "build_video_profile_request",
    "model_user_from_videos", "NARRATION_WPS", "MAX_NARRATION_WPS", "narration_budget", "fit_line",
    "speakable",
    # also public before the split, named here so a reader sees the package's whole surface
    "MIN_SLOT_S", "MAX_SLOT_S", "item_text", "COLLAGE_CELL", "best_palette_crop", "MATCH_SYSTEM", "offline_match",
    "GENERIC_HOOKS", "NARRATIVE_PREFIX", "REVISE_SYSTEM", "SCENARIOS", "STORYBOARD_SYSTEM", "TONE_TEMPLATES",
    "n_user_visuals", "offline_storyboard", "offline_storyboard_revise", "ANNOTATE_SYSTEM", "MOTION_SLOW",
    "MOTION_STATIC", "NARRATIVE_TEXTS", "PROFILE_SYSTEM", "TONE_TEXTS", "VIDEO_PROFILE_SYSTEM",
    "dominant_colours", "lighting_of", "motion_of_videos", "motion_of_video", "flow_motion", "nearest_palette", "palette_distances", "palette_of_pixels", "palette_vote", "offline_annotate_video",
    "offline_user_profile", "offline_video_profile",
]
