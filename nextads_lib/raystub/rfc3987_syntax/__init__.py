"""Put on the PYTHONPATH of Ray's own processes only (see :func:`nextads_lib.executor.ray_init`).

Importing ``jsonschema`` (which every Ray process does, ``import ray`` included) builds the optional
``rfc3987_syntax`` Lark grammar at import time: 4.5-8 s of wall time per process on a busy 2-core machine
(measured with ``python -X importtime -c "import rfc3987_syntax"`` at load average 10). Ray never checks the
"iri" JSON-schema format, so its processes are told the package is absent; jsonschema then skips that one
format checker.

Why not a setting (revisited with Ray 2.60, jsonschema 4.26, rfc3987-syntax 1.1): the raylet's wait for its
agents is configurable (``RAY_agent_register_timeout_ms``), but the driver's wait for the raylet to register
(``ray/_private/node.py``: ``raylet_start_wait_time_s = 30``) is a hard-coded constant, and with the slow
import ``ray.init`` failed there ("The current node timed out during startup") even with that variable at
120 s. The package has no lazy or cached grammar to switch on (jsonschema issue #1428 asked for a lazy import;
4.26 still imports it eagerly), and jupyter needs it installed. Without the stub every Ray worker process
also starts 4-8 s later on this machine.
"""

raise ImportError("rfc3987_syntax is hidden from Ray processes by nextads_lib.executor.ray_init")
