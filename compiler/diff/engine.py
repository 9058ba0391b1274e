"""Diff of the working tree against a git ref: which clusters to render, reduced or full, and the result."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from compiler import git
from compiler.build.check import stale_at
from compiler.build.status import VersionChange, pin_changes, version_changes
from compiler.diff import reduced as reduction
from compiler.diff.argocd import diff_argocd
from compiler.diff.compare import add_unrendered, comparable_objects, diff_cluster
from compiler.diff.model import ClusterDiff, DiffResult, RenderReport
from compiler.errors import Problem, UserError
from compiler.paths import ENV_DIR, OVERLAYS, SETTINGS_FILE, overlay_rel, spec_rel
from compiler.render import kustomize
from compiler.render.cache import RenderCache, default_cache
from compiler.render.hashing import InputHasher, Inputs, watch_sets
from compiler.render.jobs import Rendered, RenderJob, from_cache, make_job, render_jobs_settled
from compiler.render.sources import AsCommitted, FsSource, GitSource, Source, clusters_in, worktree_source
from compiler.spec.fleet import unknown_cluster_message
from compiler.spec.yamlio import YAMLError, load_plain

# --------------------------------------------------------------------------- the pipeline


def diff_sources(
    old: Source,
    new: FsSource,
    clusters: Sequence[str] = (),
    *,
    cache: RenderCache | None = None,
    workers: int | None = None,
    reduced: bool | None = None,
    meanwhile: Callable[[], None] | None = None,
    batch: int | None = None,
    changed: frozenset[str] | None = None,
) -> tuple[list[ClusterDiff], RenderReport]:
    """Diff the clusters of two trees (the old one may be a git commit, exported only where a
    cluster's content hash differs); renders of both sides run in parallel. A cluster whose only
    changed inputs are service bases is rendered reduced (compiler/diff/reduced.py) unless `reduced` is False
    or $CAVE_GITOPS_FULL_RENDER is set; the RenderReport says what was done. `meanwhile` is called while the
    renders run (render_jobs_settled), or before returning when none are needed. `batch`: pair renders per kustomize
    process (default: enough to keep every worker busy, at most PAIR_BATCH). `changed`: the paths where `new` may
    differ from `old` (git.changed_paths), when known: a cluster none of whose inputs they touch is unchanged without
    reading its files."""
    if reduced is None:
        reduced = not os.environ.get(reduction.FULL_RENDER_ENV)
    report = RenderReport()
    old_known = clusters_in(old)
    new_known = _clusters_now(new, old_known, changed) if changed is not None else clusters_in(new)
    wanted = sorted(set(old_known) | set(new_known))
    if clusters:
        missing = [c for c in clusters if c not in wanted]
        if missing:
            raise UserError([Problem(overlay_rel(c), message=unknown_cluster_message(c, wanted)) for c in missing])
        wanted = sorted(set(clusters))
    tool = kustomize.find(new.root)
    parsed = cache.parsed if cache is not None else None
    old_hasher, new_hasher = InputHasher(old, parsed=parsed), InputHasher(new, parsed=parsed)

    def key(hasher: InputHasher, cluster: str) -> str:
        return hasher.overlay_hash(overlay_rel(cluster), tool.version)

    result: dict[str, ClusterDiff] = {}
    pending: list[str] = []
    watch: dict[str, Inputs] = {}
    if changed is not None:  # what each cluster reads at the base: from the last diff against it, when there was one
        both = [overlay_rel(c) for c in wanted if c in old_known and c in new_known]
        commit = f"{old.commit}:{old.prefix}" if isinstance(old, GitSource) else None
        watch = watch_sets(old_hasher, both, commit, parsed)

    def same(cluster: str) -> bool:
        if not (cluster in old_known and cluster in new_known):
            return False
        inputs = watch.get(overlay_rel(cluster)) or old_hasher.inputs(overlay_rel(cluster))
        if inputs.remotes:  # remote inputs: always render
            return False
        if changed is not None and not inputs.touched_by(changed):
            return True  # nothing it reads differs: no need to hash the working tree's side
        return key(old_hasher, cluster) == key(new_hasher, cluster)

    for cluster in wanted:
        if same(cluster):
            result[cluster] = ClusterDiff(cluster, "unchanged", rendered=False)
        else:
            pending.append(cluster)
    plans: dict[str, reduction.Plan] = {}
    planner = reduction.Planner(old, new, {"old": old_hasher, "new": new_hasher}, tool.version)
    for cluster in pending:
        if not (cluster in old_known and cluster in new_known):
            continue
        plan = planner.plan(cluster) if reduced else "reduced renders disabled"
        if isinstance(plan, str):
            report.full[cluster] = plan
        else:
            plans[cluster] = plan

    def full_jobs(names: Sequence[str]) -> dict[tuple[str, str], RenderJob]:
        return {
            (side, cluster): make_job(
                old_hasher if side == "old" else new_hasher,
                overlay_rel(cluster) + (f" at {old.label}" if side == "old" else ""),
                overlay_rel(cluster),
                Path(OVERLAYS) / cluster,  # relative until we know where the side's files are
                tool.version,
            )
            for cluster in names
            for side, known in (("old", old_known), ("new", new_known))
            if cluster in known
        }

    pair_jobs = {
        c: RenderJob(f"overlays/{c} (reduced render)", Path("pairs") / c, p.key) for c, p in plans.items()
    }
    jobs = full_jobs([c for c in pending if c not in plans])
    rendered = {slot: hit for slot, job in jobs.items() if (hit := from_cache(job, cache))}
    pairs = {c: hit for c, job in pair_jobs.items() if (hit := from_cache(job, cache))}
    problems: list[Problem] = []
    with tempfile.TemporaryDirectory(prefix="cave-diff-base-") as tmp:
        # Only renders the cache does not have need the old side's files on disk.
        pair_misses = [c for c in pair_jobs if c not in pairs]
        pair_dir = reduction.materialise([plans[c] for c in pair_misses], old, new, Path(tmp) / "reduced")

        def full_todo(slots: Sequence[tuple[str, str]], where: Path) -> list[RenderJob]:
            old_dir = _checkout(old, old_hasher, [c for side, c in slots if side == "old"], where)
            return [
                dataclasses.replace(jobs[s], overlay=(old_dir if s[0] == "old" else new.root) / jobs[s].overlay)
                for s in slots
            ]

        misses = [slot for slot in jobs if slot not in rendered]
        # Pair renders go several to a kustomize process; a batch that fails or does not split cleanly is
        # rendered again one pair at a time, so that each cluster gets its own outcome.
        groups = reduction.batches(pair_misses, Path(tmp) / "reduced", _batch_size(len(pair_misses), workers, batch))
        todo = [dataclasses.replace(pair_jobs[group[0]], overlay=directory) if len(group) == 1
                else RenderJob(_batch_label(group), directory, "", cacheable=False)
                for directory, group in groups]  # fmt: skip
        todo += full_todo(misses, Path(tmp) / "full")
        outcomes = render_jobs_settled(todo, tool, cache, workers, meanwhile=meanwhile)
        one_by_one: list[tuple[str, Rendered | UserError]] = []
        batched: set[str] = set()  # pairs split out of a batch: its one process is counted, not each
        for (_, group), outcome in zip(groups, outcomes[: len(groups)], strict=True):
            if len(group) == 1:
                one_by_one.append((group[0], outcome))
                continue
            report.renders += 1  # the batch's kustomize process, whatever came of it
            texts = reduction.split_batch(outcome.text, group) if isinstance(outcome, Rendered) else None
            if texts is None:
                singles = [dataclasses.replace(pair_jobs[c], overlay=pair_dir[c]) for c in group]
                one_by_one += zip(group, render_jobs_settled(singles, tool, cache, workers), strict=True)
                continue
            batched |= set(group)
            for c in group:
                if cache is not None:
                    cache.put(pair_jobs[c].key, texts[c])
                pairs[c] = Rendered(pair_jobs[c].label, pair_jobs[c].key, texts[c], from_cache=False,
                                    parsed=cache.parsed if cache is not None else None)  # fmt: skip
        for c, single in one_by_one:
            if isinstance(single, Rendered):
                pairs[c] = single
            else:
                report.full[c] = f"reduced render failed: {'; '.join(p.message for p in single.problems)}"
        for slot, outcome in zip(misses, outcomes[len(groups) :], strict=True):
            if isinstance(outcome, Rendered):
                rendered[slot] = outcome
            else:
                problems.extend(outcome.problems)
        split: dict[str, dict[str, str]] = {}
        for c, pair in pairs.items():
            sides = reduction.split_pair(pair.text)
            if sides is None:
                report.full[c] = "the sentinel namespace landed elsewhere than metadata.namespace"
            else:
                split[c] = sides
        fallback = [c for c in plans if c not in split]
        if fallback:  # render these in full after all (rare: a precondition kustomize saw differently)
            extra = full_jobs(fallback)
            jobs |= extra
            rendered |= {slot: hit for slot, job in extra.items() if (hit := from_cache(job, cache))}
            slots = [slot for slot in extra if slot not in rendered]
            outcomes = render_jobs_settled(full_todo(slots, Path(tmp) / "fallback"), tool, cache, workers)
            for slot, outcome in zip(slots, outcomes, strict=True):
                if isinstance(outcome, Rendered):
                    rendered[slot] = outcome
                else:
                    problems.extend(outcome.problems)
    if problems:
        raise UserError(problems)
    report.count([*rendered.values(), *(pair for c, pair in pairs.items() if c not in batched)])
    for cluster, sides in split.items():
        report.reduced[cluster] = plans[cluster].kept
        old_objects, new_objects = comparable_objects(sides["old"], sides["new"])
        result[cluster] = add_unrendered(diff_cluster(cluster, old_objects, new_objects), plans[cluster].unrendered)
    for cluster in wanted:
        if cluster not in result:
            before, after = rendered.get(("old", cluster)), rendered.get(("new", cluster))
            old_objects, new_objects = comparable_objects(
                before.text if before else None, after.text if after else None
            )
            result[cluster] = diff_cluster(cluster, old_objects, new_objects)
    return [result[c] for c in wanted], report


def _clusters_now(new: FsSource, old_known: Sequence[str], changed: frozenset[str]) -> list[str]:
    """clusters_in(new), looking only at the clusters whose spec or overlay may differ from the old side's (a
    cluster is a spec file and an overlay kustomization: neither can appear or vanish unlisted by git)."""
    maybe: set[str] = set()
    for path in changed:
        top, _, rest = path.partition("/")
        if top == OVERLAYS and rest:
            name = rest.split("/", 1)[0]
        elif top == ENV_DIR and rest.endswith(".yaml") and "/" not in rest:
            name = rest[: -len(".yaml")]
        elif path in (f"{OVERLAYS}/", f"{ENV_DIR}/"):
            return clusters_in(new)  # a whole folder of them untracked or ignored: look at every one
        else:
            continue
        maybe.add(name)
    now = [c for c in maybe if new.is_file(spec_rel(c)) and new.kustomization(overlay_rel(c))]
    return sorted({c for c in old_known if c not in maybe} | set(now))


PAIR_BATCH = 16  # pair renders per kustomize process at most (batched, a pair costs ~0.08 CPU-s; alone, ~0.28)


def _batch_size(pairs: int, workers: int | None, batch: int | None) -> int:
    """Pair renders per process: the given size, else as many as keeps each worker with about three batches."""
    if batch is not None:
        return max(1, batch)
    return max(1, min(PAIR_BATCH, -(-pairs // (3 * (workers or os.cpu_count() or 1)))))


def _batch_label(group: Sequence[str]) -> str:
    return f"overlays/{group[0]} … {group[-1]} ({len(group)} reduced renders)"


def reduced_plans(root: Path, base: str | None = None) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """Which changed clusters `diff` would render reduced (→ bases kept) and which in full (→ why); renders
    nothing (for benchmarks and debugging)."""
    root = root.absolute()
    _, commit = git.resolve_base(root, base)
    old, new = GitSource(root, commit), worktree_source(root)
    version = kustomize.find(root).version
    hashers = {"old": InputHasher(old), "new": InputHasher(new)}
    planner = reduction.Planner(old, new, hashers, version)
    reduced: dict[str, tuple[str, ...]] = {}
    full: dict[str, str] = {}
    for cluster in sorted(set(clusters_in(old)) & set(clusters_in(new))):
        overlay = overlay_rel(cluster)
        if hashers["old"].overlay_hash(overlay, version) == hashers["new"].overlay_hash(overlay, version):
            continue
        plan = planner.plan(cluster)
        if isinstance(plan, str):
            full[cluster] = plan
        else:
            reduced[cluster] = plan.kept
    return reduced, full


def _checkout(source: Source, hasher: InputHasher, clusters: Sequence[str], tmp: Path) -> Path:
    """A directory holding the source's files for rendering these clusters (exported from git if needed)."""
    if isinstance(source, FsSource):
        return source.root
    assert isinstance(source, GitSource)
    rels: set[str] = set()
    for cluster in clusters:
        inputs = hasher.inputs(overlay_rel(cluster))
        rels |= {rel for rel, digest in inputs.files.items() if digest != "missing"}
    source.export(sorted(rels), tmp)
    return tmp


