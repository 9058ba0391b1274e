"""Kubernetes and CRD schemas: strict schema validation of rendered objects."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
from jsonschema.protocols import Validator
from kubernetes_validate import utils as kv_utils
from referencing import Registry, Resource

from compiler.errors import Problem, UserError
from compiler.paths import CRD_SCHEMAS
from compiler.render.manifests import field_path
from compiler.spec.yamlio import YAMLError, load_manifests
from compiler.validate.model import Finding, Obj, object_finding

# --------------------------------------------------------------------------- schema sources


def _redacted(error: jsonschema.ValidationError) -> str:
    """The schema error without the offending value: it may be a secret."""
    return error.message.replace(repr(error.instance), "value" if not isinstance(error.instance, dict) else "object")


def _errors(validator: Validator, obj: Obj) -> list[tuple[str, str]]:
    found = sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path])
    return [(field_path(e.absolute_path), _redacted(e)) for e in found]


def kubernetes_schema_version(version: str) -> str:
    """The bundled kubernetes-validate schema version ("1.31.0") for a cluster version ("1.31")."""
    wanted = kv_utils.major_minor(version.removeprefix("v"))
    bundled = {kv_utils.major_minor(v): v for v in kv_utils.all_versions()}
    if wanted not in bundled:
        minors = sorted(bundled, key=lambda v: tuple(int(p) for p in v.split(".")))
        raise UserError(
            f"Kubernetes {version} has no bundled schemas in kubernetes-validate "
            f"{kubernetes_validate.version.__version__} (it has {minors[0]}-{minors[-1]}: "
            "upgrade kubernetes-validate or pass a supported --kubernetes-version)"
        )
    return str(bundled[wanted])


@functools.lru_cache(maxsize=512)
def _k8s_validator(schema_version: str, kind: str, api_version: str) -> Validator | None:
    """Strict validator for a built-in kind, as kubernetes_validate.validate builds it, cached."""
    mangled = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema_dir = f"kubernetes-json-schema/v{schema_version}-local-strict"
    try:
        schema = kv_utils.schema_contents(f"{schema_dir}/{kind.lower()}-{mangled}.json", schema_version)
    except FileNotFoundError:
        return None
    definitions = kv_utils.schema_contents(f"{schema_dir}/_definitions.json", schema_version)
    registry: Registry[Any] = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def _is_builtin_group(group: str) -> bool:
    return "." not in group or group.endswith(".k8s.io")


def _openapi_to_jsonschema(schema: Any) -> Any:
    """A CRD's openAPIV3Schema as draft-7 JSON schema: nullable and int-or-string made explicit, and
    unknown fields rejected (the API server silently prunes them, so they are always a mistake)."""
    if isinstance(schema, list):
        return [_openapi_to_jsonschema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _openapi_to_jsonschema(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    out.pop("nullable", None)
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def load_crd_manifests(paths: Sequence[Path], *, served_only: bool = False) -> dict[tuple[str, str, str], Any]:
    """(group, version, kind) → JSON schema from CRD manifests (multi-document YAML files); with `served_only`,
    only the versions the API server serves (`served: true`), which are the only ones a manifest can use."""
    schemas: dict[tuple[str, str, str], Any] = {}
    problems: list[Problem] = []
    for path in paths:
        try:
            docs = load_manifests(path.read_text())
        except (OSError, UnicodeDecodeError) as err:
            problems.append(Problem(str(path), message=f"cannot read CRD file: {err} (pass a readable CRD file)"))
            continue
        except YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            problems.append(
                Problem(
                    str(path),
                    line=mark.line + 1 if mark else 0,
                    col=mark.column + 1 if mark else 0,
                    message="not valid YAML (fix the CRD file)",
                )
            )
            continue
        before = len(schemas)
        for doc in docs:
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc.get("spec") or {}
            group, kind = spec.get("group", ""), (spec.get("names") or {}).get("kind", "")
            for version in spec.get("versions") or []:
                if served_only and isinstance(version, dict) and version.get("served") is False:
                    continue
                schema = ((version.get("schema") or {}).get("openAPIV3Schema")) if isinstance(version, dict) else None
                if group and kind and isinstance(schema, dict):
                    schemas[(group, str(version.get("name")), kind)] = _openapi_to_jsonschema(schema)
        if len(schemas) == before:
            problems.append(
                Problem(
                    str(path),
                    message="no apiextensions.k8s.io/v1 CustomResourceDefinition with an openAPIV3Schema "
                    "(pass CustomResourceDefinition manifests)",
                )
            )
    if problems:
        raise UserError(problems)
    return schemas


def crd_schema_file(directory: Path, group: str, version: str, kind: str) -> Path:
    """Where a schema directory holds the schema of one custom resource: DIR/<group>/<kind>_<version>.json."""
    return directory / group / f"{kind.lower()}_{version}.json"


def crd_schema_text(schema: Any) -> str:
    """A schema as the repository stores it: JSON, keys sorted, two-space indent, one trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_crd_schemas(crd_files: Sequence[Path], directory: Path) -> list[Path]:
    """Write the JSON schema of every served version of every CRD in `crd_files` under `directory`, each file
    atomically (temporary file, then rename); the files written, sorted. UserError, writing nothing, when a
    file holds no CRD."""
    schemas = load_crd_manifests(crd_files, served_only=True)
    written: list[Path] = []
    for (group, version, kind), schema in sorted(schemas.items()):
        target = crd_schema_file(directory, group, version, kind)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            try:
                os.fchmod(fd, 0o644)  # mkstemp's 0600 would make a committed file unreadable to others
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(crd_schema_text(schema))
                os.replace(tmp, target)
            finally:
                Path(tmp).unlink(missing_ok=True)
        except OSError as err:
            raise UserError([Problem(str(target), message=f"cannot write the schema: {err.strerror} "
                                                          "(choose a writable --output-dir)")]) from None
        written.append(target)
    return written


