"""SourceLatch: which packets are the caller's, and when a new source may take a call over."""
from __future__ import annotations

from ivr.rtp.source import LEARN_PACKETS, SourceLatch

SDP = ("10.0.0.5", 40000)  # the address the caller's SDP named
NAT = ("198.51.100.7", 61000)  # where its RTP really comes from
STRANGER = ("203.0.113.66", 5004)


def stream(latch: SourceLatch, source: tuple[str, int], ssrc: int, seqs: range, first_tick: int = 0) -> list[bool]:
    """One packet per 20 ms tick."""
    return [latch.accept(source, ssrc, seq & 0xFFFF, first_tick + i) for i, seq in enumerate(seqs)]


def test_first_source_latches_and_the_sdp_address_is_accepted_beside_it() -> None:
    latch = SourceLatch(SDP)
    assert stream(latch, NAT, 0xA, range(100, 150)) == [True] * 50
    assert latch.latched == NAT
    assert latch.accept(SDP, 0xB, 7, 50) and latch.accept(SDP, 0xB, 8, 50)  # keys from the SDP's port
    assert latch.latched == NAT and latch.moves == 0


def test_stranger_cannot_take_over_while_the_caller_sends() -> None:
    latch = SourceLatch(SDP)
    accepted = []
    for tick in range(200):  # the caller every tick; the stranger a trickle, then a burst of 5 x LEARN_PACKETS
        accepted.append(latch.accept(NAT, 0xA, 1000 + tick, tick))
        if tick % 10 == 0:
            accepted.append(latch.accept(STRANGER, 0xBAD, 7000 + tick // 10, tick))
        if tick == 100:
            accepted += [latch.accept(STRANGER, 0xBAD, 8000 + k, tick) for k in range(5 * LEARN_PACKETS)]
    assert accepted.count(False) == 20 + 5 * LEARN_PACKETS
    assert latch.latched == NAT and latch.moves == 0


def test_random_packets_never_take_over_even_a_silent_call() -> None:
    latch = SourceLatch(SDP)
    latch.accept(NAT, 0xA, 1, 0)
    scan = [latch.accept(STRANGER, ssrc, seq, 100 + i)
            for i, (ssrc, seq) in enumerate(zip(range(1, 500, 7), range(3, 60000, 1201)))]
    sprayed = [latch.accept(("203.0.113.66", 5000 + i), 0xBAD, 1, 200 + i) for i in range(300)]
    assert not any(scan + sprayed) and latch.latched == NAT


def test_a_sustained_move_is_followed_after_learn_packets() -> None:
    latch = SourceLatch(SDP)
    stream(latch, NAT, 0xA, range(100, 150))
    moved = ("198.51.100.7", 61010)  # the caller's NAT binding changed: same stream, new port
    after = stream(latch, moved, 0xA, range(150, 170), first_tick=50)
    assert after == [False] * (LEARN_PACKETS - 1) + [True] * (20 - LEARN_PACKETS + 1)
    assert latch.latched == moved and latch.moves == 1
    assert not latch.accept(NAT, 0xA, 170, 70)  # the old source is now a stranger


def test_a_new_source_is_learned_with_lost_and_repeated_packets_and_wrapping_sequence_numbers() -> None:
    latch = SourceLatch(SDP)
    latch.accept(NAT, 0xA, 1, 0)
    seqs = [65530, 65530, 65532, 65533, 65535, 0, 0, 1, 4, 5, 6, 7, 9, 10]  # repeats, gaps of up to 3, a wrap
    results = [latch.accept(STRANGER, 0xC, seq, 20 + i) for i, seq in enumerate(seqs)]
    assert results.index(True) == 11 and latch.latched == STRANGER  # the 10th distinct advancing packet


def test_a_gap_or_another_ssrc_starts_the_learning_over() -> None:
    latch = SourceLatch(SDP)
    latch.accept(NAT, 0xA, 1, 0)
    assert not any(stream(latch, STRANGER, 0xC, range(0, LEARN_PACKETS - 1), first_tick=20))
    assert not latch.accept(STRANGER, 0xC, LEARN_PACKETS + 10, 40)  # a jump: count starts again
    assert not any(stream(latch, STRANGER, 0xD, range(0, LEARN_PACKETS - 1), first_tick=41))
    assert latch.latched == NAT


def test_a_new_offer_latches_afresh() -> None:
    latch = SourceLatch(SDP)
    latch.accept(NAT, 0xA, 1, 0)
    latch.reset(("10.0.0.6", 40002))
    assert latch.latched is None and latch.accept(STRANGER, 0xE, 9, 5) and latch.latched == STRANGER
