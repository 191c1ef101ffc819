"""A local softphone: the machine's microphone and speaker as the caller's line, keys typed on the keyboard.

Audio runs at the system's 8 kHz, 20 ms frames through one duplex PortAudio stream (sounddevice; PyAudio when
sounddevice is missing); the stream's blocking read paces `exchange()` like a telephone line. Devices that do
not offer 8 kHz are opened at their own rate and resampled. With no sound device, opening fails with one
`SoundDeviceError` saying what to do.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from asr.audio import FRAME_BYTES, FRAME_MS, SAMPLE_RATE, SILENCE_FRAME
from ivr.channel.base import CallerHungUp, CallInfo, Channel, Inbound, TransferResult
from ivr.errors import IvrError

__all__ = ["SoundDeviceError", "AudioBackend", "DeviceInfo", "open_backend", "list_devices", "LocalChannel",
           "BACKENDS", "HANGUP_KEY"]

with warnings.catch_warnings():  # stdlib on 3.11/3.12 (see STACK-NOTES); a numpy path is needed for 3.13+
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

log = logging.getLogger(__name__)

BACKENDS = ("sounddevice", "pyaudio")
HANGUP_KEY = "q"
DTMF_KEYS = set("0123456789*#ABCD")
NO_DEVICE_HELP = ("plug in a headset, or on a server start a PulseAudio null sink "
                  "(see STACK-NOTES), or use `ivr simulate` with WAV files")


class SoundDeviceError(IvrError, RuntimeError):
    """No usable sound device or audio library; the message says what to do."""


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    inputs: int
    outputs: int
    default_rate: float


class AudioBackend(Protocol):
    name: str
    rate: int  # the device rate actually opened

    def exchange(self, out: bytes) -> bytes:
        """Write one 20 ms frame (8 kHz PCM16) and read the next 20 ms from the microphone (blocking)."""

    def close(self) -> None: ...


class _Resampler:
    """8 kHz frames <-> the device's rate (audioop.ratecv keeps its state across frames)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._up: Any = None  # audioop.ratecv state
        self._down: Any = None
        self._pending = b""

    def to_device(self, pcm: bytes) -> bytes:
        if self.rate == SAMPLE_RATE:
            return pcm
        out, self._up = audioop.ratecv(pcm, 2, 1, SAMPLE_RATE, self.rate, self._up)
        return out

    def from_device(self, pcm: bytes) -> bytes:
        if self.rate == SAMPLE_RATE:
            return pcm
        out, self._down = audioop.ratecv(pcm, 2, 1, self.rate, SAMPLE_RATE, self._down)
        self._pending += out
        frame, self._pending = self._pending[:FRAME_BYTES], self._pending[FRAME_BYTES:]
        return frame.ljust(FRAME_BYTES, b"\0")


