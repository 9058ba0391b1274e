"""A validation finding."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from compiler.render.manifests import object_id

Obj = dict[str, Any]


@dataclass(frozen=True, order=True)
class Finding:
    """One problem in a rendered cluster: which object, which field, which rule, what to do."""

    cluster: str
    kind: str
    namespace: str
    name: str
    path: str
    rule: str
    message: str
    where: str = ""  # `environments/<cluster>.yaml:LINE:COL` when a spec value is the cause

    def __str__(self) -> str:
        if self.where:
            return f"{self.where}: {self.cluster}: {self.message}"
        obj = f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"
        where = f"{obj}: {self.path}" if self.path else obj
        return f"{self.cluster}: {where}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def object_finding(cluster: str, obj: Mapping[str, Any], path: str, rule: str, message: str) -> Finding:
    _, kind, namespace, name = object_id(obj)
    return Finding(cluster, kind, namespace, name, path, rule, message)
