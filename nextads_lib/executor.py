"""Where users' jobs run: a spawned process pool on this machine (``local``, the default) or Ray tasks on a
local Ray instance or a cluster (``ray``). Both run the same job wrapper, so a run's files are the same.

    from nextads_lib import executor
    with executor.use("ray", ray_address="", num_cpus=2, max_cost_usd=20.0):
        pcg.run_pcg(paths, "nextads", ...)           # runs.execute hands its jobs to executor.current()

One user's job (model the user once, then its pairs; see :mod:`nextads_lib.runs`) is the unit of work: one
pool task, or one Ray task with ``max_retries`` (a killed worker process is retried, and so is an exception
that escapes the worker). The job wrapper (:func:`run_job`) makes a retry cheap and safe:

- pairs whose cache record, ``manifest.json`` and final artifact exist are not run again; their manifests are
  returned as they are (a worker killed after finishing some of a user's pairs loses none of them);
- temporary files a killed write left in the job's pair directories (``.<stem>.*.tmp<suffix>``, from
  :func:`nextads_lib.store.atomic_path`) are removed before the pairs run, so no partial file outlives a retry.

``max_cost_usd`` stops handing out jobs once what this invocation spent plus the mean cost of one job would
pass it; jobs already running finish and are recorded, then :class:`BudgetExceeded` is raised (nothing lost:
a rerun with a larger budget does only the rest).

Ray is optional (``pip install -e '.[ray]'``); the local executor does not import it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS = ("local", "ray")
#: Ray namespace of this project's named actors (rate limiters, model actors)
NAMESPACE = "nextads"

Job = dict[str, Any]
Result = dict[str, Any]
Worker = Callable[[Job], Result]


class BudgetExceeded(RuntimeError):
    """A run would pass its ``max_cost_usd``; what finished before is recorded, the rest was not started."""

    def __init__(self, spent_usd: float, max_cost_usd: float, detail: str = ""):
        self.spent_usd, self.max_cost_usd = float(spent_usd), float(max_cost_usd)
        msg = (f"budget: stopping before the run passes max_cost_usd={max_cost_usd:.4f} USD "
               f"(spent so far in this run {spent_usd:.4f} USD)")
        super().__init__(msg + (f"; {detail}" if detail else "") +
                         ". Finished pairs are recorded; rerun with a larger max_cost_usd to do the rest.")


# ------------------------------------------------------------------------------------------- job wrapper
def _is_temp(p: Path) -> bool:
    return p.name.startswith(".") and ".tmp" in p.name


def sweep_temp_files(pair_dirs: Sequence[Path]) -> list[Path]:
    """Remove what killed atomic writes left in ``pair_dirs`` (``.<stem>.<random>.tmp<suffix>``); returns them."""
    gone = []
    for d in pair_dirs:
        if not d.is_dir():
            continue
        for p in d.rglob(".*"):
            if p.is_file() and _is_temp(p):
                p.unlink(missing_ok=True)
                gone.append(p)
    return gone


def finished_manifest(run_dir: Path, cache_root: Path, task: str, pair_id: str, key: str,
                      final_artifact: str) -> dict[str, Any] | None:
    """The manifest of a pair this run already finished (cache record, manifest and final artifact), else None."""
    from .schemas import PairManifest  # noqa: PLC0415
    from .store import Cache  # noqa: PLC0415

    data = Cache(cache_root).get_json(f"{task}_pair", key)
    d = run_dir / pair_id
    if data is None or not (d / "manifest.json").is_file() or not (d / final_artifact).is_file():
        return None
    try:
        man = PairManifest.model_validate(data)
    except ValueError:
        return None
    return None if man.status == "failed" else man.model_dump(mode="json")


def run_job(worker: Worker, job: Job, task: str = "", final_artifact: str = "") -> Result:
    """Run one user's job through ``worker``, skipping its pairs that are already finished (a retried job)
    and removing temporary files a killed write left in its pair directories. ``_new_cost_usd`` in the
    result is what the pairs run now cost (the budget counts it).

    Any other job (a dict without ``run_dir`` / ``pairs``, e.g. a batch of judge requests) is passed to
    ``worker`` as it is; a result dict's ``cost_usd`` then counts against the budget."""
    run_dir = Path(job["run_dir"]) if "run_dir" in job else None
    reused: list[dict[str, Any]] = []
    if run_dir is not None and "pairs" in job:
        sweep_temp_files([run_dir / p["pair_id"] for p in job["pairs"]] + [run_dir / "users" / str(job.get("user_id", ""))])
        if task and final_artifact and "pair_keys" in job and "data_root" in job:
            from .config import StudyPaths  # noqa: PLC0415

            cache_root = StudyPaths(Path(job["data_root"])).cache
            todo = []
            for p in job["pairs"]:
                man = finished_manifest(run_dir, cache_root, task, p["pair_id"], job["pair_keys"][p["pair_id"]],
                                        final_artifact)
                if man is None:
                    todo.append(p)
                else:
                    reused.append(man)
            if reused:
                job = {**job, "pairs": todo}
    if reused and not job["pairs"]:
        res: Result = {"manifests": [], "stats": {"pairs_executed": 0}}
    else:
        res = worker(job)
    new_cost = sum(float(m.get("cost_usd", 0.0)) for m in res.get("manifests", []) if isinstance(m, dict))
    new_cost += float(res.get("cost_usd", 0.0)) if isinstance(res, dict) and "manifests" not in res else 0.0
    if reused:
        res = {**res, "manifests": reused + list(res["manifests"]),
               "stats": {**res["stats"], "pairs_reused_on_retry": len(reused)}}
    return {**res, "_new_cost_usd": round(new_cost, 6)}


