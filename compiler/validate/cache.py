"""validate's results cached by content: a cluster's findings, and the fleet rules' findings, are not computed again
for inputs already validated.

- A cluster's schema and rule findings are keyed by its rendered text (sha256), the schemas (`Schemas.fingerprint`:
  the CRD schema files and manifests), its spec's bytes (which decide its Kubernetes version) or the
  `--kubernetes-version` given, and the compiler's fingerprint (code, rules, library versions).
- The fleet rules' findings are keyed by every cluster's rendered text, the app-of-apps and the add-on overlays
  it syncs (rendered), every spec and gitops.yaml, whether the specs were loaded strictly, and the fingerprint.

Entries live in STATE_DIR/validated/ beside the render cache and, like it, are saved by CI after each merge to
main and restored for pull requests (.github/workflows/render-cache.yml, ci.yml). A hit is exact; a corrupt or
unreadable entry counts as a miss. Findings never hold secret values (schemas.py redacts them), so an entry holds
nothing a log could not.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from compiler import fingerprint
from compiler.cache import DiskCache
from compiler.paths import VALIDATED_CACHE_DIR
from compiler.validate.model import Finding

_SCHEMA = "cave-validated-v1"
_FIELDS = tuple(f.name for f in fields(Finding))


def cluster_key(cluster: str, rendered_digest: str, schemas: str, spec: bytes, kubernetes_version: str | None) -> str:
    """The key of one cluster's schema and rule findings."""
    return fingerprint.key(_SCHEMA, "cluster", cluster, rendered_digest, schemas, spec, kubernetes_version or "")


def fleet_key(renders: Mapping[str, str], inputs: Mapping[str, bytes], strict: bool) -> str:
    """The key of the fleet rules' findings: `renders` (label → rendered digest: clusters, the app-of-apps, add-on
    overlays), `inputs` (every spec and gitops.yaml, build.check.inputs), `strict` (specs loaded as build does)."""
    parts: list[bytes | str] = [_SCHEMA, "fleet", "strict" if strict else "fleet-rules"]
    for label in sorted(renders):
        parts += [label, renders[label]]
    for name in sorted(inputs):
        parts += [name, inputs[name]]
    return fingerprint.key(*parts)


def specs_key(inputs: Mapping[str, bytes]) -> str:
    """The key of "every spec loads as build loads them" (cross-spec checks included) for these exact inputs: a
    run that reuses findings must not skip the refusal a strict load would give."""
    return fingerprint.key(_SCHEMA, "specs load", *[p for name in sorted(inputs) for p in (name, inputs[name])])


@dataclass(frozen=True)
class Entry:
    findings: list[Finding]
    kubernetes_version: str  # of the cluster; "" for the fleet


def _finding(data: Any) -> Finding | None:
    if not isinstance(data, dict) or set(data) != set(_FIELDS) or not all(isinstance(v, str) for v in data.values()):
        return None
    return Finding(**data)


@dataclass(frozen=True)
class ValidatedCache:
    """Findings on disk by content key (see the module docstring)."""

    store: DiskCache

    @classmethod
    def at(cls, root: Path) -> ValidatedCache:
        return cls(DiskCache(root / VALIDATED_CACHE_DIR, suffix=".json"))

    def get(self, key: str) -> Entry | None:
        text = self.store.get(key)
        if text is None:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("findings"), list):
            return None
        findings = [_finding(f) for f in data["findings"]]
        version = data.get("kubernetes_version")
        if not isinstance(version, str) or any(f is None for f in findings):
            return None
        return Entry([f for f in findings if f is not None], version)

    def put(self, key: str, label: str, findings: Iterable[Finding], kubernetes_version: str = "") -> None:
        """Store `findings` under `key`; `label` (the cluster, or "fleet") only tells a reader what the entry is."""
        data = {"label": label, "kubernetes_version": kubernetes_version, "findings": [f.as_dict() for f in findings]}
        self.store.put(key, json.dumps(data, sort_keys=True, ensure_ascii=False))

    def prune(self) -> None:
        self.store.prune()
