"""What a daemon loads is what its configuration needs: resident memory is the reason.

Every module stays in memory for the life of the process, so what only some configurations
use is imported where they use it: the web config (YAML, bcrypt, its models, the access
guard) with ``--web.config.file``, the simulator with ``--demo``, the reaper with
``--reaper.config.file``. Each case is a fresh process, as the test session itself has
imported everything long ago.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import API_KEY
from tls_support import bcrypt_hash, write_config

pytestmark = pytest.mark.slow

# Builds the exporter as the CLI does, starts serving and polling, then stops; prints the
# modules loaded once the exporter was built, and once it had served.
CHILD = """
import json, sys
from notte_exporter.cli import main  # the entry point, and everything it imports
from notte_exporter.settings import load_settings
from notte_exporter.daemon import Exporter
from notte_exporter.keys import ApiKey

settings = load_settings(json.loads(sys.argv[1]))
exporter = Exporter(settings, ApiKey(settings.notte_api_key))
built = sorted(sys.modules)
exporter.start()
exporter.stop()
print(json.dumps({"built": built, "served": sorted(sys.modules)}))
"""

# What checking a web config needs, and what serving behind one adds.
WEB_CONFIG_CHECK = ("yaml", "bcrypt", "notte_exporter.web.config")
WEB_CONFIG_GUARD = ("notte_exporter.web.auth",)
DEMO_ONLY = ("notte_exporter.simulator",)
REAPER_ONLY = ("notte_exporter.reaper",)


def loaded(**settings: object) -> dict[str, list[str]]:
    flags = {
        "web_listen_address": ["127.0.0.1:0"],
        # A closed loopback port: the polls fail at once, nothing leaves the machine.
        "notte_api_url": "http://127.0.0.1:1",
        **settings,
    }
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NOTTE_")}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(flags)],
        env={**clean, "NOTTE_API_KEY": API_KEY},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    modules: dict[str, list[str]] = json.loads(result.stdout)
    return modules


def test_a_daemon_without_web_config_or_demo_never_loads_their_modules() -> None:
    served = loaded()["served"]
    optional = (*WEB_CONFIG_CHECK, *WEB_CONFIG_GUARD, *DEMO_ONLY, *REAPER_ONLY)
    assert [name for name in optional if name in served] == []


def test_a_web_config_is_loaded_with_its_modules_at_start_up(tmp_path: Path) -> None:
    # At start-up, not at the first request: a broken file or install must stop start-up.
    path = write_config(tmp_path / "web.yml", {"basic_auth_users": {"alice": bcrypt_hash()}})
    modules = loaded(web_config_file=str(path))
    assert [name for name in WEB_CONFIG_CHECK if name not in modules["built"]] == []
    assert [name for name in WEB_CONFIG_GUARD if name not in modules["served"]] == []
