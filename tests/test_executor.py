"""Executors (:mod:`nextads_lib.executor`): the PCG run on a local Ray instance of 2 CPUs gives the same plans
and creatives as the local process pool; a Ray worker killed mid-pair loses no finished pair and leaves no
partial file; rate-limit windows hold across threads, processes and Ray tasks; model actors load once."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import numpy as np
import pytest

from nextads_lib import executor, media, pcg, ratelimit
from nextads_lib.schemas import PairManifest, Storyboard
from nextads_lib.store import atomic_path, read_json, read_model

from test_pcg import TINY, make_bench  # noqa: E402  (the tiny PCG-Bench: 2 users x 2 products)

TESTS_DIR = str(Path(__file__).resolve().parent)


# ------------------------------------------------------------------------------------------ rate limits
def windows_ok(grants: list[float], limit: int, period: float) -> bool:
    """True when no ``period``-long window (open at its start) holds more than ``limit`` grant times."""
    g = sorted(grants)
    return all(sum(1 for t in g[i:] if t < g[i] + period) <= limit for i in range(len(g)))


def test_windows_ok_detects_a_burst():  # the checker itself can fail
    assert not windows_ok([0.0, 0.1, 0.2, 0.3], 3, 1.0)
    assert windows_ok([0.0, 0.1, 0.2, 1.05], 3, 1.0)


def test_sliding_window_on_a_fake_clock_never_passes_requests_or_tokens():
    w = ratelimit.SlidingWindow(ratelimit.Limit(rpm=3, tpm=1000, period_s=60.0))
    grants, t = [], 0.0
    for tokens in [100, 100, 100, 100, 700, 50, 400, 400]:
        while True:
            ok, wait = w.try_acquire(t, tokens)
            if ok:
                grants.append((t, tokens))
                break
            assert wait > 0
            t += wait
    assert windows_ok([g for g, _ in grants], 3, 60.0)
    for g0, _ in grants:  # tokens of any 60 s window
        assert sum(tok for g, tok in grants if g0 <= g < g0 + 60.0) <= 1000
    assert [g for g, _ in grants][:4] == [0.0, 0.0, 0.0, 60.0]  # the fourth request waited for the first to age out


def test_local_window_server_threads_never_exceed_the_limit():
    srv = ratelimit.WindowServer()
    srv.configure("openai:gpt-4o", rpm=4, tpm=None, period_s=0.3)
    ratelimit.set_local(srv)
    grants: list[float] = []
    lock = threading.Lock()

    def caller():
        for _ in range(4):
            g = ratelimit.acquire("openai:gpt-4o", 10)
            with lock:
                grants.append(g)

    try:
        threads = [threading.Thread(target=caller) for _ in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        ratelimit.set_local(None)
    assert len(grants) == 16 and srv.granted("openai:gpt-4o") == 16
    assert windows_ok(grants, 4, 0.3)
    assert ratelimit.acquire("openai:gpt-4o") is None  # no limiter set up: no wait, no grant


def _proc_caller(proxy, n, out):
    ratelimit.set_local(proxy)
    out.extend([ratelimit.acquire("sora:sora-2") for _ in range(n)])


def test_local_window_server_is_shared_by_spawned_processes():
    import multiprocessing as mp

    proxy = ratelimit.serve_local({"sora:sora-2": ratelimit.Limit(rpm=3, period_s=0.3)})
    try:
        ctx = mp.get_context("spawn")
        with ctx.Manager() as m:
            out = m.list()
            procs = [ctx.Process(target=_proc_caller, args=(proxy, 4, out)) for _ in range(2)]
            for p in procs:
                p.start()
            for p in procs:
                p.join(120)
            grants = list(out)
        assert len(grants) == 8 and proxy.granted("sora:sora-2") == 8
        assert windows_ok(grants, 3, 0.3)
    finally:
        ratelimit.stop_local()


def test_limits_come_from_the_table_or_the_documented_defaults(tmp_path):
    table = tmp_path / "prices.yaml"
    table.write_text("gpt-4o: {input: 2.5, output: 10, rpm: 7, tpm: 900}\n")
    assert ratelimit.limit_for("openai:gpt-4o", str(table)) == ratelimit.Limit(rpm=7, tpm=900)
    assert ratelimit.limit_for("sora:sora-2", str(table)).rpm == ratelimit.DEFAULT_LIMITS["sora-2"]["rpm"]
    assert ratelimit.limit_for("offline", str(table)) == ratelimit.Limit()


def _paid_job(job):
    return {"cost_usd": 1.0, "i": job["i"]}


@pytest.mark.parametrize("workers, threads", [(1, False), (2, True), (2, False)])
def test_the_budget_stops_a_pool_before_the_next_job_would_pass_it(workers, threads):
    """Inline, in threads and in processes alike: results come back as jobs finish, and once the spend plus one
    job's mean cost would pass ``max_cost_usd`` the jobs not started are cancelled and BudgetExceeded names them."""
    got = []
    ex = executor.LocalExecutor(max_cost_usd=2.5)
    with pytest.raises(executor.BudgetExceeded, match="job\\(s\\) not started") as e:
        ex.map_jobs(_paid_job, [{"i": i} for i in range(12)], got.append, workers=workers, threads=threads,
                    init=_no_init)
    assert 2 <= len(got) < 12 and all(r["_new_cost_usd"] == 1.0 for r in got)
    left = re.search(r"(\d+) user job\(s\) not started", str(e.value))
    assert "2.5" in str(e.value) and left and len(got) + int(left.group(1)) <= 12
    ok = []
    assert executor.LocalExecutor(max_cost_usd=100.0).map_jobs(_paid_job, [{"i": i} for i in range(5)], ok.append,
                                                               workers=workers, threads=threads, init=_no_init) >= 1
    assert sorted(r["i"] for r in ok) == list(range(5))


