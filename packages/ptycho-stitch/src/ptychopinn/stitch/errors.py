"""Errors raised by ptychopinn.stitch."""

from __future__ import annotations


class StitchError(ValueError):
    """Invalid input to stitching, alignment or metrics; the message names expected vs found."""
