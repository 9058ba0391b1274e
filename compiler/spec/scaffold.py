"""A new cluster's spec: a copy of an existing spec, or a template of its kind, with every per-cluster value open.

`python -m compiler new-cluster NAME --from SOURCE` copies environments/SOURCE.yaml keeping its comments and
layout (ruamel.yaml round trip). What derives from the name follows the name (`name:`, the primary hostname
wherever the source wrote its own, default-named secrets, comments naming the source). What two clusters must
not share becomes a placeholder `TODO-...` with a TODO comment saying what it is, which `build` refuses at its
file:line:col until a person sets it (compiler/spec/placeholders.py):

- the GCP project (or, on purpose, the source's), the Cloud SQL instance, the static IP, the Argo CD
  destination, the Memorystore hosts (Google picks them per instance);
- secret names the source chose itself (default names follow the name);
- the datastacks the source registers in its global's info service (one placeholder per datastack, at every
  place the spec names it), the Bigtable instance of its PCG tables, and every bucket it writes.

Shared on purpose, and kept: a local's `global_server` (the same global cluster), `data.project`, the region,
the domain and the DNS zones. A zone the source creates is not created twice: the copy names the source as its
owner (`dns.zone_owners`). The source's extra hostnames are its own: they become placeholders too.

`--kind global|local` starts from compiler/templates/new-cluster/<kind>.yaml instead; a local one uses the
repository's global cluster (its hostname, domain and zone).
"""

from __future__ import annotations

import os
import re
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from ruamel.yaml.comments import CommentedBase, CommentedMap
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken

from compiler import catalog
from compiler.errors import Problem, UserError
from compiler.paths import ENV_DIR, SETTINGS_FILE
from compiler.spec import load, placeholders
from compiler.spec.derive import default_secret_name, derive, spec_buckets
from compiler.spec.fleet import served_by_globals, unknown_cluster_message
from compiler.spec.model import ClusterSpec, GlobalCluster, LocalCluster, zone_owner, zone_project
from compiler.spec.rules import GCP_SA_ID_MAX, GKE_CLUSTER_NAME_MAX
from compiler.spec.schema import with_modeline
from compiler.spec.yamlio import Loc, dump_roundtrip, load_document, load_roundtrip, load_yaml12

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "new-cluster"
NAME_RE = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
NAME_MAX = 36
KINDS = ("global", "local")
COMMENT_WIDTH = 110

# Where a datastack name is written in a local spec (KEY: the mapping key at that place).
KEY = "<key>"
DATASTACK_PLACES: tuple[tuple[str, ...], ...] = (
    ("datastacks", "*"),
    ("registry", "datastacks", KEY),
    ("services", "materializationengine", "datastacks", "*"),
    ("services", "guidebook", "datastack"),
    ("services", "cavecanary", "datastack"),
    ("services", "dash", "apps", KEY),
    ("services", "proxy", "map", KEY),
    ("services", "skeletoncache", "datastack_name_remapping", KEY),
    ("services", "skeletoncache", "integration_test", "datastack"),
)
BUCKET_PLACEHOLDERS = {
    "data.pcg_bucket": "TODO-pcg-bucket",
    "services.nglstate.bucket": "TODO-nglstate-bucket",
    "services.skeletoncache.bucket": "TODO-skeleton-bucket",
    "services.materializationengine.upload_bucket": "TODO-upload-bucket",
    "services.materializationengine.dump_bucket": "TODO-dump-bucket",
}
REDIS_PLACEHOLDERS = {"host": "TODO-redis-host", "celery_host": "TODO-celery-redis-host",
                      "pcg_host": "TODO-pcg-redis-host"}


@dataclass(frozen=True)
class Todo:
    """One placeholder of the new spec: where it is and what to set it to."""

    line: int
    col: int
    placeholder: str
    what: str


@dataclass(frozen=True)
class NewCluster:
    """The spec `new-cluster` wrote (or would write), and the placeholders left in it."""

    path: Path
    display: str
    text: str
    todos: tuple[Todo, ...]


# --------------------------------------------------------------------------- the command's work


