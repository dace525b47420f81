"""Prometheus recording and alerting rules of the bundle, one module per subject."""
