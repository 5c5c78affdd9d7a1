"""Video quality (nextads_lib.vbench): each VBench dimension on synthetic videos with known answers, VBench's DD
rule on constructed cases, the VBench export and results reader, the run scorer's parquet, and the optional
network path (random weights, only where its packages import)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from nextads_lib import media, vbench
from nextads_lib.config import StudyPaths
from nextads_lib.schemas import PairManifest
from nextads_lib.store import ArtifactError, Cache, read_json, write_json

H, W, FPS = 96, 160, 8.0


def texture(h: int, w: int, seed: int = 0, sigma: float = 1.5) -> np.ndarray:
    """A colourful natural-looking texture (blurred noise stretched to the full range)."""
    r = np.random.default_rng(seed)
    t = cv2.GaussianBlur((r.random((h, w, 3)) * 255).astype(np.float32), (0, 0), sigma)
    return cv2.normalize(t, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def crops(big: np.ndarray, offsets: list[tuple[int, int]]) -> list[np.ndarray]:
    return [np.ascontiguousarray(big[y:y + H, x:x + W]) for x, y in offsets]


def write(path: Path, frames: list[np.ndarray], fps: float = FPS) -> Path:
    media.write_video(path, frames, fps, crf=12)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("vq_clips")
    big = texture(H + 160, W + 320)
    rng = np.random.default_rng(1)
    n = 24
    return {
        "static": write(d / "static.mp4", crops(big, [(40, 40)] * n)),
        "pan": write(d / "pan.mp4", crops(big, [(10 + 2 * i, 40) for i in range(n)])),
        "shaky": write(d / "shaky.mp4", crops(big, [(40 + int(rng.integers(-8, 9)), 40 + int(rng.integers(-8, 9)))
                                                    for _ in range(n)])),
        "fast": write(d / "fast.mp4", crops(big, [(5 + 9 * i, 40 + 3 * i) for i in range(n)])),
    }


@pytest.fixture(scope="module")
def scores(clips) -> dict[str, vbench.VideoQuality]:
    return {k: vbench.score_video(p) for k, p in clips.items()}


# ----------------------------------------------------------------------------------- known answers
def test_static_clip_is_not_dynamic_and_has_top_motion_smoothness(scores):
    s = scores["static"]
    assert s.error is None and s.n_frames == 24 and s.fps == FPS
    assert s.dd == 0.0
    assert s.ms > 0.99  # only the codec's noise differs between an odd frame and its interpolation


def test_shaky_clip_is_less_smooth_than_a_smooth_pan(scores):
    assert scores["pan"].ms > 0.98
    assert scores["shaky"].ms < scores["pan"].ms - 0.02


def test_fast_moving_clip_is_dynamic(scores):
    assert scores["fast"].dd == 1.0
    assert scores["fast"].error is None


def test_every_value_is_in_range_and_labelled_as_a_proxy(scores):
    for s in scores.values():
        assert s.backend == "offline" and s.proxy
        for m in vbench.METRICS:
            assert 0.0 <= s.value(m) <= 1.0
            assert "proxy" in s.labels[m] and s.labels[m] != vbench.SHORT_NAMES[m]
    assert scores["pan"].labels == {"ms": "MS (proxy: DIS interp.)", "dd": "DD (proxy: DIS flow)",
                                    "aq": "AQ (proxy: image stats)", "iq": "IQ (proxy: BRISQUE)"}


def test_noise_lowers_imaging_quality(tmp_path):
    clean = texture(288, 512, seed=3)
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 25, clean.shape), 0, 255).astype(np.uint8)
    assert vbench.imaging_proxy(noisy) < vbench.imaging_proxy(clean) - 5
    # the same through the video path (frames resized to a longer side of 512 first)
    big = np.ascontiguousarray(cv2.resize(clean, (640, 360)))
    big_noisy = np.clip(big + np.random.default_rng(1).normal(0, 25, big.shape), 0, 255).astype(np.uint8)
    a = vbench.score_video(write(tmp_path / "clean.mp4", [big] * 4))
    b = vbench.score_video(write(tmp_path / "noisy.mp4", [big_noisy] * 4))
    assert b.iq < a.iq


def test_blurred_washed_out_frame_scores_lower_aesthetics_than_a_crisp_colourful_one():
    crisp = texture(288, 512, seed=4)
    washed = (cv2.GaussianBlur(crisp, (0, 0), 4).astype(np.float32) * 0.3 + 175).astype(np.uint8)
    a, b = vbench.aesthetic_proxy(crisp), vbench.aesthetic_proxy(washed)
    assert 2.0 <= b < a - 1.0 <= 8.0
    ca, cb = vbench.aesthetic_components(vbench.aesthetic_view(crisp)), vbench.aesthetic_components(
        vbench.aesthetic_view(washed))
    for k in ("colourfulness", "contrast", "sharpness", "exposure"):
        assert ca[k] > cb[k], k


def test_undecodable_missing_and_empty_videos_give_error_rows_never_zero(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    for p, msg in ((bad, "cannot be decoded"), (empty, "empty"), (tmp_path / "missing.mp4", "not found")):
        r = vbench.score_video(p)
        assert r.error and msg in r.error and p.name in r.error
        assert all(r.value(m) is None for m in vbench.METRICS)
        assert r.labels["ms"] == "MS (proxy: DIS interp.)"


def test_too_short_video_has_missing_motion_smoothness(tmp_path):
    r = vbench.score_video(write(tmp_path / "two.mp4", [texture(H, W)] * 2))
    assert r.ms is None and "at least 3 frames" in r.error
    assert r.dd is not None and r.aq is not None


# --------------------------------------------------------------------------------- protocol pieces
def test_dd_threshold_and_pair_count_follow_vbench():
    assert vbench.dd_params(256, 512, 16) == (6.0, 4)
    assert vbench.dd_params(640, 360, 90) == (6.0 * 360 / 256, 22)
    assert vbench.dd_params(96, 160, 10)[1] == 2  # round(2.5) -> 2 (Python rounds halves to even)
    assert vbench.dd_params(96, 160, 6)[1] == 2  # round(1.5) -> 2
    assert [vbench.dd_interval(f) for f in (4, 8, 12, 15, 24, 30)] == [1, 1, 2, 2, 3, 4]
    assert vbench.is_dynamic([7, 7, 5, 7], 6.0, 3)
    assert not vbench.is_dynamic([7, 7, 5, 5], 6.0, 3)
    assert not vbench.is_dynamic([6.0, 6.0, 6.0], 6.0, 1)  # strictly above the threshold
    assert vbench.is_dynamic([0.0], 6.0, 0) and not vbench.is_dynamic([], 6.0, 0)


def test_dd_count_rule_on_a_constructed_video(tmp_path):
    """16 frames at 8 fps: count_num = round(4 * 16 / 16) = 4 moving pairs needed (threshold 2.25 px)."""
    big = texture(H + 40, W + 200, seed=5)

    def video(n_moving: int) -> Path:
        offs = [(10, 20)] * (16 - n_moving) + [(10 + 10 * (k + 1), 20) for k in range(n_moving)]
        return write(tmp_path / f"moving{n_moving}.mp4", crops(big, offs))

    assert vbench.score_video(video(4)).dd == 1.0
    assert vbench.score_video(video(3)).dd == 0.0


def test_top5_mean_and_middle_sampling():
    f = np.zeros((10, 20, 2), np.float32)
    f[0, :10, 0] = 3.0  # exactly the top 5 % (10 of 200 values) move by 3 px
    f[0, :10, 1] = 4.0
    assert vbench.top5_mean(f) == pytest.approx(5.0)
    assert vbench.middle_indices(180, 4) == [22, 67, 112, 157]
    assert vbench.middle_indices(3, 8) == [0, 1, 2]


def test_ms_score_normalisation():
    a = np.full((4, 4, 3), 100, np.uint8)
    assert vbench.ms_score([a], [a]) == 1.0
    assert vbench.ms_score([a], [a + 51]) == pytest.approx((255 - 51) / 255)


def test_midpoint_of_a_pan_is_the_frame_between():
    big = texture(H + 20, W + 40, seed=6)
    f0, f1, f2 = crops(big, [(10, 10), (13, 10), (16, 10)])
    flow = np.zeros((H, W, 2), np.float32)
    flow[..., 0] = -6.0  # content moves 6 px left from f0 to f2
    mid = vbench.midpoint(f0, f2, flow)
    inner = (slice(4, -4), slice(8, -8))
    assert np.abs(mid[inner].astype(int) - f1[inner]).mean() < 1.0


# ------------------------------------------------------------------------------------------- cache
def test_score_video_is_cached_by_content(tmp_path, clips):
    cache = Cache(tmp_path / "cache")
    a = vbench.score_video(clips["pan"], cache=cache)
    entries = list((tmp_path / "cache" / "vbench").rglob("*.json"))
    assert len(entries) == 1
    # a copy elsewhere hits the same entry (keyed by bytes) and is reported under its own path
    copy = tmp_path / "copy.mp4"
    shutil.copyfile(clips["pan"], copy)
    entry = json.loads(entries[0].read_text())
    entry["ms"] = 0.123  # prove the second answer comes from the cache
    entries[0].write_text(json.dumps(entry))
    b = vbench.score_video(copy, cache=cache)
    assert b.ms == 0.123 and b.video_path.endswith("copy.mp4") and b.dd == a.dd
    # other settings are another key
    vbench.score_video(copy, cache=cache, offline=vbench.OfflineSettings(n_iq_frames=1))
    assert len(list((tmp_path / "cache" / "vbench").rglob("*.json"))) == 2


# ------------------------------------------------------------------------------------------ VBench
def vbench_results_json(path: Path, videos_dir: str) -> Path:
    """A results file in VBench's shape: {dimension: [aggregate, [{video_path, video_results}, ...]]}."""
    v = lambda n: f"{videos_dir}/{n}"  # noqa: E731
    data = {
        "motion_smoothness": [0.985, [{"video_path": v("a.mp4"), "video_results": 0.99},
                                      {"video_path": v("b.mp4"), "video_results": 0.98}]],
        "dynamic_degree": [0.5, [{"video_path": v("a.mp4"), "video_results": True},
                                 {"video_path": v("b.mp4"), "video_results": False}]],
        "aesthetic_quality": [0.55, [{"video_path": v("a.mp4"), "video_results": 0.6},
                                     {"video_path": v("b.mp4"), "video_results": 0.5}]],
        "imaging_quality": [0.65, [{"video_path": v("a.mp4"), "video_results": 70.0},
                                   {"video_path": v("b.mp4"), "video_results": 60.0}]],
    }
    path.write_text(json.dumps(data, indent=4))
    return path


