"""The embedded sample: release formats read back with plain pyarrow / csv, ground truth, caching, atomicity,
determinism (same seed same bytes) and the MicroLens videos (duration, audio, cuts)."""

from __future__ import annotations

import ast
import csv
import hashlib
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from nextads_lib import media, sample, sample_vocab
from nextads_lib.config import StudyPaths
from nextads_lib.schemas import GroundTruth
from nextads_lib.store import read_jsonl
from nextads_lib.topics import LIGHTINGS, MOTIONS, NARRATIVES, PALETTES, TONES, TOPIC_IDS

N_USERS = 6
SEED = 7


def make_sample(root: Path, dataset: str, seed: int = SEED, n_users: int = N_USERS,
                workers: int | None = None) -> tuple[StudyPaths, Path]:
    paths = StudyPaths(root)
    return paths, sample.ensure_sample(dataset, paths, seed=seed, n_users=n_users, workers=workers)


def shared_sample(tmp_path_factory, dataset: str) -> tuple[StudyPaths, Path]:
    """The small sample of this test session: one data dir under the session's base temp, so every module
    that asks for it (test_datasets too) finds it generated (the marker makes the second call free)."""
    return make_sample(tmp_path_factory.getbasetemp() / "a1-sample", dataset)


@pytest.fixture(scope="module")
def qilin(tmp_path_factory) -> tuple[StudyPaths, Path]:
    return shared_sample(tmp_path_factory, "qilin")


@pytest.fixture(scope="module")
def microlens(tmp_path_factory) -> tuple[StudyPaths, Path]:
    return shared_sample(tmp_path_factory, "microlens")


def tree_digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------ Qilin format
def test_qilin_release_layout_reads_with_plain_pyarrow(qilin):
    paths, d = qilin
    shard = re.compile(r"^train-\d{5}-of-(\d{5})\.parquet$")
    for cfg in ("notes", "recommendation_train", "recommendation_test", "user_feat"):
        files = sorted((d / cfg).glob("*.parquet"))
        assert files, cfg
        for f in files:
            m = shard.match(f.name)
            assert m and int(m.group(1)) == len(files), f.name
    # the release dir holds only release files: the ground truth and the marker live beside it
    assert sorted(p.name for p in d.iterdir()) == ["images", "notes", "recommendation_test",
                                                    "recommendation_train", "user_feat"]
    assert paths.ground_truth("qilin").is_file() and paths.ground_truth("qilin").parent == d.parent

    notes = pa.concat_tables([pq.read_table(f) for f in sorted((d / "notes").glob("*.parquet"))])
    sch = notes.schema
    assert sch.field("note_idx").type == pa.int64()
    assert sch.field("image_path").type == pa.list_(pa.string())
    assert set(notes.column("note_type").to_pylist()) <= {1, 2}
    assert 2 in notes.column("note_type").to_pylist()
    tax = np.array(notes.column("taxonomy1_id").to_pylist(), float)
    assert np.isnan(tax).any() and (~np.isnan(tax)).any()
    paths_lists = notes.column("image_path").to_pylist()
    assert [] in paths_lists  # a note without images (a defect the loaders handle)
    rel = next(p for ps in paths_lists for p in ps)
    assert not rel.startswith("/")
    with Image.open(d / "images" / rel) as im:
        assert im.format == "JPEG" and im.size == sample.QILIN_IMAGE_SIZE

    rec = pq.read_table(d / "recommendation_train")
    for c in ("request_idx", "session_idx", "user_idx", "recent_clicked_note_idxs", "rec_result_details_with_idx"):
        assert c in rec.schema.names
    st = rec.schema.field("rec_result_details_with_idx").type.value_type
    for f in ("note_idx", "position", "click", "like", "comment", "collect", "share", "request_timestamp", "page_time"):
        assert st.field(f).type == pa.float64(), f
    details = rec.column("rec_result_details_with_idx").to_pylist()
    assert any([x["position"] for x in row] != sorted(x["position"] for x in row) for row in details)  # unsorted
    assert all(x["click"] in (0.0, 1.0) for row in details for x in row)
    users = rec.column("user_idx").to_pylist()
    assert users != sorted(users)  # rows are not grouped by user
    uf = pq.read_table(d / "user_feat")
    assert uf.num_rows == N_USERS and np.isnan(np.array(uf.column("age").to_pylist(), float)).any()