def _no_init() -> None:
    return None


def test_unknown_executor_is_a_clear_error():
    with pytest.raises(ValueError, match="executor 'dask'"):
        executor.get_executor("dask")


# ------------------------------------------------------------------------------------------------- Ray
@pytest.fixture(scope="module")
def ray_session():
    pytest.importorskip("ray")
    ray = executor.ray_init("", num_cpus=2, runtime_env={"env_vars": {"PYTHONPATH": TESTS_DIR}})
    yield ray
    executor.shutdown_ray()


def _frames(p: Path) -> np.ndarray:
    return media.read_frames(p)


def test_pcg_on_ray_equals_the_local_pool(tmp_path, ray_session):
    local = make_bench(tmp_path / "local")
    on_ray = make_bench(tmp_path / "ray")
    s_local = pcg.run_pcg(local, "nextads", "offline", "compositor", workers=2, progress=False, **TINY)
    with executor.use("ray"):
        s_ray = pcg.run_pcg(on_ray, "nextads", "offline", "compositor", workers=2, progress=False, **TINY)
    assert s_ray.failed == 0 and s_ray.n_pairs == 4
    assert (s_ray.done, s_ray.fallback) == (s_local.done, s_local.fallback)
    assert read_json(on_ray.run_dir("pcg", s_ray.run_name) / "stats.json")["workers"] == 2
    for pair in ("u_coffee__brewco-beans", "u_coffee__edge-razor", "u_gamer__brewco-beans", "u_gamer__edge-razor"):
        a, b = local.run_dir("pcg", s_local.run_name) / pair, on_ray.run_dir("pcg", s_ray.run_name) / pair
        pa, pb = read_model(a / "plan.json", Storyboard), read_model(b / "plan.json", Storyboard)
        assert pa == pb, pair
        fa, fb = _frames(a / "creative.mp4"), _frames(b / "creative.mp4")
        assert fa.shape == fb.shape and fa.shape[0] == 20
        assert np.abs(fa.astype(int) - fb.astype(int)).max() <= 2, pair  # same plan, same render settings
        ma, mb = read_model(a / "manifest.json", PairManifest), read_model(b / "manifest.json", PairManifest)
        assert (ma.status, ma.artifacts) == (mb.status, mb.artifacts)


