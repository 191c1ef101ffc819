"""G.711 codecs (PCMU µ-law, PCMA A-law) for 8 kHz PCM16."""
from ivr.codecs.g711 import alaw_decode, alaw_encode, decoder, encoder, ulaw_decode, ulaw_encode

__all__ = ["ulaw_encode", "ulaw_decode", "alaw_encode", "alaw_decode", "encoder", "decoder"]
