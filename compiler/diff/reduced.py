"""Reduced renders: diff only the bases a change touched, never hiding a change.

When the only inputs of a cluster that differ between the two sides are files of service bases
(base/<svc>/) that the overlay lists directly, both sides are rendered from a reduced copy of the
overlay's kustomization: `resources:` keep the changed bases and the overlay's own files, the
generators and components stay, and patches that cannot match a kept object are dropped (they are
no-ops there, and dropping them often spares kustomize its OpenAPI schema). Of a kept base whose own
kustomization did not change, only the changed resource files are rendered (its kustomization is rewritten to
list just those). Both sides are rendered by one kustomize process: each side's reduced overlay sits under a
wrapper kustomization that only sets a sentinel namespace, which is stripped again after checking that it
landed on metadata.namespace only; several clusters' pairs share a process (`batches`), each side of each
cluster under its own numbered sentinel. The objects left out (other bases, a kept base's unchanged files)
are identical on both sides by construction; they are counted from their files and reported unchanged.
Every precondition that could make the reduced render differ from the corresponding objects of the full
render is checked first (see Planner); when one fails, or the reduced render fails, the cluster is rendered
in full as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.catalog import SERVICE_LABEL
from compiler.diff.documents import META_RE, document_stub, split_documents
from compiler.diff.model import HASHED_KINDS, NO_SERVICE, Obj
from compiler.paths import OVERLAYS, overlay_rel
from compiler.render.hashing import InputHasher, overlay_references
from compiler.render.sources import FsSource, GitSource, Source
from compiler.spec.yamlio import dump_yaml, load_manifests

FULL_RENDER_ENV = "CAVE_GITOPS_FULL_RENDER"
_REDUCED_SCHEMA = "cave-reduced-v1"
_SIDE_NS = {"old": "cave-gitops-reduced-old-3f9c1a", "new": "cave-gitops-reduced-new-3f9c1a"}
_BATCH_NS = "cave-gitops-reduced-{index}-{side}-3f9c1a"
_BATCH_RE = re.compile(r"cave-gitops-reduced-(\d+)-(old|new)-3f9c1a")
_NEVER_REDUCED = ("components", "ingress")
_OVERLAY_KEYS = frozenset(
    {"apiVersion", "kind", "labels", "commonLabels", "commonAnnotations", "resources", "components", "images",
     "generatorOptions", "configMapGenerator", "secretGenerator", "patches"}
)  # fmt: skip
_KEPT_BASE_KEYS = frozenset({"apiVersion", "kind", "labels", "commonLabels", "commonAnnotations", "resources"})
_DROPPED_BASE_KEYS = _KEPT_BASE_KEYS | {"configMapGenerator", "secretGenerator", "generatorOptions"}
_COMPONENT_KEYS = frozenset({"apiVersion", "kind", "labels", "commonLabels", "commonAnnotations", "images", "patches"})
_LITERAL_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


class _NotReducible(Exception):
    """A precondition of a reduced render failed (the message says which)."""


def _need(condition: object, reason: str) -> None:
    if not condition:
        raise _NotReducible(reason)


@dataclass(frozen=True)
class Plan:
    """How to render one cluster reduced: the kept bases, the reduced kustomization, the files it uses."""

    cluster: str
    kept: tuple[str, ...]
    kfile: str  # the overlay's kustomization file (same name on both sides)
    text: str  # the reduced kustomization
    files: Mapping[str, tuple[str, ...]]  # side → files the reduced render reads (kfile excluded)
    unrendered: tuple[tuple[str, str, str], ...]  # (kind, name, service) of the objects left out
    key: str
    # a kept base whose kustomization is unchanged and only some resource files changed renders just those:
    # its kustomization file → the reduced text (the same on both sides, and for every cluster)
    rewrites: Mapping[str, str] = field(default_factory=dict)
    same: frozenset[str] = frozenset()  # files identical on both sides: the old side takes the working tree's


def _service_labels(doc: Mapping[str, Any], where: str) -> str | None:
    """The service label a kustomization's labels/commonLabels set on all its objects, if any."""
    found: list[str] = []
    for entry in doc.get("labels") or []:
        pairs = entry.get("pairs") if isinstance(entry, Mapping) else None
        _need(isinstance(pairs, Mapping), f"{where}: labels entry without pairs")
        assert isinstance(pairs, Mapping)
        if SERVICE_LABEL in pairs:
            found.append(str(pairs[SERVICE_LABEL]))
    common = doc.get("commonLabels") or {}
    _need(isinstance(common, Mapping), f"{where}: commonLabels is not a mapping")
    if SERVICE_LABEL in common:
        found.append(str(common[SERVICE_LABEL]))
    _need(len(set(found)) <= 1, f"{where}: {SERVICE_LABEL} set twice")
    return found[0] if found else None


