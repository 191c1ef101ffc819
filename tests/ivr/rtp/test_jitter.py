import numpy as np

from ivr.rtp.jitter import JitterBuffer


def pcm(start: int, n: int) -> bytes:
    """Samples whose values are their own position on the timeline (mod 30000), to check placement exactly."""
    return (np.arange(start, start + n) % 30000).astype("<i2").tobytes()


def play(buf: JitterBuffer, frames: int) -> list[bytes | None]:
    return [buf.pop() for _ in range(frames)]


def test_reorders_and_plays_after_prefill() -> None:
    buf = JitterBuffer(prefill_frames=2)
    assert buf.pop() is None
    for ts in (0, 320, 160, 480):  # 160 arrives late but before its playout
        buf.push(7, 1000 + ts, pcm(ts, 160))
    out = play(buf, 4)
    assert b"".join(out) == pcm(0, 640)  # type: ignore[arg-type]
    assert buf.stats.late == 0 and buf.stats.concealed_frames == 0


def test_30ms_packets_are_replayed_as_20ms_frames() -> None:
    buf = JitterBuffer(prefill_frames=2)
    for k in range(8):
        buf.push(1, 240 * k, pcm(240 * k, 240))
    assert b"".join(play(buf, 12)) == pcm(0, 1920)  # type: ignore[arg-type]


def test_late_packet_dropped_and_gap_concealed_with_silence() -> None:
    buf = JitterBuffer(prefill_frames=1)
    buf.push(1, 0, pcm(0, 160))
    buf.push(1, 320, pcm(320, 160))
    a, b, c = play(buf, 3)
    assert a == pcm(0, 160) and b == bytes(320) and c == pcm(320, 160)
    buf.push(1, 160, pcm(160, 160))  # arrives after its time
    assert buf.stats.late == 1 and buf.stats.concealed_frames == 1


def test_duplicates_ssrc_change_and_timestamp_wrap() -> None:
    buf = JitterBuffer(prefill_frames=1)
    base = 2**32 - 160
    buf.push(1, base, pcm(0, 160))
    buf.push(1, base, pcm(0, 160))
    buf.push(1, 0, pcm(160, 160))  # wrapped
    assert buf.stats.duplicate == 1
    assert b"".join(play(buf, 2)) == pcm(0, 320)  # type: ignore[arg-type]
    buf.push(2, 99999, pcm(5000, 160))  # new SSRC: the buffer restarts on the new stream
    assert buf.stats.resets == 1
    assert buf.pop() == pcm(5000, 160)


def test_depth_is_bounded_for_a_fast_sender() -> None:
    buf = JitterBuffer(prefill_frames=2, max_frames=5)
    for k in range(20):
        buf.push(1, 160 * k, pcm(160 * k, 160))
    assert buf.depth_samples <= 5 * 160
    assert buf.stats.overflow_dropped == 15
    assert buf.pop() == pcm(160 * 15, 160)


def test_timestamp_jump_resynchronises() -> None:
    buf = JitterBuffer(prefill_frames=1)
    buf.push(1, 0, pcm(0, 160))
    assert buf.pop() == pcm(0, 160)
    buf.push(1, 10_000_000, pcm(777, 160))
    assert buf.stats.resets == 1 and buf.pop() == pcm(777, 160)
