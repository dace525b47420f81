"""Rerunnable performance benchmark of notte-exporter: poll cost, scrape cost, memory bound.

Run ``python -m bench`` from the repository (``make bench``); ``--quick`` for a seconds-long
smoke run. Every number is reported as a ratio against a baseline measured in the same run,
because the machines this runs on are shared and noisy. See docs/benchmarks.md.
"""
