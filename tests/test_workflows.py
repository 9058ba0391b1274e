"""The PR workflow: linted offline, least privilege, pinned actions, and its compiler steps run here as written."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from compiler import github
from compiler.cache import ParsedCache
from compiler.paths import CONTENT_CACHES, PARSED_CACHE_DIR
from compiler.render import kustomize
from compiler.render.hashing import WATCH_KIND, watch_data
from compiler.spec.yamlio import cached_parse
from tests.support import REPO
from tests.support.fake_github import TOKEN, FakeGitHub

CI = REPO / ".github" / "workflows" / "ci.yml"
BUMP = REPO / ".github" / "workflows" / "bump.yml"
RENDER_CACHE = REPO / ".github" / "workflows" / "render-cache.yml"
BIN = Path(sys.executable).parent
EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", ".cache", ".mypy_cache", ".pytest_cache", ".ruff_cache",
                                     "node_modules", "__pycache__", "*.egg-info", ".build-*")


def workflow() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(CI.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def tool(name: str) -> str:
    path = BIN / name
    if not path.is_file():
        pytest.fail(f"{name} is not installed in {BIN} (run `bash .ci/setup`: it is a dev dependency)")
    return str(path)


# --------------------------------------------------------------------------- lint and policy


@pytest.mark.parametrize("path", [CI, BUMP, RENDER_CACHE], ids=lambda p: p.name)
def test_actionlint_finds_nothing(path: Path) -> None:
    proc = subprocess.run([tool("actionlint"), "-no-color", "-shellcheck", tool("shellcheck"),
                           str(path.relative_to(REPO))], cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


@pytest.mark.parametrize("path", [CI, BUMP, RENDER_CACHE], ids=lambda p: p.name)
def test_workflow_matches_the_github_workflow_schema(path: Path) -> None:
    proc = subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_bump_workflow_is_scheduled_least_privilege_and_pinned() -> None:
    wf: dict[str, Any] = yaml.safe_load(BUMP.read_text())
    assert sorted(wf.pop(True)) == ["schedule", "workflow_dispatch"]
    assert wf["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert wf["concurrency"]["cancel-in-progress"] is False  # two runs must not race on the same branches
    steps = [s for job in wf["jobs"].values() for s in job["steps"]]
    assert all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", s["uses"]) for s in steps if "uses" in s)
    assert any("python -m compiler bot" in (s.get("run") or "") for s in steps)


def test_least_privilege_pinned_actions_and_one_run_per_pr() -> None:
    wf = workflow()
    assert list(wf["on"]) == ["pull_request"]
    assert wf["permissions"] == {"contents": "read"}
    assert "pull_request.number" in wf["concurrency"]["group"] and wf["concurrency"]["cancel-in-progress"] is True
    commenting = [name for name, job in wf["jobs"].items()
                  if any("pr-comment" in (s.get("run") or "") for s in job["steps"])]
    assert len(commenting) == 1
    for name, job in wf["jobs"].items():
        expected = {"contents": "read", "pull-requests": "write"} if name in commenting else None
        assert job.get("permissions") == expected, name
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step["with"]["fetch-depth"] == 0
    pinned = re.findall(r"uses: \S+@[0-9a-f]{40} # v\d+\.\d+\.\d+\n", CI.read_text())
    assert len(pinned) == sum("uses" in s for job in wf["jobs"].values() for s in job["steps"])
    (job,) = [wf["jobs"][n] for n in commenting]
    comment = next(s for s in job["steps"] if "pr-comment" in (s.get("run") or ""))
    assert "head.repo.full_name == github.repository" in comment["if"]  # forks get a read-only token


# --------------------------------------------------------------------------- the steps, run as written


class Runner:
    """Runs a job's `run:` steps like a GitHub runner would (bash -eo pipefail) in a copy of the repository."""

    def __init__(self, root: Path, context: dict[str, str], env: dict[str, str]) -> None:
        self.root = root
        self.context = context
        self.env = env

    def resolve(self, value: Any) -> str:
        def lookup(match: re.Match[str]) -> str:
            expression = match.group(1)
            assert expression in self.context, f"the test does not know ${{{{ {expression} }}}}: add it"
            return self.context[expression]

        return EXPRESSION.sub(lookup, str(value))

    def run(self, step: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        script = step["run"]
        assert not EXPRESSION.search(script), f"pass expressions through env:, not into the script: {script}"
        env = {**self.env, **{k: self.resolve(v) for k, v in (step.get("env") or {}).items()}}
        return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=self.root,
                              env=env, capture_output=True, text=True, check=False, timeout=600)


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    server = FakeGitHub().start()
    server.pulls.add(7)
    yield server
    server.stop()


