"""Subcommand groups of the `ivr` command, one module each."""
