"""Basic auth on the server's loop: only logins already checked pass there; bcrypt never runs."""

import base64
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import bcrypt
import pytest

from notte_exporter.web.auth import BasicAuth, Guard
from notte_exporter.web.config import RECHECK_SECONDS, LiveWebConfig
from notte_exporter.web.messages import Request, Response
from tls_support import PASSWORD, USER, BcryptGate, bcrypt_hash, write_config

OK = Response(200, (("Content-Type", "text/plain"), ("X-Content-Type-Options", "x")), b"ok\n")


class Pages:
    """Answers every request with OK, on the loop or not."""

    def answer_now(self, request: Request) -> Response | None:
        return OK

    def answer(self, request: Request) -> Response:
        return OK


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def login(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {token}"}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def guard(tmp_path, clock) -> Guard:
    path = write_config(tmp_path / "web.yml", {
        "basic_auth_users": {USER: bcrypt_hash()},
        "http_server_config": {"headers": {"X-Content-Type-Options": "nosniff"}},
    })  # fmt: skip
    return Guard(Pages(), LiveWebConfig(path, monotonic=clock))


@pytest.fixture
def bcrypt_calls(monkeypatch) -> list[bytes]:
    """Every bcrypt check made from now on (they still run)."""
    calls: list[bytes] = []
    real = bcrypt.checkpw

    def counted(password: bytes, hashed: bytes) -> bool:
        calls.append(password)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counted)
    return calls


def test_a_login_not_checked_yet_is_left_to_a_thread(guard, bcrypt_calls) -> None:
    assert guard.answer_now(Request("GET", "/metrics", headers=login())) is None
    assert bcrypt_calls == []


def test_an_unknown_user_is_left_to_a_thread_which_pays_the_decoy_bcrypt(
    guard, bcrypt_calls
) -> None:
    request = Request("GET", "/metrics", headers=login("mallory"))
    assert guard.answer_now(request) is None
    assert bcrypt_calls == []
    assert guard.answer(request).status == 401
    assert len(bcrypt_calls) == 1


def test_a_login_checked_on_a_thread_then_passes_on_the_loop(guard, bcrypt_calls) -> None:
    request = Request("GET", "/metrics", headers=login())
    assert guard.answer(request).status == 200
    checks = len(bcrypt_calls)
    response = guard.answer_now(request)
    assert response is not None
    assert response.status == 200
    assert len(bcrypt_calls) == checks


def test_a_wrong_password_never_passes_on_the_loop(guard) -> None:
    request = Request("GET", "/metrics", headers=login(password="wrong"))
    assert guard.answer(request).status == 401
    assert guard.answer_now(request) is None


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer x"}, {"authorization": "Basic !!!"}],
    ids=["none", "not basic", "not base64"],
)
def test_requests_without_usable_credentials_are_refused_on_the_loop(guard, headers) -> None:
    on_loop = guard.answer_now(Request("GET", "/metrics", headers=headers))
    assert on_loop is not None
    assert on_loop == guard.answer(Request("GET", "/metrics", headers=headers))
    assert on_loop.status == 401
    assert dict(on_loop.headers)["WWW-Authenticate"].startswith('Basic realm="notte-exporter"')


def test_the_probes_pass_on_the_loop_with_the_operators_headers(guard) -> None:
    response = guard.answer_now(Request("GET", "/healthz"))
    assert response is not None
    assert response.status == 200
    options = [value for name, value in response.headers if name == "X-Content-Type-Options"]
    assert options == ["nosniff"]


def test_a_request_finding_the_web_config_due_a_look_goes_to_a_thread(guard, clock) -> None:
    clock.now += RECHECK_SECONDS
    assert guard.answer_now(Request("GET", "/healthz")) is None
    assert guard.answer(Request("GET", "/healthz")).status == 200  # looked at the files
    assert guard.answer_now(Request("GET", "/healthz")) is not None


