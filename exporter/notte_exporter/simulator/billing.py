"""What the simulated account's usage costs: the plan, the rates and the period's ledger.

The simulator bills its own sessions the way Notte bills real ones (see ``notte-api.md``,
"GET /usage"): browser time by how long a session stays open, built-in proxies by the GB of
traffic of sessions with ``proxies`` on, both paid from dollar credits. Costs accrue in
*simulated* time (wall time times ``speed``): at speed 60 a 3-minute session lasts 3 wall
seconds and is billed 3 minutes, so spend moves as fast as the sessions do and a sped-up leak
drains the credits in minutes. At speed 1 the bill is exactly the sessions' wall-clock
durations times the rate.

The rates are the simulator's defaults, not Notte's prices (which the API does not report).
The simulator never answers 402: it reports ``is_usage_limit_exceeded`` and keeps serving,
so the exporter and the alerts can be watched past the limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

__all__ = ["PLANS", "Ledger", "UsagePlan", "month_start", "period_name"]

BYTES_PER_GB: Final = 1_000_000_000
SECONDS_PER_HOUR: Final = 3600.0


@dataclass(frozen=True)
class UsagePlan:
    """A plan's credits and rates, and what was already spent this period before the start."""

    plan_type: str = "pro"
    subscription_limit: float = 100.0
    topup_limit: float = 0.0
    browser_rate_per_hour: float = 0.10
    proxy_rate_per_gb: float = 4.0
    #: Spent this period before the simulator started, by category (browser, proxy, llm,
    #: function); the sessions the simulator runs add to browser and proxy.
    opening_cost: dict[str, float] = field(default_factory=dict)
    opening_sessions: int = 0
    opening_functions: int = 0


PLANS: Final[dict[str | None, UsagePlan]] = {
    # Scripted accounts start the period with nothing spent, so tests can pin exact costs.
    None: UsagePlan(),
    # A comfortable plan: at about six sessions at once it lasts the month.
    "steady": UsagePlan(
        plan_type="growth",
        subscription_limit=1500.0,
        topup_limit=500.0,
        opening_cost={"browser": 120.0, "proxy": 45.0, "llm": 12.5, "function": 3.0},
        opening_sessions=4200,
        opening_functions=310,
    ),
    # A small plan most of which is already gone, drained by leaked sessions: the credits
    # run low and then out within hours at speed 1 and within minutes at speed 60.
    "leak": UsagePlan(
        plan_type="pro",
        subscription_limit=25.0,
        topup_limit=5.0,
        opening_cost={"browser": 12.0, "proxy": 4.5, "llm": 0.8, "function": 0.2},
        opening_sessions=2900,
        opening_functions=12,
    ),
}


def month_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def period_name(moment: datetime) -> str:
    """The period as the API names it, e.g. ``May 2025``."""
    return f"{moment.astimezone(UTC):%B %Y}"


@dataclass
class Ledger:
    """Costs of the current period: ended sessions are booked once, live ones read on demand."""

    plan: UsagePlan
    period_start: datetime
    opening: bool = True
    billed_seconds: float = 0.0
    billed_proxy_bytes: int = 0
    sessions: int = 0

    def roll_over(self, now: datetime) -> bool:
        """Start a new period when ``now`` is past the current one; True if it did."""
        start = month_start(now)
        if start <= self.period_start:
            return False
        self.period_start = start
        self.opening = False  # the opening spend belonged to the month the simulator started
        self.billed_seconds = 0.0
        self.billed_proxy_bytes = 0
        self.sessions = 0
        return True

    def report(self, now: datetime, live_seconds: float, live_proxy_bytes: int) -> dict[str, Any]:
        """The ``UsageResponse`` body of the current period."""
        plan = self.plan
        opening = plan.opening_cost if self.opening else {}
        seconds = self.billed_seconds + live_seconds
        proxy_bytes = self.billed_proxy_bytes + live_proxy_bytes
        browser = opening.get("browser", 0.0) + seconds / SECONDS_PER_HOUR * (
            plan.browser_rate_per_hour
        )
        proxy = opening.get("proxy", 0.0) + proxy_bytes / BYTES_PER_GB * plan.proxy_rate_per_gb
        llm = opening.get("llm", 0.0)
        function = opening.get("function", 0.0)
        total = browser + proxy + llm + function
        subscription_balance = max(plan.subscription_limit - total, 0.0)
        over_subscription = max(total - plan.subscription_limit, 0.0)
        topup_balance = max(plan.topup_limit - over_subscription, 0.0)
        return {
            "plan_type": plan.plan_type,
            "period": period_name(now),
            "session_count": self.sessions + (plan.opening_sessions if self.opening else 0),
            "function_count": plan.opening_functions if self.opening else 0,
            "browser_usage_cost": round(browser, 6),
            "proxy_usage_cost": round(proxy, 6),
            "llm_usage_cost": round(llm, 6),
            "function_usage_cost": round(function, 6),
            "total_cost": round(total, 6),
            "subscription_limit_amount": plan.subscription_limit,
            "topup_limit_amount": plan.topup_limit,
            "subscription_balance_amount": round(subscription_balance, 6),
            "topup_balance_amount": round(topup_balance, 6),
            "balance_amount": round(subscription_balance + topup_balance, 6),
            "is_usage_limit_exceeded": total >= plan.subscription_limit + plan.topup_limit,
        }
