"""The embedded sample: Qilin and MicroLens releases in miniature, generated from a seed (nothing downloaded).

:func:`ensure_sample` writes, under ``paths.sample_dir(dataset)``, exactly the files of the real release
(see :mod:`nextads_lib.datasets`), so the loaders and notebooks run the same code on the sample as on the
real data. Each user has a hidden :class:`~nextads_lib.schemas.GroundTruth` (1 to 3 fine-grained interests
with weights, e.g. "Winter Outfits", and the coarse topics they fall under; a tone, a narrative structure,
and a visual style: palette, lighting, motion) that shapes the history:

- the interests and every word of the titles and notes come from :mod:`nextads_lib.sample_vocab`, which no
  other module reads: the offline Director must recognise interests from the history's words, as on real
  data (83 interests, several phrasings and details each, 12 title styles, 3 note styles per tone, a
  narrative framing, hashtags, handles, and notes about nothing in particular);
- the users share a few *archetypes* (tone, narrative, palette, lighting, motion drawn from the style
  vocabularies of :mod:`nextads_lib.topics`); items live in pools keyed by (interest, archetype), so the same
  note / video is seen by several users, and a user's history is drawn mostly from the pools of their
  interests (in proportion to the weights) and their archetype, plus 8-20 % of off-interest items (40 % of
  them notes about nothing). MicroLens users draw from a seeded subset of 16 interests and keep the video pool
  small: at most ~6 videos per interest unless a user needs more distinct ones, and
  70 % of its users share the "home" archetype of their main interest, so about half of a MicroLens history
  is in the user's own style (about 80 % for Qilin);
- images are drawn scenes in the palette with the lighting applied (brightness and
  warmth) and a motif of the interest's coarse topic (a dumbbell, a bowl, a cat ...); MicroLens videos are 8-30 s
  mp4 files (256x144, 10 fps, H.264 + 8 kHz mono AAC) of at least three shots with hard cuts and camera pans /
  zooms over drawn scenes (``static``: a locked-off camera, one scene re-framed at each cut; ``slow``: two
  scenes, slow pans and zooms; ``dynamic``: a new scene per 1-2 s shot, fast pans and zooms), the title on
  screen over the first shot and a hashtag over the others, and a tone bed per shot whose rhythm follows the tone;
- two users per dataset have *diffuse* preferences (many interests, mixed styles) for the selection to
  reject; their ground truth lists their three most frequent interests.

Realistic defects the loaders must handle are written on purpose and listed in the marker file
(``<sample>/../.<dataset>_sample.json``, ``info.defects``): Qilin: a clicked note missing from ``notes``, a
note with an empty ``image_path``, an image listed but absent, a note title that is null, a note clicked
twice, NaN taxonomy / count columns; MicroLens: an empty title, titles with commas, a missing cover.

The ground truth goes to ``paths.ground_truth(dataset)`` (jsonl), outside the release directory. Generation
is atomic (a temporary directory renamed at the end) and keyed by ``(seed, n_users, CODE_VERSION)``: a second
call returns at once. The same seed gives the same bytes (parquet, JPEG and mp4 are written with fixed
settings and one encoder thread).
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from . import draw as D
from .config import DEFAULT_SEED, StudyPaths
from .schemas import GroundTruth
from .seed import derive_seed, rng
from .store import read_json, write_json, write_jsonl
from .sample_vocab import BY_NAME, INTEREST_IDS, NARRATIVE_STYLES, NOISE_NOTES, NOTE_STYLES, TITLE_STYLES
from .topics import LIGHTINGS, MOTIONS, NARRATIVES, PALETTES, TONES, TOPIC_IDS

__all__ = ["ensure_sample", "sample_info", "CODE_VERSION", "DATASETS", "VIDEO_SIZE", "VIDEO_FPS"]

CODE_VERSION = "sample-5"
DATASETS = ("qilin", "microlens")
N_ARCHETYPES = {"qilin": 8, "microlens": 4}
#: items per (topic, archetype) pool before a user's demand spills into other archetypes of the topic
POOL_SIZE = {"qilin": 12, "microlens": 4}
#: soft cap on the items of one topic (new items beyond it only when a user needs more distinct ones)
TOPIC_CAP = {"qilin": 10_000, "microlens": 6}
#: probability that a user takes the "home" archetype of their main topic (communities share a look)
HOMOPHILY = {"qilin": 0.3, "microlens": 0.7}
#: how many of the vocabulary's interests a dataset's users draw from (MicroLens: a seeded subset, which keeps
#: its video pool, the sample's main cost, about as small as before)
N_INTERESTS = {"qilin": len(INTEREST_IDS), "microlens": 16}
#: share of a focused user's off-interest items that are notes about nothing in particular
PURE_NOISE_P = 0.4
NOISE = "noise"
#: probability of 1, 2, 3 topics per user (MicroLens users spread wider, which keeps the video pool small)
N_TOPICS_P = {"qilin": (0.3, 0.45, 0.25), "microlens": (0.1, 0.45, 0.45)}
#: history lengths (min, max, beta a, beta b)
LENGTHS = {"qilin": (10, 40, 1.3, 2.6), "microlens": (10, 30, 1.0, 5.0)}
VIDEO_SIZE = (256, 144)
VIDEO_FPS = 10
AUDIO_RATE = 8000
QILIN_IMAGE_SIZE = (240, 320)
COVER_SIZE = (320, 180)
MICROLENS_PREFIX = "MicroLens-100k"


# ============================================================================================ the plan
@dataclass(frozen=True)
class Style:
    tone: str
    narrative: str
    palette: str
    lighting: str
    motion: str


@dataclass
class Item:
    """One note / video of the sample, shared by every user who sees it."""

    num: int  # creation order
    topic: str
    arch: int
    k: int
    style: Style
    title: str = ""
    text: str = ""
    item_id: int = 0
    video: bool = False  # qilin: note_type 2
    duration_s: float = 0.0

    @property
    def coarse(self) -> str:
        """The coarse topic of the item's interest (its drawn motif); a noise note gets one by its number."""
        return BY_NAME[self.topic].topic if self.topic in BY_NAME else TOPIC_IDS[self.k % len(TOPIC_IDS)]


@dataclass
class UserPlan:
    index: int
    user_id: int
    topics: dict[str, float]
    arch: int
    length: int
    diffuse: bool
    items: list[Item] = field(default_factory=list)


def _archetypes(dataset: str, seed: int) -> list[Style]:
    n = N_ARCHETYPES[dataset]
    r = rng(seed, "sample", dataset, "archetypes")
    tones = [TONES[i] for i in r.permutation(len(TONES))]
    narrs = [NARRATIVES[i] for i in r.permutation(len(NARRATIVES))]
    pals = list(PALETTES)
    pals = [pals[i] for i in r.permutation(len(pals))]
    lights = [LIGHTINGS[i] for i in r.permutation(len(LIGHTINGS))]
    motions = [MOTIONS[i] for i in r.permutation(len(MOTIONS))]
    return [Style(tones[i % len(tones)], narrs[(i * 5 + 1) % len(narrs)], pals[i % len(pals)],
                  lights[(i * 3) % len(lights)], motions[i % len(motions)]) for i in range(n)]