class _Budget:
    def __init__(self, max_cost_usd: float | None):
        self.max = None if max_cost_usd is None or max_cost_usd <= 0 else float(max_cost_usd)
        self.spent, self.jobs = 0.0, 0

    def add(self, res: Result) -> None:
        self.spent += float(res.get("_new_cost_usd", 0.0))
        self.jobs += 1

    def stop(self) -> bool:
        """True when the spend so far plus the mean cost of one job would pass the budget."""
        if self.max is None:
            return False
        mean = self.spent / self.jobs if self.jobs else 0.0
        return self.spent + mean > self.max

    def error(self, left: int) -> BudgetExceeded:
        return BudgetExceeded(self.spent, self.max or 0.0, f"{left} user job(s) not started")


# -------------------------------------------------------------------------------------------- executors
@dataclass
class LocalExecutor:
    """Today's semantics: one job inline when there is one worker, else a spawned ``ProcessPoolExecutor``
    whose processes run :func:`nextads_lib.runs.init_worker` once."""

    max_cost_usd: float | None = None
    #: backend -> ratelimit.Limit; None: from the price table for the API backends the jobs name; {}: none
    rate_limits: dict[str, Any] | None = None
    kind: str = field(default="local", init=False)

    def map_jobs(self, worker: Worker, jobs: Sequence[Job], on_result: Callable[[Result], None], *,
                 workers: int = 2, task: str = "", final_artifact: str = "", threads: bool = False,
                 init: Callable[[], None] | None = None) -> int:
        """Run ``jobs``; ``on_result`` gets each result as it completes (in this process). Returns the number
        of workers used. Raises :class:`BudgetExceeded` after the running jobs finished, when the budget
        would pass. ``threads``: a thread pool in this process instead of spawned processes (jobs that share
        a loaded model through :func:`shared`; the judge's users); the Ray executor ignores it. ``init``: the
        pool processes' initializer instead of :func:`nextads_lib.runs.init_worker` (e.g. one that does not
        import torch)."""
        from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor  # noqa: PLC0415

        from .runs import init_worker  # noqa: PLC0415

        from . import ratelimit  # noqa: PLC0415

        budget = _Budget(self.max_cost_usd)
        n = max(1, min(int(workers), len(jobs)))
        limits = ratelimit.limits_for_jobs(jobs) if self.rate_limits is None else self.rate_limits
        if n == 1 or threads:
            if limits:
                srv = ratelimit.WindowServer()
                for name, lim in limits.items():
                    srv.configure(name, lim.rpm, lim.tpm, lim.period_s)
                ratelimit.set_local(srv)
            try:
                if n == 1:
                    for i, job in enumerate(jobs):
                        if budget.stop():
                            raise budget.error(len(jobs) - i)
                        res = run_job(worker, job, task, final_artifact)
                        budget.add(res)
                        on_result(res)
                else:
                    with ThreadPoolExecutor(max_workers=n) as tex:
                        _collect([tex.submit(run_job, worker, job, task, final_artifact) for job in jobs], budget,
                                 on_result)
            finally:
                if limits:
                    ratelimit.set_local(None)
            return n
        import multiprocessing as mp  # noqa: PLC0415

        proxy = ratelimit.serve_local(limits) if limits else None
        init_fn = init or init_worker
        init, initargs = (_init_pool_worker, (proxy, init_fn)) if proxy is not None else (init_fn, ())
        with contextlib.ExitStack() as stack:
            if proxy is not None:
                stack.callback(ratelimit.stop_local)
            ex = stack.enter_context(ProcessPoolExecutor(n, mp_context=mp.get_context("spawn"), initializer=init,
                                                         initargs=initargs))
            _collect([ex.submit(run_job, worker, job, task, final_artifact) for job in jobs], budget, on_result)
        return n