def test_read_vbench_results_in_vbench_shape(tmp_path):
    res = vbench_results_json(tmp_path / "results_2026-01-01-00:00:00_eval_results.json", "/x/videos")
    rows = vbench.read_vbench_results(res, index={"a.mp4": "data/runs/pcg/r/p1/creative.mp4"})
    assert [r.video_path for r in rows] == ["data/runs/pcg/r/p1/creative.mp4", "/x/videos/b.mp4"]
    a, b = rows
    assert (a.ms, a.dd, a.aq, a.iq) == (0.99, 1.0, 0.6, 0.7)  # IQ per video is MUSIQ's 0-100: divided by 100
    assert (b.dd, b.iq) == (0.0, 0.6)
    assert a.backend == "vbench" and not a.proxy and a.labels == {"ms": "MS", "dd": "DD", "aq": "AQ", "iq": "IQ"}


def test_read_vbench_results_merges_per_dimension_files_and_names_bad_fields(tmp_path):
    f1, f2 = tmp_path / "r1_eval_results.json", tmp_path / "r2_eval_results.json"
    f1.write_text(json.dumps({"dynamic_degree": [1.0, [{"video_path": "v/a.mp4", "video_results": True}]]}))
    f2.write_text(json.dumps({"imaging_quality": [0.5, [{"video_path": "v/a.mp4", "video_results": 50}]]}))
    (r,) = vbench.read_vbench_results([f1, f2])
    assert (r.ms, r.dd, r.aq, r.iq) == (None, 1.0, None, 0.5)
    f1.write_text(json.dumps({"motion_smoothness": [0.9, [{"video_path": "v/a.mp4", "video_results": "high"}]]}))
    with pytest.raises(ArtifactError, match=r"r1_eval_results.json.*motion_smoothness.1.0.video_results"):
        vbench.read_vbench_results(f1)
    f1.write_text(json.dumps({"motion_smoothness": 0.9}))
    with pytest.raises(ArtifactError, match="motion_smoothness"):
        vbench.read_vbench_results(f1)


