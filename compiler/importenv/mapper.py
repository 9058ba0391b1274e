"""Import a CAVEdeployment env file into an environment spec (`python -m compiler import-env`).

The env file is read as bash would source it (compiler/importenv/source.py; nothing is run), with defaults.sh
applied before it and convert_variables.sh after it (local clusters), as CAVEdeployment did. Every variable its
templates set is then mapped to the spec (compiler/importenv/sections/ and services/), recognised as something the
spec derives, a secret (only its Secret Manager name goes into the spec), a live look-up (bootstrap resolves it)
or a variable without effect; anything else is reported as unknown (compiler/importenv/classify.py). The spec is
validated against the model and every rule, with problems pointing at the env file's lines, then once more as a
file in a copy of environments/, and written atomically.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from compiler import progress
from compiler.build import argocd
from compiler.errors import Problem, UserError
from compiler.importenv import sections
from compiler.importenv.catalogue import KIND_MARKERS, Kind
from compiler.importenv.classify import classify
from compiler.importenv.mapping import NAME_MAX, NAME_RE, Context, Mapper
from compiler.importenv.report import Line, Result
from compiler.importenv.sections.secrets import secrets
from compiler.importenv.source import read_env
from compiler.importenv.specdoc import TODO, Block, Entry, Origin, origins, plain, render
from compiler.paths import ENV_DIR, SETTINGS_FILE
from compiler.spec import load, rules
from compiler.spec.derive import derive
from compiler.spec.fleet import served_by_globals
from compiler.spec.model import ClusterSpec, LocalCluster, zone_owner, zone_project
from compiler.spec.settings import load_settings
from compiler.spec.yamlio import Document, Loc, load_document, to_plain


class _EnvDocument(Document):
    """Spec data whose positions are the env file's lines; problems name the variable set there."""

    def __init__(self, display: str, data: Any, where: dict[Loc, Origin]) -> None:
        positions = {loc: (o.line, o.col, o.line, o.col) for loc, o in where.items()}
        super().__init__(display, data, positions)
        self._where = where

    def problem(self, loc: Loc, message: str = "", *, key: bool = False) -> Problem:
        found = super().problem(loc, message, key=key)
        for n in range(len(loc), 0, -1):
            origin = self._where.get(loc[:n])
            if origin is not None:
                return Problem(found.path, found.line, found.col, f"{origin.name}: {message}")
        return found


def _existing(root: Path, skip: str | None) -> dict[str, load.Loaded]:
    if not load.spec_files(root):
        return {}
    loaded = load.load_all(root, allow_placeholders=True)  # an earlier import's TODO-... values are still to set
    return {k: v for k, v in loaded.items() if k != skip}


def _context(existing: dict[str, load.Loaded]) -> Context:
    ctx = Context()
    for name, item in sorted(existing.items()):
        for zone, dns_name in item.spec.dns.zones.items():
            ctx.zones.setdefault(zone, (dns_name, name))
            if zone_owner(item.spec, zone) == name and zone in derive(item.spec).hostname_zones:
                ctx.owners.setdefault(dns_name, (zone, name, zone_project(item.spec, zone)))
    ctx.global_hosts.update(served_by_globals({name: item.spec for name, item in existing.items()}))
    return ctx


def _validate(root: Path, mapper: Mapper, tree: Block, existing: dict[str, load.Loaded]) -> ClusterSpec:
    doc = _EnvDocument(mapper.display, plain(tree), origins(tree))
    spec, problems = load.validate_document(doc)
    if problems:
        raise UserError(problems)
    assert spec is not None
    if isinstance(spec, LocalCluster) and spec.global_server not in mapper.context.global_hosts:
        known = ", ".join(sorted(mapper.context.global_hosts)) or "none"
        raise UserError([doc.problem(("global_server",), f"global_server {spec.global_server!r} is not a hostname "
                                                         "of a global spec in environments/ (global hostnames "
                                                         f"here: {known}); import the global cluster's env file "
                                                         "first: python -m compiler import-env GLOBAL.sh "
                                                         "--kind global")])
    found = rules.check_all({**{k: (v.spec, v.doc) for k, v in existing.items()}, spec.name: (spec, doc)})
    if found:
        raise UserError(found)
    settings = load_settings(root)
    if settings is not None:
        # static_ip is left to fill in (TODO) after an import: check the rest of what build checks with
        # stand-in addresses for every spec still without one.
        loaded = {**existing, spec.name: load.Loaded(spec, doc)}
        taken = {str(v.spec.static_ip) for v in loaded.values() if v.spec.static_ip is not None}
        stand_ins = iter(f"192.0.2.{i}" for i in range(1, 255) if f"192.0.2.{i}" not in taken)
        for name, item in loaded.items():
            if item.spec.static_ip is None:
                stand_in = item.spec.model_copy(update={"static_ip": IPv4Address(next(stand_ins))})
                loaded[name] = load.Loaded(stand_in, item.doc)
        found = argocd.problems(settings, loaded)
        if found:
            raise UserError(found)
    return spec