def test_pci_on_ray_equals_the_local_pool(tmp_path, ray_session):
    from nextads_lib import pci
    from test_pci import TINY as PCI_TINY, make_pci_bench

    local, on_ray = make_pci_bench(tmp_path / "local"), make_pci_bench(tmp_path / "ray")
    s_local = pci.run_pci(local, "nextads", "offline", "compositor", workers=2, progress=False, **PCI_TINY)
    with executor.use("ray"):
        s_ray = pci.run_pci(on_ray, "nextads", "offline", "compositor", workers=2, progress=False, **PCI_TINY)
    assert s_ray.failed == s_local.failed == 0 and s_ray.n_pairs == s_local.n_pairs > 0
    da, db = local.run_dir("pci", s_local.run_name), on_ray.run_dir("pci", s_ray.run_name)
    pairs = sorted(p.parent.name for p in da.glob("*/manifest.json"))
    assert pairs == sorted(p.parent.name for p in db.glob("*/manifest.json"))
    for pair in pairs:
        pa, pb = (read_model(d / pair / "plan.json", Storyboard).model_dump(exclude={"starts_from_frame"})
                  for d in (da, db))
        assert pa == pb, pair  # the same plan (its frame path names each run's own directory)
        ka, kb = ({k: read_json(d / pair / "decision.json")[k] for k in ("timestamp_s", "frame_index", "chosen_index")}
                  for d in (da, db))
        assert ka == kb, pair
        fa, fb = _frames(da / pair / "integrated.mp4"), _frames(db / pair / "integrated.mp4")
        assert fa.shape == fb.shape and np.abs(fa.astype(int) - fb.astype(int)).max() <= 2, pair


def kill_once(job):
    """A worker that, on its first attempt for user ``u_coffee``, finishes the user's first pair, starts
    writing the second pair's plan and dies (os._exit: no cleanup, no result)."""
    marker = Path(job["data_root"]) / f"killed_{job['user_id']}.txt"
    if job["user_id"] == "u_coffee" and not marker.exists():
        first = {**job, "pairs": job["pairs"][:1]}
        pcg.run_user(first)
        done = Path(job["run_dir"]) / job["pairs"][0]["pair_id"] / "manifest.json"
        marker.write_text(str(done.stat().st_mtime_ns))
        second = Path(job["run_dir"]) / job["pairs"][1]["pair_id"]
        with atomic_path(second / "plan.json") as tmp:
            tmp.write_text('{"half": ')
            os._exit(1)
    return pcg.run_user(job)


def test_a_killed_ray_worker_loses_no_finished_pair_and_leaves_no_partial_file(tmp_path, ray_session):
    paths = make_bench(tmp_path / "data")
    with executor.use("ray", max_retries=2):
        original = pcg.run_user
        try:  # run_pcg hands pcg.run_user to runs.execute; swap in the killing worker for this run
            pcg.run_user = kill_once
            s = pcg.run_pcg(paths, "generic", "offline", "compositor", workers=2, progress=False, **TINY)
        finally:
            pcg.run_user = original
    marker = paths.root / "killed_u_coffee.txt"
    assert marker.is_file()  # the first attempt really died
    run_dir = paths.run_dir("pcg", s.run_name)
    assert s.failed == 0 and s.done + s.fallback == 4
    first = run_dir / "u_coffee__brewco-beans" / "manifest.json"
    assert str(first.stat().st_mtime_ns) == marker.read_text()  # finished once, not redone by the retry
    assert not [p for p in run_dir.rglob(".*") if ".tmp" in p.name]  # no partial file left
    for pair in ("u_coffee__brewco-beans", "u_coffee__edge-razor", "u_gamer__brewco-beans", "u_gamer__edge-razor"):
        read_model(run_dir / pair / "plan.json", Storyboard)
        assert media.count_frames(run_dir / pair / "creative.mp4") == 20
    stats = read_json(run_dir / "stats.json")
    assert stats["pairs_reused_on_retry"] == 1 and stats["pairs_executed"] == 3


def _ray_caller(n: int) -> list[float]:
    return [ratelimit.acquire("veo:veo-3.0-generate-001") for _ in range(n)]


