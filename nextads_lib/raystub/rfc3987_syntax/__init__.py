"""Put on the PYTHONPATH of Ray's own processes only (see :func:`nextads_lib.executor.ray_init`).

Importing ``jsonschema`` (which every Ray process does) builds the optional ``rfc3987_syntax`` Lark grammar
at import time: about 8 s of wall time per process on a busy 2-core machine, longer than the raylet's
hard-coded 15 s wait for its agents (ray-project/ray#65983). Ray never checks the "iri" JSON-schema format,
so its processes are told the package is absent; jsonschema then skips that one format checker.
"""

raise ImportError("rfc3987_syntax is hidden from Ray processes by nextads_lib.executor.ray_init")