def new_cluster(root: Path, name: str, *, source: str | None = None, kind: str | None = None,
                global_cluster: str | None = None, write: bool = True) -> NewCluster:
    """environments/<name>.yaml for a new cluster, from spec `source` or the template of `kind`, written
    atomically (never over an existing file). UserError for a bad or taken name, an unknown source, a source
    with problems, or no global cluster for a local one."""
    if (source is None) == (kind is None):
        raise UserError("new-cluster: give either --from SOURCE or --kind global|local")
    if global_cluster is not None and kind != "local":
        raise UserError("new-cluster: --global names the global cluster of a new local cluster: use it with "
                        "--kind local (with --from, the new cluster uses the global cluster of SOURCE)")
    target = root / ENV_DIR / f"{name}.yaml"
    display = f"{ENV_DIR}/{name}.yaml"
    _check_name(name, target, display)
    docs = _load_sources(root)
    if source is not None:
        if source not in docs:
            files = {f.stem for f in load.spec_files(root)}
            if source in files:
                raise UserError(f"{ENV_DIR}/{source}.yaml: still has TODO-... placeholders (set them first: "
                                "`python -m compiler build` lists each one)")
            raise UserError([Problem("", message=unknown_cluster_message(source, files))])
        text = from_source(root, source, docs[source], name)
    else:
        assert kind is not None
        text = from_template(kind, name, {k: v.spec for k, v in docs.items()}, global_cluster)
    text = with_modeline(text)  # editors find schemas/spec.schema.json (compiler/spec/schema.py)
    _check_lengths(name, text, display)
    todos = _todos(text, display)
    if write:
        _write_new(target, display, text)
    return NewCluster(target, display, text, todos)


def _check_name(name: str, target: Path, display: str) -> None:
    if not NAME_RE.fullmatch(name) or len(name) > NAME_MAX:
        raise UserError(f"new-cluster: {name!r} is not a valid cluster name (use 1-{NAME_MAX} lowercase letters, "
                        "digits and '-', starting with a letter and not ending with '-', like minnie-prod)")
    if target.exists():
        raise UserError(f"{display}: already exists (choose another name, or edit that spec)")


def _load_sources(root: Path) -> dict[str, load.Loaded]:
    """The specs of the repository, as `build` loads them (placeholders allowed: a spec may still have some)."""
    if not load.spec_files(root):
        return {}
    try:
        return load.load_all(root, allow_placeholders=True)
    except UserError as err:
        raise UserError([*err.problems, Problem("", message="new-cluster: fix the specs above first (new-cluster "
                                                            "reads them to choose what the new one shares)")]) from None


def _check_lengths(name: str, text: str, display: str) -> None:
    """GKE and service account names derive from the name: refuse one too long for the services it runs."""
    data = load_yaml12(text)
    services = data.get("services") or {}
    roles = {s.service_account for n, v in services.items() if (s := catalog.BY_NAME.get(n)) and s.service_account
             and not (isinstance(v, dict) and v.get("enabled") is False)} | set(catalog.ADDON_SERVICE_ACCOUNTS)
    longest = max(roles, key=len)
    if len(f"daf-{longest}-{name}") > GCP_SA_ID_MAX or len(f"daf-{name}") > GKE_CLUSTER_NAME_MAX:
        limit = GCP_SA_ID_MAX - len(longest) - 5
        raise UserError(f"new-cluster: {name!r} is too long for this cluster: its service account "
                        f"daf-{longest}-{name} would exceed {GCP_SA_ID_MAX} characters (use at most {limit})")


def _todos(text: str, display: str) -> tuple[Todo, ...]:
    with tempfile.TemporaryDirectory(prefix="new-cluster-") as tmp:
        file = Path(tmp) / "spec.yaml"
        file.write_text(text, encoding="utf-8")
        doc, problems = load_document(file, display)
    if doc is None or problems:
        raise UserError([*problems, Problem(display, message="new-cluster wrote invalid YAML (please report this)")])
    return tuple(Todo(*doc.position(loc, key=is_key), token, placeholders.describe(loc, token, doc.data))
                 for loc, token, is_key in placeholders.find(doc.data))


def _write_new(target: Path, display: str, text: str) -> None:
    """Write `text` to `target` atomically, never replacing a file that appeared meanwhile."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.link(tmp, target)  # fails if the target exists: no overwrite, no half-written file
    except FileExistsError:
        raise UserError(f"{display}: already exists (choose another name, or edit that spec)") from None
    except OSError as err:
        raise UserError(f"{display}: could not write ({err.strerror}); nothing was changed") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


# --------------------------------------------------------------------------- YAML round trip


def _get(data: Any, loc: Loc) -> Any:
    for part in loc:
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if in_list or (isinstance(data, dict) and part in data):
            data = data[part]
        else:
            return None
    return data


def _set_scalar(data: Any, loc: Loc, value: str) -> None:
    """Set the scalar at `loc` (its parent exists), keeping the old value's quoting style."""
    parent = _get(data, loc[:-1])
    old = parent[loc[-1]]
    parent[loc[-1]] = type(old)(value) if isinstance(old, str) and type(old) is not str else value


