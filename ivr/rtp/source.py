"""Where a call's RTP comes from and goes back to: symmetric latching with strict re-learning.

The first valid packet latches its source (RFC 4961 symmetric RTP: we send to where the caller really sends from,
which behind a NAT is not the address in its SDP). After that a packet is the caller's when it comes from the
latched source or from the address the SDP named (a phone or tester may send its audio from one port and its keys
from the SDP's). Another source takes over only after a sustained move, as Asterisk's strict-RTP learning and
FreeSWITCH's auto-adjust do: `LEARN_PACKETS` consecutive packets of one SSRC with advancing sequence numbers while
the latched source has been silent for as many 20 ms ticks. So a stranger injecting packets while the caller is
sending, in a trickle or in a burst, never takes the call over, nor does a scan of random packets; a caller whose
NAT binding moved is followed within about 200 ms.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

__all__ = ["SourceLatch", "LEARN_PACKETS", "Source"]

logger = logging.getLogger(__name__)

Source = tuple[str, int]
#: packets (and 20 ms ticks of silence from the latched source) a new source needs to take over
LEARN_PACKETS = 10
_MAX_SEQ_STEP = 3  # sequence numbers may skip a lost packet or two
_MAX_CANDIDATES = 8  # sources being learned at once (a spray of sources starts the learning over)


@dataclass
class _Candidate:
    ssrc: int
    seq: int
    count: int


class SourceLatch:
    """Decides, packet by packet, whether a source is the caller's; `latched` is where we send."""

    def __init__(self, expected: Source) -> None:
        self.expected = expected  # the address and port of the SDP
        self.latched: Source | None = None
        self.moves = 0  # times a sustained move re-latched the call
        self._latched_tick = 0
        self._candidates: dict[Source, _Candidate] = {}

    def reset(self, expected: Source) -> None:
        """A new offer/answer named another address: latch afresh on the next packet."""
        self.expected = expected
        self.latched = None
        self._candidates.clear()

    def accept(self, source: Source, ssrc: int, seq: int, tick: int) -> bool:
        """Whether a valid RTP packet from `source` belongs to the call, at media clock tick `tick`."""
        if self.latched is None or source == self.latched:
            self.latched = source
            self._latched_tick = tick
            self._candidates.clear()
            return True
        last = self._candidates.get(source)
        if last is not None and last.ssrc == ssrc and (seq - last.seq) & 0xFFFF <= _MAX_SEQ_STEP:
            if seq != last.seq:  # (a repeat, such as an RFC 4733 end packet, neither counts nor breaks the run)
                last.seq, last.count = seq, last.count + 1
        else:
            if last is None and len(self._candidates) >= _MAX_CANDIDATES:
                self._candidates.clear()
            last = self._candidates[source] = _Candidate(ssrc, seq, 1)
        if last.count >= LEARN_PACKETS and tick - self._latched_tick >= LEARN_PACKETS:
            logger.info("RTP source moved from %s:%d to %s:%d after %d packets", *self.latched, *source, last.count)
            self.latched, self._latched_tick = source, tick
            self.moves += 1
            self._candidates.clear()
            return True
        return source == self.expected
