"""The benchmark's selection rule on users whose topic distributions are set by hand (the embedder is replaced
by a one-hot tagger: an item titled ``coffee`` is all coffee), so every statistic has a value computed here:

- the criterion (length, concentration, consistency, score) against the paper-section-4.2 formulas by hand;
- "users passing the thresholds rank first": a user below a threshold with a HIGHER score than a passing
  user still ranks below it (ranking by score alone would pick the other user);
- ties by user id, the fill-up note, the products of a selected user, the pair ids and the stats table.
"""

from __future__ import annotations

import numpy as np
import pytest

from nextads_lib import bench
from nextads_lib.config import DEFAULT_PRODUCTS_DIR, StudyPaths
from nextads_lib.products import load_library
from nextads_lib.schemas import HistoryItem, UserHistory
from nextads_lib.topics import TOPIC_IDS

K = len(TOPIC_IDS)  # 16


def onehot(topic: str) -> np.ndarray:
    v = np.zeros(K)
    v[TOPIC_IDS.index(topic)] = 1.0
    return v


@pytest.fixture
def one_hot_tagger(monkeypatch):
    """The embedder replaced: an item is tagged by its title (a topic id), every topic-product similarity is 0
    (no model is loaded; bench's own caching runs). Returns the list of embedder calls."""
    from nextads_lib import embed  # noqa: PLC0415

    calls: list[str] = []

    def dist(texts, temperature):
        calls.append("tags")
        return np.array([onehot(t) for t in texts])

    def sim(a, b):
        calls.append("sim")
        return np.zeros((len(a), len(b)))

    monkeypatch.setattr(embed, "topic_distribution", dist)
    monkeypatch.setattr(embed, "similarity", sim)
    return calls


@pytest.fixture(scope="module")
def library():
    return load_library(DEFAULT_PRODUCTS_DIR)


def user(uid: str, topics: list[str]) -> UserHistory:
    return UserHistory(dataset="qilin", user_id=uid,
                       items=[HistoryItem(item_id=f"{uid}_{i}", title=t) for i, t in enumerate(topics)])


# the two users of the ranking rule, statistics by hand (K = 16, top-3, min_items 8):
# "short_strong": 6 coffee items: length 6/8 = 0.75, concentration 1, consistency 1, score 0.75; fails min_items.
SHORT_STRONG = ["coffee"] * 6
# "passing_weak": 10 items; mean m = coffee .3, gaming .2, music .2, pets/travel/food .1 -> top3 = .7,
# concentration (.7 - 3/16) / (1 - 3/16) = .5125 / .8125 = 0.630769; halves h1 = coffee .4, gaming/music/pets .2,
# h2 = coffee/gaming/music/travel/food .2 -> sum min = .2 + .2 + .2 = 0.6; score 0.630769 * 0.6 = 0.378462.
PASSING_WEAK = ["coffee", "coffee", "gaming", "music", "pets", "coffee", "gaming", "music", "travel", "food"]


def test_criterion_matches_the_formulas_by_hand():
    th = bench.Thresholds()
    c = bench.user_criterion(np.array([onehot(t) for t in PASSING_WEAK]), th)
    assert c["length"] == 1.0
    assert c["concentration"] == pytest.approx(0.630769, abs=1e-6)
    assert c["consistency"] == pytest.approx(0.6, abs=1e-6)
    assert c["score"] == pytest.approx(0.378462, abs=1e-6)
    assert c["passes"] is True and c["n_tagged"] == 10
    assert c["top"] == ["coffee", "gaming", "music"]
    s = bench.user_criterion(np.array([onehot(t) for t in SHORT_STRONG]), th)
    assert (s["length"], s["concentration"], s["consistency"], s["score"], s["passes"]) == (0.75, 1.0, 1.0, 0.75,
                                                                                            False)
    # a uniform history: concentration 0; one item: no halves, consistency 0; no item: all zero
    u = bench.user_criterion(np.full((8, K), 1 / K), th)
    assert u["concentration"] == 0.0 and u["consistency"] == pytest.approx(1.0) and not u["passes"]
    one = bench.user_criterion(np.array([onehot("pets")]), th)
    assert one["consistency"] == 0.0 and one["length"] == 0.125 and one["score"] == 0.0
    none = bench.user_criterion(np.zeros((0, K)), th)
    assert none["score"] == 0.0 and not none["passes"] and none["n_tagged"] == 0
    assert none["concentration"] == 0.0 and none["consistency"] == 0.0
    assert c["mean"][TOPIC_IDS.index("coffee")] == 0.3 and c["mean"][TOPIC_IDS.index("pets")] == 0.1
    # two identical items already have two halves
    two = bench.user_criterion(np.array([onehot("pets"), onehot("pets")]), th)
    assert two["consistency"] == 1.0 and two["concentration"] == 1.0 and two["length"] == 0.25
    # the documented clip to [0, 1] (rows that are not distributions)
    big = bench.user_criterion(2 * np.array([onehot("pets")] * 8), th)
    assert big["concentration"] == 1.0 and big["consistency"] == 1.0
    assert bench.user_criterion(np.zeros((8, K)), th)["concentration"] == 0.0