def _weights(r: np.random.Generator, n: int) -> list[float]:
    w = np.sort(r.dirichlet([3.0] * n))[::-1]
    w = np.maximum(w, 0.15)
    w = w / w.sum()
    out = [round(float(x), 3) for x in w]
    out[0] = round(1.0 - sum(out[1:]), 3)
    return out


class _World:
    """Users and the shared item pools of one dataset (deterministic in ``seed`` and ``n_users``)."""

    def __init__(self, dataset: str, seed: int, n_users: int):
        self.dataset, self.seed, self.n_users = dataset, seed, n_users
        self.archs = _archetypes(dataset, seed)
        self.pools: dict[tuple[str, int], list[Item]] = {}
        self.items: list[Item] = []
        self.users: list[UserPlan] = []
        u = rng(seed, "sample", dataset, "interests").permutation(len(INTEREST_IDS))[:N_INTERESTS[dataset]]
        self.universe: list[str] = [INTEREST_IDS[int(i)] for i in sorted(u)]
        self._plan()

    # items ---------------------------------------------------------------------------------------
    def item(self, topic: str, arch: int, k: int) -> Item:
        pool = self.pools.setdefault((topic, arch), [])
        while len(pool) <= k:
            it = Item(num=len(self.items), topic=topic, arch=arch, k=len(pool), style=self.archs[arch])
            _write_text(it, self.dataset, self.seed)
            pool.append(it)
            self.items.append(it)
        return pool[k]

    def _topic_items(self, topic: str, n: int, arch: int, r: np.random.Generator, taken: set[int]) -> list[Item]:
        """``n`` distinct items of ``topic`` not in ``taken``: the user's (topic, archetype) pool first (new
        items up to POOL_SIZE while the topic holds fewer than TOPIC_CAP), then existing items of the topic
        in other archetypes, then new items of the user's pool."""
        out: list[Item] = []
        cap, topic_cap = POOL_SIZE[self.dataset], TOPIC_CAP[self.dataset]
        own = self.pools.setdefault((topic, arch), [])

        def take(it: Item) -> None:
            if it.num not in taken and len(out) < n:
                taken.add(it.num)
                out.append(it)

        def topic_total() -> int:
            return sum(len(self.pools.get((topic, a), [])) for a in range(len(self.archs)))

        for j in r.permutation(len(own)):
            take(own[int(j)])
        while len(out) < n and len(own) < cap and topic_total() < topic_cap:
            take(self.item(topic, arch, len(own)))
        others = [int(a) for a in r.permutation(len(self.archs)) if a != arch]
        rest = [it for a in others for it in self.pools.get((topic, a), [])]
        for j in r.permutation(len(rest)):
            take(rest[int(j)])
        while len(out) < n:
            take(self.item(topic, arch, len(own)))
        return out

    # users ---------------------------------------------------------------------------------------
    def _plan(self) -> None:
        n = self.n_users
        diffuse = {n // 3, (2 * n) // 3} if n >= 6 else ({n - 1} if n >= 3 else set())
        base = 1000 if self.dataset == "qilin" else 1
        lo, hi, ba, bb = LENGTHS[self.dataset]
        for i in range(n):
            r = rng(self.seed, "sample", self.dataset, "user", i)
            nt = int(r.choice([1, 2, 3], p=N_TOPICS_P[self.dataset]))
            topics = [self.universe[j] for j in r.choice(len(self.universe), nt, replace=False)]
            w = _weights(r, nt)
            length = lo + int(round((hi - lo) * r.beta(ba, bb)))
            home = int(derive_seed(self.seed, "home", self.dataset, topics[0]) % len(self.archs))
            arch = home if r.random() < HOMOPHILY[self.dataset] else int(r.integers(len(self.archs)))
            self.users.append(UserPlan(i, base + i, dict(zip(topics, w)), arch, length, i in diffuse))
        # pass 1: the focused users' on-topic items (these create the pools)
        noise_n: dict[int, int] = {}
        for u in self.users:
            if u.diffuse:
                continue
            r = rng(self.seed, "sample", self.dataset, "history", u.index)
            n_noise = int(round(u.length * r.uniform(0.08, 0.2)))
            noise_n[u.index] = n_noise
            counts = _alloc(u.length - n_noise, list(u.topics.values()))
            taken: set[int] = set()
            for t, c in zip(u.topics, counts):
                u.items += self._topic_items(t, c, u.arch, r, taken)
        # pass 2: off-topic noise and the diffuse users, reusing existing items where there are any
        for u in self.users:
            r = rng(self.seed, "sample", self.dataset, "noise", u.index)
            taken = {it.num for it in u.items}
            if u.diffuse:
                tops = [self.universe[j] for j in r.choice(len(self.universe), 8, replace=False)]
                for j in range(u.length):
                    self._add_noise(u, tops[j % len(tops)], r, taken)
                cnt: dict[str, int] = {}
                for it in u.items:
                    cnt[it.topic] = cnt.get(it.topic, 0) + 1
                top3 = sorted(cnt, key=lambda t: (-cnt[t], INTEREST_IDS.index(t)))[:3]
                tot = sum(cnt[t] for t in top3)
                w = [round(cnt[t] / tot, 3) for t in top3]
                w[0] = round(1.0 - sum(w[1:]), 3)
                u.topics = dict(zip(top3, w))
                archs = [it.arch for it in u.items]
                u.arch = max(set(archs), key=lambda a: (archs.count(a), -a))
            else:
                mine = {BY_NAME[t].topic for t in u.topics}
                others = [t for t in self.universe if BY_NAME[t].topic not in mine]
                for _ in range(noise_n[u.index]):
                    pure = r.random() < PURE_NOISE_P
                    self._add_noise(u, NOISE if pure else others[int(r.integers(len(others)))], r, taken)
            order = rng(self.seed, "sample", self.dataset, "order", u.index).permutation(len(u.items))
            u.items = [u.items[int(j)] for j in order]
        # ids: qilin note_idx are sparse integers, MicroLens item ids count from 1 (creation order)
        for it in self.items:
            it.item_id = (100_000 + 37 * it.num + int(rng(self.seed, "sample", "id", it.num).integers(37))
                          if self.dataset == "qilin" else it.num + 1)

    def _add_noise(self, u: UserPlan, topic: str, r: np.random.Generator, taken: set[int]) -> None:
        existing = [it for a in range(len(self.archs)) for it in self.pools.get((topic, a), [])
                    if it.num not in taken]
        if existing:
            it = existing[int(r.integers(len(existing)))]
        else:
            a = int(r.integers(len(self.archs)))
            k = len(self.pools.get((topic, a), []))
            it = self.item(topic, a, k)
        taken.add(it.num)
        u.items.append(it)

    def ground_truth(self) -> list[GroundTruth]:
        out = []
        for u in self.users:
            s = self.archs[u.arch]
            coarse: dict[str, float] = {}
            for t, w in u.topics.items():
                coarse[BY_NAME[t].topic] = round(coarse.get(BY_NAME[t].topic, 0.0) + w, 3)
            out.append(GroundTruth(dataset=self.dataset, user_id=str(u.user_id), topics=coarse,
                                   interests=dict(u.topics), tone=s.tone, narrative=s.narrative, palette=s.palette,
                                   lighting=s.lighting, motion=s.motion))
        return out


def _alloc(n: int, weights: Sequence[float]) -> list[int]:
    """Largest-remainder split of ``n`` by ``weights``."""
    raw = [n * w for w in weights]
    base = [int(math.floor(x)) for x in raw]
    rest = n - sum(base)
    for j in sorted(range(len(raw)), key=lambda j: (-(raw[j] - base[j]), j))[:rest]:
        base[j] += 1
    return base


# ============================================================================================== text
HANDLES = ("mika_runs", "leo.eats", "jun_travels", "ana.studio", "kai_plays", "noor.home")


def _fill(tpl: str, r: np.random.Generator, phrase: str, details: Sequence[str]) -> str:
    d, e, f = (details[int(i)] for i in r.choice(len(details), 3, replace=False))
    return tpl.format(p=phrase, P=phrase[:1].upper() + phrase[1:], d=d, D=d[:1].upper() + d[1:], e=e, f=f,
                      n=int(r.integers(3, 11)), m=int(r.integers(5, 10)))


def _write_text(it: Item, dataset: str, seed: int) -> None:
    """The item's title and text, written from :mod:`nextads_lib.sample_vocab` (never from the Director's
    taxonomy): one of the interest's phrasings and details in a title style, a note in the tone's style
    with a narrative framing, sometimes a hashtag line or a thank-you to a handle. Noise items are notes
    about nothing in particular."""
    r = rng(seed, "sample", dataset, "text", it.topic, it.arch, it.k)
    if it.topic == NOISE:
        title, text = NOISE_NOTES[it.k % len(NOISE_NOTES)]
        it.title, it.text = title, text + (f" ({it.k // len(NOISE_NOTES) + 1})" if it.k >= len(NOISE_NOTES) else "")
    else:
        interest = BY_NAME[it.topic]
        s = it.style
        phrase = interest.phrasings[int(r.integers(len(interest.phrasings)))]
        it.title = _fill(TITLE_STYLES[int(r.integers(len(TITLE_STYLES)))], r, phrase, interest.details)
        note = _fill(NOTE_STYLES[s.tone][int(r.integers(len(NOTE_STYLES[s.tone])))], r, phrase, interest.details)
        frame = _fill(NARRATIVE_STYLES[s.narrative][int(r.integers(3))], r, phrase, interest.details)
        u = r.random()
        tags = " ".join("#" + x.replace(" ", "").replace("-", "") for x in
                        (interest.details[int(i)] for i in r.choice(len(interest.details), 2, replace=False)))
        extra = f" Thanks @{HANDLES[int(r.integers(len(HANDLES)))]} for the tip!" if r.random() < 0.12 else ""
        it.text = (f"{note} {frame}" if u < 0.5 else f"{frame} {note}") + (f" {tags}" if u > 0.7 else "") + extra
    it.video = dataset == "microlens" or r.random() < 0.2
    if it.video:
        it.duration_s = float(round(8 + 22 * r.beta(1.0, 8.0), 1))


# ============================================================================================ images
def _rgb(h: str) -> tuple[int, int, int]:
    return D.hex_to_rgb(h)


def _neon(c: tuple[int, int, int]) -> tuple[int, int, int]:
    import colorsys  # noqa: PLC0415

    h, s, v = colorsys.rgb_to_hsv(*(x / 255 for x in c))
    if s < 0.08:  # a grey: give it the neon magenta
        h = 0.9
    return tuple(int(round(x * 255)) for x in colorsys.hsv_to_rgb(h, 0.9, 1.0))  # type: ignore[return-value]


def _motif(d: ImageDraw.ImageDraw, topic: str, cx: float, cy: float, s: float, c1: tuple, c2: tuple) -> None:
    """A simple drawing that says the topic: ``s`` is the motif's half size."""
    e = d.ellipse
    rr = d.rounded_rectangle
    w = max(2, int(s / 8))
    if topic == "fitness":  # dumbbell
        d.rectangle((cx - s, cy - s * 0.08, cx + s, cy + s * 0.08), fill=c2)
        for sx in (-1, 1):
            rr((cx + sx * s * 0.75 - s * 0.15, cy - s * 0.5, cx + sx * s * 0.75 + s * 0.15, cy + s * 0.5), radius=w, fill=c1)
    elif topic == "running":  # shoe + speed lines
        d.polygon([(cx - s, cy + s * 0.3), (cx - s * 0.6, cy - s * 0.4), (cx - s * 0.1, cy - s * 0.2),
                   (cx + s * 0.4, cy + s * 0.05), (cx + s, cy + s * 0.2), (cx + s, cy + s * 0.45), (cx - s, cy + s * 0.45)], fill=c1)
        d.rectangle((cx - s, cy + s * 0.45, cx + s, cy + s * 0.6), fill=c2)
        for j in range(3):
            d.line((cx - s * 1.6, cy - s * 0.3 + j * s * 0.3, cx - s * 1.1, cy - s * 0.3 + j * s * 0.3), fill=c2, width=w)
    elif topic == "skincare":  # dropper bottle + drop
        rr((cx - s * 0.4, cy - s * 0.3, cx + s * 0.4, cy + s), radius=w * 2, fill=c1)
        d.rectangle((cx - s * 0.15, cy - s * 0.8, cx + s * 0.15, cy - s * 0.3), fill=c2)
        e((cx + s * 0.6, cy - s * 0.9, cx + s * 0.9, cy - s * 0.5), fill=c2)
    elif topic == "fashion":  # hanger + dress
        d.line((cx, cy - s, cx, cy - s * 0.75), fill=c2, width=w)
        d.polygon([(cx, cy - s * 0.75), (cx - s, cy - s * 0.35), (cx + s, cy - s * 0.35)], outline=c2, width=w)
        d.polygon([(cx - s * 0.45, cy - s * 0.35), (cx + s * 0.45, cy - s * 0.35), (cx + s * 0.8, cy + s),
                   (cx - s * 0.8, cy + s)], fill=c1)
    elif topic == "food":  # bowl + chopsticks + steam
        d.chord((cx - s, cy - s * 0.6, cx + s, cy + s * 0.8), 0, 180, fill=c1)
        d.line((cx + s * 0.2, cy - s * 0.9, cx + s * 0.9, cy + s * 0.1), fill=c2, width=w)
        d.line((cx + s * 0.45, cy - s * 1.0, cx + s * 1.05, cy + s * 0.0), fill=c2, width=w)
        for j in (-1, 0, 1):
            d.arc((cx + j * s * 0.35 - s * 0.12, cy - s * 0.7, cx + j * s * 0.35 + s * 0.12, cy - s * 0.2), 90, 270, fill=c2, width=w)
    elif topic == "travel":  # plane + sun
        e((cx + s * 0.4, cy - s, cx + s, cy - s * 0.4), fill=c2)
        d.polygon([(cx - s, cy + s * 0.1), (cx + s * 0.8, cy - s * 0.1), (cx + s, cy), (cx + s * 0.8, cy + s * 0.1)], fill=c1)
        d.polygon([(cx - s * 0.1, cy), (cx + s * 0.2, cy), (cx - s * 0.3, cy + s * 0.7), (cx - s * 0.5, cy + s * 0.7)], fill=c1)
        d.polygon([(cx - s * 0.1, cy), (cx + s * 0.2, cy), (cx - s * 0.3, cy - s * 0.7), (cx - s * 0.5, cy - s * 0.7)], fill=c1)
    elif topic == "tech":  # phone
        rr((cx - s * 0.5, cy - s, cx + s * 0.5, cy + s), radius=w * 2, fill=c1)
        rr((cx - s * 0.4, cy - s * 0.85, cx + s * 0.4, cy + s * 0.75), radius=w, fill=c2)
        e((cx - s * 0.08, cy + s * 0.8, cx + s * 0.08, cy + s * 0.95), fill=c2)
    elif topic == "gaming":  # controller
        rr((cx - s, cy - s * 0.45, cx + s, cy + s * 0.45), radius=int(s * 0.4), fill=c1)
        d.rectangle((cx - s * 0.7, cy - s * 0.06, cx - s * 0.3, cy + s * 0.06), fill=c2)
        d.rectangle((cx - s * 0.56, cy - s * 0.2, cx - s * 0.44, cy + s * 0.2), fill=c2)
        for dx, dy in ((0.45, -0.12), (0.65, 0.08)):
            e((cx + s * dx - s * 0.09, cy + s * dy - s * 0.09, cx + s * dx + s * 0.09, cy + s * dy + s * 0.09), fill=c2)
    elif topic == "music":  # two beamed notes
        for dx in (-0.5, 0.5):
            e((cx + s * dx - s * 0.3, cy + s * 0.4, cx + s * dx + s * 0.1, cy + s * 0.8), fill=c1)
            d.line((cx + s * dx + s * 0.08, cy + s * 0.6, cx + s * dx + s * 0.08, cy - s * 0.7), fill=c1, width=w)
        d.polygon([(cx - s * 0.42, cy - s * 0.7), (cx + s * 0.58, cy - s * 0.9), (cx + s * 0.58, cy - s * 0.7),
                   (cx - s * 0.42, cy - s * 0.5)], fill=c2)
    elif topic == "movies":  # clapperboard
        d.rectangle((cx - s, cy - s * 0.3, cx + s, cy + s * 0.8), fill=c1)
        d.polygon([(cx - s, cy - s * 0.35), (cx + s, cy - s * 0.75), (cx + s, cy - s * 0.45), (cx - s, cy - s * 0.05)], fill=c2)
        for j in range(4):
            x = cx - s * 0.7 + j * s * 0.45
            d.line((x, cy - s * 0.1 - j * s * 0.09, x + s * 0.2, cy - s * 0.55 - j * s * 0.09), fill=c1, width=w)
    elif topic == "pets":  # cat face
        e((cx - s * 0.8, cy - s * 0.6, cx + s * 0.8, cy + s * 0.9), fill=c1)
        d.polygon([(cx - s * 0.75, cy - s * 0.2), (cx - s * 0.7, cy - s), (cx - s * 0.2, cy - s * 0.55)], fill=c1)
        d.polygon([(cx + s * 0.75, cy - s * 0.2), (cx + s * 0.7, cy - s), (cx + s * 0.2, cy - s * 0.55)], fill=c1)
        for dx in (-0.35, 0.35):
            e((cx + s * dx - s * 0.12, cy - s * 0.05, cx + s * dx + s * 0.12, cy + s * 0.2), fill=c2)
        d.polygon([(cx - s * 0.1, cy + s * 0.35), (cx + s * 0.1, cy + s * 0.35), (cx, cy + s * 0.48)], fill=c2)
    elif topic == "home":  # house + window
        d.rectangle((cx - s * 0.7, cy - s * 0.1, cx + s * 0.7, cy + s), fill=c1)
        d.polygon([(cx - s, cy - s * 0.05), (cx, cy - s), (cx + s, cy - s * 0.05)], fill=c2)
        d.rectangle((cx - s * 0.15, cy + s * 0.4, cx + s * 0.15, cy + s), fill=c2)
        d.rectangle((cx + s * 0.3, cy + s * 0.1, cx + s * 0.55, cy + s * 0.35), fill=c2)
    elif topic == "outdoors":  # mountains + tree
        d.polygon([(cx - s * 1.2, cy + s), (cx - s * 0.3, cy - s * 0.8), (cx + s * 0.6, cy + s)], fill=c1)
        d.polygon([(cx - s * 0.1, cy + s), (cx + s * 0.6, cy - s * 0.3), (cx + s * 1.3, cy + s)], fill=c2)
        d.polygon([(cx - s * 0.3, cy - s * 0.8), (cx - s * 0.5, cy - s * 0.45), (cx - s * 0.1, cy - s * 0.45)], fill=(250, 250, 250))
    elif topic == "productivity":  # open book + lines
        d.polygon([(cx - s, cy - s * 0.6), (cx, cy - s * 0.45), (cx, cy + s * 0.7), (cx - s, cy + s * 0.55)], fill=c1)
        d.polygon([(cx + s, cy - s * 0.6), (cx, cy - s * 0.45), (cx, cy + s * 0.7), (cx + s, cy + s * 0.55)], fill=c1)
        for j in range(4):
            y = cy - s * 0.25 + j * s * 0.2
            d.line((cx - s * 0.8, y, cx - s * 0.15, y + s * 0.05), fill=c2, width=max(1, w // 2))
            d.line((cx + s * 0.15, y + s * 0.05, cx + s * 0.8, y), fill=c2, width=max(1, w // 2))
    elif topic == "coffee":  # cup + saucer + steam
        d.ellipse((cx - s, cy + s * 0.55, cx + s, cy + s * 0.85), fill=c2)
        d.chord((cx - s * 0.65, cy - s * 0.6, cx + s * 0.65, cy + s * 0.8), 0, 180, fill=c1)
        d.rectangle((cx - s * 0.65, cy - s * 0.2, cx + s * 0.65, cy + s * 0.1), fill=c1)
        d.arc((cx + s * 0.45, cy - s * 0.15, cx + s * 0.95, cy + s * 0.35), 270, 90, fill=c1, width=w)
        for j in (-1, 1):
            d.arc((cx + j * s * 0.25 - s * 0.1, cy - s, cx + j * s * 0.25 + s * 0.1, cy - s * 0.35), 90, 270, fill=c2, width=w)
    else:  # commute: bus
        rr((cx - s, cy - s * 0.6, cx + s, cy + s * 0.5), radius=w * 2, fill=c1)
        for j in range(3):
            d.rectangle((cx - s * 0.85 + j * s * 0.6, cy - s * 0.45, cx - s * 0.4 + j * s * 0.6, cy - s * 0.05), fill=c2)
        for dx in (-0.55, 0.55):
            e((cx + s * dx - s * 0.2, cy + s * 0.35, cx + s * dx + s * 0.2, cy + s * 0.75), fill=(30, 30, 30))


def _light(arr: np.ndarray, lighting: str) -> np.ndarray:
    """Apply the lighting to a float RGB image in 0..255 so that brightness / warmth statistics say it:
    bright = lifted and neutral, warm / cool = shifted red or blue, dim = dark, neon = dark with vivid
    colours (the neon scene is drawn dark already)."""
    a = arr.astype(np.float32)
    if lighting == "dim":
        a = a * (70.0 / max(float(a.max(axis=2).mean()), 1.0))
    elif lighting == "bright":
        a = a * 0.8 + 255 * 0.2
    warmth = float((a[..., 0] - a[..., 2]).mean()) / 255.0
    target = {"warm": 0.24, "cool": -0.24, "bright": 0.0}.get(lighting)
    if target is not None:
        d = (target - warmth) * 255.0
        a[..., 0] += d / 2
        a[..., 2] -= d / 2
    return np.clip(a, 0, 255)


def draw_scene(topic: str, style: Style, size: tuple[int, int], seed: int, *keys: object) -> np.ndarray:
    """A drawn scene ``(H, W, 3)`` uint8: a palette gradient, a few palette shapes, the topic motif, the
    lighting applied. Deterministic in ``(seed, *keys)``."""
    r = rng(seed, "scene", *keys)
    w, h = size
    pal = [_rgb(x) for x in PALETTES[style.palette]]
    order = [pal[int(i)] for i in r.permutation(len(pal))]
    neon = style.lighting == "neon"
    if neon:  # neon light: the palette's hues at full saturation and value, on a near-black ground
        order = [_neon(c) for c in order]
    if neon:
        top = "#%02X%02X%02X" % tuple(int(c * 0.12) for c in order[0])
        bot = "#%02X%02X%02X" % tuple(int(c * 0.05) for c in order[1])
    else:
        top = "#%02X%02X%02X" % order[0]
        bot = "#%02X%02X%02X" % order[1]
    img = Image.fromarray(D.gradient((w, h), top, bot))
    d = ImageDraw.Draw(img)
    m = min(w, h)
    for _ in range(int(r.integers(3, 7))):
        c = order[int(r.integers(len(order)))]
        x, y = float(r.uniform(0, w)), float(r.uniform(0, h))
        rad = float(r.uniform(0.06, 0.22)) * m
        if neon:
            d.ellipse((x - rad, y - rad, x + rad, y + rad), fill=tuple(v // 3 for v in c), outline=c,
                      width=max(3, int(m / 25)))
        elif r.random() < 0.5:
            d.ellipse((x - rad, y - rad, x + rad, y + rad), fill=c)
        else:
            d.rounded_rectangle((x - rad, y - rad * 0.6, x + rad, y + rad * 0.6), radius=int(rad / 4), fill=c)
    c1, c2 = order[2], order[3]
    if not neon and abs(sum(c1) - sum(order[0])) < 120:  # keep the motif readable on its background
        c1 = tuple(255 - v for v in order[0])
    cx, cy = float(r.uniform(0.35, 0.65)) * w, float(r.uniform(0.38, 0.62)) * h
    _motif(d, topic, cx, cy, float(r.uniform(0.22, 0.3)) * m, c1, c2)
    return _light(np.asarray(img), style.lighting).astype(np.uint8)


def _title_overlay(text: str, size: tuple[int, int], font_px: int, where: str = "bottom") -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """The on-screen title as (rgb, alpha in 0..1, (x0, y0)) cropped to its box, for cheap blending."""
    w, h = size
    canvas = Image.new("RGBA", size, (0, 0, 0, 0))
    y = int(h * 0.62) if where == "bottom" else int(h * 0.06)
    x0, y0, x1, y1 = D.text_box(canvas, text, (w // 2, y), font_px, int(w * 0.86), box=(0, 0, 0, 150))
    x0, y0, x1, y1 = max(0, int(x0)), max(0, int(y0)), min(w, int(x1) + 1), min(h, int(y1) + 1)
    a = np.asarray(canvas)[y0:y1, x0:x1]
    return a[..., :3].astype(np.float32), a[..., 3:4].astype(np.float32) / 255.0, (x0, y0)


def _blend(frame: np.ndarray, ov: tuple[np.ndarray, np.ndarray, tuple[int, int]]) -> None:
    rgb, al, (x0, y0) = ov
    hh, ww = rgb.shape[:2]
    reg = frame[y0:y0 + hh, x0:x0 + ww].astype(np.float32)
    frame[y0:y0 + hh, x0:x0 + ww] = (reg * (1 - al) + rgb * al).astype(np.uint8)


def note_image(it: Item, j: int, seed: int, dataset: str = "qilin") -> np.ndarray:
    """Image ``j`` of a Qilin note (the first carries the title, as note covers do)."""
    arr = draw_scene(it.coarse, it.style, QILIN_IMAGE_SIZE, seed, dataset, "note", it.topic, it.arch, it.k, j)
    if j == 0:
        arr = arr.copy()
        _blend(arr, _title_overlay(it.title, QILIN_IMAGE_SIZE, 15))
    return arr


# ============================================================================================= video
_CAMERA = {  # motion -> (shot length range s, camera travel as a fraction of the margin, zoom range)
    "static": ((3.5, 5.5), 0.0, (1.0, 1.0)),  # a locked-off camera: the only changes are the cuts
    "slow": ((2.5, 4.0), 0.6, (1.0, 1.2)),
    "dynamic": ((1.2, 2.2), 1.0, (1.0, 1.6)),
}


def _shots(it: Item, seed: int) -> list[tuple[int, float]]:
    """(n_frames, start time) per shot: at least 3 shots, lengths by the motion style."""
    r = rng(seed, "sample", "shots", it.num, it.topic, it.arch, it.k)
    n_total = int(round(it.duration_s * VIDEO_FPS))
    lo, hi = _CAMERA[it.style.motion][0]
    lens: list[int] = []
    while sum(lens) < n_total:
        lens.append(max(VIDEO_FPS, int(round(r.uniform(lo, hi) * VIDEO_FPS))))
    lens[-1] -= sum(lens) - n_total
    if lens[-1] < VIDEO_FPS and len(lens) > 1:
        lens[-2] += lens.pop()
    while len(lens) < 3:  # split the longest shot
        j = int(np.argmax(lens))
        a = lens[j] // 2
        lens[j:j + 1] = [a, lens[j] - a]
    out, t = [], 0
    for n in lens:
        out.append((n, t / VIDEO_FPS))
        t += n
    return out


def _tone_bed(tone: str, f0: float, n: int, rate: int, r: np.random.Generator) -> np.ndarray:
    t = np.arange(n, dtype=np.float32) / rate
    minor = tone == "emotional"
    ratios = (1.0, 1.189 if minor else 1.26, 1.498)
    sig = sum(np.sin(2 * np.pi * f0 * k * t + float(r.uniform(0, 6.28))) for k in ratios) / 3
    if tone == "energetic":
        env = (np.sin(2 * np.pi * 4.0 * t) > 0).astype(np.float32) * 0.9 + 0.1
    elif tone == "humorous":
        sig = np.sin(2 * np.pi * f0 * t * (1 + 0.03 * np.sin(2 * np.pi * 3 * t)))
        env = 0.5 + 0.5 * np.abs(np.sin(2 * np.pi * 1.5 * t))
    elif tone == "informative":
        env = ((t * 2) % 1 < 0.25).astype(np.float32) * 0.8 + 0.2
    elif tone == "calm":
        env = 0.6 + 0.4 * np.sin(2 * np.pi * 0.25 * t)
    else:  # luxurious, emotional: sustained
        env = np.ones_like(t)
    return (0.22 * sig * env).astype(np.float32)


def render_video(it: Item, path: Path, cover_path: Path, seed: int) -> None:
    """The mp4 of a MicroLens item and its cover (the first shot's scene, full frame)."""
    import cv2  # noqa: PLC0415

    from .media import write_video  # noqa: PLC0415

    cv2.setNumThreads(1)
    w, h = VIDEO_SIZE
    sw, sh = int(w * 1.5), int(h * 1.5)
    shots = _shots(it, seed)
    _, travel, (z0, z1) = _CAMERA[it.style.motion]
    title_ov = _title_overlay(it.title, VIDEO_SIZE, 12)
    kw = [x.replace(" ", "") for x in BY_NAME[it.topic].details] if it.topic in BY_NAME else ["fyp", "random"]
    base_f = 196.0 * 2 ** (TOPIC_IDS.index(it.coarse) % 12 / 12)
    audio_parts = []
    scenes = []
    drawn: dict[int, np.ndarray] = {}
    for si, (n, _t) in enumerate(shots):
        r = rng(seed, "sample", "shot", it.num, it.topic, it.arch, it.k, si)
        # static footage re-frames one scene at each cut, slow footage alternates two, dynamic cuts to a new one
        scene_i = {"static": 0, "slow": si % 2}.get(it.style.motion, si)
        if scene_i not in drawn:
            drawn[scene_i] = draw_scene(it.coarse, it.style, (sw, sh), seed, "microlens", "video", it.topic, it.arch,
                                        it.k, scene_i)
        move = ("pan_left", "pan_right", "zoom_in", "zoom_out", "tilt_up")[int(r.integers(5))]
        anchor = (0.5, 0.5) if si == 0 else (float(r.choice([0.0, 1.0])), float(r.uniform(0.0, 1.0)))
        cap = None if si == 0 else _title_overlay(f"#{kw[int(r.integers(len(kw)))]}", VIDEO_SIZE, 10, where="top")
        scenes.append((n, drawn[scene_i], move, cap, anchor))
        audio_parts.append(_tone_bed(it.style.tone, base_f * 2 ** (int(r.integers(-5, 8)) / 12),
                                     int(round(n / VIDEO_FPS * AUDIO_RATE)), AUDIO_RATE, r))

    def crop_at(u: float, move: str, anchor: tuple[float, float]) -> tuple[float, float, float]:
        """(x0, y0, crop width) in scene pixels at shot progress ``u`` in 0..1; the camera travels around
        the shot's ``anchor`` (0..1 of the margin)."""
        if move in ("zoom_in", "zoom_out"):
            z = z0 + (z1 - z0) * (u if move == "zoom_in" else 1 - u)
            cw = sw / (1.1 * z)
        else:
            cw = sw / 1.3
        ch = cw * h / w
        mx, my = sw - cw, sh - ch
        ax, ay = anchor
        if move in ("pan_left", "pan_right"):  # toward the far side from an edge anchor
            direction = (1 if ax < 0.5 else -1) if ax != 0.5 else (1 if move == "pan_right" else -1)
            ax += direction * travel * ((u - 0.5) if ax == 0.5 else u)
        elif move == "tilt_up":
            ay += travel * (0.5 - u)
        return mx * min(max(ax, 0.0), 1.0), my * min(max(ay, 0.0), 1.0), cw

    def frames() -> Iterator[np.ndarray]:
        for si, (n, scene, move, cap, anchor) in enumerate(scenes):
            for f in range(n):
                x, y, cw = crop_at(f / max(n - 1, 1), move, anchor)
                x0, y0 = int(round(x)), int(round(y))
                cw_i = min(int(round(cw)), sw - x0)
                ch_i = min(int(round(cw * h / w)), sh - y0)
                fr = cv2.resize(scene[y0:y0 + ch_i, x0:x0 + cw_i], (w, h), interpolation=cv2.INTER_LINEAR)
                if si == 0:
                    _blend(fr, title_ov)
                elif cap is not None:
                    _blend(fr, cap)
                yield fr

    audio = np.concatenate(audio_parts)
    write_video(path, frames(), fps=VIDEO_FPS, audio=audio, audio_rate=AUDIO_RATE, crf=30, preset="superfast",
                threads=1)
    cover = cv2.resize(scenes[0][1], COVER_SIZE, interpolation=cv2.INTER_AREA)
    _save_jpeg(cover_path, cover)


def _save_jpeg(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format="JPEG", quality=85, optimize=False)


# ======================================================================================= Qilin writer
def _shard_name(i: int, n: int) -> str:
    return f"train-{i:05d}-of-{n:05d}.parquet"


def _write_shards(folder: Path, table: Any, n: int) -> None:
    import pyarrow.parquet as pq  # noqa: PLC0415

    folder.mkdir(parents=True, exist_ok=True)
    rows = table.num_rows
    for i in range(n):
        lo, hi = rows * i // n, rows * (i + 1) // n
        pq.write_table(table.slice(lo, hi - lo), folder / _shard_name(i, n), compression="snappy",
                       row_group_size=512)


def _qilin_image_rel(note_idx: int, j: int) -> str:
    return f"note_images/{note_idx % 100:02d}/{note_idx}_{j}.jpg"


def _generate_qilin(out: Path, seed: int, n_users: int, workers: int) -> tuple[list[GroundTruth], dict[str, Any]]:
    import pyarrow as pa  # noqa: PLC0415

    world = _World("qilin", seed, n_users)
    r = rng(seed, "sample", "qilin", "release")
    used = sorted({it.num for u in world.users for it in u.items})
    items = [world.items[i] for i in used]
    ids = [it.item_id for it in items]
    defects: dict[str, Any] = {}

    # --- images (1-3 per note; a video note has its cover only) and defects
    n_imgs = {it.num: (1 if it.video else int(rng(seed, "sample", "qilin", "nimg", it.num).integers(1, 4)))
              for it in items}
    empty_note = items[3] if len(items) > 3 else items[0]
    missing_img_note = next((it for it in items[5:] if n_imgs[it.num] >= 2), None)
    null_title_note = items[7] if len(items) > 7 else None
    images: dict[int, list[str]] = {}
    jobs = []
    for it in items:
        rels = [_qilin_image_rel(it.item_id, j) for j in range(n_imgs[it.num])]
        if it is empty_note:
            rels = []
        images[it.num] = rels
        for j, rel in enumerate(rels):
            if it is missing_img_note and j == 1:
                continue  # listed in image_path, never written
            jobs.append((it, j, out / "images" / rel))
    defects["empty_image_path_note"] = str(empty_note.item_id)
    if missing_img_note is not None:
        defects["missing_image"] = _qilin_image_rel(missing_img_note.item_id, 1)
    if null_title_note is not None:
        defects["null_title_note"] = str(null_title_note.item_id)
    _run_jobs(_qilin_image_job, [(it, j, p, seed) for it, j, p in jobs], workers)

    # --- notes table (NaN taxonomy / counts for some notes), in a shuffled order over 2 shards
    tax1 = [float(TOPIC_IDS.index(it.coarse) + 1) for it in items]
    nan_rows = set(r.choice(len(items), max(1, len(items) // 10), replace=False).tolist())
    cnt = {k: [] for k in ("imp_num", "click_num", "like_num", "collect_num", "comment_num", "share_num")}
    for i, it in enumerate(items):
        imp = float(r.integers(200, 20000))
        vals = {"imp_num": imp, "click_num": float(int(imp * r.uniform(0.02, 0.2)))}
        for k in ("like_num", "collect_num", "comment_num", "share_num"):
            vals[k] = float(int(vals["click_num"] * r.uniform(0.01, 0.4)))
        for k in cnt:
            cnt[k].append(float("nan") if i in nan_rows and k != "imp_num" else vals[k])
    perm = r.permutation(len(items))
    col = lambda xs: [xs[int(i)] for i in perm]  # noqa: E731
    notes = pa.table({
        "note_idx": pa.array(col(ids), pa.int64()),
        "note_title": pa.array(col([None if it is null_title_note else it.title for it in items]), pa.string()),
        "note_content": pa.array(col([it.text for it in items]), pa.string()),
        "note_type": pa.array(col([2 if it.video else 1 for it in items]), pa.int64()),
        "image_path": pa.array(col([images[it.num] for it in items]), pa.list_(pa.string())),
        "video_duration": pa.array(col([it.duration_s if it.video else float("nan") for it in items]), pa.float64()),
        "taxonomy1_id": pa.array(col([float("nan") if i in nan_rows else v for i, v in enumerate(tax1)]), pa.float64()),
        "taxonomy2_id": pa.array(col([float("nan") if i in nan_rows or i % 3 == 0 else v * 10 + it.arch
                                      for i, (v, it) in enumerate(zip(tax1, items))]), pa.float64()),
        **{k: pa.array(col(v), pa.float64()) for k, v in cnt.items()},
    })
    _write_shards(out / "notes", notes, 2)

    # --- recommendation logs: requests of 1-3 clicks plus impressions, details unsorted, floats
    missing_note_id = max(ids) + 1 + int(r.integers(1, 50))
    focused = [u for u in world.users if not u.diffuse]
    miss_user = focused[0] if focused else world.users[0]
    dup_user = focused[1] if len(focused) > 1 else world.users[0]
    defects["missing_note"] = {"user": str(miss_user.user_id), "note": str(missing_note_id)}
    defects["duplicate_click"] = {"user": str(dup_user.user_id), "note": str(dup_user.items[0].item_id)}
    rows: list[dict[str, Any]] = []
    req = 0
    for u in world.users:
        ru = rng(seed, "sample", "qilin", "requests", u.index)
        seq = [it.item_id for it in u.items]
        if u is miss_user:
            seq.insert(len(seq) // 2, missing_note_id)
        if u is dup_user:
            seq.insert(len(seq) - 2, seq[0])  # clicked again later: the loader keeps the first click
        t = 1.7e12 + u.index * 86_400_000.0 * 3 + float(ru.integers(0, 3_600_000))
        session = u.index * 1000
        pos_i = 0
        clicked: list[int] = []
        while pos_i < len(seq):
            k = int(ru.integers(1, 4))
            clicks = seq[pos_i:pos_i + k]
            pos_i += k
            n_imp = int(ru.integers(5, 10))
            others = [ids[int(j)] for j in ru.choice(len(ids), n_imp + 3, replace=False)]
            others = [x for x in others if x not in clicks][:n_imp]
            n_slots = len(clicks) + len(others)
            click_pos = sorted(ru.choice(n_slots, len(clicks), replace=False).tolist())
            slots: list[tuple[int, int, bool]] = []
            oi = iter(others)
            ci = iter(clicks)
            for p in range(n_slots):
                slots.append((next(ci), p, True) if p in click_pos else (next(oi), p, False))
            details = []
            for nid, p, c in slots:
                details.append({
                    "note_idx": float(nid), "position": float(p), "click": 1.0 if c else 0.0,
                    "like": float(c and ru.random() < 0.3), "comment": float(c and ru.random() < 0.05),
                    "collect": float(c and ru.random() < 0.15), "share": float(c and ru.random() < 0.05),
                    "request_timestamp": t, "page_time": float(round(ru.uniform(3, 90), 1)) if c else 0.0,
                })
            details = [details[int(j)] for j in ru.permutation(len(details))]
            if ru.random() < 0.4:
                session += 1
            rows.append({"request_idx": None, "session_idx": session, "user_idx": u.user_id,
                         "recent_clicked_note_idxs": list(reversed(clicked[-20:])), "rec_results": [d["note_idx"] for d in details],
                         "rec_result_details_with_idx": details, "_t": t, "_user": u.index})
            clicked += clicks
            t += float(ru.integers(60_000, 6 * 3_600_000))
    # the last ~15 % of each user's requests are the test split
    by_user: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_user.setdefault(row["_user"], []).append(row)
    train, test = [], []
    for ui in sorted(by_user):
        rs = by_user[ui]
        n_test = max(1, int(round(len(rs) * 0.15))) if len(rs) > 2 else 0
        train += rs[: len(rs) - n_test]
        test += rs[len(rs) - n_test:]
    detail_t = pa.struct([(k, pa.float64()) for k in ("note_idx", "position", "click", "like", "comment", "collect",
                                                       "share", "request_timestamp", "page_time")])
    for name, part, n_shards in (("recommendation_train", train, 2), ("recommendation_test", test, 1)):
        part = [part[int(j)] for j in r.permutation(len(part))]  # rows are not sorted by user or time
        for row in part:
            row["request_idx"] = req
            req += 1
        tbl = pa.table({
            "request_idx": pa.array([x["request_idx"] for x in part], pa.int64()),
            "session_idx": pa.array([x["session_idx"] for x in part], pa.int64()),
            "user_idx": pa.array([x["user_idx"] for x in part], pa.int64()),
            "recent_clicked_note_idxs": pa.array([x["recent_clicked_note_idxs"] for x in part], pa.list_(pa.int64())),
            "rec_results": pa.array([[int(v) for v in x["rec_results"]] for x in part], pa.list_(pa.int64())),
            "rec_result_details_with_idx": pa.array([x["rec_result_details_with_idx"] for x in part], pa.list_(detail_t)),
        })
        _write_shards(out / name, tbl, n_shards)

    # --- user features (NaN for some)
    uf = pa.table({
        "user_idx": pa.array([u.user_id for u in world.users], pa.int64()),
        "gender": pa.array([float("nan") if u.index % 7 == 3 else float(u.index % 2) for u in world.users], pa.float64()),
        "age": pa.array([float("nan") if u.index % 5 == 2 else float(18 + (u.index * 7) % 30) for u in world.users], pa.float64()),
        "platform": pa.array(["ios" if u.index % 3 else "android" for u in world.users], pa.string()),
        "fans_num": pa.array([float((u.index * 37) % 500) for u in world.users], pa.float64()),
        "follows_num": pa.array([float((u.index * 53) % 300) for u in world.users], pa.float64()),
    })
    _write_shards(out / "user_feat", uf, 1)
    info = {"n_users": len(world.users), "n_notes": len(items), "n_images": len(jobs), "n_requests": len(rows),
            "diffuse_users": [str(u.user_id) for u in world.users if u.diffuse], "defects": defects}
    return world.ground_truth(), info


def _qilin_image_job(args: tuple[Item, int, Path, int]) -> None:
    it, j, path, seed = args
    _save_jpeg(path, note_image(it, j, seed))


def _microlens_video_job(args: tuple[Item, Path, Path | None, int]) -> None:
    it, vpath, cpath, seed = args
    tmp_cover = vpath.with_suffix(".cover.jpg") if cpath is None else cpath
    render_video(it, vpath, tmp_cover, seed)
    if cpath is None:
        tmp_cover.unlink(missing_ok=True)


def _run_jobs(fn: Any, jobs: list[Any], workers: int) -> None:
    """Run ``fn`` over ``jobs`` here, or in ``workers`` spawned processes when there are enough jobs to pay
    for starting them (spawn, not fork: the caller may hold threads, e.g. a notebook kernel with torch)."""
    if workers <= 1 or len(jobs) < 24:
        for j in jobs:
            fn(j)
        return
    import multiprocessing  # noqa: PLC0415

    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as ex:
        for _ in ex.map(fn, jobs, chunksize=max(1, len(jobs) // (workers * 8))):
            pass


# =================================================================================== MicroLens writer
def _generate_microlens(out: Path, seed: int, n_users: int, workers: int) -> tuple[list[GroundTruth], dict[str, Any]]:
    world = _World("microlens", seed, n_users)
    r = rng(seed, "sample", "microlens", "release")
    used = sorted({it.num for u in world.users for it in u.items})
    items = [world.items[i] for i in used]
    pre = MICROLENS_PREFIX
    out.mkdir(parents=True, exist_ok=True)
    hosts = {u.items[-1].num for u in world.users}
    non_host = [it for it in items if it.num not in hosts]
    missing_cover = non_host[len(non_host) // 2] if non_host else None
    empty_title = non_host[len(non_host) // 3] if len(non_host) > 2 else None
    defects: dict[str, Any] = {}
    if missing_cover is not None:
        defects["missing_cover"] = f"{pre}_covers/{missing_cover.item_id}.jpg"
    if empty_title is not None:
        defects["empty_title"] = str(empty_title.item_id)
    # pairs: tsv (oldest to newest) and csv (one row per interaction, shuffled, ms timestamps)
    tsv_lines, csv_rows = [], []
    for u in world.users:
        tsv_lines.append(f"{u.user_id}\t{' '.join(str(it.item_id) for it in u.items)}\n")
        ru = rng(seed, "sample", "microlens", "times", u.index)
        t = 1_580_000_000_000 + int(ru.integers(0, 10**10))
        for it in u.items:
            csv_rows.append((u.user_id, it.item_id, t))
            t += int(ru.integers(30_000, 3 * 86_400_000))
    (out / f"{pre}_pairs.tsv").write_text("".join(tsv_lines), encoding="utf-8")
    csv_rows = [csv_rows[int(j)] for j in r.permutation(len(csv_rows))]
    (out / f"{pre}_pairs.csv").write_text("user,item,timestamp\n" + "".join(f"{a},{b},{c}\n" for a, b, c in csv_rows),
                                          encoding="utf-8")
    # titles: no header, split on the first comma (titles may hold commas, one is empty)
    lines = [f"{it.item_id},{'' if it is empty_title else it.title}\n" for it in sorted(items, key=lambda x: x.item_id)]
    (out / f"{pre}_title_en.csv").write_text("".join(lines), encoding="utf-8")
    (out / f"{pre}_covers").mkdir(exist_ok=True)
    (out / f"{pre}_videos").mkdir(exist_ok=True)
    jobs = [(it, out / f"{pre}_videos" / f"{it.item_id}.mp4",
             None if it is missing_cover else out / f"{pre}_covers" / f"{it.item_id}.jpg", seed) for it in items]
    _run_jobs(_microlens_video_job, jobs, workers)
    info = {"n_users": len(world.users), "n_items": len(items), "n_videos": len(items),
            "video_seconds": round(sum(it.duration_s for it in items), 1),
            "n_interactions": len(csv_rows), "prefix": pre,
            "diffuse_users": [str(u.user_id) for u in world.users if u.diffuse], "defects": defects}
    return world.ground_truth(), info


# ============================================================================================ public
def _marker(paths: StudyPaths, dataset: str) -> Path:
    return paths.sample_dir(dataset).parent / f".{dataset}_sample.json"


def sample_info(dataset: str, paths: StudyPaths) -> dict[str, Any] | None:
    """The marker of a generated sample (seed, n_users, code version, sizes, diffuse users, defects), or None."""
    m = _marker(paths, dataset)
    try:
        return read_json(m) if m.is_file() else None
    except Exception:
        return None


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def ensure_sample(dataset: str, paths: StudyPaths, seed: int = DEFAULT_SEED, n_users: int = 60, *,
                  workers: int | None = None) -> Path:
    """Generate (once) the embedded sample of ``dataset`` (``qilin`` | ``microlens``) in the release format
    under ``paths.sample_dir(dataset)`` and its ground truth at ``paths.ground_truth(dataset)``; return the
    release directory (for Qilin the image root is ``<dir>/images``). A sample already generated with the
    same ``(seed, n_users, CODE_VERSION)`` is returned at once. ``workers`` processes render the media
    (default: the CPU count, at most 4; the bytes do not depend on it)."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, not {dataset!r}")
    if n_users < 1:
        raise ValueError("n_users must be >= 1")
    out = paths.sample_dir(dataset)
    gt_path = paths.ground_truth(dataset)
    key = {"dataset": dataset, "seed": int(seed), "n_users": int(n_users), "code_version": CODE_VERSION}

    def ready() -> bool:
        info = sample_info(dataset, paths)
        return bool(info) and info.get("key") == key and out.is_dir() and gt_path.is_file()

    if ready():
        return out
    with _lock(out.parent / f".{dataset}_sample.lock"):
        if ready():
            return out
        for stale in out.parent.glob(f".tmp-{dataset}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = out.parent / f".tmp-{dataset}-{os.getpid()}"
        tmp.mkdir(parents=True)
        t0 = time.perf_counter()
        n_workers = workers if workers is not None else min(os.cpu_count() or 1, 4)
        try:
            gen = _generate_qilin if dataset == "qilin" else _generate_microlens
            gts, info = gen(tmp, int(seed), int(n_users), n_workers)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _marker(paths, dataset).unlink(missing_ok=True)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
        write_jsonl(gt_path, gts)
        write_json(_marker(paths, dataset), {"key": key, "info": info,
                                             "generated_in_s": round(time.perf_counter() - t0, 2)})
    return out
