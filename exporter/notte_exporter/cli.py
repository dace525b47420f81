"""Command line: flags in the style of Go exporters, exit codes, signals, --once and --demo.

SIGTERM and SIGINT stop the exporter; SIGHUP re-reads the key file, the web config and the
reaper's policy file, and logs what changed.

Exit codes: 0 success, 1 a failed ``--once`` poll or a failure to start, 2 invalid settings.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import re
import shutil
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from secrets import token_hex
from types import FrameType
from typing import Any, NoReturn

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from notte_exporter import __version__
from notte_exporter.accounts import Account, NamedKey
from notte_exporter.daemon import Exporter
from notte_exporter.errors import ADVICE
from notte_exporter.files import KEY_FILE_BYTES, read_regular_file
from notte_exporter.keys import ENV_SOURCE, ApiKey
from notte_exporter.logs import configure
from notte_exporter.options import (
    GROUPS,
    choices_of,
    default_of,
    env_of,
    flag_of,
    is_switch,
    option_of,
)
from notte_exporter.polling.state import PollStatus
from notte_exporter.redaction import Secrets
from notte_exporter.settings import (
    AccountsConfigError,
    ReaperConfigError,
    Settings,
    SettingsError,
    WebConfigError,
    env_name,
    key_source,
    load_settings,
)
from notte_exporter.web.server import raise_open_files_limit

log = logging.getLogger("notte_exporter")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
HELP_WIDTH = 100
# A value that starts like a negative number or duration (-5s, -.5): argparse would take it
# for an unknown flag and say "expected one argument"; it is a value, for the setting's own
# limit to refuse with a message that says what is allowed.
_NEGATIVE_VALUE = re.compile(r"^-[\d.]")


class _Parser(argparse.ArgumentParser):
    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        words = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(_attach_negative_values(self, words), namespace)

    def error(self, message: str) -> NoReturn:
        # argparse echoes unrecognised arguments, and a key pasted on the command line is
        # one of them: name the unknown flags only.
        prefix = "unrecognized arguments: "
        if message.startswith(prefix):
            words = message.removeprefix(prefix).split()
            message = prefix + " ".join(
                w.split("=", 1)[0] if w.startswith("-") else "<value>" for w in words
            )
        super().error(message)


def _attach_negative_values(parser: argparse.ArgumentParser, words: list[str]) -> list[str]:
    """``--poll.interval -5s`` -> ``--poll.interval=-5s``, for flags that take a value."""
    takes_value = {
        string
        for action in parser._actions
        if action.nargs is None and action.option_strings
        for string in action.option_strings
    }
    joined: list[str] = []
    for word in words:
        if joined and joined[-1] in takes_value and _NEGATIVE_VALUE.match(word):
            joined[-1] = f"{joined[-1]}={word}"
        else:
            joined.append(word)
    return joined


def _help_of(name: str, field: FieldInfo) -> str:
    """A flag's help: what it does, then its variable and default."""
    facts = [env_of(name, field)]
    default = default_of(field)
    # A plain switch is off unless given: saying so is noise.
    if default is not None and not (is_switch(field) and not option_of(field).negatable):
        facts.append(f"default {default}")
    # argparse expands %-placeholders in help; descriptions are plain text.
    return f"{field.description} [{', '.join(facts)}]".replace("%", "%%")


def _formatter(prog: str) -> argparse.HelpFormatter:
    width = min(HELP_WIDTH, shutil.get_terminal_size((HELP_WIDTH, 24)).columns)
    return argparse.RawDescriptionHelpFormatter(prog, width=width, max_help_position=38)


def build_parser() -> argparse.ArgumentParser:
    """The command line, built from the settings model: one flag per setting that has one."""
    parser = _Parser(
        prog="notte-exporter",
        description="Prometheus exporter for the sessions of a Notte cloud-browser account.",
        formatter_class=_formatter,
        # Abbreviations would let "--notte.api-key SECRET" pass as --notte.api-key-file and
        # echo the secret back in the error about the missing file.
        allow_abbrev=False,
        epilog="Each flag can also be set by the environment variable in brackets; flags win.\n"
        "DURATION: 30s, 1m30s, 1.5s, 500ms, 2h (units y w d h m s ms) or plain seconds.\n"
        "The API key is read from NOTTE_API_KEY or --notte.api-key-file, never from a flag.",
    )
    groups = {group: parser.add_argument_group(group) for group in GROUPS}
    for name, field in Settings.model_fields.items():
        flag = flag_of(name, field)
        if flag is None:
            continue
        option = option_of(field)
        group = groups[option.group]
        common: dict[str, Any] = {
            "dest": name,
            "default": argparse.SUPPRESS,
            "help": _help_of(name, field),
        }
        if is_switch(field) and option.negatable:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **common)
        elif is_switch(field):
            group.add_argument(flag, action="store_const", const=True, **common)
        elif choices_of(field):
            # Shown, not enforced here: the settings check reports a wrong choice together
            # with every other problem.
            group.add_argument(flag, metavar="{" + ",".join(choices_of(field)) + "}", **common)
        else:
            action = "append" if option.repeatable else "store"
            group.add_argument(flag, action=action, metavar=option.placeholder, **common)
    parser.add_argument(
        "--once",
        action="store_true",
        help="Poll once, print the metrics to stdout and exit (0 on success, 1 on failure).",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"notte-exporter {__version__} (python {platform.python_version()})",
    )
    return parser