def test_export_for_vbench_writes_the_folder_and_script(tmp_path, clips):
    out = tmp_path / "export"
    script = vbench.export_for_vbench({"pcg__run__p1": clips["pan"], "pcg__run__p2.mp4": clips["static"]}, out)
    assert sorted(p.name for p in (out / "videos").iterdir()) == ["pcg__run__p1.mp4", "pcg__run__p2.mp4"]
    assert (out / "videos" / "pcg__run__p1.mp4").read_bytes() == clips["pan"].read_bytes()
    index = read_json(out / "index.json")
    assert set(index) == {"pcg__run__p1.mp4", "pcg__run__p2.mp4"}
    text = script.read_text()
    assert "--mode=custom_input" in text and "--videos_path videos" in text
    for dim in ("motion_smoothness", "dynamic_degree", "aesthetic_quality", "imaging_quality"):
        assert dim in text
    # a stale export is cleaned; a missing video is named
    vbench.export_for_vbench({"pcg__run__p1": clips["pan"]}, out)
    assert [p.name for p in (out / "videos").iterdir()] == ["pcg__run__p1.mp4"]
    with pytest.raises(FileNotFoundError, match="item 'x.mp4'"):
        vbench.export_for_vbench({"x": tmp_path / "nope.mp4"}, out)