@pytest.fixture
def pr_checkout(tmp_path: Path) -> Path:
    """A copy of the repository as a pull-request checkout: origin/main, and a head that bumps versions."""
    root = tmp_path / "repo"
    shutil.copytree(REPO, root, ignore=COPY_IGNORE)
    git(root, "init", "-q", "-b", "main")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.org", "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "base")
    git(root, "update-ref", "refs/remotes/origin/main", "HEAD")
    return root


def change(root: Path, env: dict[str, str], spec_old: str, spec_new: str, chart_old: str, chart_new: str) -> None:
    """A contributor's push: edit a spec and gitops.yaml, rebuild, commit."""
    edit(root / "environments" / "minnie.yaml", spec_old, spec_new)
    edit(root / "gitops.yaml", chart_old, chart_new)
    subprocess.run(["python", "-m", "compiler", "build"], cwd=root, env=env, check=True, capture_output=True)
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qam", "change")


def test_workflow_compiler_steps_pass_here(pr_checkout: Path, fake: FakeGitHub, tmp_path: Path) -> None:
    root = pr_checkout
    tool_path = shutil.which(kustomize.find(REPO).binary) or kustomize.find(REPO).binary
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "KUSTOMIZE": tool_path,
           "GITHUB_API_URL": fake.api_url, "GITHUB_PATH": str(tmp_path / "path"),
           "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"), "CI": "true"}
    env.pop("GITHUB_TOKEN", None)
    context = {"github.base_ref": "main", "github.token": TOKEN, "github.repository": fake.repo,
               "github.event.pull_request.number": "7"}
    runner = Runner(root, context, env)
    change(root, env, "  annotationengine:\n    version: 4.14.1", "  annotationengine:\n    version: 4.15.0",
           "version: v1.19.0", "version: v1.19.1")

    ran: list[str] = []
    skipped: list[str] = []
    for name, job in workflow()["jobs"].items():
        runs = [s for s in job["steps"] if "run" in s]
        setup = next((i for i, s in enumerate(runs) if "bash .ci/setup" in s["run"]), len(runs))
        for i, step in enumerate(runs):
            if "python -m compiler" not in step["run"]:
                if ".ci/" in step["run"]:
                    skipped.append(f"{name}: {step['name']}")  # installing / the whole suite: this run is inside it
                continue
            assert i > setup, f"{name}: {step['name']} runs before .ci/setup"
            proc = runner.run(step)
            assert proc.returncode == 0, f"{name}: {step['name']}\n{proc.stdout}\n{proc.stderr}"
            ran.append(f"{name}: {step['name']}")
    commands = " ".join(s["run"] for job in workflow()["jobs"].values() for s in job["steps"] if "run" in s)
    for sub in ("check", "validate", "diff", "pr-comment"):
        assert f"python -m compiler {sub}" in commands
    assert len(ran) == 4, ran
    assert any("bash .ci/test" in s["run"] for job in workflow()["jobs"].values() for s in job["steps"] if "run" in s)
    assert (REPO / ".ci" / "test").is_file() and len(skipped) >= 3, skipped

    (comment,) = fake.bodies(7)
    assert comment.startswith(github.MARKER)
    assert "4.15.0" in comment
    assert "**Argo CD Applications** (`overlays/argocd/`)" in comment  # the chart bump, in the diff's own section
    assert "v1.19.0 → v1.19.1" in comment
    assert "4.15.0" in (tmp_path / "summary.md").read_text()

    # The next push updates the same comment.
    change(root, env, "    version: 4.15.0", "    version: 4.16.0", "version: v1.19.1", "version: v1.19.0")
    diff_job = next(job for job in workflow()["jobs"].values()
                    if any("pr-comment" in (s.get("run") or "") for s in job["steps"]))
    for step in diff_job["steps"]:
        if "python -m compiler" in step.get("run", ""):
            proc = runner.run(step)
            assert proc.returncode == 0, proc.stdout + proc.stderr
    (comment,) = fake.bodies(7)
    assert "4.16.0" in comment and "overlays/argocd" not in comment


def paths_step() -> dict[str, Any]:
    steps: list[dict[str, Any]] = [s for s in workflow()["jobs"]["changes"]["steps"] if s.get("id") == "paths"]
    assert len(steps) == 1
    return steps[0]


def changed_code(root: Path, tmp_path: Path) -> tuple[str, str]:
    """The `changes` job's answer (its GITHUB_OUTPUT line) and log for the pull request checked out at `root`."""
    output = tmp_path / "output"
    output.write_text("")
    env = {**os.environ, "GITHUB_OUTPUT": str(output)}
    proc = Runner(root, {"github.base_ref": "main"}, env).run(paths_step())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return output.read_text().strip(), proc.stdout