def _matches(pattern: Any, value: str) -> bool:
    return pattern is None or bool(re.fullmatch(str(pattern), value))


class Planner:
    """Decides, per cluster, whether a reduced render is exact, and plans it; memoises shared work."""

    def __init__(self, old: Source, new: Source, hashers: Mapping[str, InputHasher],
                 version: str) -> None:  # fmt: skip
        self.sources = {"old": old, "new": new}
        self.hashers = hashers
        self.version = version
        self._objects: dict[tuple[str, str], list[Obj]] = {}
        self._texts: dict[tuple[str, str], str] = {}
        self._dropped: dict[str, tuple[tuple[str, str, str], ...] | str] = {}
        self._patches: dict[str, list[Any] | None] = {}
        # a kept base's kustomization file → its reduced text, or None where the whole base is kept: materialise
        # writes one tree per side for every plan, so no two plans may want the same base differently
        self._rewrites: dict[str, str | None] = {}

    # -- reading

    def _text(self, side: str, rel: str) -> str:
        key = (side, rel)
        if key not in self._texts:
            try:
                self._texts[key] = self.sources[side].read(rel).decode()
            except (OSError, KeyError, UnicodeDecodeError):
                raise _NotReducible(f"{rel}: cannot read it") from None
        return self._texts[key]

    def _file_objects(self, side: str, rel: str) -> list[Obj]:
        key = (side, rel)
        if key not in self._objects:
            try:
                docs = [d for d in load_manifests(self._text(side, rel)) if d is not None]
            except Exception:  # any YAML error: kustomize reports it in a full render
                raise _NotReducible(f"{rel}: not YAML") from None
            _need(all(isinstance(d, dict) for d in docs), f"{rel}: a document is not a mapping")
            self._objects[key] = docs
        return self._objects[key]

    def _parsed(self, text: str) -> list[Any] | None:
        """The documents of a patch (None when it is not YAML), memoised: clusters share most patches."""
        if text not in self._patches:
            try:
                self._patches[text] = [d for d in load_manifests(text) if d is not None]
            except Exception:  # not YAML: the full render says why
                self._patches[text] = None
        return self._patches[text]

    def _doc(self, side: str, directory: str) -> Mapping[str, Any]:
        kfile = self.sources[side].kustomization(directory)
        _need(kfile, f"{directory}: no kustomization")
        assert kfile is not None
        doc = self.hashers[side]._doc(kfile)
        _need(isinstance(doc, Mapping), f"{kfile}: not a mapping")
        assert isinstance(doc, Mapping)
        return doc

    def _simple_dir(self, side: str, directory: str, allowed: frozenset[str]) -> tuple[Mapping[str, Any], list[str]]:
        """A kustomization using only `allowed` fields whose resources are files inside it."""
        doc = self._doc(side, directory)
        extra = sorted(set(doc) - allowed)
        _need(not extra, f"{directory}: uses {', '.join(extra)}")
        files = []
        for ref in doc.get("resources") or []:
            _need(isinstance(ref, str), f"{directory}: odd resources entry")
            target = posixpath.normpath(posixpath.join(directory, ref))
            _need(target.startswith(directory + "/") and self.sources[side].is_file(target),
                  f"{directory}: resource {ref} is not a file inside it")  # fmt: skip
            files.append(target)
        return doc, files

    # -- identities

    def _ids(self, side: str, files: Sequence[str]) -> list[tuple[str, str]]:
        out = []
        for rel in files:
            for obj in self._file_objects(side, rel):
                meta = obj.get("metadata") or {}
                _need(isinstance(meta, Mapping) and not meta.get("namespace"), f"{rel}: object with a namespace")
                out.append((str(obj.get("kind") or ""), str(meta.get("name") or "")))
        return out

    def _unrendered(self, directory: str) -> tuple[tuple[str, str, str], ...]:
        """(kind, name, service) of every object a base left out contributes to the full render."""
        if directory not in self._dropped:
            try:
                self._dropped[directory] = self._count(directory)
            except _NotReducible as err:
                self._dropped[directory] = str(err)
        found = self._dropped[directory]
        _need(not isinstance(found, str), str(found))
        assert not isinstance(found, str)
        return found

    def _file_entries(self, files: Sequence[str], forced: str | None) -> list[tuple[str, str, str]]:
        """(kind, name, service) of the objects in these files of a base whose kustomization sets `forced`."""
        out: list[tuple[str, str, str]] = []
        for rel in files:
            for obj in self._file_objects("new", rel):
                meta = obj.get("metadata") or {}
                _need(isinstance(meta, Mapping) and not meta.get("namespace"), f"{rel}: object with a namespace")
                own = (meta.get("labels") or {}).get(SERVICE_LABEL) if isinstance(meta.get("labels"), Mapping) else None
                service = forced or (str(own) if own else None)
                out.append((str(obj.get("kind") or ""), str(meta.get("name") or ""), service or NO_SERVICE))
        return out

    def _count(self, directory: str) -> tuple[tuple[str, str, str], ...]:
        doc, files = self._simple_dir("new", directory, _DROPPED_BASE_KEYS)
        forced = _service_labels(doc, directory)
        out = self._file_entries(files, forced)
        options = doc.get("generatorOptions") or {}
        _need(isinstance(options, Mapping), f"{directory}: odd generatorOptions")
        common = options.get("labels") or {}
        for key, kind in (("configMapGenerator", "ConfigMap"), ("secretGenerator", "Secret")):
            for gen in doc.get(key) or []:
                _need(isinstance(gen, Mapping) and gen.get("behavior", "create") == "create"
                      and not gen.get("namespace") and isinstance(gen.get("name"), str),
                      f"{directory}: a generator merges, replaces or sets a namespace")  # fmt: skip
                own = ((gen.get("options") or {}).get("labels") or {}).get(SERVICE_LABEL, common.get(SERVICE_LABEL))
                service = forced or (str(own) if own else None)
                out.append((kind, str(gen["name"]), service or NO_SERVICE))
        return tuple(out)

    def _own_service(self, side: str, rel: str, kind: str, name: str) -> str:
        for obj in self._file_objects(side, rel):
            meta = obj.get("metadata") or {}
            if str(obj.get("kind") or "") == kind and str(meta.get("name") or "") == name:
                labels = meta.get("labels")
                own = labels.get(SERVICE_LABEL) if isinstance(labels, Mapping) else None
                return str(own) if own else NO_SERVICE
        return NO_SERVICE

    # -- patches

    def _patch_text(self, directory: str, patch: Mapping[str, Any]) -> str:
        if isinstance(patch.get("patch"), str):
            return str(patch["patch"])
        _need(isinstance(patch.get("path"), str), f"{directory}: patch without patch or path")
        return self._text("new", posixpath.normpath(posixpath.join(directory, str(patch["path"]))))

    def _check_patch(self, directory: str, patch: Any) -> str:
        """The patch's text, after checking it cannot rename, delete or relabel an object by service."""
        _need(isinstance(patch, Mapping), f"{directory}: odd patches entry")
        _need(not patch.get("options"), f"{directory}: a patch has options")
        text = self._patch_text(directory, patch)
        escaped = SERVICE_LABEL.replace("/", "~1")  # as a JSON pointer writes it
        _need(SERVICE_LABEL not in text and escaped not in text and "$patch" not in text,
              f"{directory}: a patch touches {SERVICE_LABEL} or uses $patch")  # fmt: skip
        if not any(word in text for word in ("namespace", "labels", "metadata/", '"metadata"', "/metadata")):
            return text  # nothing below can apply; spares parsing most patches
        docs = self._parsed(text)
        _need(docs is not None, f"{directory}: a patch is not YAML")
        for doc in docs or []:
            # The pair render sets each side's namespace: no patch may set one, nor drop labels wholesale.
            meta = doc.get("metadata") if isinstance(doc, dict) else None
            _need(not isinstance(meta, dict) or ("namespace" not in meta and ("labels" not in meta or meta["labels"])),
                  f"{directory}: a patch sets a namespace or clears labels")  # fmt: skip
            for op in doc if isinstance(doc, list) else []:
                paths = [str(op.get(k) or "") for k in ("path", "from")] if isinstance(op, dict) else []
                _need(not any(p in ("/metadata", "/metadata/labels") or p.startswith("/metadata/namespace")
                              for p in paths), f"{directory}: a JSON patch touches metadata")  # fmt: skip
        return text

    def _keep_patch(self, patch: Mapping[str, Any], text: str, kept_ids: set[tuple[str, str]],
                    dropped_ids: set[tuple[str, str]]) -> bool:  # fmt: skip
        """Whether an overlay patch can match a kept object (kept when unsure: keeping is always exact)."""
        target = patch.get("target")
        if target is None:  # a strategic merge patch naming its own target
            stub = document_stub(text) if "\n---" not in text and not text.startswith("---") else None
            docs = [stub] if stub is not None else self._parsed(text)
            if docs is None or len(docs) != 1 or not isinstance(docs[0], dict):
                return True
            if not isinstance(docs[0].get("metadata"), dict):
                return True
            ident = (str(docs[0].get("kind") or ""), str(docs[0]["metadata"].get("name") or ""))
            _need(not docs[0]["metadata"].get("namespace"), "a patch names a namespace")
            if ident in kept_ids:
                return True
            # Dropping it must not hide a patch that matches nothing (an error in the full render).
            _need(ident in dropped_ids, f"patch for {ident[0]}/{ident[1]} matches no object")
            return False
        _need(isinstance(target, Mapping), "odd patch target")
        kind, name = target.get("kind"), target.get("name")
        if kind is None and name is None:
            return True
        if any(p is not None and not _LITERAL_RE.match(str(p)) for p in (kind, name)):
            return True
        return any(_matches(kind, k) and _matches(name, n) for k, n in kept_ids)

    # -- the plan

    def plan(self, cluster: str) -> Plan | str:
        """A reduced render of the cluster, or why there is none."""
        try:
            return self._plan(cluster)
        except _NotReducible as err:
            return str(err)

    def _plan(self, cluster: str) -> Plan:
        overlay = overlay_rel(cluster)
        inputs = {side: self.hashers[side].inputs(overlay) for side in ("old", "new")}
        _need(not inputs["old"].remotes and not inputs["new"].remotes, "remote inputs")
        old_files, new_files = inputs["old"].files, inputs["new"].files
        changed = sorted(r for r in set(old_files) | set(new_files) if old_files.get(r) != new_files.get(r))
        kfile = self.sources["new"].kustomization(overlay)
        _need(kfile and kfile == self.sources["old"].kustomization(overlay), "overlay kustomization renamed")
        assert kfile is not None
        doc = self._doc("new", overlay)
        _need(doc == self._doc("old", overlay), "the overlay changed")
        extra = sorted(set(doc) - _OVERLAY_KEYS)
        _need(not extra, f"{overlay}: uses {', '.join(extra)}")
        _need(_service_labels(doc, overlay) is None, f"{overlay}: sets {SERVICE_LABEL} on every object")
        resources = doc.get("resources") or []
        _need(all(isinstance(r, str) for r in resources), f"{overlay}: odd resources entry")
        targets = [posixpath.normpath(posixpath.join(overlay, r)) for r in resources]
        _need(len(set(targets)) == len(targets), f"{overlay}: a resource listed twice")
        dirs = [t for t in targets if self.sources["new"].is_dir(t) or self.sources["old"].is_dir(t)]
        local = [t for t in targets if t not in dirs]
        _need(all(t.startswith(overlay + "/") for t in local), f"{overlay}: a resource file outside the overlay")
        kept: list[str] = []
        for rel in changed:
            parts = rel.split("/")
            _need(len(parts) >= 3 and parts[0] == "base" and parts[1] not in _NEVER_REDUCED,
                  f"{rel} changed (not a service base)")  # fmt: skip
            base = f"base/{parts[1]}"
            _need(base in dirs, f"{rel} changed ({base} is not a resource of the overlay)")
            if base not in kept:
                kept.append(base)
        _need(kept, "no base changed")
        kept_set = set(kept)
        # The kept bases, on both sides: plain files, no generators, names, namespaces or cross-object fields.
        # Of a kept base whose kustomization did not change, only the changed files are rendered; the objects of
        # its other files are identical on both sides, like those of a base left out, and are counted the same way.
        only = {base: self._changed_files(base, [r for r in changed if r.startswith(base + "/")]) for base in kept}
        kept_ids: set[tuple[str, str]] = set()
        texts: list[str] = []  # what may end up in a rendered object
        for side in ("old", "new"):
            for base in kept:
                _, base_files = self._simple_dir(side, base, _KEPT_BASE_KEYS)
                rendered_files = only[base] or base_files
                kept_ids |= set(self._ids(side, rendered_files))
                texts += [self._text(side, rel) for rel in rendered_files]
        # Everything else is left out and counted from its files: other bases, the overlay's own resource
        # files, and (below) generators nothing rendered refers to. It is identical on both sides.
        unrendered: list[tuple[str, str, str]] = []
        rewrites: dict[str, str] = {}
        for base in kept:
            rewrite = self._rewrite(base, only[base])
            if rewrite is not None:
                kfile_base, rewritten, left = rewrite
                rewrites[kfile_base] = rewritten
                unrendered += left
        dropped = [d for d in dirs if d not in kept_set]
        for base in dropped:
            unrendered += self._unrendered(base)
        for rel in local:
            for kind, name in self._ids("new", [rel]):
                unrendered.append((kind, name, self._own_service("new", rel, kind, name)))
        # Components act on every object; they stay, provided they act object by object.
        checked = [overlay, *dropped]
        for ref in doc.get("components") or []:
            _need(isinstance(ref, str), f"{overlay}: odd components entry")
            component = posixpath.normpath(posixpath.join(overlay, ref))
            cdoc, _ = self._simple_dir("new", component, _COMPONENT_KEYS)
            _need(_service_labels(cdoc, component) is None, f"{component}: sets {SERVICE_LABEL} on every object")
            for patch in cdoc.get("patches") or []:
                texts.append(self._check_patch(component, patch))
            checked.append(component)
        # Nothing but the overlay's `resources:` may point into a kept base.
        for directory in checked:
            ddoc = self._doc("new", directory)
            own = set(targets) if directory == overlay else set()
            for ref in overlay_references(ddoc):
                target = posixpath.normpath(posixpath.join(directory, ref))
                inside = any(target == k or target.startswith(k + "/") for k in kept)
                _need(not inside or target in own, f"{directory} refers to {target}")
        overlay_patches = [(p, self._check_patch(overlay, p)) for p in doc.get("patches") or []]
        mentions = [*texts, *(f"{json.dumps(p.get('target'), sort_keys=True)}\n{t}" for p, t in overlay_patches)]
        # Generators stay when a rendered object or any patch names them (their hash suffix is then rewritten
        # into the references); the others are counted.
        options = doc.get("generatorOptions") or {}
        _need(isinstance(options, Mapping) and isinstance(options.get("labels") or {}, Mapping),
              f"{overlay}: odd generatorOptions")  # fmt: skip
        generators: dict[str, list[Any]] = {}
        for key, kind in (("configMapGenerator", "ConfigMap"), ("secretGenerator", "Secret")):
            for gen in doc.get(key) or []:
                _need(isinstance(gen, Mapping) and isinstance(gen.get("name"), str) and not gen.get("namespace")
                      and gen.get("behavior", "create") == "create",
                      f"{overlay}: a generator without a name, with a namespace or merging")  # fmt: skip
                name = str(gen["name"])
                if any(name in text for text in mentions):
                    generators.setdefault(key, []).append(gen)
                    kept_ids.add((kind, name))
                    continue
                label = ((gen.get("options") or {}).get("labels") or {}).get(SERVICE_LABEL)
                label = label or (options.get("labels") or {}).get(SERVICE_LABEL)
                unrendered.append((kind, name, str(label) if label else NO_SERVICE))
        dropped_ids = {(k, n) for k, n, _ in unrendered}
        clash = sorted(kept_ids & dropped_ids)
        _need(not clash, f"{clash[0][0]}/{clash[0][1]} is both rendered and left out" if clash else "")
        # Overlay patches that cannot match a rendered object are dropped.
        patches = []
        for patch, text in overlay_patches:
            if self._keep_patch(patch, text, kept_ids, dropped_ids):
                patches.append(patch)
                texts.append(text)
        # A generated name gets its hash suffix (and references to it rewritten) only where it is rendered.
        generated = {n for k, n, _ in unrendered if k in HASHED_KINDS}
        _need(not any(name in text for name in generated for text in texts),
              "a rendered object may refer to a ConfigMap/Secret generated by a base left out")  # fmt: skip
        reduced = dict(doc)
        reduced["resources"] = [r for r, t in zip(resources, targets, strict=True) if t in kept_set]
        for key in ("configMapGenerator", "secretGenerator"):
            if key in doc:
                reduced[key] = generators.get(key, [])
        if "patches" in doc:
            reduced["patches"] = patches
        if "images" in doc:  # an image entry no rendered text names cannot change anything
            images = doc["images"]
            _need(isinstance(images, list) and all(isinstance(i, Mapping) for i in images), f"{overlay}: odd images")
            reduced["images"] = [i for i in images if not i.get("name") or any(str(i["name"]) in t for t in texts)]
        text = dump_yaml(reduced)
        files: dict[str, tuple[str, ...]] = {}
        h = hashlib.sha256(f"{_REDUCED_SCHEMA}\0kustomize {self.version}\0{overlay}\0{kept}\0{text}\0".encode())
        for rel, rewritten in sorted(rewrites.items()):
            h.update(f"rewrite {rel}\0{rewritten}\0".encode())
        partial = {base for base, files_kept in only.items() if files_kept}
        for side in ("old", "new"):
            used = sorted(
                rel
                for rel, digest in inputs[side].files.items()
                if digest != "missing" and rel != kfile and rel not in rewrites
                and not any(rel.startswith(d + "/") for d in dropped)
                and not any(rel.startswith(b + "/") and rel not in (only[b] or ()) for b in partial)
            )  # fmt: skip
            files[side] = tuple(used)
            for rel in used:
                h.update(f"{side} {rel}\0{inputs[side].files[rel]}\0".encode())
        same = frozenset(rel for rel in files["old"] if inputs["old"].files[rel] == inputs["new"].files.get(rel))
        return Plan(cluster, tuple(kept), kfile, text, files, tuple(unrendered), h.hexdigest(), rewrites, same)

    def _changed_files(self, base: str, changed: Sequence[str]) -> tuple[str, ...] | None:
        """The changed resource files of a kept base, when they are all it needs to render (its kustomization
        unchanged, every changed file one of its resources); None: render the whole base."""
        kfile = self.sources["new"].kustomization(base)
        if not kfile or kfile != self.sources["old"].kustomization(base) or kfile in changed:
            return None
        _, files = self._simple_dir("new", base, _KEPT_BASE_KEYS)
        if not changed or not set(changed) <= set(files):
            return None
        return tuple(rel for rel in files if rel in changed)

    def _rewrite(self, base: str, files: tuple[str, ...] | None) -> tuple[str, str, list[tuple[str, str, str]]] | None:
        """For a base rendered in part: (its kustomization file, the reduced text listing only `files`, the
        (kind, name, service) of its other objects); None when the whole base is rendered. Every plan must
        want a base the same way (one tree per side is written for all of them)."""
        kfile = self.sources["new"].kustomization(base)
        assert kfile is not None  # _simple_dir checked it
        if files is None:
            _need(self._rewrites.setdefault(kfile, None) is None, f"{base} is rendered in part for another cluster")
            return None
        doc, all_files = self._simple_dir("new", base, _KEPT_BASE_KEYS)
        reduced = dict(doc)
        reduced["resources"] = [r for r in doc.get("resources") or []
                                if posixpath.normpath(posixpath.join(base, r)) in files]  # fmt: skip
        text = dump_yaml(reduced)
        _need(self._rewrites.setdefault(kfile, text) == text, f"{base} is rendered otherwise for another cluster")
        left = self._file_entries([rel for rel in all_files if rel not in files], _service_labels(doc, base))
        return kfile, text, left


