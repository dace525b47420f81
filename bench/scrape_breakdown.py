"""Where a scrape's time goes, next to its floor: one line per layer, interleaved in one run.

``python -m bench.scrape_breakdown [--sessions N] [--repeats R] [--encoding gzip]`` starts
the exporter as ``floor_scrape.py`` does (``Exporter.start()``, per-process series on, one
poll of N live sessions) and scrapes, with one keep-alive client, in rotating order:

- ``floor``: the static threaded ``http.server`` of ``floor_scrape.py``, serving the bytes;
- ``server, constant bytes``: the daemon's server (``server.WebServer``, same settings)
  answering those bytes as a constant: what hypercorn itself costs;
- ``routes, no per-process series``: the daemon's routes on a ``PublishedExposition`` of
  the same registry without the per-process series: what serving the published bytes adds;
- ``/metrics``: the daemon's own server, as it runs: the per-process series are the rest;
- ``/healthz``: three bytes through the daemon's server.

Each line is a median of R repeats of 20 scrapes, with its ratio to the floor.
"""

from __future__ import annotations

import argparse
from functools import partial

import httpx

from notte_exporter.exposition import PublishedExposition
from notte_exporter.server import WebServer
from notte_exporter.web import Routes

from .fixtures import Fleet, make_exporter, quiet_logs
from .floor_scrape import ConstantBytes, _static_server
from .timing import interleaved_medians, print_against_floor

INNER = 20


def run(sessions: int, repeats: int, encoding: str) -> dict[str, float]:
    fleet = Fleet()
    fleet.grow_to(sessions)
    pages = fleet.snapshot_pages()
    exporter = make_exporter(fleet.clock, transport=pages.transport(), process_metrics=True)
    url = exporter.start()
    servers: list[WebServer] = []
    try:
        if not exporter.state.wait_for_polls(1, timeout=120):
            raise RuntimeError("the exporter's first poll did not finish")
        headers = {"Accept-Encoding": encoding}
        with httpx.Client(timeout=10) as client:
            served = client.get(url, headers={"Accept-Encoding": "identity"})
            body, content_type = served.content, served.headers["content-type"]
            static = _static_server(body, content_type)
            servers = [
                WebServer(ConstantBytes(body, content_type), [("127.0.0.1", 0)]),
                WebServer(
                    Routes(PublishedExposition(exporter.registry), exporter.state),
                    [("127.0.0.1", 0)],
                ),
            ]
            for server in servers:
                server.start()
            base = url.removesuffix(exporter.settings.web_telemetry_path)
            urls = {
                "floor": f"http://127.0.0.1:{static.server_address[1]}/metrics",
                "server, constant bytes": f"{servers[0].url}/metrics",
                "routes, no per-process series": f"{servers[1].url}/metrics",
                "/metrics": url,
                "/healthz": f"{base}/healthz",
            }
            try:
                candidates = {
                    name: partial(client.get, u, headers=headers) for name, u in urls.items()
                }
                for candidate in candidates.values():
                    candidate().raise_for_status()
                return interleaved_medians(candidates, repeats, INNER)
            finally:
                static.shutdown()
                static.server_close()
    finally:
        for server in servers:
            server.stop()
        exporter.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=41)
    parser.add_argument("--encoding", choices=["identity", "gzip"], default="identity")
    args = parser.parse_args()
    quiet_logs()
    title = (
        f"Scrape of /metrics, {args.sessions} live sessions, {args.encoding} "
        f"(medians of {args.repeats} x {INNER}, interleaved)"
    )
    print_against_floor(title, run(args.sessions, args.repeats, args.encoding))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
