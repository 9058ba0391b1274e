"""Validation: k8s schemas, CRD schemas (directory and manifests), and one failing case per CAVE rule."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from compiler.errors import UserError
from compiler.main import main
from compiler.validate.engine import validate_objects
from compiler.validate.rules import looks_random, shannon_entropy
from compiler.validate.schemas import Schemas
from tests.support.render import CRD_SCHEMAS

Obj = dict[str, Any]


def deployment(name: str = "web", **container: Any) -> Obj:
    base_container = {
        "name": name,
        "image": f"ghcr.io/cave/{name}:v1",
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        **container,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [base_container]}},
        },
    }


def service(name: str = "web", selector: Obj | None = None) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": selector or {"app": name}, "ports": [{"name": "http", "port": 80}]},
    }


def configmap(name: str, data: Obj) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}, "data": data}


def external_secret(name: str, keys: list[str], target: str | None = None) -> Obj:
    spec: Obj = {
        "secretStoreRef": {"kind": "ClusterSecretStore", "name": "gcp"},
        "data": [{"secretKey": k, "remoteRef": {"key": f"sm-{k.lower()}"}} for k in keys],
    }
    if target:
        spec["target"] = {"name": target}
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


def check(objects: list[Obj], schemas: Schemas | None = None, version: str = "1.31") -> list[str]:
    return [str(f) for f in validate_objects("minnie", objects, version, schemas or crd_dir_schemas())]


def rules(objects: list[Obj]) -> list[tuple[str, str, str]]:
    return [
        (f.rule, f.path, f.message) for f in validate_objects("minnie", objects, "1.31", crd_dir_schemas())
    ]


def crd_dir_schemas() -> Schemas:
    if not CRD_SCHEMAS.is_dir():
        pytest.skip(f"no CRD schema test data at {CRD_SCHEMAS}")
    return Schemas.from_options(CRD_SCHEMAS, [])


def test_clean_set_passes() -> None:
    objects = [
        deployment("web", envFrom=[{"configMapRef": {"name": "web-config"}}]),
        service("web"),
        configmap("web-config", {"LOG_LEVEL": "info", "DB_PASSWORD_FILE": "/etc/secrets/db", "TOKEN_TTL": "3600"}),
        external_secret("web-secrets", ["TOKEN"]),
    ]
    assert check(objects) == []


# --------------------------------------------------------------------------- schema sources


def test_k8s_schema_strict_unknown_field() -> None:
    obj = deployment("web", imagePolicy="Always")
    assert check([obj]) == [
        "minnie: Deployment/default/web: spec.template.spec.containers[0]: "
        "Additional properties are not allowed ('imagePolicy' was unexpected)"
    ]
    # The same object fails kubernetes_validate.validate itself: our cached validator is equivalent.
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(obj, "1.31.0", strict=True)
    kubernetes_validate.validate(deployment("web"), "1.31.0", strict=True)


def test_k8s_schema_reports_every_error_of_an_object() -> None:
    obj = deployment("web", imagePolicy="Always")
    obj["spec"]["replicas"] = "three"
    found = check([obj])
    assert len(found) == 2
    assert any("spec.replicas" in f and "is not of type 'integer'" in f for f in found)


def test_schema_messages_never_quote_values() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": 98765432123}}
    found = check([secret])
    assert found and not any("98765432123" in f for f in found)


def test_removed_api_fails() -> None:
    cronjob = {
        "apiVersion": "batch/v1beta1",
        "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": "default"},
        "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}},
    }
    assert check([cronjob]) == [
        "minnie: CronJob/default/nightly: apiVersion: no schema for batch/v1beta1 CronJob in Kubernetes 1.31: "
        "removed API? (use the API version this Kubernetes serves)"
    ]
    cronjob["apiVersion"] = "batch/v1"
    assert not any("no schema" in f for f in check([cronjob]))
    ingress = {"apiVersion": "networking.k8s.io/v1beta1", "kind": "Ingress", "metadata": {"name": "i"}}
    assert check([ingress]) == [
        "minnie: Ingress/i: apiVersion: no schema for networking.k8s.io/v1beta1 Ingress in Kubernetes 1.31 nor in "
        "the CRD schemas: removed API? (use the API version this Kubernetes serves, or pass its CRD with --crds "
        "FILE or a schema directory with --crd-schemas DIR)"
    ]


def test_unbundled_version_is_a_user_error() -> None:
    with pytest.raises(UserError) as err:
        validate_objects("minnie", [deployment()], "1.12")
    assert "Kubernetes 1.12 has no bundled schemas" in str(err.value)


def test_crd_schema_dir_catches_bad_custom_resource() -> None:
    es = external_secret("web-secrets", ["TOKEN"])
    es["spec"]["refreshIntervall"] = "1h"
    found = check([es])
    assert len(found) == 1
    assert found[0].startswith("minnie: ExternalSecret/default/web-secrets: spec: ")
    assert "refreshIntervall" in found[0]


def test_custom_resource_without_schema_fails() -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}}
    assert check([widget]) == [
        "minnie: Widget/w: apiVersion: no schema for custom resource example.com/v1 Widget "
        "(pass its CRD with --crds FILE or a schema directory with --crd-schemas DIR)"
    ]


WIDGET_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          apiVersion: {type: string}
          kind: {type: string}
          metadata: {type: object}
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1}
              port: {x-kubernetes-int-or-string: true}
              note: {type: string, nullable: true}
              extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: not-a-crd}
"""


