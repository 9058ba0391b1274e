"""Render jobs: one kustomize process per overlay, in parallel, through the cache."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from compiler import progress
from compiler.cache import ParsedCache, text_key
from compiler.errors import UserError
from compiler.paths import overlay_rel
from compiler.render import kustomize
from compiler.render.cache import RenderCache, default_cache
from compiler.render.hashing import InputHasher
from compiler.render.manifests import parse_objects, sorted_objects
from compiler.render.sources import overlay_dir, select_clusters, worktree_source
from compiler.spec.yamlio import cached_parse

# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class RenderJob:
    """One overlay to render: a label for messages (usually the cluster), its directory and its hash."""

    label: str
    overlay: Path
    key: str
    cacheable: bool = True


@dataclass(frozen=True)
class Rendered:
    """Kustomize's output for one overlay, as text and (parsed on first use) as objects."""

    label: str
    key: str
    text: str
    from_cache: bool
    parsed: ParsedCache | None = field(default=None, compare=False, repr=False)

    @cached_property
    def objects(self) -> list[dict[str, Any]]:
        return cached_objects(self.text, self.label, self.parsed)

    @cached_property
    def digest(self) -> str:
        """sha256 of the text: what validate's results are keyed by."""
        return text_key(self.text)


def cached_objects(text: str, label: str, parsed: ParsedCache | None) -> list[dict[str, Any]]:
    """parse_objects(text), read from the parsed cache when it has the text (and stored there when not)."""
    objects: list[dict[str, Any]] = cached_parse(
        parsed, "rendered-objects", text, lambda: parse_objects(text, label),
        lambda value: isinstance(value, list) and all(isinstance(o, dict) for o in value))
    return objects


def object_set(rendered: Mapping[str, Rendered]) -> list[tuple[str, dict[str, Any]]]:
    """(cluster, object) of several clusters' renders, sorted by cluster, api group, kind, namespace, name."""
    return [(cluster, obj) for cluster in sorted(rendered) for obj in sorted_objects(rendered[cluster].objects)]


def from_cache(job: RenderJob, cache: RenderCache | None) -> Rendered | None:
    """The cached render of a job, if there is one (`from_cache` set)."""
    text = cache.get(job.key) if cache is not None and job.cacheable else None
    if text is None:
        return None
    return Rendered(job.label, job.key, text, from_cache=True, parsed=cache.parsed if cache is not None else None)


def _render_one(job: RenderJob, tool: kustomize.Kustomize, cache: RenderCache | None) -> Rendered:
    if hit := from_cache(job, cache):
        return hit
    text = tool.build(job.overlay, label=job.label)
    if cache is not None and job.cacheable:
        cache.put(job.key, text)
    return Rendered(job.label, job.key, text, from_cache=False, parsed=cache.parsed if cache is not None else None)


def render_jobs(
    jobs: Sequence[RenderJob],
    tool: kustomize.Kustomize,
    cache: RenderCache | None,
    workers: int | None = None,
    *,
    meanwhile: Callable[[], None] | None = None,
) -> list[Rendered]:
    """Render every job, one kustomize process per overlay in parallel; all failures in one UserError.
    `meanwhile`: see render_jobs_settled."""
    results = render_jobs_settled(jobs, tool, cache, workers, meanwhile=meanwhile)
    problems = [p for r in results if isinstance(r, UserError) for p in r.problems]
    if problems:
        raise UserError(problems)
    return [r for r in results if isinstance(r, Rendered)]


def render_jobs_settled(
    jobs: Sequence[RenderJob],
    tool: kustomize.Kustomize,
    cache: RenderCache | None,
    workers: int | None = None,
    *,
    meanwhile: Callable[[], None] | None = None,
) -> list[Rendered | UserError]:
    """Like render_jobs, but a failed job yields its UserError in its place instead of raising.

    `meanwhile` runs in this thread while kustomize renders (Python work that needs no render, e.g. a freshness
    check, then costs no wall time of its own on a machine kustomize cannot keep busy); if it raises, the jobs not
    started are cancelled and its exception propagates."""
    if not jobs:
        if meanwhile is not None:
            meanwhile()
        return []
    workers = max(1, min(len(jobs), workers or os.cpu_count() or 1))
    results: list[Rendered | UserError] = []
    with ThreadPoolExecutor(max_workers=workers) as pool, progress.stage("render", len(jobs)) as step:
        futures = [pool.submit(_render_one, job, tool, cache) for job in jobs]
        if meanwhile is not None:
            try:
                meanwhile()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        labels = {future: job.label for future, job in zip(futures, jobs, strict=True)}
        for done in as_completed(futures):
            step(labels[done])
        for future in futures:
            try:
                results.append(future.result())
            except UserError as err:
                results.append(err)
    if cache is not None and any(isinstance(r, Rendered) and not r.from_cache for r in results):
        cache.prune()
    return results


def make_job(hasher: InputHasher, label: str, overlay: str, directory: Path, kustomize_version: str) -> RenderJob:
    """A job rendering `directory`, keyed by the hash of `overlay` in the hasher's source."""
    remote = bool(hasher.inputs(overlay).remotes)  # remote inputs can change unseen: never cached
    return RenderJob(label, directory, hasher.overlay_hash(overlay, kustomize_version), cacheable=not remote)


def render_clusters(
    root: Path,
    clusters: Sequence[str],
    *,
    cache: RenderCache | None = None,
    use_cache: bool = True,
    workers: int | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> dict[str, Rendered]:
    """Rendered output of each cluster's overlay (parallel, cached under <root>/.cache by default); `meanwhile`
    runs while they render (render_jobs_settled)."""
    root = root.absolute()
    tool = kustomize.find(root)
    if use_cache and cache is None:
        cache = default_cache(root)
    hasher = InputHasher(worktree_source(root), parsed=cache.parsed if use_cache and cache is not None else None)
    jobs = [make_job(hasher, c, overlay_rel(c), overlay_dir(root, c), tool.version) for c in clusters]
    rendered = render_jobs(jobs, tool, cache if use_cache else None, workers, meanwhile=meanwhile)
    return {r.label: r for r in rendered}


def render_cluster(root: Path, cluster: str, *, use_cache: bool = True) -> Rendered:
    """Rendered output of one cluster (UserError listing known clusters when it does not exist)."""
    select_clusters(root, [cluster])
    return render_clusters(root, [cluster], use_cache=use_cache)[cluster]
