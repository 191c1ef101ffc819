import hashlib

import pytest
from torture import EXPECTED, manifest, message

from ivr.sip.message import SipParseError, parse_message
from ivr.sip.screen import screen

ROWS = manifest()


def test_all_49_messages_are_present_and_intact() -> None:
    assert len(ROWS) == 49
    assert set(EXPECTED) == {r["id"] for r in ROWS}
    for row in ROWS:
        data = message(row["id"])
        assert len(data) == int(row["bytes"])
        assert hashlib.sha256(data).hexdigest() == row["sha256"]


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
def test_screen_answers_as_the_manifest_says(row: dict[str, str]) -> None:
    verdict = screen(message(row["id"]))
    expected = EXPECTED[row["id"]]
    if row["kind"] == "response":
        assert verdict.reject is None and verdict.request is None  # a UAS never answers a response
        return
    if expected in (200, 481):  # processed; 481 is the dialog layer's answer to wsinv's unknown To tag
        assert verdict.request is not None, verdict.reason
    else:
        assert verdict.reject is not None, verdict.drop_reason
        assert verdict.reject.status == expected, verdict.reason
        # the rejection can be sent: it copies the transaction headers and parses back
        again = parse_message(bytes(verdict.reject))
        assert again.get("CSeq") is not None or row["id"] == "insuf"
    if row["verdict"] == "valid" and row["kind"] == "request":
        assert verdict.reject is None or verdict.reject.status in (405, 501)
    if row["verdict"] == "invalid" and row["kind"] == "request":
        assert verdict.request is None or row["id"] == "baddate"  # Date is not used, so it is ignored


@pytest.mark.parametrize("row", [r for r in ROWS if r["parser_must_accept"] == "yes"], ids=lambda r: r["id"])
def test_messages_a_parser_must_accept_parse_and_round_trip(row: dict[str, str]) -> None:
    data = message(row["id"])
    msg = parse_message(data)
    assert data.startswith(bytes(msg))


def test_parse_reasons_of_framing_errors() -> None:
    for ident, reason in [
        ("clerr", "Content-Length 9999 is larger than the body (154 bytes)"),
        ("ncl", "invalid Content-Length '-999'"),
        ("mcl01", "multiple Content-Length header fields"),
        ("badvers", "unsupported SIP version 'SIP/7.0'"),
        ("baddn", "no empty line after the header fields"),
    ]:
        with pytest.raises(SipParseError) as info:
            parse_message(message(ident))
        assert str(info.value) == reason


def test_unsupported_require_lists_the_options() -> None:
    verdict = screen(message("bext01"))
    assert verdict.reject is not None
    assert verdict.reject.get("Unsupported") == "nothingSupportsThis, nothingSupportsThisEither"


def test_unknown_method_lists_allow() -> None:
    verdict = screen(message("intmeth"))
    assert verdict.reject is not None and verdict.reject.get("Allow") == "INVITE, ACK, BYE, CANCEL, OPTIONS"