def _rename_key(mapping: CommentedMap, old: str, new: str) -> None:
    """Rename a key in place: same position, value and comments."""
    position = list(mapping).index(old)
    value = mapping[old]
    comment = mapping.ca.items.pop(old, None)
    del mapping[old]
    mapping.insert(position, new, value)
    if comment is not None:
        mapping.ca.items[new] = comment


def _todo_comment(data: Any, loc: Loc, placeholder: str, what: str) -> None:
    """A `# TODO:` comment on the line above the key holding the placeholder (for a list item: its list's key)."""
    key_loc = loc
    while key_loc and not isinstance(key_loc[-1], str):
        key_loc = key_loc[:-1]
    while key_loc and not isinstance(_get(data, key_loc[:-1]), CommentedMap):
        key_loc = key_loc[:-1]
    if not key_loc:
        return
    parent = _get(data, key_loc[:-1])
    key = key_loc[-1]
    if parent.fa.flow_style():  # inside a flow mapping: comment its block-level key instead
        _todo_comment(data, key_loc[:-1], placeholder, what)
        return
    column = _key_column(data, key_loc)
    lines = textwrap.wrap(f"TODO: set {placeholder}: {what}", COMMENT_WIDTH - column - 2,
                          break_on_hyphens=False, break_long_words=False)
    entry = parent.ca.items.setdefault(key, [None, None, None, None])
    before = entry[1] or []
    if any(isinstance(t, CommentToken) and placeholder in t.value for t in before):
        return
    entry[1] = [*before, *(CommentToken(f"# {line}\n", CommentMark(column), None) for line in lines)]


def _key_column(data: Any, key_loc: Loc) -> int:
    """0-based column of the key at `key_loc` (ruamel keeps line/col of every key)."""
    parent = _get(data, key_loc[:-1])
    try:
        return int(parent.lc.key(key_loc[-1])[1])
    except (AttributeError, KeyError, TypeError):
        return 2 * (len(key_loc) - 1)


def _comments(node: Any) -> Iterator[CommentToken]:
    """Every comment token in the tree, once."""
    seen: set[int] = set()

    def tokens(value: Any) -> Iterator[CommentToken]:
        if isinstance(value, CommentToken):
            if id(value) not in seen:
                seen.add(id(value))
                yield value
        elif isinstance(value, list | tuple):
            for item in value:
                yield from tokens(item)

    def walk(value: Any) -> Iterator[CommentToken]:
        if isinstance(value, CommentedBase):
            ca = value.ca
            yield from tokens(ca.comment)
            yield from tokens(list(ca.items.values()))
            yield from tokens(ca.end)
        if isinstance(value, dict):
            for v in value.values():
                yield from walk(v)
        elif isinstance(value, list):
            for v in value:
                yield from walk(v)

    yield from walk(node)


def _replace_strings(node: Any, change: Callable[[str], str]) -> None:
    """Apply `change` to every string scalar (not keys), keeping each one's quoting style."""
    items: list[tuple[Any, Any]] = []
    if isinstance(node, dict):
        items = list(node.items())
    elif isinstance(node, list):
        items = list(enumerate(node))
    for key, value in items:
        if isinstance(value, str):
            new = change(value)
            if new != value:
                node[key] = type(value)(new) if type(value) is not str else new
        else:
            _replace_strings(value, change)


# --------------------------------------------------------------------------- from an existing spec


class _Edit:
    """The edits of a copy: placeholders set with their TODO comments."""

    def __init__(self, data: CommentedMap) -> None:
        self.data = data

    def placeholder(self, loc: Loc, token: str) -> None:
        if _get(self.data, loc) is None:
            return
        _set_scalar(self.data, loc, token)
        _drop_line_comment(self.data, loc)  # it described the source's value; the TODO comment says what to set
        _todo_comment(self.data, loc, token, placeholders.describe(loc, token, self.data))


