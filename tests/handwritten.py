"""The hand-written histories of ``tests/data/handwritten_histories`` (see its README) as real releases.

:func:`write_releases` writes the committed texts as a Qilin release (parquet ``notes`` and
``recommendation_train`` shards, note images) and a MicroLens release (``MicroLens-hw_pairs.csv``,
``_title_en.csv``, covers, mp4 videos), with images and videos drawn by the hand-written code below (its own
colours, scenes and camera moves; nothing from the sample's drawing code or vocabularies); :func:`load_handwritten`
reads them back with the study's loaders (:mod:`nextads_lib.datasets`).

The styles are hand labels: each user's look (``USER_STYLE``: a palette name, a lighting and, for MicroLens, a
motion) is what their own items show; each user's last note is drawn in ``OFF_STYLE`` (a look that is not theirs, except for ``hq6``), and a
MicroLens video shared by several users takes the look of the first user who watched it, so a MicroLens user's
truth is the look most of their videos show (:func:`item_styles`; ties go to ``USER_STYLE``).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from nextads_lib.datasets import iter_microlens_users, iter_qilin_users
from nextads_lib.schemas import GroundTruth, UserHistory

HERE = Path(__file__).resolve().parent / "data" / "handwritten_histories"
ML_PREFIX = "MicroLens-hw"

#: colours picked by hand for scenes a person would call by these names (not the project's palette table)
COLOURS: dict[str, list[str]] = {
    "ocean": ["#0B1E4F", "#1565A8", "#7FD3E6", "#E3F6FA"],  # deep water, open sea, shallows, foam
    "earth": ["#7A4B2A", "#CDB48C", "#5F6B4E", "#B5835A"],  # bark, sand, moss, clay
    "pastel": ["#F4C2CC", "#BFE3D5", "#F7E7B5", "#BED6EE"],  # blush, mint, butter, baby blue
    "vivid": ["#E8363D", "#FFC21F", "#6CC04A", "#1F78C8"],  # tomato, sunflower, grass, cobalt
    "mono": ["#1C1C1C", "#6E6E6E", "#B4B4B4", "#EDEDED"],  # charcoal, slate, silver, paper
    "neon": ["#FF1F8E", "#14E8F5", "#8A10F0", "#0A0A0A"],  # hot pink, electric cyan, violet, night
}
#: the look of each user's history (hand labels; ``motion`` only where the dataset has videos)
USER_STYLE: dict[str, dict[str, str]] = {
    "hq1": {"palette": "mono", "lighting": "cool"}, "hq2": {"palette": "earth", "lighting": "warm"},
    "hq3": {"palette": "earth", "lighting": "bright"}, "hq4": {"palette": "pastel", "lighting": "bright"},
    "hq5": {"palette": "earth", "lighting": "warm"}, "hq6": {"palette": "vivid", "lighting": "bright"},
    "hm1": {"palette": "earth", "lighting": "warm", "motion": "slow"},
    "hm2": {"palette": "vivid", "lighting": "bright", "motion": "dynamic"},
    "hm3": {"palette": "mono", "lighting": "cool", "motion": "static"},
    "hm4": {"palette": "ocean", "lighting": "cool", "motion": "dynamic"},
    "hm5": {"palette": "pastel", "lighting": "bright", "motion": "slow"},
    "hm6": {"palette": "mono", "lighting": "dim", "motion": "static"},
}
OFF_STYLE = {"palette": "vivid", "lighting": "bright", "motion": "dynamic"}
#: integer ids of the releases (both formats store integer user ids)
USER_NUM = {u: (900 if u.startswith("hq") else 800) + int(u[2:]) for u in USER_STYLE}
VIDEO_SIZE, FPS = (256, 144), 10


def _rgb(h: str) -> np.ndarray:
    return np.array([int(h[i:i + 2], 16) for i in (1, 3, 5)], np.float32)


def scene(palette: str, lighting: str, size: tuple[int, int], seed: int) -> np.ndarray:
    """A hand-drawn landscape-like picture: a sky gradient, a horizon band, hills and a few objects in the
    palette's colours (jittered), then the light (a tint, dimming or lifting). ``(H, W, 3)`` uint8."""
    r = np.random.default_rng(seed)
    cols = [np.clip(_rgb(h) + r.normal(0, 8, 3), 0, 255) for h in COLOURS[palette]]
    order = r.permutation(len(cols))
    w, h = size
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    sky, ground = cols[order[0]], cols[order[1]]
    img = Image.fromarray(((1 - t) * sky + t * (0.6 * sky + 0.4 * ground)).repeat(w, axis=1).astype(np.uint8))
    d = ImageDraw.Draw(img)
    horizon = int(h * r.uniform(0.45, 0.7))
    d.rectangle((0, horizon, w, h), fill=tuple(int(v) for v in ground))
    for _ in range(int(r.integers(2, 4))):  # hills
        cx, rad = r.uniform(0, w), r.uniform(0.2, 0.45) * w
        d.ellipse((cx - rad, horizon - rad * 0.35, cx + rad, horizon + rad * 0.35),
                  fill=tuple(int(v) for v in cols[order[int(r.integers(1, 4))]]))
    for _ in range(int(r.integers(3, 7))):  # things: boxes and discs
        c = tuple(int(v) for v in cols[order[int(r.integers(2, 4))]])
        x, y, s = r.uniform(0, w), r.uniform(0.2, 0.95) * h, r.uniform(0.04, 0.12) * w
        (d.ellipse if r.random() < 0.5 else d.rectangle)((x - s, y - s, x + s, y + s), fill=c)
    a = np.asarray(img, np.float32)
    if lighting == "warm":
        a += np.array([22, 6, -22], np.float32)
    elif lighting == "cool":
        a += np.array([-20, 0, 24], np.float32)
    elif lighting == "dim":
        a *= 0.32
    elif lighting == "bright":
        a = a * 0.85 + 38
    return np.clip(a, 0, 255).astype(np.uint8)