class _SoundDevice:
    name = "sounddevice"

    def __init__(self, input_device: int | str | None, output_device: int | str | None) -> None:
        import sounddevice as sd

        self._sd = sd
        last: Exception | None = None
        for rate in _rates(lambda: sd.query_devices(output_device if output_device is not None else sd.default.device[1])["default_samplerate"]):  # noqa: E501
            try:
                self._stream = sd.RawStream(samplerate=rate, channels=1, dtype="int16",
                                            blocksize=rate * FRAME_MS // 1000, device=(input_device, output_device))
                self._stream.start()
                self.rate = rate
                break
            except Exception as exc:  # PortAudioError, ValueError for unknown devices
                last = exc
        else:
            raise SoundDeviceError(f"cannot open the sound device ({last}); {NO_DEVICE_HELP}")
        self._rs = _Resampler(self.rate)

    def exchange(self, out: bytes) -> bytes:
        self._stream.write(self._rs.to_device(out))
        data, _overflow = self._stream.read(self.rate * FRAME_MS // 1000)
        return self._rs.from_device(bytes(data))

    def close(self) -> None:
        self._stream.stop()
        self._stream.close()


class _PyAudio:
    name = "pyaudio"

    def __init__(self, input_device: int | str | None, output_device: int | str | None) -> None:
        import pyaudio

        self._pa = pyaudio.PyAudio()
        if isinstance(input_device, str) or isinstance(output_device, str):
            raise SoundDeviceError("the pyaudio backend takes device numbers (see `ivr call --list-devices`)")
        last: Exception | None = None

        def default_rate() -> float:
            index = output_device if output_device is not None else self._pa.get_default_output_device_info()["index"]
            return float(self._pa.get_device_info_by_index(index)["defaultSampleRate"])

        for rate in _rates(default_rate):
            try:
                self._stream = self._pa.open(format=pyaudio.paInt16, channels=1, rate=rate, input=True, output=True,
                                             frames_per_buffer=rate * FRAME_MS // 1000,
                                             input_device_index=input_device, output_device_index=output_device)
                self.rate = rate
                break
            except Exception as exc:  # OSError from PortAudio
                last = exc
        else:
            self._pa.terminate()
            raise SoundDeviceError(f"cannot open the sound device ({last}); {NO_DEVICE_HELP}")
        self._rs = _Resampler(self.rate)

    def exchange(self, out: bytes) -> bytes:
        self._stream.write(self._rs.to_device(out))
        data = self._stream.read(self.rate * FRAME_MS // 1000, exception_on_overflow=False)
        return self._rs.from_device(data)

    def close(self) -> None:
        self._stream.stop_stream()
        self._stream.close()
        self._pa.terminate()


def _rates(default_rate: Callable[[], float]) -> list[int]:
    rates = [SAMPLE_RATE]
    try:
        rates.append(int(default_rate()))
    except Exception:  # no default device: the 8 kHz attempt reports the error
        pass
    return list(dict.fromkeys(rates))


def list_devices(backend: str = "sounddevice") -> list[DeviceInfo]:
    """Every device the audio library sees (empty on a machine without sound)."""
    if backend == "sounddevice":
        import sounddevice as sd

        return [DeviceInfo(i, d["name"], d["max_input_channels"], d["max_output_channels"], d["default_samplerate"])
                for i, d in enumerate(sd.query_devices())]
    import pyaudio

    pa = pyaudio.PyAudio()
    try:
        return [DeviceInfo(i, d["name"], int(d["maxInputChannels"]), int(d["maxOutputChannels"]),
                           float(d["defaultSampleRate"]))
                for i in range(pa.get_device_count()) for d in [pa.get_device_info_by_index(i)]]
    finally:
        pa.terminate()


def open_backend(prefer: str = "sounddevice", input_device: int | str | None = None,
                 output_device: int | str | None = None) -> AudioBackend:
    """Open a duplex 8 kHz stream with `prefer`, else the other library; SoundDeviceError when nothing works."""
    if prefer not in BACKENDS:
        raise SoundDeviceError(f"unknown audio backend {prefer!r}; use one of {', '.join(BACKENDS)}")
    order = [prefer] + [b for b in BACKENDS if b != prefer]
    errors: list[str] = []
    for name in order:
        try:
            devices = list_devices(name)
        except (ImportError, OSError) as exc:
            errors.append(f"{name}: {exc}")
            continue
        if not any(d.inputs for d in devices) or not any(d.outputs for d in devices):
            raise SoundDeviceError(f"no sound device: {name} finds no microphone and speaker; {NO_DEVICE_HELP}")
        cls = _SoundDevice if name == "sounddevice" else _PyAudio
        backend = cls(input_device, output_device)
        log.info("local softphone: %s at %d Hz", name, backend.rate)
        return backend
    raise SoundDeviceError("no audio library: " + "; ".join(errors) + " (pip install sounddevice, and apt-get install "
                           "libportaudio2)")


class LocalChannel(Channel):
    """The person at the keyboard is the caller. Keys are pushed with `press()` (thread-safe); `q` hangs up."""

    def __init__(self, backend: AudioBackend, info: CallInfo | None = None) -> None:
        self.info = info or CallInfo(call_id="local-1", caller="local")
        self._backend = backend
        self._keys: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._t = 0
        self.ended = False
        self.transfers: list[str] = []
        self.played_ms = 0  # prompt audio sent to the speaker
        self.heard_ms = 0  # microphone audio received

    def press(self, keys: str) -> None:
        """Keys typed by the person (any thread); `q` hangs up."""
        for ch in keys:
            if ch.lower() == HANGUP_KEY:
                self._keys.put(HANGUP_KEY)
            elif ch.upper() in DTMF_KEYS:
                self._keys.put(ch.upper())

    async def exchange(self, out: bytes | None) -> Inbound:
        if self.ended:
            raise CallerHungUp(self.info.call_id)
        digits: list[str] = []
        while not self._keys.empty():
            k = self._keys.get()
            if k == HANGUP_KEY:
                self.ended = True
                raise CallerHungUp(self.info.call_id)
            digits.append(k)
        audio = await asyncio.get_running_loop().run_in_executor(None, self._backend.exchange, out or SILENCE_FRAME)
        if out is not None:
            self.played_ms += FRAME_MS
        self.heard_ms += FRAME_MS
        t, self._t = self._t, self._t + FRAME_MS
        return Inbound(audio[:FRAME_BYTES].ljust(FRAME_BYTES, b"\0"), t, tuple(digits))

    async def hangup(self) -> None:
        self.ended = True

    async def transfer(self, target: str) -> TransferResult:
        self.transfers.append(target)
        self.ended = True
        return TransferResult(ok=True, target=target, reason="local softphone: the call would go to a person here")

    def close(self) -> None:
        self._backend.close()

