"""Voice front-end for Mandarin citizen-service hotlines: SIP, call flows, queue and tickets."""

__version__ = "0.1.0"