@dataclass
class Schemas:
    """Every schema source for one validation run; validators are built once and reused."""

    crd_dir: Path | None = None
    crd_manifests: Mapping[tuple[str, str, str], Any] = field(default_factory=dict)
    _crd_validators: dict[tuple[str, str, str], Validator | None] = field(default_factory=dict)

    @classmethod
    def from_options(cls, crd_dir: Path | None, crd_files: Sequence[Path], root: Path | None = None) -> Schemas:
        """Schemas from --crd-schemas DIR and --crds FILE...; UserError when they cannot be read.

        Without --crd-schemas, the repository's own schemas/crds/ under `root` (when it has one); CRDs given
        with --crds take precedence over the directory's schema of the same group, version and kind."""
        if crd_dir is None and root is not None and (root / CRD_SCHEMAS).is_dir():
            crd_dir = root / CRD_SCHEMAS
        if crd_dir is not None and not crd_dir.is_dir():
            raise UserError([Problem(str(crd_dir), message="not a directory (pass --crd-schemas DIR)")])
        return cls(crd_dir=crd_dir, crd_manifests=load_crd_manifests(crd_files))

    @functools.cached_property
    def fingerprint(self) -> str:
        """sha256 of every schema this run may read beyond the bundled Kubernetes ones (whose version is in the
        compiler's fingerprint): the CRD schema directory's files and the CRDs given as manifests."""
        digest = hashlib.sha256()
        if self.crd_dir is not None and self.crd_dir.is_dir():
            for path in sorted(self.crd_dir.rglob("*.json")):
                digest.update(path.relative_to(self.crd_dir).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
        for key in sorted(self.crd_manifests):  # parsed from --crds files: repr is exact and never fails
            digest.update(repr((key, self.crd_manifests[key])).encode() + b"\0")
        return digest.hexdigest()

    def crd_validator(self, group: str, version: str, kind: str) -> Validator | None:
        key = (group, version, kind)
        if key not in self._crd_validators:
            schema = self.crd_manifests.get(key)
            if schema is None and self.crd_dir is not None:
                path = crd_schema_file(self.crd_dir, group, version, kind)
                if path.is_file():
                    try:
                        schema = json.loads(path.read_text())
                    except (OSError, ValueError) as err:
                        raise UserError(
                            [Problem(str(path), message=f"not a JSON schema: {err} (fix the file)")]
                        ) from None
            cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator) if schema else None
            self._crd_validators[key] = cls(schema) if cls and schema is not None else None
        return self._crd_validators[key]

    def check(self, cluster: str, obj: Obj, schema_version: str) -> list[Finding]:
        """Schema problems of one object (a missing schema is a problem too)."""
        api_version = str(obj.get("apiVersion") or "")
        kind = str(obj.get("kind") or "")
        if not api_version or not kind:
            return [object_finding(cluster, obj, "", "schema", "no apiVersion or kind (every object needs both)")]
        group, _, version = api_version.rpartition("/")
        minor = kv_utils.major_minor(schema_version)
        if _is_builtin_group(group):
            validator = _k8s_validator(schema_version, kind, api_version)
            if validator is not None:
                return [object_finding(cluster, obj, p, "schema", m) for p, m in _errors(validator, obj)]
            if "." not in group:
                return [
                    object_finding(
                        cluster,
                        obj,
                        "apiVersion",
                        "schema",
                        f"no schema for {api_version} {kind} in Kubernetes {minor}: removed API? "
                        "(use the API version this Kubernetes serves)",
                    )
                ]
        validator = self.crd_validator(group, version, kind)
        if validator is None:
            fix = "pass its CRD with --crds FILE or a schema directory with --crd-schemas DIR"
            message = (
                # *.k8s.io holds both built-in APIs (removed ones end up here) and CRDs such as the VPA.
                f"no schema for {api_version} {kind} in Kubernetes {minor} nor in the CRD schemas: "
                f"removed API? (use the API version this Kubernetes serves, or {fix})"
                if _is_builtin_group(group)
                else f"no schema for custom resource {api_version} {kind} ({fix})"
            )
            return [object_finding(cluster, obj, "apiVersion", "crd-schema", message)]
        return [object_finding(cluster, obj, p, "crd-schema", m) for p, m in _errors(validator, obj)]


# --------------------------------------------------------------------------- the rendered set


POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
