"""Offline speech recognition for telephone audio: VAD endpointing, Vosk engine, Mandarin text, menu intents.

`asr` is a library: it never imports `ivr`. Audio enters as 8 kHz mono PCM16 in 20 ms frames
(see `asr.audio`); only the engine resamples, at its own boundary. Errors: see `asr.errors`.

Main entry points: `asr.vad.Endpointer` (+ `VadConfig` per prompt), `asr.engine.VoskEngine`, `asr.whisper.WhisperEngine` (whole utterances and recordings),
`asr.stream.AsyncDecoder` (decoded most-behind first by `asr.stream.DecodeScheduler`), `asr.load` (decode lag,
admission to live recognition), `asr.results.Transcript`, `asr.text.normalize`, `asr.intents`, `asr.model_files`.
"""
