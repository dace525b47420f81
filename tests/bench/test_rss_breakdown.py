"""Smoke test of ``python -m bench.rss_breakdown``: every layer reported, adding up to the total.

No amount is asserted (memory moves with the machine and the versions installed); only the
shape of the report, and that the layers account for the process's whole VmRSS.
"""

from __future__ import annotations

import pytest

from bench import rss_breakdown

pytestmark = pytest.mark.slow


def test_the_layers_add_up_to_the_whole_process() -> None:
    report = rss_breakdown.run(runs=1)
    layers = [row["layer"] for row in report["rows"]]
    assert layers[0].startswith("the interpreter")
    assert [name for name in rss_breakdown.LIBRARIES if name not in layers] == []
    assert layers[-2:] == [rss_breakdown.BUILD, rss_breakdown.SERVE]
    # Each row is rounded to 0.1 MB on its own.
    assert abs(sum(row["mb"] for row in report["rows"]) - report["total_mb"]) <= 0.05 * len(layers)