def test_each_threshold_is_inclusive_and_each_can_fail_a_user():
    # exactly representable: items coffee, coffee | coffee, pets -> concentration 1.0, consistency 0.5
    exact = np.array([onehot(t) for t in ["coffee", "coffee", "coffee", "pets"]])
    th = bench.Thresholds(min_items=4, min_concentration=1.0, min_consistency=0.5)
    c = bench.user_criterion(exact, th)
    assert (c["concentration"], c["consistency"], c["passes"]) == (1.0, 0.5, True)
    d = np.array([onehot(t) for t in PASSING_WEAK])
    assert bench.user_criterion(d, bench.Thresholds(min_items=10))["passes"]
    assert not bench.user_criterion(d, bench.Thresholds(min_items=11))["passes"]
    assert bench.user_criterion(d, bench.Thresholds(min_consistency=0.6))["passes"]
    assert not bench.user_criterion(d, bench.Thresholds(min_consistency=0.61))["passes"]
    assert bench.user_criterion(d, bench.Thresholds(min_concentration=0.63))["passes"]
    assert not bench.user_criterion(d, bench.Thresholds(min_concentration=0.64))["passes"]
    # min_items sets the length term: 10 items of 20 asked for -> 0.5
    assert bench.user_criterion(d, bench.Thresholds(min_items=20))["length"] == 0.5


def test_passing_users_rank_first_even_below_a_failing_users_score(tmp_path, library, one_hot_tagger):
    users = [user("a_short_strong", SHORT_STRONG), user("b_passing_weak", PASSING_WEAK)]
    paths = StudyPaths(tmp_path / "data")
    rep = bench.build_bench("pcg", users, library, paths, n_users=1, products_per_user=2)
    stats = {s.user_id: s for s in bench.read_user_stats(paths, "pcg")}
    strong, weak = stats["a_short_strong"], stats["b_passing_weak"]
    assert strong.score == pytest.approx(0.75) and weak.score == pytest.approx(0.378462, abs=1e-6)
    assert strong.score > weak.score and weak.passes and not strong.passes
    # the rule: passing first. By score alone "a_short_strong" would be rank 1 and selected.
    assert (weak.rank, weak.selected, weak.status) == (1, True, "selected")
    assert (strong.rank, strong.selected, strong.status) == (2, False, "not selected")
    assert rep.n_users_passing == 1 and rep.n_users_selected == 1 and rep.n_users_available == 2
    assert {p.user_id for p in bench.read_pairs(paths, "pcg")} == {"b_passing_weak"}
    assert "selection cut: score >= 0.3785 (the last selected user's score)" in rep.notes
    assert not any("host videos" in n for n in rep.notes)  # PCG has no hosts to leave unchecked