# ------------------------------------------------------------------------------------- score_runs
def make_runs(root: Path, clips: dict[str, Path]) -> StudyPaths:
    """Two runs of task pcg: one with two done pairs and a failed one, one with a corrupt creative."""
    paths = StudyPaths(root)

    def pair(run: str, pid: str, status: str, video: Path | bytes | None) -> None:
        d = paths.run_dir("pcg", run) / pid
        d.mkdir(parents=True, exist_ok=True)
        system = run.split("__")[0]
        write_json(d / "manifest.json", PairManifest(
            pair_id=pid, task="pcg", run_name=run, system=system, director_backend="offline",
            producer_backend="compositor", user_id=pid.split("__")[0], product_id=pid.split("__")[1], status=status,
            stage_failed="render" if status == "failed" else None, failure="boom" if status == "failed" else None,
            seed=1))
        if isinstance(video, Path):
            shutil.copyfile(video, d / "creative.mp4")
        elif isinstance(video, bytes):
            (d / "creative.mp4").write_bytes(video)

    pair("nextads__offline__compositor", "u1__p1", "done", clips["fast"])
    pair("nextads__offline__compositor", "u1__p2", "fallback", clips["static"])
    pair("nextads__offline__compositor", "u2__p1", "failed", None)
    pair("generic__offline__compositor", "u1__p1", "done", b"not a video at all")
    return paths


def test_score_runs_writes_one_row_per_pair_and_metric(tmp_path, clips):
    paths = make_runs(tmp_path / "data", clips)
    df = vbench.score_runs(paths, "pcg", "offline", workers=2)
    out = paths.results / "video_quality_pcg.parquet"
    back = pd.read_parquet(out)
    assert list(back.columns) == list(vbench.RESULT_COLUMNS)
    assert len(back) == 4 * 4 and back.equals(df)
    assert set(back["label"]) == set(vbench.OFFLINE_LABELS.values()) and back["proxy"].all()
    assert (back["vq_backend"] == "offline").all()
    ok = back[(back.run == "nextads__offline__compositor") & (back.pair_id == "u1__p2")].set_index("metric")
    assert ok.loc["dd", "value"] == 0.0 and ok.loc["ms", "value"] > 0.99 and ok["error"].isna().all()
    assert ok.loc["ms", "system"] == "nextads" and ok.loc["ms", "user_id"] == "u1" and ok.loc["ms", "product_id"] == "p2"
    failed = back[back.pair_id == "u2__p1"]
    assert failed["value"].isna().all() and failed["error"].str.contains("pair failed at render: boom").all()
    corrupt = back[back.run == "generic__offline__compositor"]
    assert corrupt["value"].isna().all() and corrupt["error"].str.contains("cannot be decoded").all()
    # the per-run table of means names each column by its proxy label and counts errors
    t = vbench.run_means(back).set_index("run")
    assert list(t.columns[-6:]) == [*vbench.OFFLINE_LABELS.values(), "pairs", "errors"]
    assert t.loc["nextads__offline__compositor", "DD (proxy: DIS flow)"] == 0.5
    assert t.loc["nextads__offline__compositor", "pairs"] == 2 and t.loc["nextads__offline__compositor", "errors"] == 1
    assert t.loc["generic__offline__compositor", "errors"] == 1
    # a rerun reads every finished video from the cache
    entries = sorted((paths.cache / "vbench").rglob("*.json"))
    assert len(entries) == 2
    df2 = vbench.score_runs(paths, "pcg", "offline", workers=2)
    assert df2.equals(df) and sorted((paths.cache / "vbench").rglob("*.json")) == entries