def test_qilin_sample_defects_are_listed_and_present(qilin):
    paths, d = qilin
    info = sample.sample_info("qilin", paths)
    assert info["key"] == {"dataset": "qilin", "seed": SEED, "n_users": N_USERS, "code_version": sample.CODE_VERSION}
    dfx = info["info"]["defects"]
    ids = set(pa.concat_tables([pq.read_table(f) for f in (d / "notes").glob("*.parquet")]).column("note_idx").to_pylist())
    assert int(dfx["missing_note"]["note"]) not in ids
    assert not (d / "images" / dfx["missing_image"]).exists()
    assert len(info["info"]["diffuse_users"]) == 2


# -------------------------------------------------------------------------------------- MicroLens format
def test_microlens_release_layout_reads_with_plain_csv(microlens):
    paths, d = microlens
    pre = sample.MICROLENS_PREFIX
    assert sorted(p.name for p in d.iterdir()) == [f"{pre}_covers", f"{pre}_pairs.csv", f"{pre}_pairs.tsv",
                                                    f"{pre}_title_en.csv", f"{pre}_videos"]
    tsv = (d / f"{pre}_pairs.tsv").read_text().splitlines()
    assert len(tsv) == N_USERS
    seqs = {}
    for line in tsv:
        uid, items = line.split("\t")
        assert uid.isdigit() and all(t.isdigit() for t in items.split())
        seqs[uid] = items.split()
        assert 10 <= len(seqs[uid]) <= 40
    with (d / f"{pre}_pairs.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["user", "item", "timestamp"]
    ts = [int(r["timestamp"]) for r in rows]
    assert ts != sorted(ts)
    by_user: dict[str, list[tuple[int, str]]] = {}
    for r in rows:
        by_user.setdefault(r["user"], []).append((int(r["timestamp"]), r["item"]))
    assert {u: [i for _, i in sorted(v)] for u, v in by_user.items()} == seqs  # the two files agree
    titles = {}
    for line in (d / f"{pre}_title_en.csv").read_text().splitlines():
        iid, _, title = line.partition(",")  # the first comma only
        titles[iid] = title
    assert any("," in t for t in titles.values())
    assert "" in titles.values()
    assert set(titles) == {i for s in seqs.values() for i in s}
    covers = sorted((d / f"{pre}_covers").glob("*.jpg"))
    videos = sorted((d / f"{pre}_videos").glob("*.mp4"))
    assert len(videos) == len(titles) and len(covers) == len(titles) - 1  # one cover is missing on purpose
    with Image.open(covers[0]) as im:
        assert im.format == "JPEG"


def _cuts(frames: np.ndarray) -> int:
    d = np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))
    return int((d > max(6.0, 5 * float(np.median(d)))).sum())


def test_microlens_video_has_duration_audio_shots_and_title(microlens):
    paths, d = microlens
    pre = sample.MICROLENS_PREFIX
    world = sample._World("microlens", SEED, N_USERS)
    motion = {str(it.item_id): it.style.motion for it in world.items}
    videos = sorted((d / f"{pre}_videos").glob("*.mp4"))
    moving = [v for v in videos if motion[v.stem] != "static"][:1]
    still = [v for v in videos if motion[v.stem] == "static"][:1]
    for v in moving + still:
        info = media.probe(v)
        assert 8.0 <= info.duration_s <= 30.0
        assert (info.width, info.height) == sample.VIDEO_SIZE and info.fps == sample.VIDEO_FPS
        frames = media.read_frames(v)
        assert abs(len(frames) - info.duration_s * info.fps) <= 1
        assert _cuts(frames) >= 2  # several shots with hard cuts
        a = media.read_audio(v, rate=8000)
        assert info.has_audio and abs(len(a) / 8000 - info.duration_s) < 0.3
        assert float(np.sqrt((a ** 2).mean())) > 0.02
        # inside the first shot the camera moves (slow / dynamic footage) or stays (static): consecutive
        # frames differ by far less than at a cut, and clearly more when the camera moves
        first = np.abs(np.diff(frames[:8].astype(np.float32), axis=0)).mean()
        assert (0.4 < first < 6.0) if v in moving else (first < 0.4)
        # the title box is drawn over the first shot: a dark translucent band in the lower half
        lower = frames[0, int(0.62 * info.height):int(0.8 * info.height)].astype(np.float32)
        assert lower.std() > 10