def materialise(plans: Sequence[Plan], old: Source, new: FsSource, tmp: Path) -> dict[str, Path]:
    """Write both sides' files of the planned reduced renders under tmp; the pair directory per cluster.

    Files are hard-linked from the working tree where they can be (copied where not): the new side's, and the old
    side's that are identical to them; only the files that differ come out of git. Nothing is ever written through
    a link: the files written here (reduced kustomizations, wrappers) are fresh files."""
    roots = {"old": tmp / "old", "new": tmp / "new"}
    differ = sorted({rel for plan in plans for rel in plan.files["old"] if rel not in plan.same})
    # git's export first: it writes into files it creates, and must never meet a link to the working tree
    if isinstance(old, GitSource):
        old.export(differ, roots["old"])
    else:
        assert isinstance(old, FsSource)
        for rel in differ:
            _place(old.root / rel, roots["old"] / rel)
    for rel in sorted({rel for plan in plans for rel in plan.files["new"]}):
        _place(new.root / rel, roots["new"] / rel)
    for rel in sorted({rel for plan in plans for rel in plan.same}):
        _place(new.root / rel, roots["old"] / rel)  # never over an exported file: _place leaves what is there
    for side in roots:
        for plan in plans:
            for rel, text in plan.rewrites.items():  # the same text for every plan (Planner._rewrite)
                _write_fresh(roots[side] / rel, text)
    pairs: dict[str, Path] = {}
    for plan in plans:
        pair = tmp / "pairs" / plan.cluster
        for side, root in roots.items():
            _write_fresh(root / plan.kfile, plan.text)
            _wrapper(pair / side, _SIDE_NS[side], root / OVERLAYS / plan.cluster)
        (pair / "kustomization.yaml").write_text("resources:\n- old\n- new\n")
        pairs[plan.cluster] = pair
    return pairs