def test_score_runs_reads_vbench_results_back(tmp_path, clips):
    paths = make_runs(tmp_path / "data", clips)
    vdir = vbench.vbench_dir(paths, "pcg")
    pairs = [p for p in vbench.list_pairs(paths, "pcg") if p.skip_reason is None]
    vbench.export_for_vbench({vbench.export_name(p.task, p.run, p.pair_dir.name): p.video for p in pairs}, vdir)
    names = sorted(read_json(vdir / "index.json"))
    (vdir / "results").mkdir()
    data = {d: [0.5, [{"video_path": f"videos/{n}", "video_results": v} for n in names]]
            for d, v in (("motion_smoothness", 0.97), ("dynamic_degree", True), ("aesthetic_quality", 0.61),
                         ("imaging_quality", 66.0))}
    (vdir / "results" / "results_x_eval_results.json").write_text(json.dumps(data))
    df = vbench.score_runs(paths, "pcg", "vbench")
    assert set(df["label"]) == {"MS", "DD", "AQ", "IQ"} and not df["proxy"].any()
    got = df[(df.pair_id == "u1__p1") & (df.run == "nextads__offline__compositor")].set_index("metric")["value"]
    assert got.to_dict() == {"ms": 0.97, "dd": 1.0, "aq": 0.61, "iq": 0.66}
    assert df[df.pair_id == "u2__p1"]["value"].isna().all()


def test_score_runs_with_no_runs_writes_an_empty_table(tmp_path):
    df = vbench.score_runs(StudyPaths(tmp_path / "empty"), "pci", "offline")
    assert df.empty and list(df.columns) == list(vbench.RESULT_COLUMNS)
    assert vbench.run_means(df).empty


# --------------------------------------------------------------------------------------- networks
VQ_IMPORTABLE = all(importlib.util.find_spec(m) is not None for m in ("torchvision", "pyiqa", "open_clip"))


def test_missing_optional_package_error_names_the_extra():
    with pytest.raises(vbench.VQDependencyError, match=r"pip install -e '\.\[vq\]'.*nextads_no_such_module"):
        vbench.require_vq(("numpy", "nextads_no_such_module"))


def test_unknown_backend_and_vbench_backend_in_score_video(clips):
    with pytest.raises(ValueError, match="not one of"):
        vbench.score_video(clips["pan"], backend="magic")
    with pytest.raises(ValueError, match="export_for_vbench"):
        vbench.score_video(clips["pan"], backend="vbench")


def test_networks_backend_without_its_packages_says_how_to_install(clips):
    try:
        vbench.require_vq()
    except vbench.VQDependencyError:
        with pytest.raises(vbench.VQDependencyError, match=r"pip install -e '\.\[vq\]'"):
            vbench.score_video(clips["pan"], backend="networks")
    else:  # the packages are here: a missing weights setting is named instead
        with pytest.raises(vbench.VQDependencyError, match="NetworkSettings.raft"):
            vbench.score_video(clips["pan"], backend="networks", networks=vbench.NetworkSettings())


@pytest.mark.slow
@pytest.mark.skipif(not VQ_IMPORTABLE, reason="optional extra 'vq' (torchvision, pyiqa, open_clip) not installed "
                                               "here; install with pip install -e '.[vq]' in a CUDA environment")