class Looks:
    """A stop event for ``watch``: lets it look ``times`` times, advancing the clock each."""

    def __init__(self, live: LiveWebConfig, clock: Clock, times: int) -> None:
        self.live, self.clock, self.left = live, clock, times
        self.fresh_while_watched: list[object] = []

    def wait(self, timeout: float) -> bool:
        self.clock.now += timeout
        self.fresh_while_watched.append(self.live.fresh())
        self.left -= 1
        return self.left < 0


def test_a_watched_web_config_is_looked_at_by_the_watch_not_by_requests(tmp_path, clock) -> None:
    path = write_config(tmp_path / "web.yml", {"basic_auth_users": {USER: bcrypt_hash()}})
    live = LiveWebConfig(path, monotonic=clock)
    write_config(path, {"basic_auth_users": {USER: bcrypt_hash(), "second": bcrypt_hash()}})
    looks = Looks(live, clock, times=1)
    live.watch(looks)  # type: ignore[arg-type]
    assert set(live.current().users) == {USER, "second"}
    # Due a look by the clock, yet never sent to a thread for it while the watch runs.
    assert None not in looks.fresh_while_watched
    clock.now += RECHECK_SECONDS
    assert live.fresh() is None  # the watch has ended: requests look again


def test_one_bcrypt_runs_at_a_time_however_many_logins_arrive(guard, monkeypatch) -> None:
    """A flood of logins to check takes one core, not one per worker thread."""
    peak, inside = 0, 0
    turns = threading.Condition()

    def checkpw(password: bytes, hashed: bytes) -> bool:
        nonlocal peak, inside
        with turns:
            inside += 1
            peak = max(peak, inside)
            turns.notify_all()
            # Unserialised, another check comes in while this one waits for it.
            turns.wait_for(lambda: inside > 1, timeout=0.1)
            inside -= 1
        return False

    monkeypatch.setattr(bcrypt, "checkpw", checkpw)
    logins = [login(password="wrong"), login(user="nobody"), login(password="other"), login()]
    with ThreadPoolExecutor(len(logins)) as pool:
        answers = pool.map(lambda h: guard.answer(Request("GET", "/metrics", headers=h)), logins)
        assert [answer.status for answer in answers] == [401] * len(logins)
    assert peak == 1


def cost(hashed: bytes | str) -> int:
    """The bcrypt cost written in a hash: ``$2b$NN$...``."""
    text = hashed.decode() if isinstance(hashed, bytes) else hashed
    return int(text.split("$")[2])


@pytest.fixture
def checked_against(monkeypatch) -> list[bytes]:
    """The hash of every bcrypt check made from now on (they still run)."""
    hashes: list[bytes] = []
    real = bcrypt.checkpw

    def recorded(password: bytes, hashed: bytes) -> bool:
        hashes.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", recorded)
    return hashes


def test_an_unknown_user_is_checked_at_the_cost_of_the_users_hashes(
    tmp_path, checked_against
) -> None:
    users = {USER: bcrypt_hash(cost=5)}
    guard = Guard(Pages(), LiveWebConfig(write_config(tmp_path / "web.yml", {
        "basic_auth_users": users,
    })))  # fmt: skip
    checked_against.clear()  # loading checks each hash once
    assert guard.answer(Request("GET", "/metrics", headers=login("mallory"))).status == 401
    assert guard.answer(Request("GET", "/metrics", headers=login(password="no"))).status == 401
    assert [cost(hashed) for hashed in checked_against] == [5, 5]