def test_crd_manifests_file(tmp_path: Path) -> None:
    path = tmp_path / "crds.yaml"
    path.write_text(WIDGET_CRD)
    schemas = Schemas.from_options(None, [path])
    good = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default"},
        "spec": {"size": 2, "port": "http", "note": None, "extra": {"anything": 1}},
    }
    assert check([good], schemas) == []
    bad = copy.deepcopy(good)
    bad["spec"] = {"size": 0, "colour": "red"}
    found = check([bad], schemas)
    assert [f.split(": ", 3)[2] for f in found] == ["spec", "spec.size"]
    assert "'colour' was unexpected" in found[0]


def test_crd_file_problems_are_user_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("apiVersion: v1\nkind: ConfigMap\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [\n")
    with pytest.raises(UserError) as err:
        Schemas.from_options(None, [empty, broken, tmp_path / "missing.yaml"])
    assert len(err.value.problems) == 3
    with pytest.raises(UserError):
        Schemas.from_options(tmp_path / "no-such-dir", [])


# --------------------------------------------------------------------------- CAVE rules, one failure each


def test_rule_resource_requests() -> None:
    obj = deployment("annotationengine", resources={"requests": {"memory": "1Gi"}})
    obj["spec"]["template"]["spec"]["initContainers"] = [{"name": "init", "image": "busybox:1.36"}]
    assert [(r, p, m) for r, p, m in rules([obj]) if r == "resource-requests"] == [
        (
            "resource-requests",
            "spec.template.spec.containers[0].resources.requests",
            "missing cpu (every container needs requests)",
        ),
        (
            "resource-requests",
            "spec.template.spec.initContainers[0].resources.requests",
            "missing cpu and memory (every container needs requests)",
        ),
    ]
    line = str(validate_objects("minnie", [obj], "1.31")[0])
    assert line == (
        "minnie: Deployment/default/annotationengine: spec.template.spec.containers[0].resources.requests: "
        "missing cpu (every container needs requests)"
    )


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        ("ghcr.io/cave/web", "has no tag or digest"),
        ("ghcr.io/cave/web:latest", "uses tag latest"),
        ("localhost:5000/web", "has no tag or digest"),
        ("ghcr.io/cave/web:v1", None),
        ("localhost:5000/web:v2", None),
        ("ghcr.io/cave/web@sha256:" + "a" * 64, None),
    ],
)
def test_rule_image_pinned(image: str, problem: str | None) -> None:
    found = [m for r, _, m in rules([deployment("web", image=image)]) if r == "image-pinned"]
    assert (found[0] if found else None) == (f"image {image} {problem} (pin a version)" if problem else None)


def hpa(target: str, low: int, high: int) -> Obj:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": low,
            "maxReplicas": high,
        },
    }


