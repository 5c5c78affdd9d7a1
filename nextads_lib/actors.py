"""Expensive models in Ray actors: loaded once per actor, serving many requests, each actor asking for its
GPUs. Built on Ray's own primitives (``ray.util.ActorPool``; a class with ``__call__`` also works as Ray Data
``map_batches(Class, concurrency=N, num_gpus=g)``), not a scheduler of ours.

- :class:`ModelActor`: ``load`` (a ``"module:function"`` string and its arguments) runs once in ``__init__``;
  ``__call__(batch)`` calls ``method`` of the loaded object on each item (a list, or a Ray Data batch dict
  with an ``item`` column).
- :class:`ProducerActor`: a Producer (``wan:<model>`` through diffusers, or any ``get_producer`` spec) held
  once; ``render(request_json, out_path)`` writes the creative (atomically, on storage every node sees) and
  returns its manifest.
- :func:`actor_pool` and :func:`map_unordered`: N actors of a class with ``num_gpus`` each, fed requests as
  they free up; results come back as they complete.
- :class:`ActorProducer`: a stand-in with the Producer's ``render`` / ``name`` / ``last_cached`` /
  ``renders`` that forwards to a named :class:`ProducerActor` pool, for a user's job running in a Ray task.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any


def load_callable(ref: str) -> Any:
    """``"package.module:attr"`` -> the attribute."""
    mod, _, attr = ref.partition(":")
    if not mod or not attr:
        raise ValueError(f"'{ref}' is not 'module:attribute'")
    return getattr(importlib.import_module(mod), attr)


class ModelActor:
    """Loads ``load(*args, **kwargs)`` once; ``__call__`` applies ``method`` of it to every item of a batch."""

    def __init__(self, load: str, *args: Any, method: str = "__call__", **kwargs: Any):
        self.model = load_callable(load)(*args, **kwargs)
        self.method = method
        self.pid = os.getpid()
        self.served = 0

    def __call__(self, batch: Any) -> Any:
        fn = getattr(self.model, self.method)
        if isinstance(batch, dict):  # a Ray Data batch: the "item" column in, a "result" column out
            out = [fn(x) for x in batch["item"]]
            self.served += len(out)
            return {**batch, "result": out}
        out = [fn(x) for x in batch]
        self.served += len(out)
        return out

    def serve(self, batch: Any) -> Any:
        """``__call__`` under a plain name, for actor handles (``actor.serve.remote(batch)``)."""
        return self(batch)

    def info(self) -> dict[str, Any]:
        return {"pid": self.pid, "served": self.served}


class ProducerActor:
    """One Producer, constructed once (the Wan pipeline is loaded on its first render and kept)."""

    def __init__(self, spec: str, cache_dir: str | None = None, settings: dict[str, Any] | None = None):
        from .producer import get_producer  # noqa: PLC0415

        self.producer = get_producer(spec, cache_dir=cache_dir, **(settings or {}))
        self.pid = os.getpid()
        self.served = 0

    def render(self, request: dict[str, Any], out_path: str) -> dict[str, Any]:
        """Render ``request`` (a ``ProducerRequest`` as JSON) to ``out_path``; the manifest as JSON plus
        ``cached`` (whether it came from the Producer's cache)."""
        from .schemas import ProducerRequest  # noqa: PLC0415

        man = self.producer.render(ProducerRequest.model_validate(request), out_path)
        self.served += 1
        return {"manifest": man.model_dump(mode="json"), "cached": bool(self.producer.last_cached)}

    def name(self) -> str:
        return self.producer.name

    def info(self) -> dict[str, Any]:
        return {"pid": self.pid, "served": self.served, "renders": self.producer.renders}


def actor_pool(cls: type, n_actors: int, *args: Any, num_gpus: float = 0.0, num_cpus: float = 1.0,
               names: str = "", **kwargs: Any) -> Any:
    """A ``ray.util.ActorPool`` of ``n_actors`` instances of ``cls(*args, **kwargs)``, each reserving
    ``num_gpus`` GPUs and ``num_cpus`` CPUs; ``names``: name them ``<names>-<i>`` in the project namespace so
    Ray tasks can find them (:class:`ActorProducer`)."""
    import ray  # noqa: PLC0415
    from ray.util import ActorPool  # noqa: PLC0415

    from .executor import NAMESPACE  # noqa: PLC0415

    remote = ray.remote(cls)
    actors = []
    for i in range(int(n_actors)):
        opts: dict[str, Any] = {"num_gpus": num_gpus, "num_cpus": num_cpus}
        if names:
            opts.update(name=f"{names}-{i}", namespace=NAMESPACE, get_if_exists=True)
        actors.append(remote.options(**opts).remote(*args, **kwargs))
    pool = ActorPool(actors)
    pool.actors = actors  # every actor, busy or idle
    return pool


def map_unordered(pool: Any, method: str, items: Iterable[Any]) -> Iterator[Any]:
    """Results of ``actor.<method>(*item)`` over ``items`` (tuples of arguments), as they complete."""
    return pool.map_unordered(lambda a, item: getattr(a, method).remote(*item), list(items))


class ActorProducer:
    """The Producer interface a worker uses (``render``, ``name``, ``last_cached``, ``renders``), forwarding
    each render to one of the named :class:`ProducerActor` ``<names>-<i>`` (chosen by the request's seed, so
    the same request goes to the same actor)."""

    def __init__(self, names: str, n_actors: int):
        import ray  # noqa: PLC0415

        from .executor import NAMESPACE  # noqa: PLC0415

        self._actors = [ray.get_actor(f"{names}-{i}", namespace=NAMESPACE) for i in range(int(n_actors))]
        self.name = ray.get(self._actors[0].name.remote())
        self.last_cached = False
        self.renders = 0

    def render(self, req: Any, out_path: Any) -> Any:
        import ray  # noqa: PLC0415

        from .schemas import ProducerManifest  # noqa: PLC0415

        actor = self._actors[int(req.seed) % len(self._actors)]
        out = ray.get(actor.render.remote(req.model_dump(mode="json"), str(out_path)))
        self.last_cached = bool(out["cached"])
        self.renders += 0 if self.last_cached else 1
        return ProducerManifest.model_validate(out["manifest"])




def map_batches(load: str, items: Sequence[Any], *load_args: Any, concurrency: int = 1, num_gpus: float = 0.0,
                num_cpus: float = 1.0, batch_size: int = 1, **load_kwargs: Any) -> list[Any]:
    """Ray Data over ``items`` (strings or numbers: Arrow columns): ``concurrency`` :class:`ModelActor` actors of
    ``num_gpus`` / ``num_cpus`` each load ``load(*load_args, **load_kwargs)`` once and map every item through
    it, ``batch_size`` items per call. Returns the results in the items' order (Ray Data may finish batches in
    any order)."""
    import ray  # noqa: PLC0415
    import ray.data  # noqa: PLC0415

    if not items:
        return []
    if not ray.is_initialized():
        from .executor import ray_init  # noqa: PLC0415

        ray_init()
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ds = ray.data.from_items([{"i": i, "item": x} for i, x in enumerate(items)],
                             override_num_blocks=max(1, min(len(items), 4 * int(concurrency))))
    out = ds.map_batches(ModelActor, fn_constructor_args=(load, *load_args), fn_constructor_kwargs=load_kwargs,
                         concurrency=int(concurrency), num_gpus=num_gpus, num_cpus=num_cpus,
                         batch_size=int(batch_size))
    res: list[Any] = [None] * len(items)
    for row in out.iter_rows():
        res[int(row["i"])] = row["result"]
    return res


def pool_name(spec: str, settings: dict[str, Any] | None = None) -> str:
    """The name prefix of the Producer actors serving ``spec`` with ``settings`` (``producer-wan-models-...-<digest>``):
    a job finds only actors whose Producer was built with its own settings (its protocol's switches)."""
    from .store import content_key  # noqa: PLC0415

    return "producer-" + spec.replace(":", "-").replace("/", "-") + "-" + content_key(settings or {})[:10]


def producer_for(spec: str, cache_dir: Any = None, **settings: Any) -> Any:
    """The Producer a user's job uses: an :class:`ActorProducer` when this process is a Ray worker and
    actors named :func:`pool_name` serve ``spec`` (see ``RayExecutor(producer_actors=...)``), else
    ``get_producer(spec, cache_dir, **settings)`` in this process."""
    from .producer import get_producer  # noqa: PLC0415

    ray = sys.modules.get("ray")  # a process that never imported Ray is no Ray worker: don't pay its import
    if ray is not None and ray.is_initialized():
        from .executor import NAMESPACE  # noqa: PLC0415

        n = 0
        while True:
            try:
                ray.get_actor(f"{pool_name(spec, settings)}-{n}", namespace=NAMESPACE)
            except ValueError:
                break
            n += 1
        if n:
            return ActorProducer(pool_name(spec, settings), n)
    return get_producer(spec, cache_dir=cache_dir, **settings)


__all__ = ["ModelActor", "ProducerActor", "ActorProducer", "actor_pool", "map_unordered", "map_batches",
           "load_callable",
           "pool_name", "producer_for"]
