"""A container health check: ask the running exporter's /healthz, over HTTP or HTTPS.

``notte-exporter-healthcheck`` (or ``python -m notte_exporter.healthcheck``) reads the same
settings as the exporter: flags given to it, else the command line of the exporter running
as PID 1 (a container's HEALTHCHECK gets none of the entrypoint's arguments, and the port
may come from ``--web.listen-address`` there), and the environment. It probes the first
listen address on loopback, over HTTPS when the web config turns TLS on. The certificate is
not verified: this checks that the process answers, over loopback, and the certificate
rarely names 127.0.0.1. Exit code 0 when /healthz answers 200, 1 otherwise.

A web config that requires client certificates (``RequireAnyClientCert``,
``RequireAndVerifyClientCert``) cannot be probed without one; use a TCP check there.
"""

from __future__ import annotations

import http.client
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from notte_exporter.files import WEB_FILE_BYTES, read_regular_file

TIMEOUT_SECONDS = 4.0
_EXPORTER = "notte-exporter"


def exporter_arguments(cmdline: Path = Path("/proc/1/cmdline")) -> list[str]:
    """The flags PID 1 was started with, when PID 1 is the exporter; else none."""
    try:
        words = [w.decode() for w in cmdline.read_bytes().split(b"\0") if w]
    except (OSError, UnicodeDecodeError):
        return []
    for index, word in enumerate(words):
        if word.endswith(_EXPORTER) or word in ("notte_exporter", "notte_exporter.cli"):
            return words[index + 1 :]
    return []


def target(argv: Sequence[str]) -> tuple[str, str, int]:
    """(scheme, host, port) of the exporter's /healthz, from its flags and environment."""
    # Imported here: the CLI's parser and settings model are what the exporter itself uses.
    from notte_exporter.cli import build_parser  # noqa: PLC0415
    from notte_exporter.settings import Settings  # noqa: PLC0415

    flags, _ = build_parser().parse_known_args(list(argv))
    wanted = ("web_listen_address", "web_config_file")
    # Settings() reads the environment too; flags win, as in the exporter.
    settings = Settings(**{name: value for name, value in vars(flags).items() if name in wanted})
    host, port = settings.listen_host_port
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
    scheme = "https" if _tls_on(settings.web_config_file) else "http"
    return scheme, host, port


def _tls_on(path: Path | None) -> bool:
    if path is None:
        return False
    try:
        document = yaml.safe_load(read_regular_file(path, WEB_FILE_BYTES).decode("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(document, dict) and bool(document.get("tls_server_config"))


def probe(scheme: str, host: str, port: int, timeout: float = TIMEOUT_SECONDS) -> str | None:
    """None when /healthz answers 200, else what went wrong."""
    connection: http.client.HTTPConnection
    if scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", "/healthz")
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        connection.close()
    return None if status == 200 else f"/healthz answered {status}"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv) or exporter_arguments()
    try:
        scheme, host, port = target(args)
    except Exception as exc:
        print(f"notte-exporter-healthcheck: cannot read the settings: {exc}", file=sys.stderr)
        return 1
    shown = f"[{host}]" if ":" in host else host
    problem = probe(scheme, host, port)
    if problem is not None:
        print(f"unhealthy: {scheme}://{shown}:{port}/healthz: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
