"""``offline``: the embedded default. It answers the same stage requests with the same schemas, computed by
transparent, documented heuristics that the module defining each stage registers with
:func:`~nextads_lib.backends.base.register_offline` (``director.*`` in ``director``, ``pci.*`` in ``pci``,
``judge.*`` in ``judge``, ...). Every artifact it writes says ``offline``; it never pretends to be a VLM.
"""

from __future__ import annotations

import importlib
import inspect
import json

from pydantic import BaseModel

from ..store import content_key, file_digest
from .base import OFFLINE_HANDLERS, BackendError, ModelBackend, ModelRequest

#: task prefix -> the module that registers its offline handlers (imported on first use)
HANDLER_MODULES = {
    "director": "nextads_lib.director",
    "pci": "nextads_lib.pci",
    "judge": "nextads_lib.judge",
    "verifier": "nextads_lib.verifier",
    "reflector": "nextads_lib.reflector",
    "evolution": "nextads_lib.evolution",
}


class OfflineBackend(ModelBackend):
    kind = "offline"

    def __init__(self, model: str = "", cache_dir=None, **settings):
        super().__init__("", cache_dir, **settings)

    def handler(self, task: str):
        if task not in OFFLINE_HANDLERS:
            mod = HANDLER_MODULES.get(task.split(".")[0])
            if mod:
                importlib.import_module(mod)
        if task not in OFFLINE_HANDLERS:
            known = ", ".join(sorted(OFFLINE_HANDLERS)) or "none"
            raise BackendError("", task, f"the offline backend has no handler for this task (registered: {known})")
        return OFFLINE_HANDLERS[task]

    def cache_key(self, req: ModelRequest) -> str:
        """The request's key and the bytes of the file that defines its handler: an offline answer is the
        code's answer, so editing the heuristics invalidates the cached answers (an API model's are kept)."""
        base = super().cache_key(req)
        try:
            src = inspect.getsourcefile(self.handler(req.task))
        except BackendError:
            return base  # no handler: complete() reports it
        return content_key(base, "offline-handler", file_digest(src) if src else "")

    def _call(self, req: ModelRequest, repair: str | None) -> tuple[str, int, int]:
        try:
            out = self.handler(req.task)(req)
        except BackendError as e:
            raise BackendError(req.item, req.task, e.reason) from None
        data = out.model_dump(mode="json") if isinstance(out, BaseModel) else out
        return json.dumps(data), 0, 0