def test_fill_up_takes_failing_users_by_score_then_id(tmp_path, library, one_hot_tagger):
    users = [user("d_weak", ["coffee"] * 2),                    # length .25, score .25
             user("c_short", ["pets"] * 4),                     # length .5, score .5
             user("b_short_twin", ["music"] * 4),               # same score as c_short: the id breaks the tie
             user("e_pass", PASSING_WEAK)]
    paths = StudyPaths(tmp_path / "data")
    rep = bench.build_bench("pcg", users, library, paths, n_users=3, products_per_user=1)
    order = [(s.user_id, s.rank, s.selected) for s in bench.read_user_stats(paths, "pcg")]
    assert order == [("e_pass", 1, True), ("b_short_twin", 2, True), ("c_short", 3, True), ("d_weak", 4, False)]
    note = next(n for n in rep.notes if "pass the thresholds" in n)
    assert note.startswith("only 1 of 4 users pass the thresholds") and "2 best-ranked users below them" in note
    assert rep.n_users_selected == 3
    pairs = bench.read_pairs(paths, "pcg")
    assert [p.pair_id.split("__")[0] for p in pairs] == ["e_pass", "b_short_twin", "c_short"]
    assert all(p.rank == 1 for p in pairs)


def test_passing_users_are_ordered_by_score(tmp_path, library, one_hot_tagger):
    users = [user("a_weak", PASSING_WEAK), user("z_steady", ["gaming"] * 10)]
    paths = StudyPaths(tmp_path / "data")
    bench.build_bench("pcg", users, library, paths, n_users=2, products_per_user=3)
    stats = bench.read_user_stats(paths, "pcg")
    assert [(s.user_id, s.rank, s.passes) for s in stats] == [("z_steady", 1, True), ("a_weak", 2, True)]
    assert stats[0].top_topics.startswith("gaming:1.00")
    pairs = bench.read_pairs(paths, "pcg")
    assert [p.rank for p in pairs] == [1, 2, 3, 1, 2, 3]
    assert len({p.pair_id for p in pairs}) == 6 and all(p.pair_id == f"{p.user_id}__{p.product_id}" for p in pairs)
    # exactly as many pass as asked for, all selected: neither shortfall note
    rep = bench.read_report(paths, "pcg")
    assert not any("pass the thresholds" in n or "asked for" in n for n in rep.notes), rep.notes
    assert (paths.cache / "bench_tags").is_dir() and (paths.cache / "bench_products").is_dir()


def test_pci_hosts_below_the_cut_are_not_checked_and_paths_are_normalised(tmp_path, library, one_hot_tagger):
    img = tmp_path / "img.png"
    img.write_bytes(b"png")
    ok = [pci_user(tmp_path, f"u{i}", ["coffee"] * 9, video(tmp_path / f"v{i}.mp4")) for i in range(4)]
    odd = HistoryItem(item_id="odd", title="coffee", image_paths=[str(tmp_path / "sub" / ".." / "img.png")])
    ok[0] = ok[0].model_copy(update={"items": [odd, *ok[0].items]})
    paths = StudyPaths(tmp_path / "data")
    rep = bench.build_bench("pci", ok, library, paths, n_users=1, products_per_user=1)
    assert ("host videos were checked walking down the ranking; the 3 users below the last selected one were not "
            "checked (counted as available)") in rep.notes
    assert rep.n_users_available == 4 and (paths.cache / "bench_video").is_dir()
    u0 = next(u for u in bench.read_users(paths, "pci") if u.user_id == "u0")
    assert u0.items[0].image_paths == [img.as_posix()]  # written through display_path: '..' resolved


# --------------------------------------------------------------------------- the build's records (fast)
def video(path, n: int = 8) -> str:
    from nextads_lib.media import write_video  # noqa: PLC0415

    frames = [np.full((96, 64, 3), (200, 80, 40), np.uint8) for _ in range(n)]
    write_video(path, frames, fps=8)
    return str(path)


def pci_user(tmp_path, uid: str, topics: list[str], host: str | None) -> UserHistory:
    h = user(uid, topics)
    items = [*h.items, HistoryItem(item_id=f"{uid}_host", title="Host clip", video_path=host)]
    return UserHistory(dataset="microlens", user_id=uid, items=items)


