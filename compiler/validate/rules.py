"""CAVE rules over one cluster's rendered objects, each a `rule_*` function registered by name."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from compiler.render.manifests import field_path, get, join_path, object_id
from compiler.spec import secretguard
from compiler.validate.model import Finding, Obj, object_finding
from compiler.validate.schemas import POD_TEMPLATE_PATHS


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
                yield field_path([*self.path, "spec", key, i]), container


@dataclass
class ClusterSet:
    """All rendered objects of one cluster, indexed for the rules."""

    cluster: str
    objects: list[Obj]

    @functools.cached_property
    def by_id(self) -> dict[tuple[str, str, str], Obj]:
        return {(k, ns, n): o for o in self.objects for _, k, ns, n in [object_id(o)]}

    def find(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.by_id.get((kind, namespace, name))

    def of_kind(self, *kinds: str) -> list[Obj]:
        return [o for o in self.objects if o.get("kind") in kinds]

    @functools.cached_property
    def pod_templates(self) -> list[PodTemplate]:
        templates = []
        for obj in self.objects:
            path = POD_TEMPLATE_PATHS.get(str(obj.get("kind")))
            template = get(obj, *path) if path is not None else None
            if isinstance(template, dict) and isinstance(template.get("spec"), dict):
                labels = get(template, "metadata", "labels") or {}
                templates.append(PodTemplate(obj, path or (), labels, template["spec"]))
        return templates

    @functools.cached_property
    def external_secret_keys(self) -> dict[tuple[str, str], set[str] | None]:
        """(namespace, Secret name) → keys an ExternalSecret puts in it (None: not knowable here)."""
        produced: dict[tuple[str, str], set[str] | None] = {}
        for es in self.of_kind("ExternalSecret"):
            namespace, target, keys = external_secret_target(es)
            previous = produced.get((namespace, target), set())
            produced[(namespace, target)] = None if previous is None or keys is None else previous | keys
        return produced


def external_secret_target(es: Obj) -> tuple[str, str, set[str] | None]:
    """(namespace, name, keys) of the Secret an ExternalSecret makes (keys None: not knowable here)."""
    _, _, namespace, name = object_id(es)
    target = str(get(es, "spec", "target", "name") or name)
    spec = es.get("spec") or {}
    template = get(spec, "target", "template") or {}
    if spec.get("dataFrom") or template.get("templateFrom"):
        return namespace, target, None
    keys = {str(d.get("secretKey")) for _, d in _items(spec.get("data"))}
    keys |= {str(k) for k in (template.get("data") or {})}
    return namespace, target, keys


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
            requests = get(container, "resources", "requests") or {}
            missing = [r for r in ("cpu", "memory") if requests.get(r) in (None, "")]
            if missing:
                yield object_finding(
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
                yield object_finding(cs.cluster, template.owner, f"{path}.image", "image-pinned", problem)


@rule("hpa")
def rule_hpa(cs: ClusterSet) -> Iterator[Finding]:
    """HorizontalPodAutoscalers: 1 <= minReplicas <= maxReplicas and a scale target that exists."""
    for hpa in cs.of_kind("HorizontalPodAutoscaler"):
        spec = hpa.get("spec") or {}
        low, high = spec.get("minReplicas", 1), spec.get("maxReplicas")
        if isinstance(low, int) and low < 1:
            yield object_finding(cs.cluster, hpa, "spec.minReplicas", "hpa",
                                 f"minReplicas {low} < 1 (set it to 1 or more)")
        if isinstance(low, int) and isinstance(high, int) and low > high:
            yield object_finding(
                cs.cluster,
                hpa,
                "spec.minReplicas",
                "hpa",
                f"minReplicas {low} > maxReplicas {high} (raise maxReplicas or lower minReplicas)",
            )
        ref = spec.get("scaleTargetRef") or {}
        namespace = object_id(hpa)[2]
        if cs.find(str(ref.get("kind")), namespace, str(ref.get("name"))) is None:
            yield object_finding(
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
        selector = get(service, "spec", "selector")
        if not isinstance(selector, dict) or not selector or get(service, "spec", "type") == "ExternalName":
            continue
        namespace = object_id(service)[2]
        if not any(
            object_id(t.owner)[2] == namespace and all(t.labels.get(k) == v for k, v in selector.items())
            for t in cs.pod_templates
        ):
            wanted = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
            yield object_finding(
                cs.cluster,
                service,
                "spec.selector",
                "service-selector",
                f"selects no pod: no pod template has labels {wanted} (fix the selector or the workload labels)",
            )


def _ingress_backends(ingress: Obj) -> Iterator[tuple[str, Obj]]:
    spec = ingress.get("spec") or {}
    if isinstance(get(spec, "defaultBackend", "service"), dict):
        yield "spec.defaultBackend.service", spec["defaultBackend"]["service"]
    for i, ingress_rule in _items(spec.get("rules")):
        for j, path in _items(get(ingress_rule, "http", "paths")):
            backend = get(path, "backend", "service")
            if isinstance(backend, dict):
                yield f"spec.rules[{i}].http.paths[{j}].backend.service", backend


@rule("ingress-backend")
def rule_ingress_backend(cs: ClusterSet) -> Iterator[Finding]:
    """Ingress backends name a Service of the cluster and a port that Service exposes."""
    for ingress in cs.of_kind("Ingress"):
        namespace = object_id(ingress)[2]
        for path, backend in _ingress_backends(ingress):
            name = str(backend.get("name"))
            service = cs.find("Service", namespace, name)
            if service is None:
                yield object_finding(
                    cs.cluster,
                    ingress,
                    f"{path}.name",
                    "ingress-backend",
                    f"Service {name} is not in the rendered cluster (fix the backend or add the Service)",
                )
                continue
            port = backend.get("port") or {}
            ports = [p for _, p in _items(get(service, "spec", "ports"))]
            if "number" in port and not any(p.get("port") == port["number"] for p in ports):
                wanted = f"port {port['number']}"
            elif "name" in port and not any(p.get("name") == port["name"] for p in ports):
                wanted = f"port named {port['name']}"
            else:
                continue
            yield object_finding(
                cs.cluster,
                ingress,
                f"{path}.port",
                "ingress-backend",
                f"Service {name} exposes no {wanted} (use one of its ports)",
            )


@dataclass(frozen=True)
class ConfigRef:
    path: str
    kind: str  # ConfigMap or Secret
    name: str
    keys: tuple[str, ...]
    optional: bool


def config_refs(template: PodTemplate) -> Iterator[ConfigRef]:
    """Every ConfigMap and Secret a pod template mounts or reads."""
    base = field_path([*template.path, "spec"])
    for i, volume in _items(template.spec.get("volumes")):
        vpath = f"{base}.volumes[{i}]"
        for key, kind, name_key in (("configMap", "ConfigMap", "name"), ("secret", "Secret", "secretName")):
            source = volume.get(key)
            if isinstance(source, dict):
                keys = tuple(str(item.get("key")) for _, item in _items(source.get("items")))
                yield ConfigRef(
                    f"{vpath}.{key}.{name_key}",
                    kind,
                    str(source.get(name_key)),
                    keys,
                    bool(source.get("optional")),
                )
        for j, src in _items(get(volume, "projected", "sources")):
            for key, kind in (("configMap", "ConfigMap"), ("secret", "Secret")):
                source = src.get(key)
                if isinstance(source, dict):
                    keys = tuple(str(item.get("key")) for _, item in _items(source.get("items")))
                    yield ConfigRef(
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
                    yield ConfigRef(
                        f"{cpath}.envFrom[{i}].{key}.name",
                        kind,
                        str(source.get("name")),
                        (),
                        bool(source.get("optional")),
                    )
        for i, env in _items(container.get("env")):
            for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                source = get(env, "valueFrom", key)
                if isinstance(source, dict):
                    yield ConfigRef(
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
        namespace = object_id(template.owner)[2]
        for ref in config_refs(template):
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
                yield object_finding(
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
                    yield object_finding(
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
            yield from _strings(v, join_path(path, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, join_path(path, i))


@rule("placeholder")
def rule_placeholder(cs: ClusterSet) -> Iterator[Finding]:
    """No `TODO-...` placeholder (written by import-env for a value only a person can decide) reaches a cluster."""
    for obj in cs.objects:
        for path, text in _strings(obj, ""):
            match = PLACEHOLDER_RE.search(text)
            if match:
                yield object_finding(cs.cluster, obj, path, "placeholder",
                               f"placeholder {match.group(0)} left by import-env (set the real value in the spec)")


@rule("secret-in-git")
def rule_secret_in_git(cs: ClusterSet) -> Iterator[Finding]:
    """Secrets carry no values in the rendered output: values come from Secret Manager via ExternalSecrets."""
    for secret in cs.of_kind("Secret"):
        for key in ("data", "stringData"):
            if secret.get(key):
                yield object_finding(
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
            path = field_path(["data", str(key)])
            if "\n" not in value.strip():
                if problem := secret_problem(str(key), value):
                    yield object_finding(cs.cluster, cm, path, "plaintext-secret", problem)
                continue
            for number, line_key, hit in secretguard.check_text(value):
                message = f"line {number}: {_hit_message(line_key, hit)}"
                yield object_finding(cs.cluster, cm, path, "plaintext-secret", message)
    for template in cs.pod_templates:
        for cpath, container in template.containers():
            for i, env in _items(container.get("env")):
                if "value" in env and (problem := secret_problem(str(env.get("name")), str(env["value"] or ""))):
                    yield object_finding(cs.cluster, template.owner, f"{cpath}.env[{i}].value", "plaintext-secret",
                                         problem)
            for field_name in ("command", "args"):
                args = container.get(field_name)
                if not isinstance(args, list):
                    continue
                for i, flag, hit in secretguard.check_args([str(a) for a in args]):
                    yield object_finding(cs.cluster, template.owner, f"{cpath}.{field_name}[{i}]", "plaintext-secret",
                                   _hit_message(flag, hit))