def _collect(futs: Sequence[Any], budget: _Budget, on_result: Callable[[Result], None]) -> None:
    """Hand each finished job's result to ``on_result`` as it completes; once the budget would pass, cancel the
    jobs not yet started and raise :class:`BudgetExceeded` (the pool's exit then waits for the running ones)."""
    from concurrent.futures import as_completed  # noqa: PLC0415

    cancelled = 0
    for f in as_completed(futs):
        if f.cancelled():
            continue
        res = f.result()
        budget.add(res)
        on_result(res)
        if budget.stop() and not cancelled:
            cancelled = sum(g.cancel() for g in futs)
    if cancelled:
        raise budget.error(cancelled)


def _init_pool_worker(limiter: Any, init: Callable[[], None] | None = None) -> None:
    """A pool worker's initializer when the run has rate limits: ``init`` (default
    :func:`nextads_lib.runs.init_worker`), then the shared windows' proxy as this process's limiter."""
    from . import ratelimit  # noqa: PLC0415
    from .runs import init_worker  # noqa: PLC0415

    (init or init_worker)()
    ratelimit.set_local(limiter)


def _ray_task(worker: Worker, job: Job, task: str, final_artifact: str) -> Result:
    """The body of a Ray task: :func:`nextads_lib.runs.init_worker` once per worker process, then the job."""
    global _WORKER_READY
    if not _WORKER_READY:
        from .runs import init_worker  # noqa: PLC0415

        init_worker()
        _WORKER_READY = True
    return run_job(worker, job, task, final_artifact)


_WORKER_READY = False


#: a folder put first on the PYTHONPATH of Ray's processes: hides ``rfc3987_syntax`` (see its docstring), an
#: 8 s import in every Ray process on a busy machine that made the raylet give up on its agents
RAY_STUBS = str(Path(__file__).resolve().parent / "raystub")


def project_root_dir() -> str:
    """The folder that holds the ``nextads_lib`` package (put on the Ray workers' PYTHONPATH)."""
    return str(Path(__file__).resolve().parent.parent)