def clip_frames(palette: str, lighting: str, motion: str, seconds: float, seed: int) -> list[np.ndarray]:
    """Frames of a hand-made clip: three shots over three pictures; ``static``: a locked-off camera,
    ``slow``: a slow pan (about 0.6 px per frame at 256 px), ``dynamic``: a fast pan with a push-in."""
    import cv2  # noqa: PLC0415

    w, h = VIDEO_SIZE
    per = int(seconds * FPS / 3)
    speed = {"static": 0.0, "slow": 0.6, "dynamic": 2.8}[motion]
    out = []
    for k in range(3):
        big = scene(palette, lighting, (w * 2, h * 2), seed * 10 + k)
        for f in range(per):
            zoom = 1.0 + (0.25 * f / per if motion == "dynamic" else 0.0)
            cw, ch = int(w * 1.5 / zoom), int(h * 1.5 / zoom)
            x = int(min(max(10 + speed * 1.5 * f, 0), w * 2 - cw))
            y = int((h * 2 - ch) / 2)
            out.append(cv2.resize(big[y:y + ch, x:x + cw], (w, h), interpolation=cv2.INTER_LINEAR))
    return out


def item_styles() -> dict[str, dict[str, str]]:
    """The look of each MicroLens video: that of the first user (in user order) who watched it."""
    with open(HERE / "microlens_pairs.csv", newline="") as f:
        pairs = list(csv.DictReader(f))
    out: dict[str, dict[str, str]] = {}
    for r in sorted(pairs, key=lambda r: (int(r["user"][2:]), float(r["timestamp"]))):
        out.setdefault(r["item"], USER_STYLE[r["user"]])
    return out


def history_style(user: str) -> dict[str, str]:
    """The look a user's history shows: ``USER_STYLE`` for Qilin (all but one note); for MicroLens the most
    frequent palette, lighting and motion of their videos (ties: ``USER_STYLE``)."""
    if user.startswith("hq"):
        return USER_STYLE[user]
    from collections import Counter  # noqa: PLC0415

    with open(HERE / "microlens_pairs.csv", newline="") as f:
        items = [r["item"] for r in csv.DictReader(f) if r["user"] == user]
    st = item_styles()
    out = {}
    for k in ("palette", "lighting", "motion"):
        c = Counter(st[i][k] for i in items)
        best = max(c.values())
        out[k] = USER_STYLE[user][k] if c[USER_STYLE[user][k]] == best else c.most_common(1)[0][0]
    return out


def _truth_rows() -> list[dict]:
    return [json.loads(x) for x in (HERE / "truth.jsonl").read_text().splitlines() if x.strip()]