# ----------------------------------------------------------------------------------------- ground truth
@pytest.mark.parametrize("which", ["qilin", "microlens"])
def test_ground_truth_rows(which, qilin, microlens):
    paths, _ = qilin if which == "qilin" else microlens
    gts = read_jsonl(paths.ground_truth(which), GroundTruth)
    assert len(gts) == N_USERS and len({g.user_id for g in gts}) == N_USERS
    for g in gts:
        assert g.dataset == which
        assert 1 <= len(g.topics) <= 3 and set(g.topics) <= set(TOPIC_IDS)
        assert abs(sum(g.topics.values()) - 1) < 1e-6 and all(w > 0 for w in g.topics.values())
        # the fine-grained interests, each under one of the coarse topics, their weights adding up per topic
        assert 1 <= len(g.interests) <= 3 and set(g.interests) <= set(sample_vocab.BY_NAME)
        per_topic: dict[str, float] = {}
        for name, w in g.interests.items():
            per_topic[sample_vocab.BY_NAME[name].topic] = per_topic.get(sample_vocab.BY_NAME[name].topic, 0) + w
        assert set(per_topic) == set(g.topics)
        assert all(abs(per_topic[t] - g.topics[t]) < 2e-3 for t in g.topics)
        assert g.tone in TONES and g.narrative in NARRATIVES and g.palette in PALETTES
        assert g.lighting in LIGHTINGS and g.motion in MOTIONS


def test_ground_truth_shapes_the_history(qilin):
    """Focused users' texts carry their interests' phrasings or details; their images carry their lighting."""
    from nextads_lib.datasets import iter_qilin_users
    from nextads_lib.director import lighting_of

    paths, d = qilin
    gts = {g.user_id: g for g in read_jsonl(paths.ground_truth("qilin"), GroundTruth)}
    diffuse = set(sample.sample_info("qilin", paths)["info"]["diffuse_users"])
    kw_rates, light_ok, n = [], 0, 0
    for u in iter_qilin_users(d):
        if u.user_id in diffuse:
            continue
        g = gts[u.user_id]
        words = [w for name in g.interests for w in (*sample_vocab.BY_NAME[name].phrasings,
                                                          *sample_vocab.BY_NAME[name].details)]
        kw_rates.append(np.mean([any(w in f"{it.title} {it.text}".lower() for w in words) for it in u.items]))
        pix = [np.asarray(Image.open(p).convert("RGB").resize((24, 32))).reshape(-1, 3)
               for it in u.items for p in it.image_paths[:1] if Path(p).is_file()]
        light_ok += lighting_of(np.concatenate(pix).astype(np.float64)) == g.lighting
        n += 1
    assert n == N_USERS - 2
    assert np.mean(kw_rates) >= 0.7
    assert light_ok >= n - 1


# ------------------------------------------------------------------------------- caching and atomicity
def test_second_call_returns_the_cached_sample(qilin, monkeypatch):
    paths, d = qilin
    before = tree_digest(d)

    def boom(*a, **k):
        raise AssertionError("regenerated although the marker matches")

    monkeypatch.setattr(sample, "_generate_qilin", boom)
    assert sample.ensure_sample("qilin", paths, seed=SEED, n_users=N_USERS) == d
    assert tree_digest(d) == before


