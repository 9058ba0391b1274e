"""Set a service's image version in the specs (comments and formatting kept), then rebuild the overlays.

The one implementation behind `python -m compiler bump` and the version-bump bot. The version must be one the
spec accepts (semver without the `v`, or a tag the catalogue allows); a downgrade is refused unless asked for;
with `image_exists` (the CLI's --check-registry passes the bot's registry client) every image the new version
names must exist before any spec is touched. Every problem is reported at its spec line.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from compiler import catalog
from compiler.build import overlays
from compiler.errors import Problem, UserError
from compiler.paths import ENV_DIR, spec_rel
from compiler.spec import semver
from compiler.spec.fleet import unknown_cluster_message
from compiler.spec.load import Loaded, load_all
from compiler.spec.model import ClusterSpec, LocalCluster
from compiler.spec.yaml_rewrite import replace_scalar

VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,126}$")
DOCKER_HUB = "docker.io"
# (repository, image, tag) -> whether the registry has it; e.g. compiler.bot.images.RegistryClient.exists
ImageExists = Callable[[str, str, str], bool]


@dataclass(frozen=True)
class Change:
    cluster: str
    old: str
    new: str


@dataclass(frozen=True)
class BumpResult:
    """What a bump did: the specs it changed, the clusters already at the version, the overlays rewritten."""

    service: str
    version: str
    changed: list[Change] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    hand_edits: dict[str, str] = field(default_factory=dict)  # overlays/<c>/<file> -> `replaced hand-edited`...


def resolve_component(component: str) -> catalog.Service:
    """The catalogue entry of a service name or alias (schema, annotation, materialize); UserError if unknown."""
    svc = catalog.resolve(component)
    if svc is None:
        names = sorted([*catalog.BY_NAME, *catalog.ALIASES])
        close = difflib.get_close_matches(component, names, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(names)}"
        raise UserError(f"unknown component {component!r} ({hint})")
    return svc


def normalise_version(svc: catalog.Service, version: str) -> str:
    """`v4.24.0` → `4.24.0` (as release tags are spelled; the image tag's `v` is derived); UserError unless the
    result is a version the spec accepts for `svc` (semver, or a tag the catalogue allows)."""
    plain = version.removeprefix("v") if re.match(r"^v[0-9]", version) or version[1:] in svc.explicit_versions() \
        else version
    why = semver.version_problem(svc, plain) if VERSION.match(plain) else (
        f"{version!r} cannot be an image tag (letters, digits, '.', '_' and '-' only, like 4.24.0)")
    if why:
        raise UserError(f"version {why}")
    return plain


def image_refs(spec: ClusterSpec, svc: catalog.Service, version: str) -> list[tuple[str, str, str]]:
    """(repository, image, tag) of each image of `svc` whose tag follows the version, in this cluster's registry
    (the one place that knows where a version's images are; `bump --check-registry` and the bot ask for them)."""
    data_project = spec.data.project if isinstance(spec, LocalCluster) else None
    out = []
    for image in svc.images:
        if image.follows_version():
            name, tag = image.ref(spec.docker_repository, data_project, version)
            repository, _, base = name.rpartition("/")
            out.append((repository or DOCKER_HUB, base, tag))
    return out


def _problems(loaded: dict[str, Loaded], svc: catalog.Service, version: str, targets: list[str],
              configured: list[str], allow_downgrade: bool, image_exists: ImageExists | None) -> list[Problem]:
    problems: list[Problem] = []
    if not targets:
        problems.append(Problem("", message=f"no cluster runs {svc.name} (add services.{svc.name} to a spec)"))
    new = semver.parse_plain(version)
    for c in targets:
        if c not in loaded:
            problems.append(Problem("", message=unknown_cluster_message(c, loaded)))
            continue
        item = loaded[c]
        if c not in configured:
            problems.append(item.doc.problem(("services",), f"cluster {c!r} does not run {svc.name} "
                                                            f"(add services.{svc.name} to its spec first)", key=True))
            continue
        at = ("services", svc.name, "version")
        old = str(getattr(item.spec.services, svc.name).version)
        if old == version:
            continue
        current = semver.parse_plain(old)
        if not allow_downgrade and new is not None and current is not None and semver.lt(new, current):
            problems.append(item.doc.problem(at, f"{svc.name} {old} -> {version} is a downgrade (pass "
                                                 "--allow-downgrade to roll back on purpose)"))
        if image_exists is not None:
            for repository, image, tag in image_refs(item.spec, svc, version):
                if not image_exists(repository, image, tag):
                    problems.append(item.doc.problem(at, f"{repository}/{image}:{tag} is not in the registry "
                                                         f"(push it first, or pick a version that exists)"))
    return problems


def bump(root: Path, component: str, version: str, clusters: Sequence[str] = (), *, allow_downgrade: bool = False,
         image_exists: ImageExists | None = None) -> BumpResult:
    """Set `component` to `version` in the specs of `clusters` (default: every cluster configuring it), rebuild.

    Nothing is written while there is a problem: an unknown cluster, one not running the service, a downgrade
    (unless `allow_downgrade`), an image `image_exists` says is missing. Specs are edited scalar by scalar
    (comments and order kept). All or nothing: holding the overlays/ lock, the specs are written (each atomically)
    and the overlays rebuilt; if the edited specs do not load or the rebuild fails (a compile error, an overlay
    that cannot be written, an interrupt), every spec is put back byte for byte and the error raised, one line.
    Only a SIGKILL between the two can leave the specs bumped and their overlays stale, which `check` reports.
    """
    svc = resolve_component(component)
    version = normalise_version(svc, version)
    loaded = load_all(root)
    configured = [n for n, item in sorted(loaded.items()) if getattr(item.spec.services, svc.name, None) is not None]
    targets = sorted(set(clusters)) if clusters else configured
    problems = _problems(loaded, svc, version, targets, configured, allow_downgrade, image_exists)
    if problems:
        raise UserError(problems)

    result = BumpResult(svc.name, version)
    edits: dict[Path, tuple[bytes, bytes]] = {}  # spec -> (as it was, as bumped)
    for c in targets:
        item = loaded[c]
        old = getattr(item.spec.services, svc.name).version
        if old == version:
            result.unchanged.append(c)
            continue
        path = root / spec_rel(c)
        text = path.read_bytes()
        new = replace_scalar(text.decode("utf-8"), item.doc, ("services", svc.name, "version"), version)
        edits[path] = (text, new.encode("utf-8"))
        result.changed.append(Change(c, str(old), version))
    if not edits:
        return result
    with overlays.locked(root):  # no build writes overlays/ between the specs and their overlays
        try:
            for path, (_, new_bytes) in edits.items():
                _replace(root, path, new_bytes)
            reloaded = load_all(root)
            done = overlays.write(root, overlays.expected_all(root, reloaded), [])
        except BaseException as err:  # the rebuild failed, or was interrupted: every spec goes back as it was
            restored = _restore(root, edits)
            if isinstance(err, UserError):
                raise UserError([Problem(p.path, p.line, p.col, f"{p.message}; {restored}")
                                 for p in err.problems]) from None
            raise
    result.written.extend(done.written)
    result.hand_edits.update(done.hand_edits)
    return result


def _replace(root: Path, path: Path, data: bytes) -> None:
    """Write a spec atomically (a temporary file beside it, renamed over it)."""
    rel = path.relative_to(root).as_posix()
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as err:
        raise UserError(f"{rel}: cannot write ({err.strerror}) (make {ENV_DIR}/ writable, then bump again)") from None


def _restore(root: Path, edits: dict[Path, tuple[bytes, bytes]]) -> str:
    """Put every bumped spec back as it was; what to tell the user about it."""
    left = []
    for path, (before, _) in edits.items():
        try:
            if path.read_bytes() != before:
                _replace(root, path, before)
        except (OSError, UserError):
            left.append(path.relative_to(root).as_posix())
    if left:
        return f"the bump is only half undone: restore {', '.join(left)} with git (git checkout -- FILE)"
    return f"nothing was bumped: {ENV_DIR}/ is as it was"
