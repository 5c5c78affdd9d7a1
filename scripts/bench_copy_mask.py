"""Benchmark: how much of the offline presentation proxy's score comes from history pixels the creative pastes.

The offline Director grounds a personalized creative on crops of the user's history images (``user_*`` assets),
and the presentation proxy compares the frames' colours and look with those same history images; its copy
detector (:func:`nextads_lib.proxies.copied_mask`) leaves out the pixels it recognises as copies. This script
measures what the detector misses, exactly: each creative of a compositor run is rendered again as recorded
(plan, grounding, palette, size) and once more with every ``user_*`` asset replaced by flat grey; the pixels that
differ are the pasted ones. For each pair it prints the pasted share of the frames, the detector's recall and
precision on it, and the presentation proxy with nothing left out, with the detector's mask (what Table 1
reports) and with the exact mask; then the run's means. Run on the ``nextads`` and ``generic`` PCG runs of a
finished study (GenericAds pastes nothing, so its three scores agree):

    .venv/bin/python scripts/bench_copy_mask.py --data-dir data [--pairs 20] [--n-frames 8]

Prints its figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nextads_lib import judge, proxies  # noqa: E402
from nextads_lib.config import StudyPaths  # noqa: E402
from nextads_lib.director.grounding import grounding_asset_paths  # noqa: E402
from nextads_lib.producer import get_producer  # noqa: E402
from nextads_lib.schemas import Grounding, ProducerRequest, Storyboard, UserHistory  # noqa: E402
from nextads_lib.store import read_json, read_jsonl, read_model  # noqa: E402

#: a frame pixel is pasted when one of its channels moves by more than this when the user assets turn grey
DIFF = 10


def pair_figures(pair: Path, history: UserHistory, tmp: Path, n_frames: int) -> dict[str, float]:
    plan = read_model(pair / "plan.json", Storyboard)
    g = read_model(pair / "grounding.json", Grounding)
    rec = read_json(pair / "producer.json")
    assets = grounding_asset_paths(g)
    grey = tmp / "grey.png"
    if not grey.is_file():
        Image.new("RGB", (256, 256), (128, 128, 128)).save(grey)
    producer = get_producer("compositor", post_production=bool(rec["settings"].get("post_production", False)))
    frames = []
    for tag, a in (("as_run", assets), ("grey", {k: str(grey) if k.startswith("user_") else v
                                                 for k, v in assets.items()})):
        req = ProducerRequest(storyboard=plan, collage_path=g.collage_path, assets=a,
                              reference_images=[g.collage_path], aspect_ratio=plan.aspect_ratio,
                              width=int(rec["width"]), height=int(rec["height"]), fps=float(rec["fps"]),
                              seed=int(rec["seed"]), palette=rec["settings"].get("palette"))
        out = tmp / f"{pair.name}_{tag}.mp4"
        producer.render(req, out)
        frames.append(judge.video_frames(out, n_frames))
    exact = np.abs(frames[0].astype(np.int16) - frames[1].astype(np.int16)).max(axis=-1) > DIFF
    hist = judge._history_pixels([str(p) for p in judge._history_images(history, 6)])
    found = proxies.copied_mask(hist, frames[0])
    both = float((found & exact).sum())
    return {
        "pasted": float(exact.mean()), "masked": float(found.mean()),
        "recall": both / exact.sum() if exact.any() else float("nan"),
        "precision": both / found.sum() if found.any() else float("nan"),
        "score_none": proxies.presentation_proxy(hist, frames[0], copied=np.zeros_like(exact))[0],
        "score_detector": proxies.presentation_proxy(hist, frames[0])[0],
        "score_exact": proxies.presentation_proxy(hist, frames[0], copied=exact)[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--pairs", type=int, default=20, help="pairs per run (the first in name order)")
    ap.add_argument("--n-frames", type=int, default=8, help="frames the proxy reads (the judge's default)")
    ap.add_argument("--runs", default="nextads__offline__compositor__paper,generic__offline__compositor__paper")
    a = ap.parse_args()
    paths = StudyPaths(Path(a.data_dir))
    users = {u.user_id: u for u in read_jsonl(paths.bench_users("pcg"), UserHistory)}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        for run in a.runs.split(","):
            rdir = paths.runs / "pcg" / run
            pairs = sorted(p for p in rdir.iterdir() if (p / "plan.json").is_file())[: a.pairs]
            rows = []
            print(f"== {run}: {len(pairs)} pairs")
            for p in pairs:
                r = pair_figures(p, users[p.name.split("__")[0]], Path(d), a.n_frames)
                rows.append(r)
                print(f"{p.name:36s} pasted {r['pasted']:.3f} masked {r['masked']:.3f} recall {r['recall']:.2f} "
                      f"precision {r['precision']:.2f} | presentation: nothing left out {r['score_none']:.2f}, "
                      f"detector {r['score_detector']:.2f}, exact {r['score_exact']:.2f}", flush=True)
            with warnings.catch_warnings():  # recall has no pixel to count on a run that pastes nothing
                warnings.simplefilter("ignore", RuntimeWarning)
                m = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}
            print(f"== {run} mean over {len(rows)}: pasted {m['pasted']:.3f} of the frames' pixels, the detector "
                  f"masks {m['masked']:.3f} (recall {m['recall']:.2f}, precision {m['precision']:.2f}); presentation "
                  f"proxy: nothing left out {m['score_none']:.2f}, detector (Table 1) {m['score_detector']:.2f}, "
                  f"exact {m['score_exact']:.2f}", flush=True)
    print(f"== {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
