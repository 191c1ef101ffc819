"""Channels: one call's audio and control as the flow sees it, whatever carries the call.

- `base`: the `Channel` interface (lock-step 20 ms `exchange()`, hang-up, transfer, REFER) and its values;
- `sip`: a SIP/RTP call (`SipChannel`, made by `ivr.sip`);
- `file`: a simulated caller driven by a script of WAV files and keys, in virtual time (tests, `ivr simulate`);
- `local`: this machine's sound card, a desk softphone (`ivr call --local`).
"""
