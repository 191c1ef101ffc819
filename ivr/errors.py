"""The exceptions `ivr` raises on purpose, in one tree: catch `IvrError` to catch all of them. Each keeps the built-in
base it had (a bad value is also a ValueError), so code that catches those still does.

    IvrError
    ├── ConfigError                 a setting that cannot be used; names the key (config)
    ├── CallerHungUp                the caller has gone (channel.base)
    │   └── HungUpRinging           ... while an operator's phone rang (media.hold)
    ├── ScriptError                 a simulated caller's script (channel.file)
    ├── SoundDeviceError            no usable sound card (channel.local)
    ├── SipParseError               a SIP message we cannot use; .status is the answer (sip.message)
    ├── SdpError                    an unusable session description (sip.sdp)
    │   └── SdpNegotiationError     nothing in it we can answer: 488
    ├── RtpError, PcapError         a bad RTP packet, a capture we cannot read (rtp.packet, rtp.pcap)
    ├── NoFreePortError             no RTP port free (rtp.session)
    ├── DtmfEventError              an unusable telephone-event payload (dtmf.rfc4733)
    ├── FlowError                   a call flow that does not load; file:line: node: reason (flow.loader)
    ├── KbError                     a knowledge base that does not load; file: entry: reason (kb.model)
    ├── TicketNotFound              no such ticket (tickets.model)
    ├── TicketEditError             an operator change that cannot be made (tickets.model)
    ├── CatalogueError, GazetteerError, ClassifierError     triage's data and model (triage)
    ├── QueueError                  the call queue (queue.model)
    │   ├── QueueFull, UnknownCall, UnknownAgent
    │   ├── CallbackNotFound        (queue.callbacks)
    │   └── AgentStateError         a state that cannot be set by hand (queue.directory)
    ├── UserError                   a console user that cannot be added or changed (console.users)
    ├── SignInRefused               too many sign-ins, or too many failures (console.signin)
    └── LoginRequired               a console page asked for without a session: to the sign-in page (console.deps)
"""
from __future__ import annotations

__all__ = ["IvrError"]


class IvrError(Exception):
    """Base of every exception `ivr` raises on purpose."""