def test_rule_hpa() -> None:
    assert [m for r, _, m in rules([deployment(), hpa("web", 1, 3)]) if r == "hpa"] == []
    assert [m for r, _, m in rules([deployment(), hpa("web", 5, 3)]) if r == "hpa"] == [
        "minReplicas 5 > maxReplicas 3 (raise maxReplicas or lower minReplicas)"
    ]
    assert [m for r, _, m in rules([deployment(), hpa("wbe", 1, 3)]) if r == "hpa"] == [
        "scale target Deployment/wbe is not in the rendered cluster (fix the name or add the workload)"
    ]
    assert [m for r, _, m in rules([deployment(), hpa("web", 0, 3)]) if r == "hpa"] == [
        "minReplicas 0 < 1 (set it to 1 or more)"
    ]


def test_rule_service_selector() -> None:
    assert [r for r, _, _ in rules([deployment(), service("web")])] == []
    assert rules([deployment(), service("web", {"app": "wbe"})]) == [
        (
            "service-selector",
            "spec.selector",
            "selects no pod: no pod template has labels app=wbe (fix the selector or the workload labels)",
        )
    ]


def ingress(service_name: str, port: Obj) -> Obj:
    backend = {"service": {"name": service_name, "port": port}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "cave", "namespace": "default"},
        "spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}]},
    }


def test_rule_ingress_backend() -> None:
    base = [deployment(), service("web")]
    assert rules([*base, ingress("web", {"number": 80})]) == []
    assert rules([*base, ingress("web", {"name": "http"})]) == []
    assert rules([*base, ingress("wbe", {"number": 80})]) == [
        (
            "ingress-backend",
            "spec.rules[0].http.paths[0].backend.service.name",
            "Service wbe is not in the rendered cluster (fix the backend or add the Service)",
        )
    ]
    assert rules([*base, ingress("web", {"number": 8080})]) == [
        (
            "ingress-backend",
            "spec.rules[0].http.paths[0].backend.service.port",
            "Service web exposes no port 8080 (use one of its ports)",
        )
    ]


def test_rule_config_refs() -> None:
    obj = deployment(
        "web",
        envFrom=[{"configMapRef": {"name": "web-config"}}, {"secretRef": {"name": "maybe", "optional": True}}],
        env=[
            {"name": "A", "valueFrom": {"secretKeyRef": {"name": "web-secrets", "key": "TOKEN"}}},
            {"name": "B", "valueFrom": {"secretKeyRef": {"name": "web-secrets", "key": "NOPE"}}},
            {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "web-config", "key": "LOG_LEVEL"}}},
        ],
    )
    obj["spec"]["template"]["spec"]["volumes"] = [
        {"name": "a", "secret": {"secretName": "tls-cert"}},
        {"name": "b", "projected": {"sources": [{"configMap": {"name": "missing-cm"}}]}},
    ]
    objects = [obj, configmap("web-config", {"LOG_LEVEL": "info"}), external_secret("es", ["TOKEN"], "web-secrets")]
    assert [(p, m) for r, p, m in rules(objects) if r == "config-refs"] == [
        (
            "spec.template.spec.containers[0].env[1].valueFrom.secretKeyRef.name",
            "Secret web-secrets has no key NOPE (add the key or fix the reference)",
        ),
        (
            "spec.template.spec.volumes[0].secret.secretName",
            "Secret tls-cert is not in the rendered cluster "
            "(add the Secret or ExternalSecret, fix the name, or mark the reference optional)",
        ),
        (
            "spec.template.spec.volumes[1].projected.sources[0].configMap.name",
            "ConfigMap missing-cm is not in the rendered cluster (add the ConfigMap, fix the name, or mark the "
            "reference optional)",
        ),
    ]


def test_rule_secret_in_git() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"}}
    assert rules([{**secret, "type": "Opaque"}]) == []
    assert [r for r, _, _ in rules([{**secret, "stringData": {"k": "v"}}])] == ["secret-in-git"]