def test_pci_build_sets_the_host_aside_and_records_every_bad_user(tmp_path, library, one_hot_tagger):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    # every skip is followed by more users; the bad host ranks first (same score, its id sorts first)
    users = [pci_user(tmp_path, "c_novideo", ["pets"] * 9, None),
             UserHistory(dataset="microlens", user_id="d_only_host",
                         items=[HistoryItem(item_id="h", title="Host", video_path=video(tmp_path / "d.mp4"))]),
             UserHistory(dataset="microlens", user_id="e_empty", items=[]),
             pci_user(tmp_path, "a_ok", ["coffee"] * 9, video(tmp_path / "a.mp4")),
             pci_user(tmp_path, "a_ok", ["music"] * 9, video(tmp_path / "a2.mp4")),
             pci_user(tmp_path, "a0_corrupt", ["coffee"] * 9, str(bad)),
             UserHistory(dataset="microlens", user_id="e_empty", items=[])]
    paths = StudyPaths(tmp_path / "data")
    rep = bench.build_bench("pci", users, library, paths, n_users=3, products_per_user=2)
    reasons: dict = {}
    for s in rep.skipped:  # the first record of each (user, item)
        reasons.setdefault((s["user"], s.get("item")), s["reason"])
    assert reasons[("c_novideo", None)] == "host item c_novideo_host: no video_path"
    assert reasons[("d_only_host", None)] == "only the host video h: no history besides it"
    assert reasons[("e_empty", None)] == "empty history"
    assert reasons[("a_ok", None)] == "duplicate user id: only its first history is used"
    assert reasons[("a0_corrupt", "a0_corrupt_host")].startswith("host video ") and "undecodable" in reasons[
        ("a0_corrupt", "a0_corrupt_host")]
    assert all(s["level"] == "user" for s in rep.skipped)
    # tagged and ranked: a0_corrupt then a_ok (same score, by id); a0_corrupt is skipped at the host check
    assert rep.n_users_available == 1 and rep.n_users_passing == 1 and rep.n_users_selected == 1
    assert "3 users asked for, only 1 usable: the benchmark is smaller" in rep.notes
    assert ("history length of the available users (PCI: without the host): mean 9.0, median 9.0, min 9, max 9"
            in rep.notes)
    assert rep.thresholds == {"min_items": 8.0, "min_concentration": 0.5, "min_consistency": 0.4}
    assert rep.task == "pci" and rep.source == "embedded sample"
    pairs = bench.read_pairs(paths, "pci")
    assert [p.pair_id.split("__")[0] for p in pairs] == ["a_ok", "a_ok"]
    assert all(p.host_item_id == "a_ok_host" and p.host_title == "Host clip" and p.host_video.endswith("a.mp4")
               for p in pairs)
    hist = bench.read_users(paths, "pci")
    assert [u.user_id for u in hist] == ["a_ok"] and len(hist[0].items) == 9  # the host is not history
    stats = {s.user_id: s for s in bench.read_user_stats(paths, "pci")}
    assert stats["a_ok"].n_items == 9 and stats["a_ok"].selected
    assert stats["a0_corrupt"].status.startswith("skipped: host video") and stats["a0_corrupt"].rank == 1
    assert not stats["a0_corrupt"].selected and stats["a_ok"].rank == 2
    for uid in ("c_novideo", "d_only_host", "e_empty"):
        s = stats[uid]
        assert s.rank == 0 and s.status.startswith("skipped: ") and not s.passes and not s.selected
        assert (s.n_items, s.n_tagged, s.length, s.concentration, s.consistency, s.score, s.top_topics) == (
            0, 0, 0.0, 0.0, 0.0, 0.0, "")
    # the duplicate is recorded in the report, not as a second row of the stats table
    ids = [r.user_id for r in bench.read_user_stats(paths, "pci")]
    assert ids.count("a_ok") == 1 and ids.count("e_empty") == 1
    assert stats["e_empty"].status == "skipped: empty history"