def test_crash_leaves_no_half_sample_and_keeps_the_old_one(qilin, monkeypatch):
    paths, d = qilin
    before = tree_digest(d)

    def crash(out, *a, **k):
        (out / "notes").mkdir(parents=True)
        (out / "notes" / "train-00000-of-00001.parquet").write_bytes(b"half")
        raise RuntimeError("killed mid-generation")

    monkeypatch.setattr(sample, "_generate_qilin", crash)
    with pytest.raises(RuntimeError):
        sample.ensure_sample("qilin", paths, seed=SEED + 1, n_users=N_USERS)
    assert tree_digest(d) == before  # the finished sample is untouched
    assert not list(d.parent.glob(".tmp-qilin-*"))
    assert sample.sample_info("qilin", paths)["key"]["seed"] == SEED


# ---------------------------------------------------------------------------------------- determinism
def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    _, a = make_sample(tmp_path / "a", "qilin", seed=3, n_users=3, workers=1)
    _, b = make_sample(tmp_path / "b", "qilin", seed=3, n_users=3, workers=2)  # images drawn in 2 processes
    _, c = make_sample(tmp_path / "c", "qilin", seed=4, n_users=3, workers=1)
    da, db, dc = tree_digest(a), tree_digest(b), tree_digest(c)
    assert da == db
    assert any(k.endswith(".parquet") for k in da)
    assert da != dc
    assert (tmp_path / "a/raw/sample/qilin_ground_truth.jsonl").read_bytes() == \
        (tmp_path / "b/raw/sample/qilin_ground_truth.jsonl").read_bytes()


def test_microlens_mp4_bytes_are_deterministic(tmp_path, microlens):
    """Re-render two items of the module's sample from the same plan: the mp4 and jpg bytes are identical."""
    paths, d = microlens
    world = sample._World("microlens", SEED, N_USERS)
    pre = sample.MICROLENS_PREFIX
    for it in world.users[0].items[:2]:
        v, c = tmp_path / f"{it.item_id}.mp4", tmp_path / f"{it.item_id}.jpg"
        sample.render_video(it, v, c, SEED)
        assert v.read_bytes() == (d / f"{pre}_videos" / f"{it.item_id}.mp4").read_bytes()
        cover = d / f"{pre}_covers" / f"{it.item_id}.jpg"
        if cover.exists():
            assert c.read_bytes() == cover.read_bytes()


def test_bad_arguments():
    with pytest.raises(ValueError):
        sample.ensure_sample("kuairec", StudyPaths(Path("/nonexistent")))


# ------------------------------------------------------------------------------ the sample's own words
def _imports(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved inside nextads_lib)."""
    pkg = path.relative_to(ROOT).with_suffix("").parts[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = list(pkg[: len(pkg) - node.level + 1]) if node.level else []
            mod = ".".join([*base, *(node.module.split(".") if node.module else [])])
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return out


ROOT = Path(__file__).resolve().parents[1]


def test_only_the_sample_generator_reads_the_sample_vocabulary():
    """No Director, judge, benchmark or any other module imports the vocabulary the sample is written with
    (parsed imports, lazy ones inside functions included); the sample does not write from the taxonomy."""
    readers = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "nextads_lib").rglob("*.py")
                     if "nextads_lib.sample_vocab" in _imports(p))
    assert readers == ["nextads_lib/sample.py"]
    assert "nextads_lib.topics.TOPICS" not in _imports(ROOT / "nextads_lib" / "sample.py")
    assert "nextads_lib.topics.topic_text" not in _imports(ROOT / "nextads_lib" / "sample.py")
    assert len(sample_vocab.INTERESTS) >= 80 and len(set(sample_vocab.INTEREST_IDS)) == len(sample_vocab.INTERESTS)
    assert all(len(i.phrasings) >= 3 and len(i.details) >= 5 for i in sample_vocab.INTERESTS)
