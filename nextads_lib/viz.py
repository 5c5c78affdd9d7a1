"""Display helpers the notebooks share: image grids, frame strips, and tables of the Director's artifacts.

Everything returns a matplotlib ``Figure`` (fixed size, no timing text) or a pandas ``DataFrame``, so a
notebook cell stays one call and its output is deterministic. Generic on purpose: PCG, PCI, the
evaluation and the evolution notebooks call the same functions.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .config import resolve


def _load(path_or_image: Any, max_side: int = 320) -> np.ndarray | None:
    from PIL import Image  # noqa: PLC0415

    from .media import MediaError, load_image  # noqa: PLC0415

    if isinstance(path_or_image, np.ndarray):
        return path_or_image
    if isinstance(path_or_image, Image.Image):
        im = path_or_image.convert("RGB")
    else:
        try:
            im = load_image(resolve(path_or_image))
        except MediaError:
            return None
    im.thumbnail((max_side, max_side))
    return np.asarray(im)


def image_grid(images: Sequence[Any], titles: Sequence[str] | None = None, ncols: int = 6,
               cell: float = 2.0, suptitle: str | None = None, max_side: int = 320):
    """A grid of images (paths, PIL images or arrays) with optional titles; unreadable ones show 'missing'."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    n = max(1, len(images))
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell * ncols, cell * nrows + (0.4 if suptitle else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(images):
            continue
        arr = _load(images[i], max_side)
        if arr is None:
            ax.text(0.5, 0.5, "missing", ha="center", va="center", fontsize=9)
        else:
            ax.imshow(arr)
        if titles is not None and i < len(titles):
            ax.set_title(_clip(str(titles[i]), 28), fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def thumbnails(history: Any, max_items: int = 12, ncols: int = 6, cell: float = 1.8):
    """Thumbnails of a :class:`~nextads_lib.schemas.UserHistory` (first image of each item, else 'no image'),
    titled with the item id and title."""
    imgs, titles = [], []
    for it in history.items[:max_items]:
        imgs.append(it.image_paths[0] if it.image_paths else np.full((64, 64, 3), 230, np.uint8))
        titles.append(f"{it.item_id}: {it.title}" if it.title else it.item_id)
    return image_grid(imgs, titles, ncols=ncols, cell=cell,
                      suptitle=f"user {history.user_id} ({history.dataset}): {len(history.items)} items, first {len(imgs)}")


def show_image(path: str | os.PathLike[str], title: str = "", width: float = 6.0):
    """One image at a fixed width."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    arr = _load(path, 1024)
    h, w = (arr.shape[:2] if arr is not None else (1, 1))
    fig, ax = plt.subplots(figsize=(width, width * h / max(w, 1) + (0.3 if title else 0)))
    ax.axis("off")
    if arr is None:
        ax.text(0.5, 0.5, f"missing: {Path(path).name}", ha="center", va="center")
    else:
        ax.imshow(arr)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def frame_strip(video: str | os.PathLike[str], n: int = 6, times: Sequence[float] | None = None,
                title: str = "", cell: float = 1.8):
    """``n`` evenly spaced frames of a video (or the frames at ``times`` seconds), titled with their time."""
    from .media import probe, read_frames, sample_indices  # noqa: PLC0415

    p = resolve(video)
    info = probe(p)
    from .media import count_frames  # noqa: PLC0415

    total = count_frames(p)
    if times is not None:
        idx = [min(total - 1, max(0, int(round(t * info.fps)))) for t in times]
    else:
        idx = sample_indices(total, n)
    frames = read_frames(p, idx)
    titles = [f"{i / info.fps:.1f} s" for i in idx]
    return image_grid(list(frames), titles, ncols=len(frames), cell=cell,
                      suptitle=title or f"{Path(p).name}: {info.width}x{info.height}, {info.duration_s:.1f} s")


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def storyboard_table(sb: Any):
    """One row per slot of a :class:`~nextads_lib.schemas.Storyboard`."""
    import pandas as pd  # noqa: PLC0415

    rows = [{"slot": s.index, "time": f"{s.start_s:.2f}-{s.end_s:.2f}", "role": s.role, "camera": s.camera,
             "pacing": s.pacing, "narration": s.narration, "on-screen text": s.on_screen_text,
             "composition": s.composition, "assets": ", ".join(s.assets)} for s in sb.slots]
    return pd.DataFrame(rows).set_index("slot")


def profile_table(profile: Any):
    """A :class:`~nextads_lib.schemas.UserProfile` as (field, value) rows, with its backend."""
    import pandas as pd  # noqa: PLC0415

    rows = [("backend", profile.backend)]
    for t in profile.topics:
        rows.append((f"topic {t.topic}", f"{t.weight:.2f} (evidence: {', '.join(t.evidence[:4])})"))
    pres = profile.presentation
    rows += [("tone", pres.tone), ("narrative", pres.narrative), ("information density", pres.information_density)]
    v = profile.visual
    rows += [("palette", f"{v.palette_name} {' '.join(v.palette)}"), ("lighting", v.lighting), ("motion", v.motion),
             ("elements", ", ".join(v.elements))]
    return pd.DataFrame(rows, columns=["field", "value"]).set_index("field")


def match_table(matches: Iterable[Any], products: dict[str, Any] | None = None):
    """One row per :class:`~nextads_lib.schemas.MatchResult`: best topic, score, fallback and why."""
    import pandas as pd  # noqa: PLC0415

    rows = []
    for m in matches:
        rows.append({"product": products[m.product_id].name if products and m.product_id in products else m.product_id,
                     "best topic": m.best_topic, "score": round(m.best_score, 3),
                     "all topics": ", ".join(f"{c.topic} {c.score:.2f}" for c in m.candidates),
                     "fallback": m.fallback, "lead selling point": m.selling_points[0] if m.selling_points else "",
                     "backend": m.backend})
    return pd.DataFrame(rows)


def kv_table(data: dict[str, Any], columns: tuple[str, str] = ("field", "value")):
    import pandas as pd  # noqa: PLC0415

    return pd.DataFrame(list(data.items()), columns=list(columns)).set_index(columns[0])


def summary_table(summaries: Iterable[Any]):
    """Run summaries (:class:`~nextads_lib.schemas.RunSummary`) as deterministic count rows (no times), with the
    protocol each run was made under (``extended`` for a run that records none)."""
    import pandas as pd  # noqa: PLC0415

    from .judge import run_protocol_of  # noqa: PLC0415

    rows = [{"run": s.run_name, "system": s.system, "director": s.director_backend, "producer": s.producer_backend,
             "protocol": run_protocol_of(s.model_dump(mode="json") if hasattr(s, "model_dump") else dict(s)),
             "pairs": s.n_pairs, "done": s.done, "fallback": s.fallback, "failed": s.failed} for s in summaries]
    return pd.DataFrame(rows)


def failures_table(summary: Any):
    import pandas as pd  # noqa: PLC0415

    return pd.DataFrame([f.model_dump() for f in summary.failures], columns=["pair_id", "stage", "reason"])