def test_a_spec_only_pull_request_skips_the_test_suite_but_not_check_validate_diff(pr_checkout: Path,
                                                                                    tmp_path: Path) -> None:
    root = pr_checkout
    jobs = workflow()["jobs"]
    assert jobs["tests"]["needs"] == "changes" and jobs["tests"]["if"] == "needs.changes.outputs.code == 'true'"
    assert any("bash .ci/test" in (s.get("run") or "") for s in jobs["tests"]["steps"])
    for name, job in jobs.items():  # only the test suite waits on the answer: check, validate and diff always run
        if name != "tests":
            assert "if" not in job and "needs" not in job, name
    assert [n for n, j in jobs.items() if any("bash .ci/test" in (s.get("run") or "") for s in j["steps"])] == ["tests"]

    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    commit = ["-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qam"]
    edit(root / "environments" / "minnie.yaml", "  annotationengine:\n    version: 4.14.1",
         "  annotationengine:\n    version: 4.15.0")
    edit(root / "gitops.yaml", "version: v1.19.0", "version: v1.19.1")
    subprocess.run(["python", "-m", "compiler", "build"], cwd=root, env=env, check=True, capture_output=True)
    git(root, *commit, "spec only")
    assert changed_code(root, tmp_path) == ("code=false", "only specs, gitops.yaml and overlays changed: check, "
                                                          "validate and diff; the test suite is skipped\n")

    for path in ("base/guidebook/kustomization.yaml", "compiler/catalog.py", "tests/test_workflows.py",
                 "schemas/crds/README.md"):
        (root / path).write_text((root / path).read_text() + "\n")
        git(root, *commit, f"touch {path}")
        assert changed_code(root, tmp_path) == ("code=true", ""), path
        git(root, "reset", "-q", "--hard", "HEAD~1")
    assert changed_code(root, tmp_path)[0] == "code=false"


def test_every_cache_step_keeps_the_commands_whole_state_directory() -> None:
    """render-cache.yml saves the content-keyed caches after each merge; ci.yml restores the same folders (renders,
    parsed objects, validate's findings, compiled overlays: paths.CONTENT_CACHES), falling back to main's: a step
    caching only some of them, or a key prefix the other workflow never writes, would make a pull request redo what
    main already did (and the rest of .cache/cave-gitops, build's records and lock, is not content-keyed)."""
    saved: list[tuple[str, str]] = []
    for path in (CI, RENDER_CACHE):
        data: dict[str, Any] = yaml.safe_load(path.read_text())
        for job in data["jobs"].values():
            for step in job["steps"]:
                if str(step.get("uses", "")).startswith("actions/cache@"):
                    saved.append((path.name, step["with"]["path"]))
                    restore = step["with"].get("restore-keys", "")
                    if path == CI:
                        assert "cave-state-main-" in restore.split(), step["name"]
                    else:
                        assert step["with"]["key"].startswith("cave-state-main-"), step["name"]
    want = sorted(str(p) for p in CONTENT_CACHES)
    assert saved and all(sorted(p.split()) == want for _, p in saved), saved
    assert {name for name, _ in saved} == {CI.name, RENDER_CACHE.name}


def test_render_cache_leaves_what_a_pull_requests_diff_reads(pr_checkout: Path) -> None:
    """render-cache.yml's script on main fills, besides renders and findings, what each overlay reads at main's
    commit: a pull request's diff against that commit then parses no kustomization of the base to tell which
    clusters its change touches (the entry must be there, under the key the diff looks up)."""
    root = pr_checkout
    tool_path = shutil.which(kustomize.find(REPO).binary) or kustomize.find(REPO).binary
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "KUSTOMIZE": tool_path}
    data: dict[str, Any] = yaml.safe_load(RENDER_CACHE.read_text())
    [step] = [s for job in data["jobs"].values() for s in job["steps"] if "python -m compiler" in s.get("run", "")]
    done = Runner(root, {}, env).run(step)
    assert done.returncode == 0, done.stderr[-2000:]
    commit = git(root, "rev-parse", "HEAD").strip()
    overlays = [f"overlays/{c}" for c in ("fanc", "global", "minnie")]
    cache = ParsedCache(root / PARSED_CACHE_DIR)

    def not_stored() -> Any:
        raise AssertionError("render-cache.yml left no watch sets for main's commit")

    stored = cached_parse(cache, WATCH_KIND, watch_data(f"{commit}:", overlays), not_stored, lambda v: True)
    assert sorted(stored) == overlays and all("base/annotationengine" in stored[o]["dirs"] for o in overlays[::2])