def ray_init(ray_address: str = "", num_cpus: int | None = None, num_gpus: int | None = None,
             temp_dir: str | None = None, runtime_env: dict[str, Any] | None = None) -> Any:
    """Start a local Ray instance (``ray_address`` empty: ``num_cpus`` / ``num_gpus`` of this machine) or join
    a cluster (``"auto"``, ``"ray://host:port"``); no dashboard, logs under a local temp dir. A no-op when
    Ray is already initialised in this process. Returns the ``ray`` module."""
    try:
        import ray  # noqa: PLC0415
    except ImportError as e:
        raise RuntimeError("executor='ray' needs Ray: pip install -e '.[ray]'") from e
    if ray.is_initialized():
        return ray
    env = dict((runtime_env or {}).get("env_vars", {}))
    paths = [RAY_STUBS, project_root_dir(),
             *[p for p in env.get("PYTHONPATH", os.environ.get("PYTHONPATH", "")).split(os.pathsep) if p]]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    # Ray's daemons (raylet, agents) inherit this process's environment, not the runtime_env
    os.environ["PYTHONPATH"] = os.pathsep.join(
        dict.fromkeys([RAY_STUBS, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.setdefault(var, "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("HF_HUB_OFFLINE", "1")
    kw: dict[str, Any] = {"include_dashboard": False, "namespace": NAMESPACE, "log_to_driver": False,
                          "ignore_reinit_error": True,
                          "runtime_env": {**(runtime_env or {}), "env_vars": env}}
    if ray_address:
        kw["address"] = ray_address
    else:
        kw["num_cpus"] = int(num_cpus) if num_cpus else (os.cpu_count() or 1)
        if num_gpus is not None:
            kw["num_gpus"] = int(num_gpus)
        kw["_temp_dir"] = temp_dir or os.path.join(tempfile.gettempdir(), f"nextads-ray-{os.getuid()}")
    ray.init(**kw)
    return ray


@dataclass
class RayExecutor:
    """One Ray task per user's job (``num_cpus`` each, ``max_retries`` retries of a killed worker or an
    escaping exception); at most ``workers`` jobs in flight (0: as many as the cluster's CPUs allow);
    results collected as they complete."""

    ray_address: str = ""
    num_cpus: int | None = None
    num_gpus: int | None = None
    max_retries: int = 3
    cpus_per_job: float = 1.0
    max_cost_usd: float | None = None
    runtime_env: dict[str, Any] | None = None
    #: backend -> ratelimit.Limit; None: from the price table for the API backends the jobs name; {}: none
    rate_limits: dict[str, Any] | None = None
    #: > 0: the jobs' Producer (``settings["producer_backend"]``, e.g. ``wan:<model>``) runs in this many
    #: actors of ``gpus_per_actor`` GPUs each, loaded once (``actors.ProducerActor``); jobs reach them
    #: through ``actors.producer_for``
    producer_actors: int = 0
    gpus_per_actor: float = 1.0
    #: > 0: work on an expensive model (the video-quality networks) runs as Ray Data ``map_batches`` over a
    #: class that loads the model once, in this many actors of ``gpus_per_actor`` GPUs each
    #: (:func:`nextads_lib.actors.map_batches`); 0: one Ray task per item, the model loaded once per worker
    model_actors: int = 0
    kind: str = field(default="ray", init=False)

    def start(self) -> Any:
        return ray_init(self.ray_address, self.num_cpus, self.num_gpus, runtime_env=self.runtime_env)

    def map_jobs(self, worker: Worker, jobs: Sequence[Job], on_result: Callable[[Result], None], *,
                 workers: int = 0, task: str = "", final_artifact: str = "", threads: bool = False,
                 init: Callable[[], None] | None = None) -> int:
        # every job is a Ray task (its worker process runs runs.init_worker once); a model the jobs share is
        # loaded once per worker process (shared_or)
        del threads, init
        from . import ratelimit  # noqa: PLC0415

        ray = self.start()
        limits = ratelimit.limits_for_jobs(jobs) if self.rate_limits is None else self.rate_limits
        windows = [ratelimit.ray_window(name, lim) for name, lim in limits.items()]  # named: tasks find them
        if windows:
            ray.get([w.granted.remote() for w in windows])  # created before the first task asks
        spec = next((j["settings"].get("producer_backend") for j in jobs if isinstance(j.get("settings"), dict)), None)
        if self.producer_actors > 0 and spec and spec != "compositor":
            from . import actors  # noqa: PLC0415
            from .config import StudyPaths  # noqa: PLC0415

            from .runs import producer_settings  # noqa: PLC0415

            cache = str(StudyPaths(Path(jobs[0]["data_root"])).cache)
            settings = producer_settings(jobs[0]["settings"])  # the run's protocol switches, as a job would pass
            actors.actor_pool(actors.ProducerActor, self.producer_actors, spec, cache, settings,
                              num_gpus=self.gpus_per_actor, names=actors.pool_name(spec, settings))
        remote = ray.remote(_ray_task).options(num_cpus=self.cpus_per_job, max_retries=int(self.max_retries),
                                               retry_exceptions=True)
        cluster_cpus = int(ray.cluster_resources().get("CPU", 1) // max(self.cpus_per_job, 1e-9)) or 1
        window = max(1, min(int(workers) if workers and workers > 0 else cluster_cpus, len(jobs)))
        budget = _Budget(self.max_cost_usd)
        worker_ref = ray.put(worker)
        queue = list(jobs)
        pending: list[Any] = []
        stopped = 0
        while queue or pending:
            while queue and len(pending) < window and not stopped:
                if budget.stop():
                    stopped = len(queue)
                    break
                pending.append(remote.remote(worker_ref, queue.pop(0), task, final_artifact))
            if not pending:
                break
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                res = ray.get(ref)
                budget.add(res)
                on_result(res)
        if stopped or (queue and budget.stop()):
            raise budget.error(stopped or len(queue))
        return window


Executor = LocalExecutor | RayExecutor


# ------------------------------------------------------------------------- objects a process's jobs share
_SHARED: dict[Any, Any] = {}


@contextlib.contextmanager
def shared(key: Any, obj: Any) -> Iterator[Any]:
    """Within the block, :func:`shared_or` ``(key, ...)`` in this process returns ``obj`` (the driver's loaded
    backend or model, for jobs the local executor runs in threads); removed after."""
    _SHARED[key] = obj
    try:
        yield obj
    finally:
        _SHARED.pop(key, None)


def shared_or(key: Any, make: Callable[[], Any]) -> Any:
    """The object :func:`shared` registered under ``key`` in this process, else ``make()`` once per process
    (a Ray worker loads a judge backend or a model once and keeps it for the following tasks)."""
    if key not in _SHARED:
        _SHARED[key] = make()
    return _SHARED[key]


def map_ordered(worker: Worker, jobs: Sequence[Job], *, workers: int = 2, threads: bool = False,
                init: Callable[[], None] | None = None,
                on_result: Callable[[int, Result], None] | None = None) -> list[Result]:
    """:meth:`current` executor's ``map_jobs`` over ``jobs`` (each a dict), the results returned in the jobs'
    order whatever order they completed in (``on_result(i, result)`` as each arrives: a progress bar)."""
    tagged = [{**job, "_job_index": i} for i, job in enumerate(jobs)]
    out: list[Result | None] = [None] * len(jobs)

    def collect(res: Result) -> None:
        i = int(res.pop("_job_index"))
        res.pop("_new_cost_usd", None)
        out[i] = res
        if on_result is not None:
            on_result(i, res)

    if jobs:
        current().map_jobs(_indexed, [{"worker": worker, "job": j, "settings": j.get("settings", {})}
                                           for j in tagged], collect, workers=workers,
                           threads=threads, init=init)
    return [r if r is not None else {} for r in out]


def _indexed(wrapped: Job) -> Result:
    """Run ``wrapped["worker"]`` on its job and tag the result with the job's index (module level: picklable)."""
    job = wrapped["job"]
    res = dict(wrapped["worker"]({k: v for k, v in job.items() if k != "_job_index"}))
    res["_job_index"] = job["_job_index"]
    return res


def get_executor(kind: str = "local", ray_address: str = "", num_cpus: int | None = None, *,
                 num_gpus: int | None = None, max_retries: int = 3, max_cost_usd: float | None = None,
                 runtime_env: dict[str, Any] | None = None, rate_limits: dict[str, Any] | None = None,
                 producer_actors: int = 0, gpus_per_actor: float = 1.0, model_actors: int = 0) -> Executor:
    """``"local"`` (the process pool) or ``"ray"`` (``ray_address`` empty: a local Ray instance of
    ``num_cpus``; ``"auto"`` / ``"ray://host:port"``: a cluster)."""
    if kind == "local":
        return LocalExecutor(max_cost_usd=max_cost_usd, rate_limits=rate_limits)
    if kind == "ray":
        return RayExecutor(ray_address=ray_address, num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries,
                           max_cost_usd=max_cost_usd, runtime_env=runtime_env, rate_limits=rate_limits,
                           producer_actors=producer_actors, gpus_per_actor=gpus_per_actor,
                           model_actors=model_actors)
    raise ValueError(f"executor '{kind}' is not one of {KINDS}")


_CURRENT: list[Executor] = []


def current() -> Executor:
    """The executor :func:`use` set, else the local one (what ``runs.execute`` hands its jobs to)."""
    return _CURRENT[-1] if _CURRENT else LocalExecutor()


@contextlib.contextmanager
def use(kind: str | Executor = "local", ray_address: str = "", num_cpus: int | None = None,
        **kw: Any) -> Iterator[Executor]:
    """Within the block, runs go through this executor (``kind`` a name for :func:`get_executor`, or an
    executor)."""
    ex = kind if not isinstance(kind, str) else get_executor(kind, ray_address, num_cpus, **kw)
    _CURRENT.append(ex)
    try:
        yield ex
    finally:
        _CURRENT.remove(ex)


def shutdown_ray() -> None:
    """Disconnect from (and, when this process started it, stop) Ray."""
    try:
        import ray  # noqa: PLC0415
    except ImportError:
        return
    if ray.is_initialized():
        ray.shutdown()


__all__ = ["KINDS", "NAMESPACE", "BudgetExceeded", "LocalExecutor", "RayExecutor", "Executor", "get_executor",
           "current", "use", "run_job", "shared", "shared_or", "map_ordered", "sweep_temp_files", "finished_manifest", "ray_init", "shutdown_ray"]