def write_releases(out: Path) -> dict[str, Path]:
    """Write both releases under ``out`` (``qilin/`` and ``microlens/``) once; returns their directories."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    from nextads_lib.media import write_video  # noqa: PLC0415

    q_dir, m_dir = out / "qilin", out / "microlens"
    done = out / ".done"
    if done.is_file():
        return {"qilin": q_dir, "microlens": m_dir}
    # ---- Qilin: notes, clicks, images
    rows = [json.loads(x) for x in (HERE / "qilin_notes.jsonl").read_text().splitlines() if x.strip()]
    last = {}
    for r in rows:
        last[r["user_idx"]] = r["note_idx"]
    notes, clicks = [], {}
    for i, r in enumerate(rows):
        u = r["user_idx"]
        off = r["note_idx"] == last[u]  # each user's last note is drawn in a look that is not theirs
        st = OFF_STYLE if off else USER_STYLE[u]
        rels = []
        for j in range(1):
            rel = f"hw/{r['note_idx']}_{j}.jpg"
            p = q_dir / "images" / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(scene(st["palette"], st["lighting"], (240, 320), 1000 + r["note_idx"] * 7 + j)).save(p, quality=88)
            rels.append(rel)
        notes.append({"note_idx": int(r["note_idx"]), "note_title": r["note_title"], "note_content": r["note_content"],
                      "note_type": 1, "image_path": rels})
        clicks.setdefault(USER_NUM[u], []).append({"note_idx": float(r["note_idx"]), "position": float(i % 10),
                                                   "click": 1.0, "request_timestamp": float(1_700_000_000_000 + i * 60_000)})
    for cfg, table in (("notes", pa.Table.from_pylist(notes)),
                       ("recommendation_train", pa.Table.from_pylist(
                           [{"user_idx": u, "rec_result_details_with_idx": c} for u, c in sorted(clicks.items())]))):
        (q_dir / cfg).mkdir(parents=True, exist_ok=True)
        pq.write_table(table, q_dir / cfg / "train-00000-of-00001.parquet")
    # ---- MicroLens: pairs, titles, covers, videos
    with open(HERE / "microlens_titles.csv", newline="") as f:
        titles = {r["item"]: r["title"] for r in csv.DictReader(f)}
    with open(HERE / "microlens_pairs.csv", newline="") as f:
        pairs = list(csv.DictReader(f))
    item_style = item_styles()
    (m_dir / f"{ML_PREFIX}_covers").mkdir(parents=True, exist_ok=True)
    (m_dir / f"{ML_PREFIX}_videos").mkdir(parents=True, exist_ok=True)
    for iid, st in sorted(item_style.items()):
        frames = clip_frames(st["palette"], st["lighting"], st["motion"], 4.5, int(iid))
        write_video(m_dir / f"{ML_PREFIX}_videos" / f"{iid}.mp4", frames, fps=FPS, crf=28, preset="superfast", threads=1)
        Image.fromarray(frames[0]).resize((320, 180)).save(m_dir / f"{ML_PREFIX}_covers" / f"{iid}.jpg", quality=88)
    with open(m_dir / f"{ML_PREFIX}_title_en.csv", "w", newline="") as f:
        w = csv.writer(f)
        for iid in sorted(titles, key=int):
            w.writerow([iid, titles[iid]])
    with open(m_dir / f"{ML_PREFIX}_pairs.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user", "item", "timestamp"])
        for r in pairs:
            w.writerow([USER_NUM[r["user"]], r["item"], r["timestamp"]])
    done.write_text("ok")
    return {"qilin": q_dir, "microlens": m_dir}


def load_handwritten(out: Path) -> dict[str, tuple[list[UserHistory], dict[str, GroundTruth]]]:
    """``{dataset: (histories read by the study's loaders, truth by user id)}`` for ``qilin`` and ``microlens``;
    the releases are written under ``out`` first (:func:`write_releases`)."""
    dirs = write_releases(out)
    truth: dict[str, dict[str, GroundTruth]] = {"qilin": {}, "microlens": {}}
    for row in _truth_rows():
        st = history_style(row["user_id"])
        row = {**row, "user_id": str(USER_NUM[row["user_id"]]), "palette": st["palette"],
               "lighting": st["lighting"], "motion": st.get("motion", "")}
        g = GroundTruth.model_validate(row)
        truth[g.dataset][g.user_id] = g
    hq = list(iter_qilin_users(dirs["qilin"]))
    hm = list(iter_microlens_users(dirs["microlens"]))
    return {"qilin": (hq, truth["qilin"]), "microlens": (hm, truth["microlens"])}
