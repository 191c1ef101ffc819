"""The hotline wired together: what `ivr simulate`, `ivr call --local` and `ivr serve` run.

- `service`: settings in, the flow, prompts, recogniser and ticket store out; `handle_call(channel)` for any Channel;
- `queueing`: the queue inside a server (the call queue, operators' states, callbacks, the desk, the status);
- `sip_endpoint`: the SIP server with signals and draining;
- `console_thread`: the operator console on a thread and loop of its own;
- `server`: `serve_hotline`, a running node: SIP, the flow on every call, the queue and the console.
"""
