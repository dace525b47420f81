"""The reaper's alert group, `notte-reaper`: stops that keep failing.

The reaper (docs/reaper.md) exists only where the exporter runs with
`--reaper.config.file`; without it `notte_reaper_stops_total` has no series and the group
is silent. A failed stop is tried again at the next poll, so a single failure is noise; the
alert fires when most of the stops in the window failed, and enough of them to matter:
sessions past the owner's policy then stay open and billed.
"""

from __future__ import annotations

from mixin.alert import Alert, query_value, target_filter, target_name
from mixin.config import Config

# Every result that is a write request; dry_run ones send nothing.
TRIED = 'result=~"stopped|already_gone|failed"'
FAILED = 'result="failed"'


def reaper_alerts(config: Config) -> list[Alert]:
    c = config
    window = c.value("reaper_failing_window")
    stops = "notte_reaper_stops_total"
    failed = f"sum without (policy, result) (increase({c.metric(stops, FAILED)}[{window}]))"
    tried = f"sum without (policy, result) (increase({c.metric(stops, TRIED)}[{window}]))"
    target = target_filter(c)
    failed_count = query_value(c, f'sum(increase({stops}{{result="failed",{target}}}[{window}]))')
    return [
        Alert(
            name="NotteReaperFailing",
            expr=(
                f"{failed}\n/\n({tried} > 0)\n> {c.value('reaper_failing_share', 'number')}\n"
                f"and\n{failed}\n>= {c.value('reaper_failing_min_failures', 'int')}\n"
            ),
            for_=c.value("reaper_failing_for"),
            severity="warning",
            summary="The Notte reaper's stops keep failing.",
            description=(
                f"{{{{ $value | humanizePercentage }}}} of the stops the reaper of "
                f"{target_name(c)} tried in the last {c.value('reaper_failing_window', 'human')} "
                f"failed ({failed_count} failures; threshold "
                f"{c.value('reaper_failing_share', 'percent')} of at least "
                f"{c.value('reaper_failing_min_failures', 'int')}): sessions past your policy "
                "stay open and billed. The exporter's log has one line per failure with the "
                "HTTP status."
            ),
        )
    ]