def test_ray_window_is_shared_by_tasks(ray_session):
    ray = ray_session
    w = ratelimit.ray_window("veo:veo-3.0-generate-001", ratelimit.Limit(rpm=3, period_s=0.3))
    f = ray.remote(num_cpus=1)(_ray_caller)
    grants = [g for part in ray.get([f.remote(4), f.remote(4)]) for g in part]
    assert len(grants) == 8 and ray.get(w.granted.remote()) == 8
    assert windows_ok(grants, 3, 0.3)


def test_model_actors_load_once_and_serve_many(ray_session, tmp_path):
    from nextads_lib import actors

    ray = ray_session
    pool = actors.actor_pool(actors.ModelActor, 2, "operator:itemgetter", 0, num_gpus=0, num_cpus=0.5)
    out = sorted(r for batch in actors.map_unordered(pool, "serve", [([[i, -i]],) for i in range(6)])
                 for r in batch)
    assert out == list(range(6))
    infos = [ray.get(a.info.remote()) for a in pool.actors]
    assert sum(i["served"] for i in infos) == 6 and len({i["pid"] for i in infos}) == 2


def _producer_job(job):
    """A Ray task rendering through the named actors, as a user's job would (``actors.producer_for``)."""
    from nextads_lib import actors
    from nextads_lib.schemas import ProducerRequest

    prod = actors.producer_for(job["spec"], cache_dir=job["out"] + ".unused_cache", **job["settings"])
    assert isinstance(prod, actors.ActorProducer)
    req = ProducerRequest.model_validate(job["request"])
    man = prod.render(req, job["out"])
    return {"name": prod.name, "cached": prod.last_cached, "n_frames": man.n_frames}


def _actor_request(tmp_path):
    """A tiny random Wan pipeline (the real diffusers classes, ``producer.wan.build_tiny_pipeline``) and its
    request when diffusers is installed, else the compositor and a request of its tests."""
    from PIL import Image

    from nextads_lib.schemas import ProducerRequest

    try:
        import diffusers  # noqa: F401
    except ImportError:
        from test_producer_compositor import _image, _storyboard, SIZES, FPS, PALETTE

        assets = {k: _image(tmp_path / f"{k}.png", c) for k, c in
                  {"red": (200, 40, 40), "green": (40, 170, 60), "blue": (30, 60, 200)}.items()}
        w, h = SIZES["9:16"]
        return "compositor", {}, ProducerRequest(storyboard=_storyboard(), assets=assets, aspect_ratio="9:16",
                                                 width=w, height=h, fps=FPS, seed=3, palette=PALETTE)
    from nextads_lib.producer.wan import build_tiny_pipeline
    from test_producer_wan import _request

    images = {}
    for name, c in {"a0": (200, 40, 40), "a1": (40, 170, 60)}.items():
        Image.new("RGB", (96, 96), c).save(tmp_path / f"{name}.png")
        images[name] = str(tmp_path / f"{name}.png")
    spec = f"wan:{build_tiny_pipeline(tmp_path / 'wan', 'ti2v')}"
    return spec, {"num_inference_steps": 1, "gen_fps": 8, "narration": False, "music": False}, _request(images)


def test_a_producer_in_an_actor_renders_what_the_local_producer_renders(ray_session, tmp_path):
    from nextads_lib import actors
    from nextads_lib.producer import get_producer

    ray = ray_session
    spec, settings, req = _actor_request(tmp_path)
    local = get_producer(spec, cache_dir=tmp_path / "local_cache", **settings).render(req, tmp_path / "local.mp4")
    pool = actors.actor_pool(actors.ProducerActor, 1, spec, str(tmp_path / "actor_cache"), settings, num_gpus=0,
                             names=actors.pool_name(spec, settings))
    f = ray.remote(num_cpus=1)(_producer_job)
    job = {"spec": spec, "settings": settings, "request": req.model_dump(mode="json"),
           "out": str(tmp_path / "actor.mp4")}
    first, again = ray.get(f.remote(job)), ray.get(f.remote({**job, "out": str(tmp_path / "again.mp4")}))
    assert first == {"name": local.backend, "cached": False, "n_frames": local.n_frames}
    assert again["cached"]  # the actor's Producer (and its cache) served the second request
    a, b = media.read_frames(tmp_path / "local.mp4"), media.read_frames(tmp_path / "actor.mp4")
    assert a.shape == b.shape and a.shape[0] == local.n_frames > 0
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 2.0  # the same seeded render in the actor
    info = ray.get(pool.actors[0].info.remote())
    assert info == {"pid": info["pid"], "served": 2, "renders": 1}  # loaded once, served both


