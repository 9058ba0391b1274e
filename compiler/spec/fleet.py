"""Topology of the fleet: which global cluster a local uses, the locals of a global, selecting clusters.

The one place that answers "which global serves this local" (a local's `global_server` is a hostname of
a global spec) and that words the "unknown cluster" problem.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence

from compiler.errors import Problem, UserError
from compiler.paths import ENV_DIR
from compiler.spec.derive import served_hostnames
from compiler.spec.model import ClusterSpec, GlobalCluster, LocalCluster


def served_by_globals(specs: Mapping[str, ClusterSpec]) -> dict[str, str]:
    """hostname -> name of the global cluster that serves it, for every global spec."""
    return {host: name for name, spec in sorted(specs.items()) if isinstance(spec, GlobalCluster)
            for host in served_hostnames(spec)}


def global_of(spec: ClusterSpec, specs: Mapping[str, ClusterSpec]) -> str | None:
    """Name of the global cluster whose hostnames include the local's `global_server` (None: not in this repo)."""
    return served_by_globals(specs).get(spec.global_server) if isinstance(spec, LocalCluster) else None


def serving_global(name: str, specs: Mapping[str, ClusterSpec]) -> str | None:
    """The global cluster whose auth and info services cluster `name` uses: itself for a global one."""
    spec = specs[name]
    return name if isinstance(spec, GlobalCluster) else global_of(spec, specs)


def locals_of(global_name: str, specs: Mapping[str, ClusterSpec]) -> list[str]:
    """Names of the local clusters that use the global cluster `global_name`, sorted."""
    return [name for name, spec in sorted(specs.items()) if global_of(spec, specs) == global_name]


def unknown_cluster_message(name: str, known: Iterable[str]) -> str:
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    listing = ", ".join(known) or "none"
    return f"unknown cluster {name!r} ({hint}known: {listing}; a cluster is a file {ENV_DIR}/<name>.yaml)"


def select(requested: Sequence[str], known: Iterable[str], *, path: str = "") -> list[str]:
    """The requested clusters in the order given (all known ones, sorted, when none is requested).

    UserError naming each unknown one, with a did-you-mean.
    """
    known = sorted(known)
    unknown = [c for c in dict.fromkeys(requested) if c not in known]
    if unknown:
        raise UserError([Problem(path, message=unknown_cluster_message(c, known)) for c in unknown])
    return list(dict.fromkeys(requested)) if requested else known
