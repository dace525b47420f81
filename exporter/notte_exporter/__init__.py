"""notte-exporter: a Prometheus exporter for the sessions of a Notte cloud-browser account."""

__version__ = "0.1.0"