def diff_ref(
    root: Path,
    base: str | None = None,
    clusters: Sequence[str] = (),
    *,
    cache: RenderCache | None = None,
    use_cache: bool = True,
    workers: int | None = None,
    reduced: bool | None = None,
    meanwhile: Callable[[], None] | None = None,
    batch: int | None = None,
    changed_paths: bool = True,
) -> DiffResult:
    """Diff the working tree at root against a git ref (default: merge-base with origin/main, else HEAD).

    `meanwhile` (the diff command's freshness check) runs exactly once, while the renders run: its exception, if
    any, is this function's. `changed_paths`: ask git which paths may differ from the ref (git.changed_paths) and
    neither read nor hash what they do not touch (clusters, specs, overlays/argocd/); False reads everything."""
    root = root.absolute()
    done = False

    def once() -> None:
        nonlocal done
        if meanwhile is not None and not done:
            done = True
            meanwhile()

    label, commit = git.resolve_base(root, base)
    if use_cache and cache is None:
        cache = default_cache(root)
    old = GitSource(root, commit)
    old.label = f"{label} ({commit[:12]})"
    changed = git.changed_paths(root, commit) if changed_paths else None  # None: git cannot tell; read everything
    # what git does not list as changed is as at the base: its blob id is the base's, not read nor asked of git again
    new = FsSource(root, AsCommitted(old, changed)) if changed is not None else worktree_source(root)
    diffs, how = diff_sources(old, new, clusters, cache=cache if use_cache else None, workers=workers,
                              reduced=reduced, meanwhile=once, batch=batch, changed=changed)
    once()
    # The working tree is the caller's to keep fresh (the diff command refuses stale overlays); the base is
    # what it is, so a stale base is said in the report rather than silently diffed against.
    warnings = stale_at(root, commit, [d.name for d in diffs if d.status != "added"], label, changed=changed,
                        use_cache=use_cache)
    parsed = cache.parsed if use_cache and cache is not None else None
    applications, sync_order = diff_argocd(root, commit, clusters, parsed=parsed, changed=changed)
    return DiffResult(label, commit, diffs, how, warnings, applications=applications,
                      versions=_version_changes(root, commit, clusters, changed), sync_order=sync_order)