def _place(source: Path, dest: Path) -> None:
    """dest as a hard link to source (read only, by kustomize), or a copy where links cannot be made."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, dest)
    except FileExistsError:
        pass  # placed already: the same file, for another plan
    except OSError:  # another filesystem, or links not allowed
        shutil.copyfile(source, dest)


def _write_fresh(path: Path, text: str) -> None:
    """Write a new file at path, replacing (never writing through) whatever link was there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.write_text(text)


def _wrapper(directory: Path, namespace: str, overlay: Path) -> None:
    """A kustomization that only puts the overlay's objects in the sentinel namespace."""
    directory.mkdir(parents=True, exist_ok=True)
    target = Path(os.path.relpath(overlay, directory)).as_posix()
    (directory / "kustomization.yaml").write_text(f"namespace: {namespace}\nresources:\n- {json.dumps(target)}\n")


def batches(clusters: Sequence[str], tmp: Path, size: int) -> list[tuple[Path, tuple[str, ...]]]:
    """Several clusters' pair renders in one kustomize process (the process's start and its OpenAPI schema
    are most of a small render's cost): each side of each cluster under its own sentinel namespace, numbered by
    its place in the batch; split_batch takes them apart. Clusters materialised under tmp (materialise); a group of
    one is its own pair directory."""
    out: list[tuple[Path, tuple[str, ...]]] = []
    for start in range(0, len(clusters), max(1, size)):
        group = tuple(clusters[start : start + max(1, size)])
        if len(group) == 1:
            out.append((tmp / "pairs" / group[0], group))
            continue
        directory = tmp / "batches" / str(len(out))
        entries = []
        for index, cluster in enumerate(group):
            for side in ("old", "new"):
                _wrapper(directory / f"{index}-{side}", _BATCH_NS.format(index=index, side=side),
                         tmp / side / OVERLAYS / cluster)  # fmt: skip
                entries.append(f"- {index}-{side}\n")
        (directory / "kustomization.yaml").write_text("resources:\n" + "".join(entries))
        out.append((directory, group))
    return out


