"""Errors the evaluation commands turn into clear messages; kept light so the CLI can catch them unloaded."""

from __future__ import annotations


class JudgeEndpointError(RuntimeError):
    """The judge endpoint could not be used; the message says why (status, body or reply)."""
