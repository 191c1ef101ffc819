"""The exceptions `asr` raises, in one tree: catch `AsrError` to catch everything `asr` raises on purpose.

    AsrError
    ├── AudioFormatError            a WAV file or frame that is not usable telephone audio (also a ValueError)
    ├── ModelError                  model catalogue, validation, resolution, installer
    │   ├── ModelNotFoundError      no model where one was asked for
    │   ├── ModelInvalidError       a directory that is not a usable Vosk model
    │   ├── DownloadError, ChecksumError, ArchiveError     (asr.download)
    │   └── WhisperModelError       (asr.whisper_model)
    ├── EngineError                 recognition could not run
    │   ├── ModelLoadError          libvosk refused a model directory (also a ModelError)
    │   └── DecoderClosedError      audio fed to an AsyncDecoder after finish() or cancel()
    ├── VadConfigError              an endpointer setting out of range (also a ValueError)
    └── ClassifierError             a text-classifier model file or training set that cannot be used (asr.textclass)
"""
from __future__ import annotations

__all__ = ["AsrError", "AudioFormatError", "ModelError", "ModelNotFoundError", "ModelInvalidError", "EngineError",
           "ModelLoadError", "DecoderClosedError", "VadConfigError"]


class AsrError(Exception):
    """Base of the speech-recognition errors."""


class AudioFormatError(AsrError, ValueError):
    """A WAV file that cannot be used as telephone audio (missing, corrupt, empty or of an unsupported format)."""


class ModelError(AsrError):
    """Base of the model catalogue, validation, resolution and installer errors."""


class ModelNotFoundError(ModelError):
    """No model where one was asked for; the message says how to get one."""


class ModelInvalidError(ModelError):
    """A directory that is not a usable Vosk model; the message names the missing or broken file."""


class EngineError(AsrError):
    """Recognition could not run."""


class ModelLoadError(EngineError, ModelError):
    """libvosk could not load a model directory that looked complete."""


class DecoderClosedError(EngineError):
    """Audio was fed to an AsyncDecoder after finish() or cancel()."""


class VadConfigError(AsrError, ValueError):
    """An endpointer setting is out of range."""