def test_untaggable_items_and_missing_media_are_recorded(tmp_path, library, one_hot_tagger):
    img = tmp_path / "img.png"
    img.write_bytes(b"")
    coffee = user("steady", ["coffee"] * 10)
    items = [*coffee.items, HistoryItem(item_id="blank"),
             HistoryItem(item_id="pics", title="coffee", image_paths=[str(img), str(tmp_path / "gone.png")])]
    users = [UserHistory(dataset="qilin", user_id="blank", items=[HistoryItem(item_id=f"b{i}") for i in range(3)]),
             UserHistory(dataset="qilin", user_id="steady", items=items)]
    paths = StudyPaths(tmp_path / "data")
    rep = bench.build_bench("pcg", users, library, paths, n_users=1, products_per_user=1, source="unit test")
    assert rep.source == "unit test"
    user_rec = [s for s in rep.skipped if s["level"] == "user"]
    assert user_rec == [{"level": "user", "user": "blank",
                         "reason": "all 3 history items have no title or text (missing from the notes/titles table?)"}]
    items_rec = [(s["item"], s["field"], s["reason"].split(" ")[-7:]) for s in rep.skipped if s["level"] == "item"]
    assert [(i, f) for i, f, _ in items_rec] == [("pics", "image_paths"), ("pics", "image_paths")]
    assert "empty (item kept, its text still counts)" in rep.skipped[-2]["reason"]
    assert "not found (item kept, its text still counts)" in rep.skipped[-1]["reason"]
    stats = {s.user_id: s for s in bench.read_user_stats(paths, "pcg")}
    assert (stats["steady"].n_items, stats["steady"].n_tagged) == (12, 11)
    assert stats["blank"].rank == 0 and stats["blank"].status.startswith("skipped: all 3")
    assert [it.item_id for it in bench.read_users(paths, "pcg")[0].items][-2:] == ["blank", "pics"]


def test_max_candidates_reads_only_the_first_users(tmp_path, library, one_hot_tagger):
    users = [user(f"u{i}", ["coffee"] * 9) for i in range(4)]
    paths = StudyPaths(tmp_path / "data")
    rep = bench.build_bench("pcg", users, library, paths, n_users=4, products_per_user=1, max_candidates=2)
    assert rep.n_users_available == 2
    assert "max_candidates=2: only the first 2 users of the source were read" in rep.notes
    assert [s.user_id for s in bench.read_user_stats(paths, "pcg")] == ["u0", "u1"]


def test_bad_build_arguments_name_the_problem(tmp_path, library, one_hot_tagger):
    paths = StudyPaths(tmp_path / "data")
    with pytest.raises(bench.BenchError, match=r"task 'xyz' is not one of \['pcg', 'pci'\]"):
        bench.build_bench("xyz", [], library, paths)  # type: ignore[arg-type]
    with pytest.raises(bench.BenchError, match=r"n_users \(0\) and products_per_user \(1\) must be >= 1"):
        bench.build_bench("pcg", [], library, paths, n_users=0, products_per_user=1)
    with pytest.raises(bench.BenchError, match=r"n_users \(1\) and products_per_user \(0\) must be >= 1"):
        bench.build_bench("pcg", [], library, paths, n_users=1, products_per_user=0)
    n = len(library.products)
    with pytest.raises(bench.BenchError, match=rf"the library has {n} valid products; {n + 1} per user asked for"):
        bench.build_bench("pcg", [], library, paths, products_per_user=n + 1)
    with pytest.raises(bench.BenchError, match=r"pcg: no usable user in embedded sample \(1 skipped: x: empty history\)"):
        bench.build_bench("pcg", [UserHistory(dataset="qilin", user_id="x", items=[])], library, paths)
    with pytest.raises(bench.BenchError) as e:  # at most five named
        bench.build_bench("pcg", [UserHistory(dataset="qilin", user_id=f"e{i}", items=[]) for i in range(6)],
                          library, paths)
    assert str(e.value).endswith("(6 skipped: e0: empty history; e1: empty history; e2: empty history; "
                                 "e3: empty history; e4: empty history)")
    assert bench.build_bench("pcg", [user("ok", ["coffee"] * 8)], library, paths, n_users=1,
                             products_per_user=n).n_users_selected == 1


# ----------------------------------------------------------------------------- compatibility by hand
def cos_column(**by_topic: float) -> np.ndarray:
    col = np.zeros(K)
    for t, v in by_topic.items():
        col[TOPIC_IDS.index(t)] = v
    return col


def mean_of(**by_topic: float) -> np.ndarray:
    return cos_column(**by_topic)