def test_networks_code_path_with_random_weights(clips):
    try:
        vbench.require_vq()
    except vbench.VQDependencyError as e:
        pytest.skip(f"optional extra 'vq' does not import here: {e}")
    r = vbench.score_video(clips["fast"], backend="networks:random")
    assert r.error is None and r.backend == "networks:random"
    assert all(r.value(m) is not None for m in vbench.METRICS)
    assert r.dd in (0.0, 1.0) and 0.0 <= r.ms <= 1.0
    assert all("random weights" in r.labels[m] for m in vbench.METRICS)


def test_raft_padding_reaches_a_multiple_of_8_and_128_a_side():
    """torchvision's RAFT raises on inputs under 128 px a side (seen on CUDA with this file's 96x160 clips): the
    networks backend edge-pads small frames up to 128 and crops the flow back; 720p frames are not padded."""
    assert vbench.raft_padding(720, 1280) == (0, 0, 0, 0)
    assert vbench.raft_padding(704, 1278) == (1, 1, 0, 0)
    assert vbench.raft_padding(100, 130) == (3, 3, 14, 14)
    for h, w in ((H, W), (1, 1), (127, 129), (37, 250)):
        left, right, top, bottom = vbench.raft_padding(h, w)
        ph, pw = h + top + bottom, w + left + right
        assert ph % 8 == pw % 8 == 0 and min(ph, pw) >= 128 and abs(top - bottom) <= 1 >= abs(left - right)
        x = np.arange(h * w, dtype=np.float32).reshape(h, w)
        padded = np.pad(x, ((top, bottom), (left, right)), mode="edge")
        assert np.array_equal(padded[top:top + h, left:left + w], x)


def test_dd_walk_stops_early_with_the_same_answer():
    pulled = []

    def scores(vals):
        for v in vals:
            pulled.append(v)
            yield v

    assert not vbench.is_dynamic(scores([1, 1, 1, 9, 9]), 6.0, 3, n_pairs=5)
    assert pulled == [1, 1, 1]  # after three still pairs two remain: 3 moving pairs are out of reach
    assert vbench.is_dynamic([1, 9, 9, 9, 1], 6.0, 3, n_pairs=5)


def test_flat_video_has_missing_imaging_quality_not_zero(tmp_path):
    r = vbench.score_video(write(tmp_path / "flat.mp4", [np.full((H, W, 3), 128, np.uint8)] * 6))
    assert r.dd == 0.0 and r.ms > 0.99 and r.aq is not None
    assert r.iq is None and "BRISQUE is undefined" in r.error


class ExactPanFlows:
    """The true flow of a horizontal pan (content moves ``-dx`` px per frame), in the interface the MS/DD
    protocol code asks of a flow model (the ``networks`` backend plugs RAFT in the same way)."""

    def __init__(self, dx: float):
        self.dx, self.calls = dx, 0

    def __call__(self, a: int, b: int) -> np.ndarray:
        self.calls += 1
        f = np.zeros((H, W, 2), np.float32)
        f[..., 0] = -self.dx * (b - a)
        return f

    def top5(self, a: int, b: int) -> float:
        return vbench.top5_mean(self(a, b))

    def score(self, a: int, b: int, thres: float) -> float:
        return self.top5(a, b)


def test_protocol_with_an_exact_flow_model():
    """MS and DD composed from a perfect flow model: a 3 px/frame pan interpolates almost exactly (MS ~ 1) and
    is dynamic (3 px > 6 * 96 / 256 = 2.25 px in at least round(4 * 16 / 16) = 4 pairs); 2 px/frame is not."""
    big = texture(H + 10, W + 80, seed=7)
    for dx, dynamic in ((3, 1.0), (2, 0.0)):
        clip = vbench.Clip.from_rgb(crops(big, [(dx * i, 5) for i in range(16)]), fps=8.0)
        flows = ExactPanFlows(dx)
        ms, dd, notes = vbench._ms_and_dd(clip, flows, n_ms_pairs=0)
        assert ms > 0.99 and dd == dynamic and notes == []
        assert flows.calls <= 7 + 15  # MS's 7 even pairs + at most every DD pair
