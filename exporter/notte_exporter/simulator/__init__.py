"""A simulated Notte API for the demo mode, the tests and the benchmarks.

    from notte_exporter.simulator import ManualClock, SimulatedAccount, SimulatorServer, Fault

    clock = ManualClock()
    account = SimulatedAccount(clock=clock, seed=1, profile=None)
    session_id = account.start_session(browser_type="firefox")
    with SimulatorServer(account, api_key="k") as server:
        server.faults.push(Fault.status(503))
        ...  # talk to server.url

See docs/simulator.md.
"""

from .account import (
    BROWSER_TYPES,
    MISSING,
    PROFILES,
    TERMINAL_STATUSES,
    KeyTruth,
    SimulatedAccount,
    SimulatedKey,
    iso_duration,
    iso_timestamp,
)
from .billing import PLANS, UsagePlan
from .clock import Clock, ManualClock, SystemClock
from .faults import Fault, FaultKind, FaultQueue
from .server import RecordedRequest, SimulatorServer

__all__ = [
    "BROWSER_TYPES",
    "MISSING",
    "PLANS",
    "PROFILES",
    "TERMINAL_STATUSES",
    "Clock",
    "Fault",
    "FaultKind",
    "FaultQueue",
    "KeyTruth",
    "ManualClock",
    "RecordedRequest",
    "SimulatedAccount",
    "SimulatedKey",
    "SimulatorServer",
    "SystemClock",
    "UsagePlan",
    "iso_duration",
    "iso_timestamp",
]
