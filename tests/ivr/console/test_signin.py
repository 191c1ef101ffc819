"""Sign-in lockout that concurrency cannot bypass (issue 12, item 9): guesses counted before their password is
checked, a limit per user name and per client address, a success that forgives only its own failures, bounded
request and field sizes and a bounded record; over real HTTP from several loopback addresses at once."""
from __future__ import annotations

import http.client
import json
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import pytest

from ivr.console.signin import LoginThrottle, SignInRefused, address_key

WRONG = "not-the-password"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refusal(throttle: LoginThrottle, name: str, host: str) -> tuple[int, str]:
    with pytest.raises(SignInRefused) as exc:
        throttle.reserve(name, host)
    return exc.value.status, exc.value.message


def test_a_guess_counts_from_its_reservation_and_the_window_forgets_it() -> None:
    clock = Clock()
    t = LoginThrottle(per_user=3, per_address=10, window=60, clock=clock)
    for _ in range(3):  # none settled yet: three checks in progress already use up the limit
        t.reserve("Zhang", "10.0.0.1")
    assert refusal(t, "zhang", "10.0.0.2") == (429, "too many failed sign-ins for this user; try again in 1 minutes")
    clock.now += 60.5
    t.reserve("ZHANG", "10.0.0.1")


def test_a_success_forgives_only_its_own_failures_from_its_address() -> None:
    t = LoginThrottle(per_user=5, per_address=10, window=900, clock=Clock())
    for _ in range(3):
        t.settle(t.reserve("zhang", "10.0.0.66"), ok=False)  # a guesser
    typo = t.reserve("zhang", "10.0.0.1")
    t.settle(typo, ok=False)  # the owner's typo, then the owner signs in
    t.settle(t.reserve("zhang", "10.0.0.1"), ok=True)
    t.settle(t.reserve("zhang", "10.0.0.66"), ok=False)
    t.settle(t.reserve("zhang", "10.0.0.66"), ok=False)
    assert refusal(t, "zhang", "10.0.0.66")[0] == 429  # the guesser's 5 failures all still count
    # signing in to one's own account from an address does not clear that address's failures with other names
    t2 = LoginThrottle(per_user=5, per_address=3, window=900, clock=Clock())
    for name in ("a1", "a2", "a3"):
        t2.settle(t2.reserve(name, "10.0.0.66"), ok=False)
    assert refusal(t2, "mine", "10.0.0.66") == (429, "too many failed sign-ins from this address; try again in "
                                                     "15 minutes")


def test_a_cancelled_check_no_longer_counts() -> None:
    t = LoginThrottle(per_user=2, per_address=10, window=900, clock=Clock())
    first = t.reserve("zhang", "10.0.0.1")
    t.reserve("zhang", "10.0.0.1")
    t.cancel(first)
    t.reserve("zhang", "10.0.0.1")
    assert refusal(t, "zhang", "10.0.0.1")[0] == 429


def test_the_record_of_failures_is_bounded_and_pruned() -> None:
    clock = Clock()
    t = LoginThrottle(per_user=5, per_address=1000, window=60, max_keys=3, clock=clock)
    for name in ("a", "b", "c"):
        t.settle(t.reserve(name, "10.0.0.1"), ok=False)
    assert refusal(t, "d", "10.0.0.1") == (503, "too many sign-in attempts; try again later")
    t.settle(t.reserve("c", "10.0.0.1"), ok=False)  # a name already on record still counts
    clock.now += 61
    t.reserve("d", "10.0.0.1")
    assert len(t) == 2  # "d" and the address: the expired names are gone


def test_address_keys() -> None:
    assert address_key("192.0.2.7") == "192.0.2.7"
    assert address_key("2001:db8:1:2:3:4:5:6") == address_key("2001:db8:1:2::9") == "2001:db8:1:2::/64"
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_key(None) == "unknown" and address_key("testclient") == "testclient"


# ----- over real HTTP -----------------------------------------------------------------------------------------

def post(base: str, path: str, body: bytes | Iterator[bytes], source: str = "127.0.0.1",
         headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60, source_address=(source, 0))
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json", **(headers or {})},
                     encode_chunked=not isinstance(body, bytes))
        r = conn.getresponse()
        raw = r.read()
        return r.status, json.loads(raw) if raw.startswith(b"{") else raw, dict(r.getheaders())
    finally:
        conn.close()


