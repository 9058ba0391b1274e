"""Imports every fleet rule module, so that each registers its rules."""

from __future__ import annotations