def test_a_reload_makes_one_decoy_at_the_new_cost_and_logins_make_none(
    tmp_path, checked_against, monkeypatch
) -> None:
    path = write_config(tmp_path / "web.yml", {"basic_auth_users": {USER: bcrypt_hash()}})
    live = LiveWebConfig(path)
    guard = Guard(Pages(), live)
    made: list[bytes] = []
    hashpw = bcrypt.hashpw

    def counted(password: bytes, salt: bytes) -> bytes:
        made.append(salt)
        return hashpw(password, salt)

    monkeypatch.setattr(bcrypt, "hashpw", counted)
    write_config(path, {"basic_auth_users": {USER: bcrypt_hash(cost=5)}})
    made.clear()  # bcrypt_hash's own
    assert live.reload() == "web config reloaded: basic auth users changed"
    checked_against.clear()  # loading checks each hash once
    for user in ("mallory", "trudy", "mallory"):
        assert guard.answer(Request("GET", "/metrics", headers=login(user))).status == 401
    assert [cost(salt) for salt in made] == [5]
    assert [cost(hashed) for hashed in checked_against] == [5, 5, 5]


@pytest.fixture
def gate() -> Iterator[BcryptGate]:
    held = BcryptGate()
    yield held
    held.open()


def test_a_login_finding_the_queue_full_is_refused_at_once_on_the_loop_and_on_a_thread(
    tmp_path, gate, monkeypatch
) -> None:
    path = write_config(tmp_path / "web.yml", {"basic_auth_users": {USER: bcrypt_hash()}})
    guard = Guard(Pages(), LiveWebConfig(path), BasicAuth(queue=1))
    monkeypatch.setattr(bcrypt, "checkpw", gate)
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(guard.answer, Request("GET", "/metrics", headers=login("mallory")))
        assert gate.entered.wait(timeout=10)
        valid = Request("GET", "/metrics", headers=login())
        refusals = [guard.answer_now(valid), guard.answer(valid)]
        gate.open()
        assert waiting.result(timeout=10).status == 401
    for refused in refusals:
        assert refused is not None
        assert refused.status == 503
        assert dict(refused.headers)["Retry-After"] == "1"
    assert len(gate.passwords) == 1  # the refused login cost no bcrypt
    assert guard.answer(valid).status == 200  # a place is free again


def until(condition: Callable[[], bool]) -> None:
    """Returns once ``condition()`` holds; fails after 10 s."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.001)


def test_logins_waiting_for_a_bcrypt_are_checked_in_the_order_they_came(
    tmp_path, gate, monkeypatch
) -> None:
    path = write_config(tmp_path / "web.yml", {"basic_auth_users": {USER: bcrypt_hash()}})
    auth = BasicAuth(queue=4)
    guard = Guard(Pages(), LiveWebConfig(path), auth)
    monkeypatch.setattr(bcrypt, "checkpw", gate)
    passwords = ["first", "second", "third", "fourth"]
    with ThreadPoolExecutor(len(passwords)) as pool:
        answers = []
        for came, password in enumerate(passwords, start=1):
            request = Request("GET", "/metrics", headers=login(password=password))
            answers.append(pool.submit(guard.answer, request))
            until(lambda came=came: auth.queued == came)
        gate.open()
        assert [answer.result(timeout=10).status for answer in answers] == [401] * 4
    assert gate.passwords == [password.encode() for password in passwords]


@pytest.mark.parametrize(
    ("user", "password", "status"),
    [(USER, PASSWORD + "x" * 100, 401), ("mallory", "x" * 100, 401), (USER, "y" * 100, 401)],
    ids=["known user", "unknown user", "wrong password"],
)
def test_a_password_longer_than_bcrypt_reads_is_answered_not_crashed_on(
    guard, user, password, status
) -> None:
    response = guard.answer(Request("GET", "/metrics", headers=login(user, password)))
    assert response.status == status


def test_only_the_first_72_bytes_of_a_password_count_as_in_exporter_toolkit(tmp_path) -> None:
    long = "p" * 72
    path = write_config(tmp_path / "web.yml", {"basic_auth_users": {USER: bcrypt_hash(long)}})
    guard = Guard(Pages(), LiveWebConfig(path))
    for password, status in ((long, 200), (long + "anything after", 200), ("p" * 71, 401)):
        response = guard.answer(Request("GET", "/metrics", headers=login(password=password)))
        assert response.status == status, password