def _drop_line_comment(data: Any, loc: Loc) -> None:
    """Remove the comment at the end of the line of the value at `loc`, keeping full-line comments after it."""
    parent = _get(data, loc[:-1])
    entry = parent.ca.items.get(loc[-1]) if isinstance(parent, CommentedMap) else None
    if not entry or not isinstance(entry[2], CommentToken):
        return
    rest = entry[2].value.partition("\n")[2]
    if rest:
        entry[2].value = "\n" + rest
    else:
        entry[2] = None


def _matching(data: Any, pattern: tuple[str, ...], loc: Loc = ()) -> Iterator[tuple[Loc, bool]]:
    """(location, is a key) of every place in `data` matching `pattern` (`*`: any item, KEY: the key itself)."""
    if not pattern:
        yield loc, False
        return
    head, rest = pattern[0], pattern[1:]
    if head == KEY and not rest:
        if isinstance(data, dict):
            for key in list(data):
                yield (*loc, key), True
        return
    if head == "*":
        children: list[Any] = list(data) if isinstance(data, dict) else (
            list(range(len(data))) if isinstance(data, list) else [])
        for child in children:
            yield from _matching(data[child], rest, (*loc, child))
    elif isinstance(data, dict) and head in data:
        yield from _matching(data[head], rest, (*loc, head))


def from_source(root: Path, source: str, item: load.Loaded, name: str) -> str:
    """The text of the new spec copied from `source` (see the module docstring for what changes)."""
    src = item.spec
    data = load_roundtrip((root / item.doc.path).read_text(encoding="utf-8"))
    edit = _Edit(data)
    names = derive(src)
    new_host = f"{name}.{src.dns.domain}"

    # identities that follow the name
    data["name"] = name
    _replace_strings(data, lambda s: s.replace(names.primary_hostname, new_host))
    # the source's name in comments where it is an identity: daf-<name>, <name>-<...>, <name>.<domain>, and a
    # command's argument (`runbook <name>`); not the word itself (a global's comments say "global cluster")
    old = re.escape(source)
    word = re.compile(rf"(?<=daf-){old}\b|(?<![\w.-]){old}(?=[-.][A-Za-z0-9])|(?<= ){old}(?=[`'\"])")
    for comment in _comments(data):
        comment.value = word.sub(name, comment.value.replace(names.primary_hostname, new_host))
    secrets = data.get("secrets")
    for key, value in list(src.secrets.model_dump().items()):
        if value is None or key in src.read_only.secret_keys:
            continue
        if value == default_secret_name(source, key):
            _set_scalar(data, ("secrets", key), default_secret_name(name, key))
        elif isinstance(secrets, dict):
            edit.placeholder(("secrets", key), f"TODO-secret-{key.replace('_', '-')}")

    # what must differ from the source
    edit.placeholder(("gcp", "project"), "TODO-gcp-project")
    edit.placeholder(("cloud_sql", "instance"), "TODO-cloud-sql-instance")
    if "static_ip" not in data and (root / SETTINGS_FILE).is_file():  # Argo CD's ingress-nginx needs one
        data.insert(list(data).index("cloud_sql") + 1, "static_ip", "TODO-static-ip")
    if "argocd" not in data and (root / SETTINGS_FILE).is_file():
        data.insert(list(data).index("static_ip") + 1, "argocd", CommentedMap([("name", "TODO-argocd-name")]))
    edit.placeholder(("static_ip",), "TODO-static-ip")
    for key in ("name", "server"):
        edit.placeholder(("argocd", key), f"TODO-argocd-{key}")
    if not src.redis.in_cluster:
        for key, token in REDIS_PLACEHOLDERS.items():
            edit.placeholder(("redis", key), token)
    for bucket in spec_buckets(src):
        if bucket.path not in src.read_only.buckets:
            edit.placeholder(bucket.loc, BUCKET_PLACEHOLDERS[bucket.field])
    for i, _ in enumerate(src.dns.extra_hostnames):
        edit.placeholder(("dns", "extra_hostnames", i, "hostname"), f"TODO-hostname-{i + 1}")
    _share_zones(data, src, name)
    if isinstance(src, LocalCluster):
        edit.placeholder(("data", "bigtable_instance"), "TODO-bigtable-instance")
        if src.registry is not None:
            _datastacks(data, sorted(src.registry.datastacks))

    kind = "Global" if isinstance(src, GlobalCluster) else "Local"
    data.yaml_set_start_comment(
        f"{kind} CAVE cluster {name}, made with `python -m compiler new-cluster {name} --from {source}`.\n"
        "Set every TODO-... value (the TODO comment above it says what it is): `python -m compiler build` names\n"
        "each one still left, at its file:line:col.")
    return dump_roundtrip(data)


