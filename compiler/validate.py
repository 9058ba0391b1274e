"""Validate rendered clusters: Kubernetes schemas of the cluster's version, CRD schemas, CAVE rules.

Schema sources: kubernetes-validate's bundled strict schemas for built-in kinds; for custom resources
a directory of JSON schemas (`<group>/<kind>_<version>.json`, draft 7) and/or CRD manifests
(`apiextensions.k8s.io/v1` CustomResourceDefinition, their `openAPIV3Schema`), manifests first.
CAVE rules are the `rule_*` functions below, each checking one thing over a cluster's whole object set.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from jsonschema.protocols import Validator
from kubernetes_validate import utils as kv_utils
from referencing import Registry, Resource

from compiler import render, secretguard
from compiler.errors import Problem, UserError

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

    def __str__(self) -> str:
        obj = f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"
        where = f"{obj}: {self.path}" if self.path else obj
        return f"{self.cluster}: {where}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _finding(cluster: str, obj: Mapping[str, Any], path: str, rule: str, message: str) -> Finding:
    _, kind, namespace, name = render.object_id(obj)
    return Finding(cluster, kind, namespace, name, path, rule, message)


# --------------------------------------------------------------------------- schema sources


def _redacted(error: jsonschema.ValidationError) -> str:
    """The schema error without the offending value: it may be a secret."""
    return error.message.replace(repr(error.instance), "value" if not isinstance(error.instance, dict) else "object")


def _errors(validator: Validator, obj: Obj) -> list[tuple[str, str]]:
    found = sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path])
    return [(render.field_path(e.absolute_path), _redacted(e)) for e in found]


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


def load_crd_manifests(paths: Sequence[Path]) -> dict[tuple[str, str, str], Any]:
    """(group, version, kind) → JSON schema from CRD manifests (multi-document YAML files)."""
    schemas: dict[tuple[str, str, str], Any] = {}
    problems: list[Problem] = []
    for path in paths:
        try:
            docs = render.load_yaml_documents(path.read_text())
        except (OSError, UnicodeDecodeError) as err:
            problems.append(Problem(str(path), message=f"cannot read CRD file: {err} (pass a readable --crds FILE)"))
            continue
        except yaml.YAMLError as err:
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
                schema = ((version.get("schema") or {}).get("openAPIV3Schema")) if isinstance(version, dict) else None
                if group and kind and isinstance(schema, dict):
                    schemas[(group, str(version.get("name")), kind)] = _openapi_to_jsonschema(schema)
        if len(schemas) == before:
            problems.append(
                Problem(
                    str(path),
                    message="no apiextensions.k8s.io/v1 CustomResourceDefinition with an openAPIV3Schema "
                    "(pass CRD manifests to --crds)",
                )
            )
    if problems:
        raise UserError(problems)
    return schemas


@dataclass
class Schemas:
    """Every schema source for one validation run; validators are built once and reused."""

    crd_dir: Path | None = None
    crd_manifests: Mapping[tuple[str, str, str], Any] = field(default_factory=dict)
    _crd_validators: dict[tuple[str, str, str], Validator | None] = field(default_factory=dict)

    @classmethod
    def from_options(cls, crd_dir: Path | None, crd_files: Sequence[Path]) -> Schemas:
        """Schemas from --crd-schemas DIR and --crds FILE...; UserError when they cannot be read."""
        if crd_dir is not None and not crd_dir.is_dir():
            raise UserError([Problem(str(crd_dir), message="not a directory (pass --crd-schemas DIR)")])
        return cls(crd_dir=crd_dir, crd_manifests=load_crd_manifests(crd_files))

    def crd_validator(self, group: str, version: str, kind: str) -> Validator | None:
        key = (group, version, kind)
        if key not in self._crd_validators:
            schema = self.crd_manifests.get(key)
            if schema is None and self.crd_dir is not None:
                path = self.crd_dir / group / f"{kind.lower()}_{version}.json"
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
            return [_finding(cluster, obj, "", "schema", "no apiVersion or kind (every object needs both)")]
        group, _, version = api_version.rpartition("/")
        minor = kv_utils.major_minor(schema_version)
        if _is_builtin_group(group):
            validator = _k8s_validator(schema_version, kind, api_version)
            if validator is not None:
                return [_finding(cluster, obj, p, "schema", m) for p, m in _errors(validator, obj)]
            if "." not in group:
                return [
                    _finding(
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
            return [_finding(cluster, obj, "apiVersion", "crd-schema", message)]
        return [_finding(cluster, obj, p, "crd-schema", m) for p, m in _errors(validator, obj)]


# --------------------------------------------------------------------------- the rendered set


_POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


def _get(obj: Any, *keys: str | int) -> Any:
    for key in keys:
        if isinstance(key, int):
            obj = obj[key] if isinstance(obj, list) and -len(obj) <= key < len(obj) else None
        else:
            obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _items(value: Any) -> list[tuple[int, Obj]]:
    return [(i, v) for i, v in enumerate(value) if isinstance(v, dict)] if isinstance(value, list) else []


@dataclass(frozen=True)
class PodTemplate:
    """A pod spec inside a workload, with the field path that leads to it and its labels."""

    owner: Obj
    path: tuple[str, ...]
    labels: Mapping[str, str]
    spec: Obj

    def containers(self) -> Iterator[tuple[str, Obj]]:
        """(field path, container) of every initContainer and container."""
        for key in ("initContainers", "containers"):
            for i, container in _items(self.spec.get(key)):
                yield render.field_path([*self.path, "spec", key, i]), container


@dataclass
class ClusterSet:
    """All rendered objects of one cluster, indexed for the rules."""

    cluster: str
    objects: list[Obj]

    @functools.cached_property
    def by_id(self) -> dict[tuple[str, str, str], Obj]:
        return {(k, ns, n): o for o in self.objects for _, k, ns, n in [render.object_id(o)]}

    def find(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.by_id.get((kind, namespace, name))

    def of_kind(self, *kinds: str) -> list[Obj]:
        return [o for o in self.objects if o.get("kind") in kinds]

    @functools.cached_property
    def pod_templates(self) -> list[PodTemplate]:
        templates = []
        for obj in self.objects:
            path = _POD_TEMPLATE_PATHS.get(str(obj.get("kind")))
            template = _get(obj, *path) if path is not None else None
            if isinstance(template, dict) and isinstance(template.get("spec"), dict):
                labels = _get(template, "metadata", "labels") or {}
                templates.append(PodTemplate(obj, path or (), labels, template["spec"]))
        return templates

    @functools.cached_property
    def external_secret_keys(self) -> dict[tuple[str, str], set[str] | None]:
        """(namespace, Secret name) → keys an ExternalSecret puts in it (None: not knowable here)."""
        produced: dict[tuple[str, str], set[str] | None] = {}
        for es in self.of_kind("ExternalSecret"):
            _, _, namespace, name = render.object_id(es)
            target = _get(es, "spec", "target", "name") or name
            spec = es.get("spec") or {}
            template = _get(spec, "target", "template") or {}
            if spec.get("dataFrom") or template.get("templateFrom"):
                produced[(namespace, target)] = None
                continue
            keys = {str(d.get("secretKey")) for _, d in _items(spec.get("data"))}
            keys |= set((template.get("data") or {}).keys())
            previous = produced.get((namespace, target), set())
            produced[(namespace, target)] = None if previous is None else previous | keys
        return produced


Rule = Callable[[ClusterSet], Iterator[Finding]]
RULES: dict[str, Rule] = {}


def rule(name: str) -> Callable[[Rule], Rule]:
    """Register a CAVE rule under the name findings carry."""

    def register(func: Rule) -> Rule:
        RULES[name] = func
        return func

    return register


# --------------------------------------------------------------------------- CAVE rules


@rule("resource-requests")
def rule_resource_requests(cs: ClusterSet) -> Iterator[Finding]:
    """Every container and initContainer requests cpu and memory, so the scheduler can place it."""
    for template in cs.pod_templates:
        for path, container in template.containers():
            requests = _get(container, "resources", "requests") or {}
            missing = [r for r in ("cpu", "memory") if requests.get(r) in (None, "")]
            if missing:
                yield _finding(
                    cs.cluster,
                    template.owner,
                    f"{path}.resources.requests",
                    "resource-requests",
                    f"missing {' and '.join(missing)} (every container needs requests)",
                )


def image_problem(image: str) -> str | None:
    """Why an image reference is not pinned, or None when it has a digest or a non-latest tag."""
    if not image:
        return "no image (set a pinned image)"
    if "@" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image {image} has no tag or digest (pin a version)"
    if last.rsplit(":", 1)[1] == "latest":
        return f"image {image} uses tag latest (pin a version)"
    return None


@rule("image-pinned")
def rule_image_pinned(cs: ClusterSet) -> Iterator[Finding]:
    """Every image has a tag other than latest, or a digest, so a render says exactly what runs."""
    for template in cs.pod_templates:
        for path, container in template.containers():
            problem = image_problem(str(container.get("image") or ""))
            if problem:
                yield _finding(cs.cluster, template.owner, f"{path}.image", "image-pinned", problem)


@rule("hpa")
def rule_hpa(cs: ClusterSet) -> Iterator[Finding]:
    """HorizontalPodAutoscalers: 1 <= minReplicas <= maxReplicas and a scale target that exists."""
    for hpa in cs.of_kind("HorizontalPodAutoscaler"):
        spec = hpa.get("spec") or {}
        low, high = spec.get("minReplicas", 1), spec.get("maxReplicas")
        if isinstance(low, int) and low < 1:
            yield _finding(cs.cluster, hpa, "spec.minReplicas", "hpa", f"minReplicas {low} < 1 (set it to 1 or more)")
        if isinstance(low, int) and isinstance(high, int) and low > high:
            yield _finding(
                cs.cluster,
                hpa,
                "spec.minReplicas",
                "hpa",
                f"minReplicas {low} > maxReplicas {high} (raise maxReplicas or lower minReplicas)",
            )
        ref = spec.get("scaleTargetRef") or {}
        namespace = render.object_id(hpa)[2]
        if cs.find(str(ref.get("kind")), namespace, str(ref.get("name"))) is None:
            yield _finding(
                cs.cluster,
                hpa,
                "spec.scaleTargetRef",
                "hpa",
                f"scale target {ref.get('kind')}/{ref.get('name')} is not in the rendered cluster "
                "(fix the name or add the workload)",
            )


@rule("service-selector")
def rule_service_selector(cs: ClusterSet) -> Iterator[Finding]:
    """Every Service with a selector selects at least one pod template of the cluster."""
    for service in cs.of_kind("Service"):
        selector = _get(service, "spec", "selector")
        if not isinstance(selector, dict) or not selector or _get(service, "spec", "type") == "ExternalName":
            continue
        namespace = render.object_id(service)[2]
        if not any(
            render.object_id(t.owner)[2] == namespace and all(t.labels.get(k) == v for k, v in selector.items())
            for t in cs.pod_templates
        ):
            wanted = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
            yield _finding(
                cs.cluster,
                service,
                "spec.selector",
                "service-selector",
                f"selects no pod: no pod template has labels {wanted} (fix the selector or the workload labels)",
            )


def _ingress_backends(ingress: Obj) -> Iterator[tuple[str, Obj]]:
    spec = ingress.get("spec") or {}
    if isinstance(_get(spec, "defaultBackend", "service"), dict):
        yield "spec.defaultBackend.service", spec["defaultBackend"]["service"]
    for i, ingress_rule in _items(spec.get("rules")):
        for j, path in _items(_get(ingress_rule, "http", "paths")):
            backend = _get(path, "backend", "service")
            if isinstance(backend, dict):
                yield f"spec.rules[{i}].http.paths[{j}].backend.service", backend


@rule("ingress-backend")
def rule_ingress_backend(cs: ClusterSet) -> Iterator[Finding]:
    """Ingress backends name a Service of the cluster and a port that Service exposes."""
    for ingress in cs.of_kind("Ingress"):
        namespace = render.object_id(ingress)[2]
        for path, backend in _ingress_backends(ingress):
            name = str(backend.get("name"))
            service = cs.find("Service", namespace, name)
            if service is None:
                yield _finding(
                    cs.cluster,
                    ingress,
                    f"{path}.name",
                    "ingress-backend",
                    f"Service {name} is not in the rendered cluster (fix the backend or add the Service)",
                )
                continue
            port = backend.get("port") or {}
            ports = [p for _, p in _items(_get(service, "spec", "ports"))]
            if "number" in port and not any(p.get("port") == port["number"] for p in ports):
                wanted = f"port {port['number']}"
            elif "name" in port and not any(p.get("name") == port["name"] for p in ports):
                wanted = f"port named {port['name']}"
            else:
                continue
            yield _finding(
                cs.cluster,
                ingress,
                f"{path}.port",
                "ingress-backend",
                f"Service {name} exposes no {wanted} (use one of its ports)",
            )


@dataclass(frozen=True)
class _Ref:
    path: str
    kind: str  # ConfigMap or Secret
    name: str
    keys: tuple[str, ...]
    optional: bool


def _config_refs(template: PodTemplate) -> Iterator[_Ref]:
    """Every ConfigMap and Secret a pod template mounts or reads."""
    base = render.field_path([*template.path, "spec"])
    for i, volume in _items(template.spec.get("volumes")):
        vpath = f"{base}.volumes[{i}]"
        for key, kind, name_key in (("configMap", "ConfigMap", "name"), ("secret", "Secret", "secretName")):
            source = volume.get(key)
            if isinstance(source, dict):
                keys = tuple(str(item.get("key")) for _, item in _items(source.get("items")))
                yield _Ref(
                    f"{vpath}.{key}.{name_key}",
                    kind,
                    str(source.get(name_key)),
                    keys,
                    bool(source.get("optional")),
                )
        for j, src in _items(_get(volume, "projected", "sources")):
            for key, kind in (("configMap", "ConfigMap"), ("secret", "Secret")):
                source = src.get(key)
                if isinstance(source, dict):
                    keys = tuple(str(item.get("key")) for _, item in _items(source.get("items")))
                    yield _Ref(
                        f"{vpath}.projected.sources[{j}].{key}.name",
                        kind,
                        str(source.get("name")),
                        keys,
                        bool(source.get("optional")),
                    )
    for cpath, container in template.containers():
        for i, env_from in _items(container.get("envFrom")):
            for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                source = env_from.get(key)
                if isinstance(source, dict):
                    yield _Ref(
                        f"{cpath}.envFrom[{i}].{key}.name",
                        kind,
                        str(source.get("name")),
                        (),
                        bool(source.get("optional")),
                    )
        for i, env in _items(container.get("env")):
            for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                source = _get(env, "valueFrom", key)
                if isinstance(source, dict):
                    yield _Ref(
                        f"{cpath}.env[{i}].valueFrom.{key}.name",
                        kind,
                        str(source.get("name")),
                        (str(source.get("key")),),
                        bool(source.get("optional")),
                    )


@rule("config-refs")
def rule_config_refs(cs: ClusterSet) -> Iterator[Finding]:
    """ConfigMaps and Secrets pods use exist, with the keys used (Secrets may come from ExternalSecrets)."""
    for template in cs.pod_templates:
        namespace = render.object_id(template.owner)[2]
        for ref in _config_refs(template):
            if ref.optional:
                continue
            source = cs.find(ref.kind, namespace, ref.name)
            keys: set[str] | None
            if source is not None:
                data_keys = ("data", "binaryData") if ref.kind == "ConfigMap" else ("data", "stringData")
                keys = {str(k) for d in data_keys for k in (source.get(d) or {})}
            elif ref.kind == "Secret" and (namespace, ref.name) in cs.external_secret_keys:
                keys = cs.external_secret_keys[(namespace, ref.name)]
            else:
                producer = " or ExternalSecret" if ref.kind == "Secret" else ""
                yield _finding(
                    cs.cluster,
                    template.owner,
                    ref.path,
                    "config-refs",
                    f"{ref.kind} {ref.name} is not in the rendered cluster "
                    f"(add the {ref.kind}{producer}, fix the name, or mark the reference optional)",
                )
                continue
            for key in ref.keys:
                if keys is not None and key not in keys:
                    yield _finding(
                        cs.cluster,
                        template.owner,
                        ref.path,
                        "config-refs",
                        f"{ref.kind} {ref.name} has no key {key} (add the key or fix the reference)",
                    )


PLACEHOLDER_RE = re.compile(r"\bTODO-[A-Za-z0-9_.-]*")


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, render.join_path(path, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, render.join_path(path, i))


@rule("placeholder")
def rule_placeholder(cs: ClusterSet) -> Iterator[Finding]:
    """No `TODO-...` placeholder (written by import-env for a value only a person can decide) reaches a cluster."""
    for obj in cs.objects:
        for path, text in _strings(obj, ""):
            match = PLACEHOLDER_RE.search(text)
            if match:
                yield _finding(cs.cluster, obj, path, "placeholder",
                               f"placeholder {match.group(0)} left by import-env (set the real value in the spec)")


@rule("secret-in-git")
def rule_secret_in_git(cs: ClusterSet) -> Iterator[Finding]:
    """Secrets carry no values in the rendered output: values come from Secret Manager via ExternalSecrets."""
    for secret in cs.of_kind("Secret"):
        for key in ("data", "stringData"):
            if secret.get(key):
                yield _finding(
                    cs.cluster,
                    secret,
                    key,
                    "secret-in-git",
                    "a Secret with values in git (produce it with an ExternalSecret from Secret Manager)",
                )


# --------------------------------------------------------------------------- secret-looking values

# The detection lives in compiler/secretguard.py, shared with the spec loader.
shannon_entropy = secretguard.shannon_entropy
looks_random = secretguard.looks_random
_FIX = "move it to Secret Manager and an ExternalSecret"


def secret_problem(key: str, value: str) -> str | None:
    """Why a literal key/value pair looks like a plaintext secret (never quoting the value), or None."""
    hit = secretguard.check(key, value)
    return None if hit is None else _hit_message(key, hit)


def _hit_message(key: str | None, hit: secretguard.Hit) -> str:
    if hit.rule == "uri-password":
        return f"{hit.what} (put the password in Secret Manager, inject it via env)"
    return f"{key} holds {hit.what} ({_FIX})" if key else f"{hit.what} ({_FIX})"


@rule("plaintext-secret")
def rule_plaintext_secret(cs: ClusterSet) -> Iterator[Finding]:
    """No secret-looking value in a ConfigMap's data, a container's env literal, command or args."""
    for cm in cs.of_kind("ConfigMap"):
        for key, value in sorted((cm.get("data") or {}).items()):
            value = "" if value is None else str(value)
            path = render.field_path(["data", str(key)])
            if "\n" not in value.strip():
                if problem := secret_problem(str(key), value):
                    yield _finding(cs.cluster, cm, path, "plaintext-secret", problem)
                continue
            for number, line_key, hit in secretguard.check_text(value):
                message = f"line {number}: {_hit_message(line_key, hit)}"
                yield _finding(cs.cluster, cm, path, "plaintext-secret", message)
    for template in cs.pod_templates:
        for cpath, container in template.containers():
            for i, env in _items(container.get("env")):
                if "value" in env and (problem := secret_problem(str(env.get("name")), str(env["value"] or ""))):
                    yield _finding(cs.cluster, template.owner, f"{cpath}.env[{i}].value", "plaintext-secret", problem)
            for field_name in ("command", "args"):
                args = container.get(field_name)
                if not isinstance(args, list):
                    continue
                for i, flag, hit in secretguard.check_args([str(a) for a in args]):
                    yield _finding(cs.cluster, template.owner, f"{cpath}.{field_name}[{i}]", "plaintext-secret",
                                   _hit_message(flag, hit))


# --------------------------------------------------------------------------- running it all


def validate_objects(
    cluster: str, objects: Sequence[Obj], kubernetes_version: str, schemas: Schemas | None = None
) -> list[Finding]:
    """Every schema and CAVE-rule problem of one cluster's rendered objects, sorted."""
    schema_version = kubernetes_schema_version(kubernetes_version)
    schemas = schemas or Schemas()
    findings = [f for obj in objects for f in schemas.check(cluster, obj, schema_version)]
    cs = ClusterSet(cluster, list(objects))
    for check in RULES.values():
        findings.extend(check(cs))
    return sorted(set(findings))


def validate_clusters(
    root: Path,
    versions: Mapping[str, str],
    schemas: Schemas | None = None,
    *,
    use_cache: bool = True,
) -> list[Finding]:
    """Render the clusters in `versions` (cluster → Kubernetes version) in parallel and validate them."""
    for version in set(versions.values()):
        kubernetes_schema_version(version)  # fail on a bad version before rendering anything
    rendered = render.render_clusters(root, sorted(versions), use_cache=use_cache)
    schemas = schemas or Schemas()
    return sorted(
        f
        for cluster in sorted(versions)
        for f in validate_objects(cluster, rendered[cluster].objects, versions[cluster], schemas)
    )


def format_text(findings: Iterable[Finding]) -> str:
    return "".join(f"{f}\n" for f in findings)


def format_json(findings: Iterable[Finding]) -> str:
    return json.dumps([f.as_dict() for f in findings], indent=2, sort_keys=True) + "\n"
