"""Basic-auth logins over HTTP: what a flood of logins to check does to everyone else.

Only the timing test measures, and it compares two kinds of login against each other,
never against a fixed duration.
"""

from __future__ import annotations

import time

import httpx

from tls_support import PASSWORD, USER, bcrypt_hash, write_config

WRONG_LOGINS = (("wrong user", ("mallory", PASSWORD)), ("wrong password", (USER, "x")))


def test_a_wrong_user_takes_as_long_as_a_wrong_password(tmp_path, make_exporter) -> None:
    # A cost where bcrypt outweighs the HTTP round trip, yet keeps the test quick.
    path = write_config(tmp_path / "web.yml", {"basic_auth_users": {USER: bcrypt_hash(cost=7)}})
    exporter = make_exporter(web_listen_address="127.0.0.1:0", web_config_file=path)
    base = exporter.start().removesuffix("/metrics")
    took: dict[str, list[float]] = {"wrong user": [], "wrong password": []}
    with httpx.Client(base_url=base, timeout=10) as client:
        for _ in range(7):  # interleaved, so that a busy moment slows both alike
            for kind, auth in WRONG_LOGINS:
                start = time.perf_counter()
                assert client.get("/metrics", auth=auth).status_code == 401
                took[kind].append(time.perf_counter() - start)
    # The fastest of each: a busy machine only ever adds time. Before the decoy followed the
    # users' cost, a wrong user took its fixed cost's bcrypt: many times longer than this.
    ratio = min(took["wrong user"]) / min(took["wrong password"])
    assert 1 / 3 < ratio < 3, took
