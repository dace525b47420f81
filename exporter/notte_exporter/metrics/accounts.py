"""The union of every account's registry, with ``account`` added to every sample.

With ``--config.file`` each account has a registry of its own (daemon/pipeline.py), whose
collectors know nothing of accounts. This collector serves them all as one exposition:

* every sample of every account gets the label ``account="<name>"``, first, so the label
  reaches every Notte series with no change inside the collectors;
* a family several accounts have is served once (one HELP and TYPE), with the samples of
  each account in the accounts' order;
* the process's own families (``PROCESS_FAMILIES``: what the exporter is, not what an
  account holds) are served once, from the first account, without ``account``.

Each account's part is the reading taken by ``read(account)``, called on the thread that
has just polled that account: a reading is of one whole poll of its account, never of
another account's poll half-way, which may be under way on its own thread. Until its first
``read``, an account's part is the reading taken at construction (``notte_up`` 0).

Exposition (abridged)::

    # HELP notte_up Whether the last poll of the Notte API succeeded (1) or failed (0).
    # TYPE notte_up gauge
    notte_up{account="prod"} 1.0
    notte_up{account="staging"} 0.0
    # HELP notte_exporter_build_info The exporter's version, Python version and mode ...
    # TYPE notte_exporter_build_info gauge
    notte_exporter_build_info{mode="live",python_version="3.12.3",version="0.1.0"} 1.0
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

ACCOUNT_LABEL = "account"
# Families about the process rather than an account: served once, without ``account``.
PROCESS_FAMILIES = frozenset({"notte_exporter_build_info"})


class AccountsCollector(Collector):
    """Serves the latest reading of each account's registry, labelled with its account."""

    def __init__(
        self,
        accounts: Sequence[tuple[str, CollectorRegistry]],
        *,
        redact: Callable[[str], str] = str,
    ) -> None:
        names = [name for name, _ in accounts]
        if len(set(names)) != len(names):
            raise ValueError("account names must be unique")
        self._registries = dict(accounts)
        # Names are the operator's, checked to be [a-z0-9-]+; they still pass the one
        # redaction step, like every label value from outside (a key may equal a name).
        self._labels = {name: redact(name) for name in names}
        self._lock = threading.Lock()
        self._readings: dict[str, list[Metric]] = {
            name: list(registry.collect()) for name, registry in accounts
        }

    def read(self, account: str) -> None:
        """Take ``account``'s reading now; all or nothing (should a collector raise, the
        last reading stays and the exception goes to the caller)."""
        reading = list(self._registries[account].collect())
        with self._lock:
            self._readings[account] = reading

    def describe(self) -> list[Metric]:
        """Every family any account's collectors describe, once, without samples."""
        described: dict[str, Metric] = {}
        for registry in self._registries.values():
            for collector in _collectors(registry):
                describe = getattr(collector, "describe", None)
                for family in describe() if describe is not None else ():
                    described.setdefault(family.name, family)
        return list(described.values())

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            readings = list(self._readings.items())
        yield from union((self._labels[name], reading) for name, reading in readings)


def union(readings: Iterable[tuple[str, Iterable[Metric]]]) -> list[Metric]:
    """One family per name, ``account`` first on each sample; process families once.

    ``readings`` pairs each account's label value with its families.
    """
    families: dict[str, Metric] = {}
    for account, reading in readings:
        for family in reading:
            if family.name in PROCESS_FAMILIES:
                families.setdefault(family.name, family)
                continue
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(
                    family.name, family.documentation, family.type, family.unit
                )
            merged.samples.extend(
                sample._replace(labels={ACCOUNT_LABEL: account, **sample.labels})
                for sample in family.samples
            )
    return list(families.values())


def _collectors(registry: CollectorRegistry) -> list[Collector]:
    # prometheus_client offers no public way to list a registry's collectors; this mapping
    # is where register() keeps them.
    with registry._lock:
        return list(registry._collector_to_names)