@pytest.mark.parametrize(
    ("data", "message", "secret"),
    [
        ({"DB_PASSWORD": "hunter2hunter2"}, "DB_PASSWORD holds a literal value under a secret-like name", "hunter2"),
        ({"api_key": "abc"}, "api_key holds a literal value under a secret-like name", "abc"),
        ({"DATABASE_URI": "postgresql://cave:s3cr3t@db:5432/cave"}, "a URI with an embedded password", "s3cr3t"),
        ({"SIGNING_KEY": "q8Zr2LmX9vKp4TnW7yBc1HdF"}, "SIGNING_KEY holds a random-looking value", "q8Zr2"),
        ({"config.py": 'DEBUG = False\nSECRET_KEY = "not-so-secret"\n'}, "line 2: SECRET_KEY holds a literal", "so-s"),
        ({"app.yaml": "db:\n  url: mysql://root:pw@db/x\n"}, "line 2: a URI with an embedded password", ":pw@"),
    ],
)
def test_rule_plaintext_secret_in_configmap(data: Obj, message: str, secret: str) -> None:
    found = [str(f) for f in validate_objects("minnie", [configmap("cfg", data)], "1.31")]
    assert len(found) == 1
    assert found[0].startswith(f"minnie: ConfigMap/default/cfg: data{'.' if '.' not in next(iter(data)) else ''}")
    assert message in found[0]
    assert secret not in found[0]  # the value itself is never quoted


@pytest.mark.parametrize(
    "data",
    [
        {"DB_PASSWORD_FILE": "/run/secrets/db"},
        {"SECRET_NAME": "minnie-postgres-password"},
        {"TOKEN_EXPIRY": "3600"},
        {"DATABASE_URI": "postgresql://cave:$(DB_PASSWORD)@db:5432/cave"},
        {"AUTH_URL": "https://global.cave.org/auth"},
        {"config.py": 'SECRET_KEY = os.environ["SECRET_KEY"]\nPASSWORD = ""\n'},
        {"USE_TOKEN": "true"},
        {"CACHE_KEY_PREFIX": "annotationengine"},
    ],
)
def test_rule_plaintext_secret_spares_references(data: Obj) -> None:
    assert [r for r, _, _ in rules([configmap("cfg", data)]) if r == "plaintext-secret"] == []


def test_rule_plaintext_secret_in_env_literal() -> None:
    obj = deployment("web", env=[{"name": "AUTH_TOKEN", "value": "tok-1234"}, {"name": "LOG", "value": "x"}])
    assert [(r, p) for r, p, _ in rules([obj])] == [
        ("plaintext-secret", "spec.template.spec.containers[0].env[0].value")
    ]


GITHUB = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"  # made up


def test_rule_plaintext_secret_in_command_args_and_any_env_name() -> None:
    obj = deployment(
        "web",
        command=["sh", "-c", "PGPASSWORD=hunter2hunter2 psql -h db"],
        args=["--port=5432", "--api-key", "abc123def", "--log=info", "--password=$(DB_PASSWORD)"],
        env=[{"name": "NOTE", "value": f"use {GITHUB}"}, {"name": "SECRET_NAME", "value": "minnie-postgres-password"}],
    )
    found = [(p, m) for r, p, m in rules([obj]) if r == "plaintext-secret"]
    assert found == [
        ("spec.template.spec.containers[0].args[2]",
         "api-key holds a literal value under a secret-like name (move it to Secret Manager and an ExternalSecret)"),
        ("spec.template.spec.containers[0].command[2]",
         "PGPASSWORD holds a literal value under a secret-like name (move it to Secret Manager and an ExternalSecret)"),
        ("spec.template.spec.containers[0].env[0].value",
         "NOTE holds a GitHub token (move it to Secret Manager and an ExternalSecret)"),
    ]
    assert not any("hunter2" in m or "abc123def" in m or GITHUB in m for _, m in found)


def test_rule_plaintext_secret_in_config_file_anywhere() -> None:
    text = "A = 1\nDASH = {'cell_types': {'api_key': 'abc123def'}}\n# q8Zr2LmX9vKp4TnW7yBc1HdF\n"
    cfg = configmap("cfg", {"config.py": text})
    assert [(p, m) for r, p, m in rules([cfg]) if r == "plaintext-secret"] == [
        ('data["config.py"]', "line 2: api_key holds a literal value under a secret-like name (move it to Secret "
         "Manager and an ExternalSecret)"),
        ('data["config.py"]', "line 3: a random-looking value (move it to Secret Manager and an ExternalSecret)"),
    ]


def test_rule_secret_in_git_with_data() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"},
              "data": {"password": "aHVudGVyMg=="}}
    found = [str(f) for f in validate_objects("minnie", [secret], "1.31") if f.rule == "secret-in-git"]
    assert found == ["minnie: Secret/default/s: data: a Secret with values in git (produce it with an ExternalSecret "
                     "from Secret Manager)"]


