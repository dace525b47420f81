"""Where the daemon's resident memory goes before any session: one line per library.

``python -m bench.rss_breakdown [--runs N]`` first runs the daemon's set-up in a fresh
process (default settings, serving on loopback, a few scrapes; the API is a closed loopback
port, so there is no session) and notes every module it loaded. Then, in N more fresh
processes, it imports those modules one layer at a time (the interpreter, OpenSSL, the rest
of the standard library, each library with the packages only it brings, the exporter's own
modules), builds the exporter and serves, reading ``VmRSS`` after each step. The layers add
up to the process's total; each says what that layer adds to the ones before it, so the
order matters where layers share code (the standard library comes first on purpose: what a
library pulls in from it is counted once, on its own line). Medians of N.

This is the fixed cost that trimming imports can reach; what sessions add is
``floor_rss.py``'s business.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Builds and serves as the daemon does; prints the modules then loaded, and VmRSS per step
# of the layers given (a JSON list of module lists) when there are any.
_CHILD = r"""
import gc, importlib, json, sys

def rss_kib():
    gc.collect()
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

steps = [rss_kib()]
for layer in json.loads(sys.argv[1]):
    for name in layer:
        try:
            importlib.import_module(name)
        except ImportError:  # a module made at run time (e.g. a Cython helper)
            pass
    steps.append(rss_kib())

import urllib.request
from notte_exporter.cli import main
from notte_exporter.config import load_settings
from notte_exporter.daemon import Exporter
from notte_exporter.keys import ApiKey

settings = load_settings(
    # A closed loopback port: polls fail at once and nothing leaves the machine.
    {"web_listen_address": ["127.0.0.1:0"], "notte_api_url": "http://127.0.0.1:1"}
)
exporter = Exporter(settings, ApiKey(settings.notte_api_key))
steps.append(rss_kib())
exporter.start()
for path in ("/metrics", "/metrics", "/"):
    urllib.request.urlopen(f"http://127.0.0.1:{exporter.port}{path}").read()
steps.append(rss_kib())
exporter.stop()
print(json.dumps({"modules": sorted(sys.modules), "steps_kib": steps}))
"""

_STDLIB = frozenset(sys.stdlib_module_names)
# OpenSSL's libraries are loaded by these two (hashlib at start-up, ssl for httpx).
_OPENSSL = ("hashlib", "ssl")
LIBRARIES: dict[str, tuple[str, ...]] = {
    "pydantic (+pydantic_core, typing_extensions, annotated_types, typing_inspection)": (
        "pydantic",
        "pydantic_core",
        "typing_extensions",
        "annotated_types",
        "typing_inspection",
    ),
    "pydantic_settings (+python-dotenv)": ("pydantic_settings", "dotenv"),
    # Imported by hypercorn (always) and by httpcore (whenever it is installed).
    "HTTP/2: h2, hpack, hyperframe, priority": ("h2", "hpack", "hyperframe", "priority"),
    "httpx (+httpcore, h11, anyio, idna, certifi, sniffio)": (
        "httpx",
        "httpcore",
        "h11",
        "anyio",
        "idna",
        "certifi",
        "sniffio",
    ),
    "tenacity": ("tenacity",),
    "prometheus_client": ("prometheus_client",),
    "hypercorn (+wsproto)": ("hypercorn", "wsproto"),
    "yaml, bcrypt (the web config's)": ("yaml", "bcrypt"),
}
BUILD = "build the Exporter (settings, registries, httpx client and its CA bundle)"
SERVE = "serve: hypercorn's thread and loop, 2 scrapes of /metrics and 1 of /"


def _top(module: str) -> str:
    return module.split(".", maxsplit=1)[0]


def _within(tops: tuple[str, ...]) -> Callable[[str], bool]:
    return lambda module: _top(module) in tops


def layers(modules: list[str]) -> list[tuple[str, list[str]]]:
    """The daemon's modules in import layers, each layer named for what it holds."""
    rules: list[tuple[str, Callable[[str], bool]]] = [
        ("OpenSSL (libcrypto, libssl) via hashlib and ssl", lambda m: m in _OPENSSL),
        ("the rest of the standard library the libraries use", lambda m: _top(m) in _STDLIB),
        *((label, _within(tops)) for label, tops in LIBRARIES.items()),
        ("notte_exporter's own modules", lambda m: _top(m) == "notte_exporter"),
    ]
    # Private top-level modules are C accelerators that their public module imports in its
    # own way (importing _asyncio first, for one, breaks asyncio's task tracking in threads).
    pending = [m for m in modules if not m.startswith("_") and m != "cython_runtime"]
    grouped: list[tuple[str, list[str]]] = []
    for label, rule in rules:
        grouped.append((label, [m for m in pending if rule(m)]))
        pending = [m for m in pending if not rule(m)]
    return grouped


def _child(layer_modules: list[list[str]]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTTE_")}
    result = subprocess.run(  # noqa: S603 - this interpreter, running the code above
        [sys.executable, "-c", _CHILD, json.dumps(layer_modules)],
        env={**env, "NOTTE_API_KEY": "bench-key"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return report


def _compile_package() -> None:
    """Write the package's bytecode, as pip does when it installs it.

    A module compiled at import (sources changed, and PYTHONDONTWRITEBYTECODE set, as on
    our machines) leaves about 1 MB of the compiler's garbage that building the exporter
    then reuses: the total hardly moves, but that much moves between the last lines.
    """
    spec = importlib.util.find_spec("notte_exporter")
    if spec is None or spec.origin is None:
        raise RuntimeError("notte_exporter is not installed")
    compileall.compile_dir(Path(spec.origin).parent, quiet=1)


def run(runs: int) -> dict[str, Any]:
    """Median MB each layer adds, in order, and the total."""
    _compile_package()
    grouped = layers(_child([])["modules"])
    steps = [_child([modules for _, modules in grouped])["steps_kib"] for _ in range(runs)]
    names = ["the interpreter (with site and json)", *(label for label, _ in grouped), BUILD, SERVE]
    rows = [
        {
            "layer": name,
            "mb": round(statistics.median(s[i] - (s[i - 1] if i else 0) for s in steps) / 1024, 1),
        }
        for i, name in enumerate(names)
    ]
    total = round(statistics.median(s[-1] for s in steps) / 1024, 1)
    return {"runs": runs, "rows": rows, "total_mb": total}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rss_breakdown", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="fresh processes (default 5)")
    args = parser.parse_args(argv)
    report = run(args.runs)
    width = max(len(row["layer"]) for row in report["rows"])
    for row in report["rows"]:
        print(f"{row['layer']:<{width}}  {row['mb']:5.1f} MB")
    print(f"{'total VmRSS (median)':<{width}}  {report['total_mb']:5.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