def sign_in(base: str, name: str, password: str, source: str = "127.0.0.1") -> tuple[int, Any, dict[str, str]]:
    return post(base, "/api/session", json.dumps({"username": name, "password": password}).encode(), source)


def at_once(n: int, fn: Any) -> Counter[int]:
    """`fn(k)` in n threads released together; the statuses it returned."""
    gate = threading.Barrier(n)

    def run(k: int) -> int:
        gate.wait()
        return int(fn(k)[0])

    with ThreadPoolExecutor(n) as pool:
        return Counter(pool.map(run, range(n)))


@pytest.mark.parametrize("guesses", [40, 100])
def test_simultaneous_guesses_check_at_most_the_limit(console: Any, served: str, guesses: int) -> None:
    answers = at_once(guesses, lambda k: sign_in(served, "operator", f"{WRONG}{k}", f"127.0.0.{2 + k % 50}"))
    assert answers == {401: 5, 429: guesses - 5}, answers
    status, body, headers = sign_in(served, "operator", console.password, "127.0.0.99")
    assert status == 429 and body["detail"] == "too many failed sign-ins for this user; try again in 15 minutes"
    assert 840 < int(headers["retry-after"]) <= 900
    assert console.ctx.gate.peak <= 5


def test_the_limit_per_address_holds_across_names_and_survives_a_success(console: Any, served: str) -> None:
    answers = at_once(60, lambda k: sign_in(served, f"guess{k}", WRONG, "127.0.0.7"))
    assert answers[401] <= 20 and answers[401] + answers[429] + answers[503] == 60, answers
    checked, status = answers[401], 401
    for k in range(21 - checked):  # one by one until refused
        status = sign_in(served, f"more{k}", WRONG, "127.0.0.7")[0]
        if status != 401:
            break
        checked += 1
    assert checked == 20 and status == 429
    status, body, _ = sign_in(served, "admin", console.password, "127.0.0.7")
    assert status == 429 and body["detail"].startswith("too many failed sign-ins from this address")
    assert sign_in(served, "admin", console.password, "127.0.0.8")[0] == 200


def test_a_success_does_not_reopen_guessing_from_elsewhere(console: Any, served: str) -> None:
    for source in ("127.0.0.66", "127.0.0.66", "127.0.0.3", "127.0.0.3"):  # a guesser, then the owner's typos
        assert sign_in(served, "operator", WRONG, source)[0] == 401
    assert sign_in(served, "operator", console.password, "127.0.0.3")[0] == 200  # forgives the owner's two only
    statuses = [sign_in(served, "operator", WRONG, "127.0.0.66")[0] for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


def test_password_checks_beyond_the_gate_are_refused_at_once(console: Any, served: str) -> None:
    console.ctx.gate.in_flight = 2
    answers = at_once(30, lambda k: sign_in(served, f"name{k}", WRONG, f"127.0.1.{k + 1}"))
    assert set(answers) <= {401, 503} and answers[503] == console.ctx.gate.refused > 0, answers
    assert console.ctx.gate.peak <= 2
    assert len(console.ctx.throttle) == 2 * answers[401]  # the refused ones were not counted against anyone


def test_oversized_requests_and_fields_are_refused_before_anything_is_kept(console: Any, served: str) -> None:
    big = json.dumps({"username": "x" * (4 << 20), "password": WRONG}).encode()
    for k in range(75):
        status, body, _ = post(served, "/api/session", big, f"127.0.2.{k + 1}")
        assert (status, body) == (413, {"detail": "request body too large (at most 4096 bytes here)"})
    chunked = iter([b'{"username": "', b"y" * 60_000, b'", "password": "x"}'])
    assert post(served, "/api/session", chunked)[0] == 413
    status, body, _ = sign_in(served, "z" * 65, WRONG)
    assert status == 422 and body["detail"] == "a user name has at most 64 characters, a password 1024"
    assert sign_in(served, "operator", "p" * 1025)[0] == 422
    assert len(console.ctx.throttle) == 0  # nothing of these was recorded
    assert post(served, "/api/tickets/x/dispatch", b"{" + b" " * 70_000 + b"}")[0] == 413  # every route has a cap
    assert sign_in(served, "operator", console.password)[0] == 200
