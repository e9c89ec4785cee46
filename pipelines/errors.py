"""Errors the jobs report in one line (no trace): problems with the user's input, not with the code."""

from __future__ import annotations


class InputError(ValueError):
    """Input that the job cannot use (missing, empty, wrong schema); the message says which."""
