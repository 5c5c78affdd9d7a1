"""Per-backend rate limits shared by every worker of a run: requests and tokens per minute.

A limit is a sliding window: in any ``period_s`` (60 s) at most ``rpm`` requests and ``tpm`` tokens are
granted. One window per backend name lives in one place, and every worker asks it before each paid call:

- ``local`` executor: a :class:`WindowServer` in a ``multiprocessing`` manager process started by the run
  (:func:`serve_local`); the spawned pool workers reach it through its proxy;
- ``ray`` executor: a named Ray actor per backend (:class:`RayWindow`, ``nextads-limit-<backend>``), so 64
  workers on 8 nodes share one window and do not hammer an API into 429s.

A worker calls :func:`acquire(backend, tokens) <acquire>` (a no-op when no limit was set up for that
backend); it blocks until the window has room and returns the grant time on the window's clock.

Limits come from the price table (optional ``rpm`` / ``tpm`` columns of ``backends/prices.yaml``), else
:data:`DEFAULT_LIMITS`, else a parameter.
"""

from __future__ import annotations

import threading
import sys
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.managers import BaseManager
from pathlib import Path
from typing import Any

#: Documented fallback limits (requests and tokens per minute) when the price table has none: the published
#: tier-1 limits at the time of writing. Edit to your account's tier, or pass limits explicitly.
DEFAULT_LIMITS: dict[str, dict[str, float]] = {
    "gpt-4o": {"rpm": 500, "tpm": 30_000},
    "gpt-4o-mini": {"rpm": 500, "tpm": 200_000},
    "gpt-4.1": {"rpm": 500, "tpm": 30_000},
    "gemini-2.5-flash": {"rpm": 1_000, "tpm": 1_000_000},
    "gemini-2.5-pro": {"rpm": 150, "tpm": 2_000_000},
    "sora-2": {"rpm": 5, "tpm": 0},
    "sora-2-pro": {"rpm": 5, "tpm": 0},
    "veo-3.0-generate-001": {"rpm": 10, "tpm": 0},
    "veo-3.0-fast-generate-001": {"rpm": 10, "tpm": 0},
}


@dataclass(frozen=True)
class Limit:
    """At most ``rpm`` requests and ``tpm`` tokens in any ``period_s`` (0 or None: unlimited)."""

    rpm: float | None = None
    tpm: float | None = None
    period_s: float = 60.0


def limit_for(backend: str, table: str | None = None) -> Limit:
    """The limit of a backend string (``openai:gpt-4o``) or model: the price table's ``rpm`` / ``tpm`` when it
    has them, else :data:`DEFAULT_LIMITS`, else unlimited."""
    import yaml  # noqa: PLC0415

    from .backends.pricing import DEFAULT_TABLE  # noqa: PLC0415

    raw = yaml.safe_load(Path(table or DEFAULT_TABLE).read_text()) or {}
    model = backend.split(":", 1)[-1]
    for row in (raw.get(backend), raw.get(model), DEFAULT_LIMITS.get(backend), DEFAULT_LIMITS.get(model)):
        if isinstance(row, dict) and (row.get("rpm") or row.get("tpm")):
            return Limit(rpm=row.get("rpm") or None, tpm=row.get("tpm") or None)
    return Limit()


class SlidingWindow:
    """The window itself (no locking): :meth:`try_acquire` grants a request of ``tokens`` at ``now`` or says
    how long to wait."""

    def __init__(self, limit: Limit):
        self.limit = limit
        self.log: deque[tuple[float, float]] = deque()
        self.granted = 0

    def try_acquire(self, now: float, tokens: float = 0.0) -> tuple[bool, float]:
        lim, log = self.limit, self.log
        while log and log[0][0] <= now - lim.period_s:
            log.popleft()
        n_ok = not lim.rpm or len(log) + 1 <= lim.rpm
        used = sum(t for _, t in log)
        t_ok = not lim.tpm or used + tokens <= lim.tpm or not log  # one request bigger than tpm still goes alone
        if n_ok and t_ok:
            log.append((now, float(tokens)))
            self.granted += 1
            return True, 0.0
        return False, max(1e-3, log[0][0] + lim.period_s - now)


