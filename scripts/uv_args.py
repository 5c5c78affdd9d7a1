"""Print uv's arguments for the package sources pip is configured with (``pip config list``: index-url,
extra-index-url, find-links, constraint), so ``make setup`` installs with uv from exactly where pip would.

uv reads no pip configuration of its own; ``--index-strategy unsafe-best-match`` makes it pick the best
version across all sources, as pip does.
"""

from __future__ import annotations

import shlex
import subprocess
import sys

FLAGS = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links",
         "constraint": "--constraint"}


def uv_args(pip_config: str) -> list[str]:
    """``pip config list`` output -> uv arguments (values may be quoted and space-separated lists)."""
    out = ["--index-strategy", "unsafe-best-match"]
    seen: set[tuple[str, str]] = set()
    for line in pip_config.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        name = key.rsplit(".", 1)[-1]
        if name not in FLAGS:
            continue
        for v in shlex.split(value):
            for item in v.split():
                if (name, item) not in seen:
                    seen.add((name, item))
                    out += [FLAGS[name], item]
    return out


if __name__ == "__main__":
    cfg = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    print(shlex.join(uv_args(cfg)))
