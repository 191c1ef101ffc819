"""The RFC 4475 torture messages with the answer our UAS gives to each (shared by the parse and UDP tests).

`EXPECTED` is our reading of MANIFEST.tsv's expected_behaviour for a UAS that is neither registrar nor proxy:
REGISTER and MESSAGE get 405 (the manifest allows 405 for a non-registrar endpoint), well-formed INVITEs are
processed (200), responses and unparseable responses are dropped (None). wsinv is processed normally too, but
its To carries a tag, so it is a re-INVITE for a dialog we do not have: 481, as RFC 3261 section 12.2.2 says.
"""
from __future__ import annotations

import csv
from pathlib import Path

DIR = Path(__file__).resolve().parents[3] / "audio_fixtures" / "sip" / "rfc4475"

EXPECTED: dict[str, int | None] = {
    "wsinv": 481, "intmeth": 501, "esc01": 200, "escnull": 405, "esc02": 501, "lwsdisp": 200, "longreq": 200,
    "dblreq": 405, "semiuri": 200, "transports": 200, "mpart01": 405, "unreason": None, "noreason": None,
    "badinv01": 400, "clerr": 400, "ncl": 400, "scalar02": 400, "scalarlg": None, "quotbal": 400,
    "ltgtruri": 400, "lwsruri": 400, "lwsstart": 400, "trws": 400, "escruri": 400, "baddate": 200,
    "regbadct": 400, "badaspec": 400, "baddn": 400, "badvers": 505, "mismatch01": 400, "mismatch02": 501,
    "bigcode": None, "badbranch": 400, "insuf": 400, "unkscm": 416, "novelsc": 416, "unksm2": 405, "bext01": 420,
    "invut": 415, "regaut01": 405, "multi01": 400, "mcl01": 400, "bcast": None, "zeromf": 200, "cparam01": 405,
    "cparam02": 405, "regescrt": 405, "sdp01": 406, "inv2543": 200,
}


def manifest() -> list[dict[str, str]]:
    with open(DIR / "MANIFEST.tsv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def message(ident: str) -> bytes:
    return (DIR / f"{ident}.dat").read_bytes()
