"""Grafana dashboards of the bundle, one module per dashboard."""
