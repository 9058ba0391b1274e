"""Fill the TODO-... placeholders of a new spec as a person would: one value per placeholder, every value new."""

from __future__ import annotations

import re
import zlib
from typing import Any

import yaml

TOKEN = re.compile(r"\bTODO-[A-Za-z0-9_.-]*")


def positions(text: str) -> list[tuple[int, int, str]]:
    """(line, col, placeholder) of every placeholder written as a value or key (not in a comment), 1-based."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        code = line.split(" #", 1)[0] if not line.lstrip().startswith("#") else ""
        out += [(n, m.start() + 1, m.group(0)) for m in TOKEN.finditer(code)]
    return out


def values(text: str, name: str) -> dict[str, str]:
    """A valid value for each placeholder of the spec of cluster `name`, none of them used by another cluster."""
    data: Any = yaml.safe_load(text)
    seed = zlib.crc32(name.encode()) % 50
    ident = name.replace("-", "_")
    out: dict[str, str] = {}
    zones = (data.get("dns") or {}).get("zones") or {}
    hostname_zones = {h["hostname"]: h["zone"] for h in (data.get("dns") or {}).get("extra_hostnames") or []}
    for i, token in enumerate(dict.fromkeys(m for _, _, m in positions(text))):
        what = token.removeprefix("TODO-").lower().replace("_", "-")
        if token == "TODO-static-ip":
            value = f"198.51.100.{100 + seed}"
        elif token.endswith("redis-host"):
            value = f"10.{200 + seed}.{i}.4"
        elif token == "TODO-argocd-server":
            value = f"https://{name}.k8s.example.org"
        elif token == "TODO-argocd-name":
            value = f"daf-{name}"
        elif token.endswith("-project"):
            value = f"{name}-{what.split('-')[0]}-proj"[:30]
        elif token == "TODO-dns-domain":
            value = f"{name}.example.org"
        elif token == "TODO-tls-email":
            value = f"ops@{name}.example.org"
        elif token == "TODO-image-source":
            value = f"precomputed://gs://{name}-imagery/em"
        elif token.startswith("TODO-hostname-"):
            zone = hostname_zones.get(token, "")
            value = f"{name}-{i}.{zones.get(zone, 'example.org')}"
        elif token.startswith("TODO-datastack-"):
            value = f"{ident}_ds{i}"
        else:
            value = f"{name}-{what}"
        out[token] = value
    return out


def fill(text: str, name: str) -> str:
    """The spec with every placeholder replaced by its value (the same value wherever it is written)."""
    chosen = values(text, name)
    return TOKEN.sub(lambda m: chosen[m.group(0)] if m.group(0) in chosen else m.group(0), text)
