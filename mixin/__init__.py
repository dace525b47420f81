"""Monitoring bundle of notte-exporter: Prometheus rules, Grafana dashboards and the runbook.

`python -m mixin` regenerates every committed file from `mixin.config.Config`; see
`mixin.generate`.
"""