def _version_changes(root: Path, commit: str, clusters: Sequence[str],
                     changed: frozenset[str] | None = None) -> list[VersionChange]:  # fmt: skip
    """The service versions the working tree's specs change against the specs at `commit`, then what gitops.yaml
    pins differently (plain YAML on both sides: a file that does not load at the base still shows its versions).
    `changed` (git.changed_paths): only the specs and settings it names can differ."""

    def plain(data: bytes) -> Any:
        try:
            return load_plain(data.decode("utf-8", errors="replace"))
        except YAMLError:
            return None

    tree = git.ls_tree(root, commit)
    at_base = {Path(rel).stem: blob for rel, blob in tree.items()
               if rel.startswith(f"{ENV_DIR}/") and rel.endswith(".yaml") and rel.count("/") == 1}
    if changed is None or any(p.endswith("/") and f"{ENV_DIR}/".startswith(p) for p in changed):
        specs = sorted((root / ENV_DIR).glob("*.yaml"))
    else:  # only the specs git lists can differ: the others are neither read nor parsed
        specs = sorted(root / p for p in changed if p.startswith(f"{ENV_DIR}/") and p.endswith(".yaml")
                       and p.count("/") == 1 and (root / p).exists())  # fmt: skip
    if changed is not None:
        specs = [p for p in specs if git.may_differ(changed, f"{ENV_DIR}/{p.name}")]
        at_base = {c: b for c, b in at_base.items() if git.may_differ(changed, f"{ENV_DIR}/{c}.yaml")}
    now = {p.stem: p.read_bytes() for p in specs}
    # only specs that differ can change a version: parse just those (a spec takes ~25 ms)
    differ = {c for c in at_base.keys() | now.keys() if c not in now or at_base.get(c) != git.blob_id(now[c])}
    blobs = git.cat_blobs(root, sorted({at_base[c] for c in differ if c in at_base}))
    old = {c: plain(blobs[at_base[c]]) for c in differ if c in at_base and at_base[c] in blobs}
    new = {c: plain(now[c]) for c in differ if c in now}
    changes = version_changes(old, new)
    if clusters:
        changes = [c for c in changes if c.cluster in clusters]
    settings_blob = tree.get(SETTINGS_FILE)
    settings_now = root / SETTINGS_FILE
    if changed is not None and not git.may_differ(changed, SETTINGS_FILE):
        return changes
    base_settings = git.cat_blobs(root, [settings_blob]).get(settings_blob) if settings_blob else None
    now_settings = settings_now.read_bytes() if settings_now.is_file() else None
    if base_settings != now_settings:
        changes += pin_changes(plain(base_settings) if base_settings else None,
                               plain(now_settings) if now_settings else None)
    return changes