# ------------------------------------------------------------ the judge's and video quality's pools on Ray
def _parquet_rows(path: Path, root: Path) -> list[tuple]:
    """The rows of a results parquet, with the study root's path taken out of any text (two work dirs)."""
    import pandas as pd

    df = pd.read_parquet(path)
    return [tuple(str(v).replace(str(root), "<root>") if isinstance(v, str) else v for v in r)
            for r in df.astype(object).where(df.notna(), None).itertuples(index=False)]


def test_judge_on_ray_writes_the_local_rows(tmp_path, ray_session):
    from nextads_lib import judge
    from nextads_lib.backends import get_backend
    from test_judge import make_study

    local, on_ray = make_study(tmp_path / "local"), make_study(tmp_path / "ray")
    judge.judge_all(local, "pcg", get_backend("offline", cache_dir=local.cache), n_frames=2, workers=2)
    with executor.use("ray"):
        judge.judge_all(on_ray, "pcg", get_backend("offline", cache_dir=on_ray.cache), n_frames=2, workers=2)
    a = _parquet_rows(local.results / "judge_pcg.parquet", local.root)
    b = _parquet_rows(on_ray.results / "judge_pcg.parquet", on_ray.root)
    assert len(a) == 4 * 3 + 2 and a == b  # 4 pairs x 3 criteria + diversity of 2 users: the same rows
    assert sum(r[-1] is None for r in a) >= 3 * 3  # the 3 creatives really judged (the failed pair is skipped)
    # the Ray tasks, not this process, made the judgments: the ray study's cache was filled by them
    assert list((on_ray.cache).rglob("*.json"))


def test_video_quality_through_ray_data_actors_writes_the_local_rows(tmp_path, ray_session):
    from nextads_lib import vbench
    from test_vbench import make_runs

    clips = _vq_clips(tmp_path / "clips")
    local, on_ray = make_runs(tmp_path / "local", clips), make_runs(tmp_path / "ray", clips)
    vbench.score_runs(local, "pcg", "offline", workers=1)  # the rows do not depend on the pool
    with executor.use("ray", model_actors=1, gpus_per_actor=0):  # Ray Data map_batches over vbench.VQScorer
        vbench.score_runs(on_ray, "pcg", "offline", workers=2)
    a = _parquet_rows(local.results / "video_quality_pcg.parquet", local.root)
    b = _parquet_rows(on_ray.results / "video_quality_pcg.parquet", on_ray.root)
    assert len(a) == 16 and a == b
    assert sum(r[-4] is not None for r in a) >= 8  # two videos really scored (4 metrics each)
    assert len(list((on_ray.cache / "vbench").rglob("*.json"))) == 2  # written by the actors


def _vq_clips(d: Path) -> dict[str, Path]:
    from test_vbench import W, H, crops, texture, write

    d.mkdir(parents=True, exist_ok=True)
    big = texture(H + 160, W + 320)
    return {"static": write(d / "static.mp4", crops(big, [(40, 40)] * 12)),
            "fast": write(d / "fast.mp4", crops(big, [(5 + 9 * i, 40 + 3 * i) for i in range(12)]))}


class _Doubler:
    """A small 'model' for the map_batches test: loaded once per actor (the load counts in a file)."""

    def __init__(self, counter: str):
        with open(counter, "a") as f:
            f.write(f"{os.getpid()}\n")

    def __call__(self, x):
        return 2 * int(x)


def test_ray_data_map_batches_loads_once_per_actor_and_keeps_the_order(ray_session, tmp_path):
    from nextads_lib import actors

    counter = tmp_path / "loads.txt"
    out = actors.map_batches("test_executor:_Doubler", list(range(10)), str(counter), concurrency=2, num_cpus=0.5,
                             batch_size=2)
    assert out == [2 * i for i in range(10)]
    loads = counter.read_text().split()
    assert 1 <= len(loads) <= 2 and len(set(loads)) == len(loads)  # one load per actor, not per batch

