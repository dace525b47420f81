"""The pydantic model of ``GET /usage``, tolerant of additions and strict about omissions.

Unknown fields are ignored, so the API may add to the report at any time; every field the
exporter exposes is required, so a report missing one fails that read with a reason that
names the field (``total_cost: Field required``) instead of exposing a made-up 0.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class UsageReport(BaseModel):
    """``UsageResponse``: every field the exporter exposes is required; others are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    plan_type: str
    period: str
    session_count: int
    function_count: int
    browser_usage_cost: float
    proxy_usage_cost: float
    llm_usage_cost: float
    function_usage_cost: float
    total_cost: float
    subscription_limit_amount: float
    topup_limit_amount: float
    subscription_balance_amount: float
    topup_balance_amount: float
    balance_amount: float
    is_usage_limit_exceeded: bool