def _check_file(root: Path, name: str, text: str, data: Any) -> None:
    """Load the written text as `build` will, in a copy of environments/ with the new spec added."""
    with tempfile.TemporaryDirectory(prefix="import-env-") as tmp:
        envs = Path(tmp) / ENV_DIR
        envs.mkdir()
        for file in load.spec_files(root):
            if file.stem != name:
                shutil.copy2(file, envs / file.name)
        (envs / f"{name}.yaml").write_text(text, encoding="utf-8")
        try:
            load.load_all(Path(tmp), allow_placeholders=True)  # its TODO-... values are for a person to set
        except UserError as err:
            raise UserError([Problem(p.path, p.line, p.col, f"{p.message} [import-env wrote an invalid spec: "
                                                            "please report this]") for p in err.problems]) from None
        doc, problems = load_document(envs / f"{name}.yaml", f"{ENV_DIR}/{name}.yaml")
        if problems or doc is None or to_plain(doc.data) != data:
            raise UserError(f"{ENV_DIR}/{name}.yaml: the written YAML does not read back as the imported "
                            "data [import-env bug: please report this]")


# --------------------------------------------------------------------------- the command's work


def import_env(root: Path, path: Path, display: str, kind: Kind, *, name: str | None = None,
               output: str | None = None, force: bool = False) -> Result:
    """Read, map, validate and (unless output is "-") write the spec; the Result carries text and report."""
    if name is not None and (not NAME_RE.match(name) or len(name) > NAME_MAX):
        raise UserError(f"--name {name!r} is not a valid cluster name (lowercase letters, digits and '-', "
                        f"starting with a letter, at most {NAME_MAX} characters)")
    with progress.stage("import-env", 4) as step:
        return _import(root, path, display, kind, name, output, force, step)


def _import(root: Path, path: Path, display: str, kind: Kind, name: str | None, output: str | None, force: bool,
            step: progress.Step) -> Result:
    env = read_env(path, display, kind)
    step(f"read {display}")
    other: Kind = "local" if kind == "global" else "global"
    mine = [n for n in KIND_MARKERS[kind] if env.get(n)]
    theirs = [env.get(n) for n in KIND_MARKERS[other] if env.get(n)]
    if theirs and not mine:
        var = theirs[0]
        assert var is not None
        raise UserError([Problem(display, var.line or 1, var.col or 1,
                                 f"{var.name} is set: this looks like a {other} env file (use --kind {other})")])
    spec_name = name or ((v.text() if (v := env.get("ENVIRONMENT")) else None) or "").strip()
    target = None if output == "-" else (Path(output) if output else root / ENV_DIR / f"{spec_name}.yaml")
    if target is not None and target.exists() and not force and spec_name:
        raise UserError(f"{target}: already exists (pass --force to overwrite it, or --output FILE)")
    existing = _existing(root, spec_name if force else None)
    if spec_name in existing:
        raise UserError(f"{ENV_DIR}/{spec_name}.yaml: a spec named {spec_name} already exists (pass --force "
                        "to replace it, or --name NAME)")
    mapper = Mapper(env, kind, name, _context(existing), path.resolve().parent,
                    gitops=(root / SETTINGS_FILE).is_file())
    tree = sections.build(mapper)
    if mapper.problems:
        raise UserError(mapper.problems)
    step("mapped to spec sections")
    spec = _validate(root, mapper, tree, existing)
    step("validated as a spec")
    secrets_block = secrets(mapper, spec)
    if secrets_block.entries:
        services_at = next(i for i, e in enumerate(tree.entries) if e.key == "services")
        tree.entries.insert(services_at, Entry("secrets", secrets_block, above=[
            "Secret Manager secret names (never values); `bootstrap` creates them and lists the values to add"]))
    classify(mapper)
    header = [f"{kind.capitalize()} CAVE cluster {spec_name}, imported by `python -m compiler import-env` from "
              f"{path.name}.", f"Review every `{TODO}` comment: each marks a value the env file could not settle."]
    rendered = render(tree, header)
    data = plain(tree)
    _check_file(root, spec_name, rendered.text, data)
    step("loaded with the other specs, as build will")
    shown = str(target) if target is not None else f"{ENV_DIR}/{spec_name}.yaml"
    for line, (dotted, entry) in sorted(rendered.lines.items()):
        if entry.todo:
            mapper.lines.append(Line("decision", f"{shown}:{line}", f"{dotted}: {entry.todo}"))
    if target is not None:
        _write_atomically(target, rendered.text)
    return Result(spec_name, kind, rendered.text, target, mapper.lines)


def _write_atomically(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"{target}: could not write ({err.strerror}); nothing was changed") from None
