"""What the tests share: the repository root, fakes of the network edges (Google, GitHub), helpers."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
