"""Video Producers, chosen by one string: ``compositor`` | ``wan:<model>`` | ``sora:<model>`` | ``veo:<model>``.

    producer = get_producer("compositor", cache_dir=paths.cache)
    manifest = producer.render(request, pair_dir / "creative.mp4")

    producer = get_producer("sora:sora-2", post_production=False, slot_layouts=False, frame_overwrite=False)

Every Producer's clips go through the same post step (``post``): exact storyboard timing and the "AI Created"
label (``label_box``) on every frame; under the ``post_production`` setting (the ``extended`` protocol) also
on-screen text, narration subtitles + Piper voice, music and the CTA end card. ``post_production``,
``slot_layouts`` and ``frame_overwrite`` are the protocol's switches (:mod:`nextads_lib.protocol`); they default
to on (today's behaviour) here, and the PCG/PCI runs pass the protocol's values.
"""

from __future__ import annotations

import os
from typing import Any

from .base import CODE_VERSION, Producer, ProducerError
from .post import burn_label, label_box, label_present

KINDS = ("compositor", "wan", "sora", "veo")

__all__ = ["CODE_VERSION", "KINDS", "Producer", "ProducerError", "burn_label", "get_producer", "label_box",
           "label_present"]


def get_producer(spec: str, cache_dir: str | os.PathLike[str] | None = None, **settings: Any) -> Producer:
    """The Producer named by ``spec``; ``settings`` go to its constructor (and into its manifests)."""
    kind, _, model = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "compositor":
        from .compositor import CompositorProducer  # noqa: PLC0415

        return CompositorProducer(model, cache_dir, **settings)
    if kind in ("wan", "sora", "veo") and not model:
        raise ProducerError(f"producer '{spec}'", f"'{kind}:' needs a model, e.g. "
                            + {"wan": "'wan:/models/Wan2.2-TI2V-5B-Diffusers'", "sora": "'sora:sora-2'",
                               "veo": "'veo:veo-3.0-generate-001'"}[kind])
    if kind == "wan":
        from .wan import WanProducer  # noqa: PLC0415

        return WanProducer(model, cache_dir, **settings)
    if kind == "sora":
        from .sora import SoraProducer  # noqa: PLC0415

        return SoraProducer(model, cache_dir, **settings)
    if kind == "veo":
        from .veo import VeoProducer  # noqa: PLC0415

        return VeoProducer(model, cache_dir, **settings)
    raise ProducerError(f"producer '{spec}'", f"unknown kind '{kind}'; valid: compositor, wan:<model dir>, "
                        "sora:<model>, veo:<model>")