class Hangup:
    """The SIGHUP handler: reload, once more for every signal that came meanwhile, never nested.

    Python runs a handler on the main thread, between two bytecodes of whatever it was doing,
    and that can be the handler of the previous SIGHUP: a reload holding a file's lock. A
    nested reload would wait for that lock on the very thread that holds it, for ever. So a
    signal that arrives during a reload only asks for one more, made when the first ends.
    """

    def __init__(self, reload: Callable[[], object]) -> None:
        self._reload = reload
        self._reloading = False
        self._again = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self._reloading:
            self._again = True
            return
        self._reloading = True
        try:
            self._again = True
            while self._again:
                self._again = False
                log.info("received SIGHUP, reloading")
                self._reload()
        finally:
            self._reloading = False


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    once = bool(args.pop("once"))
    known_keys = _candidate_keys(args)
    try:
        settings = load_settings(args)
    except SettingsError as exc:
        print("notte-exporter: invalid settings:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {known_keys.redact(problem)}", file=sys.stderr)
        return EXIT_USAGE
    configure(settings.log_level, settings.log_format, known_keys.redact)
    # --config.file replaces the URL and key flags (settings.py refuses both at once).
    if settings.config_file is not None:
        accounts = _load_accounts(settings.config_file, settings, known_keys)
        if accounts is None:
            return EXIT_USAGE
        return _run(settings, known_keys, once, accounts=accounts)
    if settings.demo:
        with _demo_accounts(settings, known_keys) as accounts:
            return _run(settings, known_keys, once, accounts=accounts)
    api_key = (
        ApiKey(path=settings.notte_api_key_file, secrets=known_keys)
        if key_source(settings) != ENV_SOURCE
        else ApiKey(settings.notte_api_key, secrets=known_keys)
    )
    log.info("using the API key from %s", api_key.source)
    return _run(settings, known_keys, once, api_key=api_key)


def _run(
    settings: Settings,
    known_keys: Secrets,
    once: bool,
    *,
    api_key: ApiKey | None = None,
    accounts: tuple[Account, ...] | None = None,
) -> int:
    """Build the exporter (exit 2 on a broken web config or reaper policy), then run it."""
    try:
        exporter = Exporter(settings, api_key, accounts=accounts)
    except WebConfigError as exc:
        _print_problems("web config", exc.path, exc.problems, known_keys)
        return EXIT_USAGE
    except ReaperConfigError as exc:
        _print_problems("reaper config", exc.path, exc.problems, known_keys)
        return EXIT_USAGE
    if once:
        return _run_once(exporter)
    return _serve(exporter)


def _load_accounts(path: Path, settings: Settings, secrets: Secrets) -> tuple[Account, ...] | None:
    """The accounts of the config file, or None once every problem with it is printed."""
    # Imported here: only a config file needs the loader, and with it YAML.
    from notte_exporter.accounts import load_accounts  # noqa: PLC0415

    try:
        accounts = load_accounts(path, default_api_url=settings.notte_api_url, secrets=secrets)
    except AccountsConfigError as exc:
        _print_problems("config file", exc.path, exc.problems, secrets)
        return None
    return accounts


def _print_problems(what: str, path: Path, problems: list[str], secrets: Secrets) -> None:
    """Every problem of an operator's file, one a line, under the file's name (exit 2)."""
    print(secrets.redact(f"notte-exporter: invalid {what} {str(path)!r}:"), file=sys.stderr)
    for problem in problems:
        print(f"  {secrets.redact(problem)}", file=sys.stderr)


def _candidate_keys(flags: dict[str, object]) -> Secrets:
    """Every value that may be a key, remembered for redaction before anything is printed.

    Even a key that turns out to be malformed or unused was held by the process, and an
    error message about something else must not be the one place it shows.
    """
    found = Secrets()
    found.remember(os.environ.get(ENV_SOURCE, ""))
    for path in (flags.get("notte_api_key_file"), os.environ.get(env_name("notte_api_key_file"))):
        if isinstance(path, str) and path:
            with suppress(OSError):  # load_settings reports it
                content = read_regular_file(Path(path), KEY_FILE_BYTES)
                found.remember(content.decode("utf-8", errors="replace"))
    return found


