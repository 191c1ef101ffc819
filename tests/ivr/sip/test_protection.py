import logging

import pytest

from ivr.sip.protection import Guard, LogOnce, ProtectionConfig

OPTIONS = b"OPTIONS sip:100@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKx\r\nUser-Agent: %s\r\n\r\n"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("ua", [b"friendly-scanner", b"sipvicious 0.3", b"SIPVicious", b"sipcli/v1.8"])
def test_scanners_are_dropped(ua: bytes) -> None:
    assert Guard(ProtectionConfig()).check_datagram(OPTIONS % ua, "1.2.3.4") == "scanner user agent"


def test_ordinary_agents_pass_and_size_cap() -> None:
    g = Guard(ProtectionConfig(max_message_bytes=200))
    assert g.check_datagram(OPTIONS % b"Asterisk PBX 18", "1.2.3.4") == ""
    big = OPTIONS % (b"x" * 300)
    assert g.check_datagram(big, "1.2.3.4") == f"message of {len(big)} bytes is over the 200-byte cap"


def test_allow_list() -> None:
    g = Guard(ProtectionConfig(allow_sources=("10.1.0.0/16", "192.0.2.7")))
    assert g.check_datagram(OPTIONS % b"x", "10.1.2.3") == ""
    assert g.check_datagram(OPTIONS % b"x", "192.0.2.7") == ""
    assert g.check_datagram(OPTIONS % b"x", "192.0.2.8") == "source is not in the trunk allow-list"


def test_invite_rate_limit_refills_and_call_cap() -> None:
    clock = FakeClock()
    g = Guard(ProtectionConfig(invite_rate=2.0, invite_burst=3, max_calls_per_source=5), clock)
    assert [g.check_invite("1.1.1.1", 0) for _ in range(4)] == ["", "", "", "INVITE rate limit"]
    assert g.check_invite("2.2.2.2", 0) == ""  # per source
    clock.now += 0.5  # one token back
    assert g.check_invite("1.1.1.1", 0) == "" and g.check_invite("1.1.1.1", 0) == "INVITE rate limit"
    assert g.check_invite("3.3.3.3", 5) == "source has 5 calls, the cap is 5"


def test_log_once(caplog: pytest.LogCaptureFixture) -> None:
    log = LogOnce(logging.getLogger("t"))
    with caplog.at_level(logging.WARNING):
        for _ in range(50):
            log("1.2.3.4", "scanner user agent")
        log("1.2.3.5", "scanner user agent")
    assert len(caplog.records) == 2 and log.total == 51
