"""Where an outbound INVITE goes and whose number a URI holds (pure functions of the URI)."""
from __future__ import annotations

import pytest

from ivr.sip.headers import uri_user
from ivr.sip.uac import proxy_of


@pytest.mark.parametrize(("uri", "trunk", "expected"), [
    ("sip:op1@10.0.0.5:5071", ("10.9.9.9", 5060), ("10.0.0.5", 5071)),  # a URI naming its port goes there
    ("sip:op1@10.0.0.5:5071;transport=udp", None, ("10.0.0.5", 5071)),
    ("sip:op1@pbx.local", ("10.9.9.9", 5080), ("10.9.9.9", 5080)),  # no port: through the trunk
    ("sip:op1@pbx.local", None, ("pbx.local", 5060)),  # no port, no trunk: the host on 5060
    ("sip:op1@[2001:db8::5]:5072", None, ("2001:db8::5", 5072)),
])
def test_proxy_of(uri: str, trunk: tuple[str, int] | None, expected: tuple[str, int]) -> None:
    assert proxy_of(uri, trunk) == expected


@pytest.mark.parametrize(("uri", "user"), [
    ("sip:13800138000@10.0.0.1;user=phone", "13800138000"), ("sips:op1@pbx.local:5061", "op1"),
    ("tel:12345", "12345"),
])
def test_uri_user(uri: str, user: str) -> None:
    assert uri_user(uri) == user