class WindowServer:
    """A thread-safe set of windows by backend name, on one clock (``time.monotonic`` of its process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, SlidingWindow] = {}

    def configure(self, name: str, rpm: float | None, tpm: float | None, period_s: float = 60.0) -> None:
        with self._lock:
            self._windows[name] = SlidingWindow(Limit(rpm, tpm, period_s))

    def names(self) -> list[str]:
        with self._lock:
            return list(self._windows)

    def try_acquire(self, name: str, tokens: float = 0.0) -> tuple[bool, float, float]:
        """(granted, seconds to wait, the window clock's now)."""
        with self._lock:
            now = time.monotonic()
            w = self._windows.get(name)
            if w is None:
                return True, 0.0, now
            ok, wait = w.try_acquire(now, tokens)
            return ok, wait, now

    def granted(self, name: str) -> int:
        with self._lock:
            w = self._windows.get(name)
            return w.granted if w else 0


# ------------------------------------------------------------------------------------------ local server
_LOCAL: Any = None  # this process's handle: a WindowServer, or a manager proxy to one


class WindowManager(BaseManager):
    """A manager process serving one :class:`WindowServer` to the spawned pool workers."""


WindowManager.register("WindowServer", WindowServer)
_MANAGERS: list[WindowManager] = []


def serve_local(limits: dict[str, Limit]) -> Any:
    """Start a manager process holding the windows for ``limits`` (backend name -> Limit) and make it this
    process's limiter; returns the proxy, which pickles into spawned workers (pass it to
    :func:`set_local` there). :func:`stop_local` stops it."""
    import multiprocessing as mp  # noqa: PLC0415

    m = WindowManager(ctx=mp.get_context("spawn"))
    m.start()
    _MANAGERS.append(m)
    proxy = m.WindowServer()
    for name, lim in limits.items():
        proxy.configure(name, lim.rpm, lim.tpm, lim.period_s)
    set_local(proxy)
    return proxy


def stop_local() -> None:
    """Stop the manager processes :func:`serve_local` started and forget this process's limiter."""
    set_local(None)
    while _MANAGERS:
        _MANAGERS.pop().shutdown()


def set_local(server: Any) -> None:
    """Make ``server`` (a :class:`WindowServer` or a proxy) this process's limiter (``None``: none)."""
    global _LOCAL
    _LOCAL = server


# -------------------------------------------------------------------------------------------------- Ray
def actor_name(backend: str) -> str:
    return "nextads-limit-" + backend.replace(":", "-").replace("/", "-")


def ray_window(backend: str, limit: Limit) -> Any:
    """The cluster's window for ``backend`` (a named Ray actor, created on first use, one CPU-less actor)."""
    from .executor import NAMESPACE  # noqa: PLC0415
    import ray  # noqa: PLC0415

    cls = ray.remote(num_cpus=0)(_RayWindow)
    return cls.options(name=actor_name(backend), namespace=NAMESPACE, get_if_exists=True,
                       lifetime=None).remote(limit.rpm, limit.tpm, limit.period_s)


class _RayWindow:
    def __init__(self, rpm: float | None, tpm: float | None, period_s: float = 60.0):
        self.w = SlidingWindow(Limit(rpm, tpm, period_s))

    def try_acquire(self, tokens: float = 0.0) -> tuple[bool, float, float]:
        now = time.monotonic()
        ok, wait = self.w.try_acquire(now, tokens)
        return ok, wait, now

    def granted(self) -> int:
        return self.w.granted


RayWindow = _RayWindow
_RAY_HANDLES: dict[str, Any] = {}


def _ray_handle(backend: str) -> Any:
    ray = sys.modules.get("ray")  # a process that never imported Ray is no Ray worker: don't pay its import
    if ray is None or not ray.is_initialized():
        return None
    if backend not in _RAY_HANDLES:
        from .executor import NAMESPACE  # noqa: PLC0415

        try:
            _RAY_HANDLES[backend] = ray.get_actor(actor_name(backend), namespace=NAMESPACE)
        except ValueError:
            return None  # not set up (yet): asked again next time
    return _RAY_HANDLES[backend]


# ------------------------------------------------------------------------------------------------- client
def acquire(backend: str, tokens: float = 0.0, max_wait_s: float = 3600.0) -> float | None:
    """Block until ``backend``'s window grants one request of ``tokens``; returns the grant time on the
    window's clock, or None when no limit is set up for ``backend`` (in this process: a local server, or in
    a Ray worker: a named window actor)."""
    handle = _ray_handle(backend)
    server = _LOCAL
    if handle is None and server is None:
        return None
    t_end = time.monotonic() + max_wait_s
    while True:
        if handle is not None:
            import ray  # noqa: PLC0415

            ok, wait, now = ray.get(handle.try_acquire.remote(tokens))
        else:
            ok, wait, now = server.try_acquire(backend, tokens)
        if ok:
            return now
        if time.monotonic() + wait > t_end:
            raise TimeoutError(f"rate limit of {backend}: no room within {max_wait_s:.0f} s")
        time.sleep(min(wait, 5.0))


def estimate_tokens(req: Any) -> int:
    """A request's tokens before it is sent, for the tokens-per-minute window: text characters / 4, 258 per
    image or sampled frame (the providers' low-detail rate), plus the answer's ``max_output_tokens``."""
    n = len(getattr(req, "system", "") or "") // 4
    for p in getattr(req, "parts", []):
        if hasattr(p, "text"):
            n += len(p.text) // 4
        elif hasattr(p, "n_frames"):
            n += 258 * int(p.n_frames)
        else:
            n += 258
    return n + int(getattr(req, "max_output_tokens", 0) or 0)


#: backend kinds that are paid APIs and get a window
API_KINDS = ("openai", "gemini", "sora", "veo")


def limits_for_jobs(jobs: Any, table: str | None = None) -> dict[str, Limit]:
    """The limits of the API backends the jobs' settings name (``director_backend``, ``producer_backend``)."""
    out: dict[str, Limit] = {}
    for job in jobs:
        s = job.get("settings", {}) if isinstance(job, dict) else {}
        for key in ("director_backend", "producer_backend", "judge_backend"):
            spec = s.get(key)
            if isinstance(spec, str) and spec.split(":", 1)[0] in API_KINDS and spec not in out:
                lim = limit_for(spec, table)
                if lim.rpm or lim.tpm:
                    out[spec] = lim
    return out
