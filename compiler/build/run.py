"""`build` as one call: validate every spec, write the overlays they compile to, remember them as fresh, keep the
editors' spec schema current. `build()` returns what happened; the CLI (commands/build.py) only prints it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from compiler.build import overlays, specschema
from compiler.build.check import inputs, remember
from compiler.spec.fleet import select
from compiler.spec.load import load_all

HAND_EDIT_NOTE = ("note: build owns overlays/ and overwrites changes made there by hand: make them in the spec "
                  "(environments/<cluster>.yaml) or the templates instead")


@dataclass(frozen=True)
class BuildResult:
    """What one build did. `written` maps each overlay replaced to its file count; `hand_edits` maps each file
    build replaced or deleted that it had not written to what was done to it ("replaced hand-edited", ...)."""

    written: dict[str, int] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    hand_edits: dict[str, str] = field(default_factory=dict)
    schema_written: str | None = None  # the line saying schemas/spec.schema.json was written, if it was
    abandoned_argocd: str | None = None  # why overlays/argocd/ is left behind, if it is
    clusters: int = 0  # cluster overlays compiled (overlays/argocd/ not counted)

    def messages(self) -> list[tuple[bool, str]]:
        """The lines build prints, in order, each with whether it goes to stderr."""
        out = [(False, f"wrote overlays/{name}/ ({n} files)") for name, n in self.written.items()]
        out += [(False, f"removed overlays/{name}/ (its spec is gone)") for name in self.removed]
        out += [(True, f"{what} {path}") for path, what in self.hand_edits.items()]
        if self.hand_edits:
            out.append((True, HAND_EDIT_NOTE))
        if self.schema_written:
            out.append((False, self.schema_written))
        if self.abandoned_argocd:
            out.append((True, f"note: {self.abandoned_argocd}"))
        if not self.written and not self.removed:
            out.append((True, f"overlays up to date ({self.clusters} cluster{'s' if self.clusters != 1 else ''})"))
        return out


def selected(known: list[str], wanted: list[str]) -> list[str] | None:
    """The clusters asked for, or None for all; unknown names are a user error."""
    return sorted(select(wanted, known)) if wanted else None


def build(root: Path, clusters: list[str], *, wait: bool = True) -> BuildResult:
    """Build the overlays of `clusters` (all when empty; then overlays whose spec is gone are removed, found under
    the lock after any repair). Any spec problem raises before anything is written."""
    before = inputs(root)  # what the specs were before loading: only what is unchanged after is remembered
    loaded = load_all(root)
    chosen = selected(sorted(loaded), clusters)
    trees = overlays.expected_all(root, loaded, chosen)
    done = overlays.write(root, trees, keep=None if chosen else set(loaded), wait=wait)
    remember(root, trees, before)  # render, validate and diff then know these overlays are fresh at once
    return BuildResult(
        written={name: len(trees[name]) for name in done.written},
        removed=list(done.removed),
        hand_edits=dict(done.hand_edits),
        schema_written=specschema.write(root),  # schemas/spec.schema.json, the editors' schema of a spec
        abandoned_argocd=overlays.abandoned_argocd(root),
        clusters=len([t for t in trees if t != overlays.ARGOCD]),
    )
