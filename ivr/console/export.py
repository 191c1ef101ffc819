"""The ticket list as CSV, streamed: cells a spreadsheet will not run as formulas, UTF-8 with a byte-order mark."""
from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator

from fastapi.responses import Response, StreamingResponse

from ivr.tickets.model import TicketFilter
from ivr.tickets.store import TicketStore

__all__ = ["csv_response", "csv_rows", "CSV_COLUMNS"]

CSV_COLUMNS = ("number", "created_at", "status", "kind", "category", "department", "district", "urgency",
               "transcription", "audio_ms", "caller", "text")


def _cell(value: object) -> str:
    """Text that a spreadsheet will not run as a formula."""
    s = "" if value is None else str(value)
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s


def csv_response(store: TicketStore, flt: TicketFilter) -> Response:
    """The matching tickets as a CSV download. The header row and the first rows are made before the answer
    starts, so that a failing query is an error answer, never a 200 with an empty body."""
    rows = csv_rows(store, flt)
    first = next(rows)
    return StreamingResponse(itertools.chain([first], rows), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="tickets.csv"'})


def csv_rows(store: TicketStore, flt: TicketFilter) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    buf.write("\ufeff")  # so spreadsheet programs read the Chinese as UTF-8
    writer.writerow(CSV_COLUMNS)
    for n, row in enumerate(store.iter_rows(flt)):
        writer.writerow([_cell(row.created_at.isoformat() if c == "created_at" else getattr(row, c))
                         for c in CSV_COLUMNS])
        if n % 200 == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()