def split_batch(text: str, clusters: Sequence[str]) -> dict[str, str] | None:
    """Each cluster's pair render (as materialise's pair directory renders it) out of a batch render; None when
    a document does not name exactly one numbered sentinel (then render the clusters one by one)."""
    docs: dict[str, list[str]] = {cluster: [] for cluster in clusters}
    for doc in split_documents(text):
        found = _BATCH_RE.findall(doc)
        if len(found) != 1 or int(found[0][0]) >= len(clusters):
            return None
        index, side = found[0]
        docs[clusters[int(index)]].append(_BATCH_RE.sub(_SIDE_NS[side], doc))
    return {cluster: "---\n".join(texts) for cluster, texts in docs.items()}


def split_pair(text: str) -> dict[str, str] | None:
    """Each side's documents of a pair render with the sentinel namespace removed (None: not as expected)."""
    sides: dict[str, list[str]] = {"old": [], "new": []}
    for doc in split_documents(text):
        hits = [side for side, ns in _SIDE_NS.items() if ns in doc]
        if len(hits) != 1 or doc.count(_SIDE_NS[hits[0]]) != 1:
            return None  # on a cluster-scoped object, or set somewhere else too (subjects, webhooks)
        line = f"  namespace: {_SIDE_NS[hits[0]]}\n"
        meta = META_RE.search(doc + "\n")
        if meta is None or line not in meta[1]:
            return None
        sides[hits[0]].append(doc.replace(line, "", 1))
    return {side: "---\n".join(docs) for side, docs in sides.items()}
