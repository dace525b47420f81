"""The pydantic model of ``GET /usage``, tolerant of additions and strict about omissions.

Unknown fields are ignored, so the API may add to the report at any time; every field the
exporter exposes is required, so a report missing one fails that read with a reason that
names the field (``total_cost: Field required``) instead of exposing a made-up 0. Numbers
are bounded the same way: counts as ``models.Count``, amounts finite, so that a report
either renders whole or fails that read (never the sessions).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, FiniteFloat

from .models import Count


class UsageReport(BaseModel):
    """``UsageResponse``: every field the exporter exposes is required; others are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    plan_type: str
    period: str
    session_count: Count
    function_count: Count
    browser_usage_cost: FiniteFloat
    proxy_usage_cost: FiniteFloat
    llm_usage_cost: FiniteFloat
    function_usage_cost: FiniteFloat
    total_cost: FiniteFloat
    subscription_limit_amount: FiniteFloat
    topup_limit_amount: FiniteFloat
    subscription_balance_amount: FiniteFloat
    topup_balance_amount: FiniteFloat
    balance_amount: FiniteFloat
    is_usage_limit_exceeded: bool
