"""Model backends chosen by one string: ``offline``, ``openai:<model>``, ``gemini:<model>``, ``hf:<path>``.

    backend = get_backend("openai:gpt-4o", cache_dir=paths.cache)
    result = backend.complete(ModelRequest(task=..., system=..., parts=[TextPart(...)], schema=Answer))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import (
    OFFLINE_HANDLERS,
    BackendError,
    ImagePart,
    ModelBackend,
    ModelRequest,
    ModelResult,
    TextPart,
    TransientError,
    VideoPart,
    extract_json,
    register_offline,
    summarize_usage,
)

KINDS = {
    "offline": "the embedded default: documented heuristics, no GPU, no key",
    "openai": "openai:<model>: OpenAI (OPENAI_API_KEY) or any OpenAI-compatible server (OPENAI_BASE_URL)",
    "gemini": "gemini:<model>: Google Gemini (GEMINI_API_KEY or GOOGLE_API_KEY)",
    "hf": "hf:<path>: Qwen3-VL run locally with transformers on CUDA",
}


def parse_spec(spec: str) -> tuple[str, str]:
    """``"openai:gpt-4o"`` -> ``("openai", "gpt-4o")``; raises ValueError listing the valid kinds."""
    kind, _, model = (spec or "").strip().partition(":")
    if kind not in KINDS:
        valid = "; ".join(f"'{k}' ({v})" for k, v in KINDS.items())
        raise ValueError(f"unknown backend '{spec}': valid kinds are {valid}")
    return kind, model


def get_backend(spec: str, cache_dir: str | Path | None = None, **settings: Any) -> ModelBackend:
    kind, model = parse_spec(spec)
    if kind == "offline":
        from .offline import OfflineBackend  # noqa: PLC0415

        return OfflineBackend(model, cache_dir, **settings)
    if kind == "openai":
        from .openai_backend import OpenAIBackend  # noqa: PLC0415

        return OpenAIBackend(model, cache_dir, **settings)
    if kind == "gemini":
        from .gemini_backend import GeminiBackend  # noqa: PLC0415

        return GeminiBackend(model, cache_dir, **settings)
    from .hf_backend import HFBackend  # noqa: PLC0415

    return HFBackend(model, cache_dir, **settings)


__all__ = [
    "BackendError", "ImagePart", "KINDS", "ModelBackend", "ModelRequest", "ModelResult", "OFFLINE_HANDLERS",
    "TextPart", "TransientError", "VideoPart", "extract_json", "get_backend", "parse_spec", "register_offline",
    "summarize_usage",
]
