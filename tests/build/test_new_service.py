"""Adding a CAVE service needs its catalogue entry, its base and its templates, and no other Python edit.

The proof runs on a copy of the repository: it adds a throwaway local service `cellcount` the way README
("Adding a service") says, enables it in the copy's minnie spec, and runs the copy's own `compiler` package
(cwd and PYTHONPATH = the copy) to build, validate, and refuse a misspelled key of the new section. Afterwards
the only Python file of the copy that differs is compiler/catalog.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from compiler.main import main
from tests.support import REPO

SVC = "cellcount"
VERSION = "3.1.4"
IGNORED = shutil.ignore_patterns(".venv", ".cache", ".git", "node_modules", "__pycache__", ".mypy_cache",
                                 ".pytest_cache", ".ruff_cache", "*.egg-info")

ENTRY = f'''    Service(
        name="{SVC}",
        kinds=("local",),
        summary="throwaway service of tests/build/test_new_service.py",
        workloads=(Workload("{SVC}", "{SVC}", scaling="fixed", pool="lightweight"),),
        images=(Image("{SVC}--{SVC}", "{SVC}"),),
        ingress=(IngressPath("/{SVC}", "{SVC}-service"),),
        configmaps=(ConfigMap("{SVC}-env", {{"env": "env.j2"}}, env=True),),
    ),
'''

BASE = {
    "kustomization.yaml": f"""\
# Throwaway service of tests/build/test_new_service.py.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
labels:
  - pairs:
      cave.io/service: {SVC}
    includeSelectors: false
resources:
  - deployment-{SVC}.yaml
  - service.yaml
""",
    f"deployment-{SVC}.yaml": f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {SVC}
  labels:
    app: {SVC}
    cave.io/pool: lightweight
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {SVC}
  template:
    metadata:
      labels:
        app: {SVC}
    spec:
      containers:
        - name: {SVC}
          image: {SVC}--{SVC}
          ports:
            - name: http
              containerPort: 80
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {SVC}-env
          resources:
            requests:
              cpu: 100m
              memory: 200Mi
          readinessProbe:
            httpGet:
              path: /{SVC}/health
              port: http
""",
    "service.yaml": f"""\
apiVersion: v1
kind: Service
metadata:
  name: {SVC}-service
  labels:
    app: {SVC}
spec:
  type: ClusterIP
  selector:
    app: {SVC}
  ports:
    - name: http
      port: 80
      targetPort: http
      protocol: TCP
""",
}

TEMPLATE = f"""\
{{#- Spec-dependent environment of {SVC} (envFrom {SVC}-env). -#}}
AUTH_URL={{{{ names.auth_url }}}}
CELLCOUNT_VERSION={{{{ svc.version }}}}
"""


def _snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under root but the render cache and bytecode, by relative path."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file() and ".cache" not in p.parts and "__pycache__" not in p.parts}


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _replace_once(path: Path, old: str, new: str) -> str:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} must occur once in {path}"
    text = text.replace(old, new)
    path.write_text(text)
    return text


def _run(copy: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The copy's own compiler package: cwd and PYTHONPATH are the copy (the repo's .venv interpreter)."""
    env = {**os.environ, "PYTHONPATH": str(copy)}
    return subprocess.run([sys.executable, *args], cwd=copy, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def added(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the repository with the throwaway service added, and the copy's files before the addition."""
    root = tmp_path / "repo"
    shutil.copytree(REPO, root, ignore=IGNORED, symlinks=True)
    before = _snapshot(root)
    # the four things README's "Adding a service" lists
    _replace_once(root / "compiler" / "catalog.py", "\n)\n\nBY_NAME", "\n" + ENTRY + ")\n\nBY_NAME")
    for name, text in BASE.items():
        _write(root / "base" / SVC / name, text)
    _write(root / "compiler" / "templates" / SVC / "env.j2", TEMPLATE)
    _replace_once(root / "environments" / "minnie.yaml", "\nservices:\n",
                  f"\nservices:\n  {SVC}:\n    version: {VERSION}\n    replicas: 2\n")
    return root, before


def test_a_new_service_needs_only_its_entry_base_templates_and_spec(
        added: tuple[Path, dict[str, str]], capsys: pytest.CaptureFixture[str]) -> None:
    copy, before = added
    text = (copy / "environments" / "minnie.yaml").read_text()

    # without the new catalogue entry (the repository's own package, in this process) the section is refused
    assert main(["--root", str(copy), "check"]) == 2
    assert f"unknown key '{SVC}'" in capsys.readouterr().err

    where = _run(copy, "-c", "import compiler; print(compiler.__file__)")
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()) == copy / "compiler" / "__init__.py"

    built = _run(copy, "-m", "compiler", "build")
    assert built.returncode == 0, built.stderr
    kustomization = yaml.safe_load((copy / "overlays" / "minnie" / "kustomization.yaml").read_text())
    assert f"../../base/{SVC}" in kustomization["resources"]
    minnie = yaml.safe_load(text)
    assert {"name": f"{SVC}--{SVC}", "newName": f"{minnie['docker_repository']}/{SVC}",
            "newTag": f"v{VERSION}"} in kustomization["images"]
    env = next(g for g in kustomization["configMapGenerator"] if g["name"] == f"{SVC}-env")
    assert f"CELLCOUNT_VERSION={VERSION}" in env["literals"]
    assert f"- path: /{SVC}" in (copy / "overlays" / "minnie" / "kustomization.yaml").read_text()

    validated = _run(copy, "-m", "compiler", "validate", "minnie")  # the copy's own schemas/crds
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "validated minnie: valid" in validated.stdout + validated.stderr

    # what changed: the catalogue (the one Python file), the base, the template, the spec and minnie's overlay
    after = _snapshot(copy)
    changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    assert {p for p in changed if p.endswith(".py")} == {"compiler/catalog.py"}
    assert {p for p in changed if not p.startswith("overlays/minnie/")} == {
        "compiler/catalog.py", "compiler/templates/cellcount/env.j2", "environments/minnie.yaml",
        *(f"base/{SVC}/{name}" for name in BASE),
        "schemas/spec.schema.json"}  # written by build: the editors now know services.cellcount
    schema = json.loads((copy / "schemas" / "spec.schema.json").read_text())
    assert SVC in schema["$defs"]["LocalServices"]["properties"]


def test_a_misspelled_key_of_the_new_service_is_a_located_error(added: tuple[Path, dict[str, str]]) -> None:
    copy, _ = added
    spec = copy / "environments" / "minnie.yaml"
    text = _replace_once(spec, "    replicas: 2\n", "    replicsa: 2\n")
    line = text.splitlines().index("    replicsa: 2") + 1
    overlay = (copy / "overlays" / "minnie" / "kustomization.yaml").read_bytes()

    built = _run(copy, "-m", "compiler", "build")
    assert built.returncode == 2, built.stdout + built.stderr
    assert "Traceback" not in built.stderr
    assert (f"environments/minnie.yaml:{line}:5: unknown key 'replicsa' (did you mean 'replicas'?)"
            in built.stderr.splitlines()), built.stderr
    assert (copy / "overlays" / "minnie" / "kustomization.yaml").read_bytes() == overlay  # nothing written