def _share_zones(data: CommentedMap, src: ClusterSpec, name: str) -> None:
    """Zones the source creates stay its own: the copy names the source as their owner (one zone per DNS name)."""
    created = sorted({z for z in derive(src).hostname_zones if z in src.dns.zones and zone_owner(src, z) == src.name})
    if not created:
        return
    dns = data["dns"]
    owners = dns.get("zone_owners")
    if owners is None:
        owners = CommentedMap()
        dns.insert(list(dns).index("zones") + 1, "zone_owners", owners)
        dns.yaml_add_eol_comment(f"{src.name} creates these zones; {name} adds its records there", "zone_owners")
    for zone in created:
        entry = CommentedMap([("cluster", src.name), ("project", zone_project(src, zone))])
        entry.fa.set_flow_style()
        owners[zone] = entry


def _datastacks(data: CommentedMap, registered: list[str]) -> None:
    """Each datastack the source registers becomes TODO-datastack-<name>, at every place the spec names it."""
    tokens = {ds: f"TODO-datastack-{ds}" for ds in registered}
    seen: set[str] = set()

    def comment(loc: Loc, token: str) -> None:
        what = (placeholders.describe(loc, token) if token not in seen else
                "the same datastack name as at the other places it is written")
        seen.add(token)
        _todo_comment(data, loc, token, what)

    for pattern in DATASTACK_PLACES:
        for loc, is_key in list(_matching(data, pattern)):
            if is_key:
                parent = _get(data, loc[:-1])
                old = str(loc[-1])
                if old in tokens and isinstance(parent, CommentedMap):
                    _rename_key(parent, old, tokens[old])
                    comment((*loc[:-1], tokens[old]), tokens[old])
            else:
                value = _get(data, loc)
                if isinstance(value, str) and value in tokens:
                    _set_scalar(data, loc, tokens[value])
                    comment(loc, tokens[value])


# --------------------------------------------------------------------------- from a template


def from_template(kind: str, name: str, specs: dict[str, ClusterSpec], global_cluster: str | None) -> str:
    """The text of a new spec of `kind` from compiler/templates/new-cluster/<kind>.yaml."""
    if kind not in KINDS:
        raise UserError(f"new-cluster: --kind {kind!r} is not a cluster kind (use global or local)")
    values = {"name": name, "region": "us-east1", "zone": "us-east1-b"}
    if kind == "local":
        values.update(_global_values(specs, global_cluster))
    template = Template((TEMPLATES / f"{kind}.yaml").read_text(encoding="utf-8"))
    return template.substitute(values)


def _global_values(specs: dict[str, ClusterSpec], chosen: str | None) -> dict[str, str]:
    globals_ = sorted(n for n, s in specs.items() if isinstance(s, GlobalCluster))
    if chosen is not None and chosen not in globals_:
        raise UserError([Problem("", message=unknown_cluster_message(chosen, globals_)
                                 .replace("unknown cluster", "unknown global cluster"))])
    if chosen is None:
        if not globals_:
            raise UserError("new-cluster: a local cluster uses a global cluster, and environments/ has none "
                            "(create it first: python -m compiler new-cluster NAME --kind global)")
        if len(globals_) > 1:
            raise UserError(f"new-cluster: several global clusters ({', '.join(globals_)}): say which one this "
                            "local cluster uses with --global NAME")
        chosen = globals_[0]
    spec = specs[chosen]
    host = next(h for h, g in served_by_globals(specs).items() if g == chosen and h.startswith(f"{chosen}."))
    zone = spec.dns.zone
    return {"global": chosen, "global_server": host, "domain": spec.dns.domain, "dns_zone": zone,
            "dns_name": spec.dns.zones[zone], "zone_cluster": zone_owner(spec, zone),
            "zone_project": zone_project(spec, zone), "region": spec.gcp.region, "zone": spec.gcp.zone,
            "tls_email": spec.tls.email, "docker_repository": spec.docker_repository,
            "kubernetes_version": spec.kubernetes_version}