def test_semantic_fit_and_item_text_by_hand():
    assert bench.semantic_fit(np.array([-0.2, 0.05, 0.3, 0.55, 0.8])).tolist() == pytest.approx([0, 0, 0.5, 1, 1])
    assert float(bench.semantic_fit(0.175)) == pytest.approx(0.25)
    assert bench.item_text(HistoryItem(item_id="i", title=" Latte  art ", text="at the\n cafe")) == "Latte art. at the cafe"
    assert bench.item_text(HistoryItem(item_id="i", title="Only  title")) == "Only title"
    assert bench.item_text(HistoryItem(item_id="i", text="only text")) == "only text"
    assert bench.item_text(HistoryItem(item_id="i")) == ""
    assert bench.item_text(HistoryItem(item_id="i", title="t", text="x " * 400)) == ("t. " + "x " * 200)[:300]
    assert len(bench.item_text(HistoryItem(item_id="i", title="t", text="x " * 400))) == 300


def test_compatibility_and_matched_topic_by_hand(library):
    """User mass coffee .5, food .3, travel .2 (weights = mass); sem = clip((cos - .05) / .5, 0, 1);
    compatibility = .6 * declared + .4 * semantic (see the module docstring), all worked out here."""
    base = library.products[0]
    coffee_p = base.model_copy(update={"id": "p_coffee", "topics": ["coffee"]})
    food_p = base.model_copy(update={"id": "p_food", "topics": ["food"]})
    travel_p = base.model_copy(update={"id": "p_travel", "topics": ["travel"]})
    m = mean_of(coffee=0.5, food=0.3, travel=0.2, gaming=0.0)
    # coffee product: declared .5; sem coffee 1, food .5, travel 0 -> semantic .65; .3 + .26 = .56
    c1 = cos_column(coffee=0.55, food=0.30, travel=0.05, gaming=0.9)
    assert bench.compatibility(m, coffee_p, c1) == (pytest.approx(0.56), "coffee")
    # food product: declared .3; sem coffee 0, food .5, travel 1 -> semantic .35; .18 + .14 = .32;
    # contributions coffee 0, food .3 * (.6 + .2) = .24, travel .2 * .4 = .08 -> food
    c2 = cos_column(coffee=0.05, food=0.30, travel=0.8)
    assert bench.compatibility(m, food_p, c2) == (pytest.approx(0.32), "food")
    # travel product with its own topic fully similar: .6 * .2 + .4 * .2 = .2, matched travel
    c3 = cos_column(travel=0.55)
    assert bench.compatibility(m, travel_p, c3) == (pytest.approx(0.2), "travel")
    # the mean need not sum to one: weights are normalised over the top three
    assert bench.compatibility(m / 2, coffee_p, c1) == (pytest.approx(0.56), "coffee")
    # a topic outside the user's top three counts for nothing, however similar
    assert bench.compatibility(m, base.model_copy(update={"topics": ["gaming"]}), cos_column(gaming=1.0))[0] == 0.0
    # no mass at all: the first three topic ids weigh a third each
    first = sorted(TOPIC_IDS)[0]
    zero_p = base.model_copy(update={"topics": [first]})
    assert bench.compatibility(np.zeros(K), zero_p, np.zeros(K)) == (pytest.approx(0.2), first)
    # matched-topic tie: pets .6 * (.6 + 0) = .36 and coffee .4 * (.6 + .4 * .75) = .36 -> the heavier, pets
    tie = mean_of(pets=0.6, coffee=0.4)
    both = base.model_copy(update={"topics": ["pets", "coffee"]})
    assert bench.compatibility(tie, both, cos_column(coffee=0.425)) == (pytest.approx(0.72), "pets")
    # the semantic term decides the matched topic when nothing is declared: coffee .5 * .4 * .5 = .1 < food
    # .3 * .4 * 1 = .12; compatibility .4 * (.25 + .3) = .22
    none_declared = base.model_copy(update={"topics": ["pets"]})
    assert bench.compatibility(m, none_declared, cos_column(coffee=0.3, food=0.55)) == (pytest.approx(0.22), "food")
    # rounded to 4 decimals: sem(.3123) = .5246, .4 * .5 * .5246 = .10492 -> .1049
    assert bench.compatibility(m, none_declared, cos_column(coffee=0.3123))[0] == 0.1049
    # integer input is read as numbers
    assert bench.compatibility(np.array([0] * (K - 1) + [2]), base.model_copy(update={"topics": [TOPIC_IDS[-1]]}),
                               np.zeros(K, int)) == (pytest.approx(0.6), TOPIC_IDS[-1])


