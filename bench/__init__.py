"""Rerunnable performance benchmark of notte-exporter and its guards.

Run ``python -m bench`` from the repository (``make bench``): poll cost against sessions,
scrape cost (and that scrapes make no API request), the memory bound, and the guards, each
target against a floor measured in the same run (``floors.py``). ``--breakdown`` adds where
the guarded costs go; ``--quick`` is a seconds-long smoke run. See docs/benchmarks.md.
"""
