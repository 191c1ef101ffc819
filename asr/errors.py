"""The exceptions `asr` raises, in one tree.

    AsrError
    ├── EngineError                 recognition could not run
    │   ├── ModelLoadError          libvosk refused a model directory (also an asr.models.ModelError)
    │   └── DecoderClosedError      audio fed to an AsyncDecoder after finish() or cancel()
    └── VadConfigError              an endpointer setting out of range (also a ValueError)

Beside the tree, for historical reasons: `asr.models.ModelError` (catalogue, validation, resolution, installer;
`ModelNotFoundError`, `ModelInvalidError`) and `asr.audio.AudioFormatError` (a ValueError for unusable WAV files or
frames). Catch `(AsrError, ModelError, AudioFormatError)` to catch everything `asr` raises on purpose.
"""
from __future__ import annotations

from asr.model_files import ModelError

__all__ = ["AsrError", "EngineError", "ModelLoadError", "DecoderClosedError", "VadConfigError"]


class AsrError(Exception):
    """Base of the speech-recognition errors."""


class EngineError(AsrError):
    """Recognition could not run."""


class ModelLoadError(EngineError, ModelError):
    """libvosk could not load a model directory that looked complete."""


class DecoderClosedError(EngineError):
    """Audio was fed to an AsyncDecoder after finish() or cancel()."""


class VadConfigError(AsrError, ValueError):
    """An endpointer setting is out of range."""
