"""SIGHUP reloads: a signal during a reload asks for one more, never a nested one."""

from __future__ import annotations

import signal

from notte_exporter.cli import Hangup


def test_a_hangup_during_a_reload_reloads_once_more_after_it_not_inside_it() -> None:
    depth = 0
    calls: list[int] = []

    def reload() -> None:
        nonlocal depth
        depth += 1
        calls.append(depth)
        if len(calls) == 1:
            # Two more signals arrive while the first reload runs: Python runs their handler
            # on this thread, inside this reload.
            handler(signal.SIGHUP, None)
            handler(signal.SIGHUP, None)
        depth -= 1

    handler = Hangup(reload)
    handler(signal.SIGHUP, None)
    assert calls == [1, 1]  # twice, each at the top level: the two late signals made one more


def test_each_hangup_after_a_reload_reloads_again() -> None:
    calls: list[None] = []
    handler = Hangup(lambda: calls.append(None))
    handler(signal.SIGHUP, None)
    handler(signal.SIGHUP, None)
    assert len(calls) == 2