def test_command_catches_a_password_in_a_rendered_configmap(
    fleet: Any, capsys: pytest.CaptureFixture[str], kustomize_tool: object
) -> None:
    config = "LOG_LEVEL=info\nSERVICE=guidebook\nDB_PASSWORD=hunter2hunter2\n"
    fleet.write({"overlays/minnie/configs/guidebook.cfg": config})
    argv = ["-C", str(fleet.root), "validate", "--no-fleet-rules", "--kubernetes-version", "1.31",
            "--crd-schemas", str(CRD_SCHEMAS)]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "hunter2" not in captured.out + captured.err
    lines = captured.out.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("minnie: ConfigMap/default/guidebook-config-")
    assert lines[0].endswith(': data["guidebook.cfg"]: line 3: DB_PASSWORD holds a literal value under a secret-like '
                             "name (move it to Secret Manager and an ExternalSecret)")


def test_shannon_entropy() -> None:
    assert shannon_entropy("aaaa") == 0.0
    assert shannon_entropy("abcd") == 2.0
    assert not looks_random("a" * 40)


# --------------------------------------------------------------------------- the command


def test_command_clean_fleet(fleet: Any, capsys: pytest.CaptureFixture[str], kustomize_tool: object) -> None:
    code = main(["-C", str(fleet.root), "validate", "--no-fleet-rules", "--kubernetes-version", "1.31",
            "--crd-schemas", str(CRD_SCHEMAS)])
    captured = capsys.readouterr()
    assert (code, captured.out) == (0, "")
    assert "validated minnie, pinky: valid" in captured.err


def test_command_reports_all_problems(fleet: Any, capsys: pytest.CaptureFixture[str], kustomize_tool: object) -> None:
    deploy = (fleet.root / "base/guidebook/deployment.yaml").read_text()
    fleet.write({"base/guidebook/deployment.yaml": deploy.replace("requests: {cpu: 100m, memory: 128Mi}", "{}")})
    argv = ["-C", str(fleet.root), "validate", "--no-fleet-rules", "--kubernetes-version", "1.31",
            "--crd-schemas", str(CRD_SCHEMAS)]
    assert main([*argv, "minnie"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "minnie: Deployment/default/guidebook: spec.template.spec.containers[0].resources.requests: "
        "missing cpu and memory (every container needs requests)"
    ]
    assert main([*argv, "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [(d["cluster"], d["rule"]) for d in data] == [
        ("minnie", "resource-requests"),
        ("pinky", "resource-requests"),
    ]
    assert set(data[0]) == {"cluster", "kind", "namespace", "name", "path", "rule", "message", "where"}


def test_command_without_crd_schemas_flags_custom_resources(
    fleet: Any, capsys: pytest.CaptureFixture[str], kustomize_tool: object
) -> None:
    assert main(["-C", str(fleet.root), "validate", "minnie", "--no-fleet-rules", "--kubernetes-version", "1.31"]) == 1
    out = capsys.readouterr().out
    assert "ExternalSecret/default/annotationengine-secrets: apiVersion: no schema for custom resource" in out


def test_command_bad_input_exits_2(fleet: Any, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(fleet.root)
    assert main(["-C", root, "validate", "brain", "--kubernetes-version", "1.31"]) == 2
    assert main(["-C", root, "validate", "--crds", "/nonexistent.yaml", "--kubernetes-version", "1.31"]) == 2
    assert main(["-C", root, "validate", "--kubernetes-version", "1.2"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all("Traceback" not in line for line in err)


def test_rule_placeholder() -> None:
    clean = rules([deployment("web"), configmap("web-env", {"REDIS_HOST": "10.0.0.3"})])
    assert [r for r, _, _ in clean if r == "placeholder"] == []
    objects = [deployment("web"), configmap("web-env", {"REDIS_HOST": "TODO-celery-redis-host"})]
    found = [(p, m) for r, p, m in rules(objects) if r == "placeholder"]
    assert found == [("data.REDIS_HOST",
                      "placeholder TODO-celery-redis-host left by import-env (set the real value in the spec)")]