def test_rank_products_by_compatibility_then_id(library):
    base = library.products[0]
    ps = [base.model_copy(update={"id": pid, "topics": t}) for pid, t in
          [("b", ["coffee"]), ("a", ["coffee"]), ("c", ["food"]), ("d", ["pets"])]]
    m = mean_of(coffee=0.7, food=0.3)
    cos = np.zeros((K, len(ps)))
    got = bench.rank_products(m, ps, cos, 3)
    assert [(p.id, s, t) for p, s, t in got] == [("a", pytest.approx(0.42), "coffee"),
                                                 ("b", pytest.approx(0.42), "coffee"),
                                                 ("c", pytest.approx(0.18), "food")]
    assert len(bench.rank_products(m, ps, cos, 10)) == 4


def test_defaults_thresholds_object_progress_and_cache(tmp_path, library, one_hot_tagger, capsys):
    users = [user(f"u{i:02d}", ["coffee"] * 8) for i in range(52)]
    paths = StudyPaths(tmp_path / "data")
    rep = bench.build_bench("pcg", users, library, paths)  # defaults: 50 users, 5 products each, no progress bar
    assert rep.n_users_selected == 50 and len(bench.read_pairs(paths, "pcg")) == 250
    assert capsys.readouterr().err == ""
    n_calls = len(one_hot_tagger)
    # the same inputs again (a Thresholds object this time, with a progress bar): nothing is embedded again
    rep2 = bench.build_bench("pcg", users[:3], library, paths, n_users=2, products_per_user=1,
                             thresholds=bench.Thresholds(min_items=9), progress=True)
    assert len(one_hot_tagger) == n_calls
    assert "tagging users" in capsys.readouterr().err
    assert rep2.n_users_passing == 0 and rep2.thresholds["min_items"] == 9.0
    assert [s.user_id for s in bench.read_user_stats(paths, "pcg")] == ["u00", "u01", "u02"]


def test_loader_records_merged_and_named_in_the_no_user_error(tmp_path, library, one_hot_tagger):
    from nextads_lib.datasets import LoadReport  # noqa: PLC0415

    lr = LoadReport()
    lr.notes.append("qilin: 1 shard")
    lr.skip("no clicked note of this user is in the notes table", user="ghost")
    for i in range(bench.MAX_ITEM_RECORDS + 5):
        lr.skip("clicked note is missing from the notes table", user="steady", item=f"n{i}")
    paths = StudyPaths(tmp_path / "data")
    rep = bench.build_bench("pcg", [user("steady", ["coffee"] * 9)], library, paths, n_users=1,
                            products_per_user=1, loader_report=lr)
    users = [s for s in rep.skipped if s["level"] == "user"]
    items = [s for s in rep.skipped if s["level"] == "item"]
    assert users == [{"level": "user", "user": "ghost",
                      "reason": "loader: no clicked note of this user is in the notes table"}]
    assert len(items) == bench.MAX_ITEM_RECORDS and items[0] == {
        "level": "item", "user": "steady", "item": "n0", "reason": "loader: clicked note is missing from the notes table"}
    assert rep.notes[0] == "loader: qilin: 1 shard"
    assert "loader: 105 item-level records, the first 100 are listed in skipped" in rep.notes
    lr2 = LoadReport()
    lr2.skip("unreadable row", item="row7")
    with pytest.raises(bench.BenchError, match=r"pcg: no usable user in embedded sample \(3 skipped: "
                                               r"x: empty history; y: empty history; row7: loader: unreadable row\)"):
        bench.build_bench("pcg", [UserHistory(dataset="qilin", user_id=u, items=[]) for u in ("x", "y")], library,
                          paths, loader_report=lr2)
