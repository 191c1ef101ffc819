import pytest

from ivr.sip.protection import Guard, ProtectionConfig, Refusal

OPTIONS = b"OPTIONS sip:100@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKx\r\nUser-Agent: %s\r\n\r\n"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("ua", [b"friendly-scanner", b"sipvicious 0.3", b"SIPVicious", b"sipcli/v1.8"])
def test_scanners_are_dropped(ua: bytes) -> None:
    assert Guard(ProtectionConfig()).check_datagram(OPTIONS % ua, "1.2.3.4") == Refusal("scanner", "scanner user agent")


def test_a_trusted_proxy_relaying_a_scanner_is_not_dropped_but_its_size_is_capped() -> None:
    g = Guard(ProtectionConfig(trusted_sources=("10.0.0.5",), max_message_bytes=200))
    assert g.check_datagram(OPTIONS % b"friendly-scanner", "10.0.0.5") is None  # Kamailio relays it, screened
    assert g.check_datagram(OPTIONS % b"friendly-scanner", "10.0.0.6").kind == "scanner"
    assert g.check_datagram(OPTIONS % (b"x" * 300), "10.0.0.5").kind == "too_big"


def test_ordinary_agents_pass_and_size_cap() -> None:
    g = Guard(ProtectionConfig(max_message_bytes=200))
    assert g.check_datagram(OPTIONS % b"Asterisk PBX 18", "1.2.3.4") is None
    big = OPTIONS % (b"x" * 300)
    assert g.check_datagram(big, "1.2.3.4") == Refusal("too_big", f"message of {len(big)} bytes is over the 200-byte cap")


def test_allow_list_and_trusted_sources_are_allowed() -> None:
    g = Guard(ProtectionConfig(allow_sources=("10.1.0.0/16", "192.0.2.7"), trusted_sources=("198.51.100.1",)))
    assert g.check_datagram(OPTIONS % b"x", "10.1.2.3") is None
    assert g.check_datagram(OPTIONS % b"x", "192.0.2.7") is None
    assert g.check_datagram(OPTIONS % b"x", "198.51.100.1") is None  # the trunk is allowed without being listed
    assert g.check_datagram(OPTIONS % b"x", "192.0.2.8") == Refusal("allow_list", "source is not in the trunk "
                                                                                   "allow-list")


def test_invite_rate_limit_refills_and_call_cap() -> None:
    clock = FakeClock()
    g = Guard(ProtectionConfig(invite_rate=2.0, invite_burst=3, max_calls_per_source=5), clock)
    assert [g.check_invite("1.1.1.1", 0) for _ in range(4)] == [None] * 3 + [Refusal("source_rate",
                                                                                     "INVITE rate limit")]
    assert g.check_invite("2.2.2.2", 0) is None  # per source
    clock.now += 0.5  # one token back
    assert g.check_invite("1.1.1.1", 0) is None and g.check_invite("1.1.1.1", 0).kind == "source_rate"
    assert g.check_invite("3.3.3.3", 5) == Refusal("source_calls", "source has 5 calls, the cap is 5")


def test_trusted_source_has_no_per_source_limit_but_the_global_one() -> None:
    clock = FakeClock()
    g = Guard(ProtectionConfig(trusted_sources=("10.0.0.0/24",), invite_rate=2.0, invite_burst=3,
                               max_calls_per_source=5, global_invite_rate=50.0, global_invite_burst=100), clock)
    verdicts = [g.check_invite("10.0.0.9", 400) for _ in range(101)]  # a trunk with 400 calls up
    assert verdicts[:100] == [None] * 100 and verdicts[100] == Refusal("global_rate", "global INVITE rate limit (50/s)")
    clock.now += 1.0  # 50 tokens back
    assert [g.check_invite("10.0.0.9", 0) for _ in range(51)].count(None) == 50


def test_a_flooding_source_does_not_use_up_the_global_bucket() -> None:
    clock = FakeClock()
    g = Guard(ProtectionConfig(trusted_sources=("10.0.0.1",), invite_rate=1.0, invite_burst=2, global_invite_rate=1.0,
                               global_invite_burst=5), clock)
    assert [g.check_invite("203.0.113.5", 0) for _ in range(1000)].count(None) == 2
    trunk = [g.check_invite("10.0.0.1", 0) for _ in range(4)]  # the 3 global tokens the flood did not take
    assert trunk[:3] == [None] * 3 and trunk[3] is not None and trunk[3].kind == "global_rate"


def test_trusted_source_with_its_own_rate_and_no_global_limit() -> None:
    clock = FakeClock()
    g = Guard(ProtectionConfig(trusted_sources=("10.0.0.1",), trusted_invite_rate=100.0, trusted_invite_burst=10,
                               global_invite_rate=0.0), clock)
    assert [g.check_invite("10.0.0.1", 0) for _ in range(11)][-1] == Refusal("source_rate", "INVITE rate limit")
    assert [g.check_invite("10.0.0.2", 0) for _ in range(40)] == [None] * 40  # untrusted: the default burst of 40
