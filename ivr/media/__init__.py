"""The media layer between calls and the flow: 20 ms frames in and out of a Channel.

- `callio`: `CallIO`, play with barge-in, listen for keys or speech (VAD endpointer, streaming recogniser), record;
- `recording`: crash-safe WAV recordings written as the caller speaks;
- `bridge`: the media bridge of a B2BUA, relaying frames between a caller and an operator;
- `hold`: hold music, and ringing an operator's phone while the caller holds (the shapes of placing a call and
  of bridging, which the queue takes injected).
"""