# The simulated accounts of --demo: the first lives as --demo.profile says, the second
# steadily, so that the dashboards' account variable has two accounts to tell apart.
DEMO_ACCOUNTS = ("demo-a", "demo-b")
# The first account's named keys and their shares of its new sessions (the account key
# starts the rest): one of them never stops its sessions, so the "Who leaks" row shows it.
DEMO_KEYS = (("checkout-agent", 0.35, False), ("crawler", 0.25, True), ("reporting", 0.25, False))


@contextmanager
def _demo_accounts(settings: Settings, secrets: Secrets) -> Iterator[tuple[Account, ...]]:
    """--demo: simulated accounts, each on a simulator of its own on loopback."""
    # Imported here: only --demo needs the simulator.
    from notte_exporter.simulator import (  # noqa: PLC0415
        SimulatedAccount,
        SimulatedKey,
        SimulatorServer,
    )

    with ExitStack() as servers:
        accounts = []
        for index, name in enumerate(DEMO_ACCOUNTS):
            key = ApiKey(SecretStr(f"demo-{token_hex(8)}"), secrets=secrets)
            simulated_keys = (
                [
                    SimulatedKey(key_name, f"demo-{token_hex(8)}", share, leaks)
                    for key_name, share, leaks in DEMO_KEYS
                ]
                if index == 0
                else []
            )
            simulated = SimulatedAccount(
                seed=settings.demo_seed + index,
                profile=settings.demo_profile if index == 0 else "steady",
                speed=settings.demo_speed,
                keys=simulated_keys,
            )
            named = tuple(
                NamedKey(k.name, ApiKey(SecretStr(k.value or ""), secrets=secrets))
                for k in simulated_keys
            )
            # A generous rate limit: the headers are there to be seen, never a reason to fail.
            server = servers.enter_context(
                SimulatorServer(simulated, api_key=key(), rate_limit=6000)
            )
            log.info(
                "demo mode: account %s is a simulated Notte account (profile=%s seed=%d) at %s",
                name,
                simulated.profile,
                settings.demo_seed + index,
                server.url,
            )
            accounts.append(
                Account(
                    name=name,
                    api_url=server.url,
                    key=key,
                    keys=named,
                    sessions_limit=settings.sessions_limit,
                    reaper_config_file=settings.reaper_config_file,
                )
            )
        yield tuple(accounts)


def _run_once(exporter: Exporter) -> int:
    if exporter.multi:
        return _run_once_accounts(exporter)
    status = exporter.poll_once()
    exporter.close()
    redact = exporter.redact
    if not status.ok:
        print(redact(f"notte-exporter: {_poll_failed(status)}"), file=sys.stderr)
        return EXIT_FAILURE
    sys.stdout.write(redact(exporter.exposition().decode()))
    return EXIT_OK


def _run_once_accounts(exporter: Exporter) -> int:
    """Poll every account once: one line per account on stderr, the metrics of every one
    on stdout (``notte_up`` says which failed), exit 1 if any failed."""
    statuses = exporter.poll_all()
    exporter.close()
    redact = exporter.redact
    for pipeline, status in zip(exporter.pipelines, statuses, strict=True):
        outcome = f"{status.sessions} live sessions" if status.ok else _poll_failed(status)
        print(redact(f"notte-exporter: account {pipeline.name}: {outcome}"), file=sys.stderr)
    sys.stdout.write(redact(exporter.exposition().decode()))
    return EXIT_OK if all(status.ok for status in statuses) else EXIT_FAILURE


def _poll_failed(status: PollStatus) -> str:
    assert status.reason is not None
    return (
        f"poll failed: {status.reason.value}: {status.message}; "
        f"{status.advice or ADVICE[status.reason]}"
    )


def _watched(exporter: Exporter) -> str:
    """What the exporter polls, for its start-up line."""
    if exporter.multi:
        names = ", ".join(pipeline.name for pipeline in exporter.pipelines)
        simulated = "simulated " if exporter.settings.demo else ""
        return f"the {simulated}accounts {names}"
    return exporter.settings.notte_api_url


def _serve(exporter: Exporter) -> int:
    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        exporter.request_stop()

    # Connections hold descriptors until they close: a burst of idle ones must not leave the
    # poll without sockets, as Go programs ensure by raising the soft limit at start-up.
    log.debug("open files limit: %d", raise_open_files_limit())
    try:
        url = exporter.start()
    except OSError as exc:
        address = ", ".join(exporter.settings.web_listen_address)
        log.error(
            "cannot listen on %s: %s; choose another --web.listen-address",
            address,
            exc.strerror or exc,
        )
        return EXIT_FAILURE

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # As Prometheus does: re-read the files, log what changed, keep serving.
    signal.signal(signal.SIGHUP, Hangup(exporter.reload))
    log.info(
        "notte-exporter %s serving metrics at %s, polling %s every %gs",
        __version__,
        url,
        _watched(exporter),
        exporter.settings.poll_interval,
    )
    # Wake up now and then: a signal handler only runs when the main thread does.
    while not exporter.wait(1.0):
        pass
    exporter.stop()
    log.info("stopped")
    return EXIT_OK
