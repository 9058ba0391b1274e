"""The runbook's steps beyond the cloud resources: merged only when the remote's main holds it (real git), the
validate command it prints runs as printed, the OAuth consent screen, installing Argo CD and registering the
clusters in the runbook of the cluster Argo CD runs in, and the app-of-apps applied in that cluster's context."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from compiler.main import main
from tests.support import REPO

GLOBAL_CONTEXT = "gke_cave-demo-global_us-east1-b_daf-global"
MINNIE_CONTEXT = "gke_cave-demo-minnie_us-central1-a_daf-minnie"
GIT_ENV = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.org", "GIT_COMMITTER_NAME": "Test",
           "GIT_COMMITTER_EMAIL": "test@example.org", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def book(capsys: pytest.CaptureFixture[str], cluster: str, root: Path = REPO) -> dict[str, dict[str, Any]]:
    code = main(["--root", str(root), "runbook", cluster, "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return {s["id"]: s for s in json.loads(out)["steps"]}


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}, check=True)
    return proc.stdout


def copy_repo(dest: Path) -> Path:
    """The repository's specs, bases, overlays and settings (not its history) in `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for folder in ("environments", "base", "overlays", "schemas"):
        shutil.copytree(REPO / folder, dest / folder, ignore=shutil.ignore_patterns(".build-*"))
    for name in ("gitops.yaml", ".gitignore"):
        shutil.copy2(REPO / name, dest / name)
    return dest


# ---------------------------------------------------------------------- step 1: merged, with real git


def test_merged_only_once_the_remotes_main_holds_the_commit(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--bare", "-b", "main", str(remote))
    git(tmp_path, "clone", str(remote), "work")
    work = copy_repo(tmp_path / "work")

    def step() -> dict[str, Any]:
        return book(capsys, "minnie", work)["overlays"]

    first = step()  # nothing committed, nothing on the remote
    assert first["status"] == "todo" and first["values"]["merged"] == "todo"
    assert "not merged: no origin/main: add the remote and `git fetch origin`, or push main (to do)" in first["items"]

    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "minnie")
    committed = step()  # committed locally only
    assert committed["status"] == "todo"
    assert any(i.startswith("not merged: no origin/main") for i in committed["items"])

    git(work, "push", "-q", "origin", "main")
    pushed = step()
    assert pushed["status"] == "done", pushed["items"]
    assert pushed["values"] == {"merged": "done", "ref": "origin/main", "changed": []}
    assert "merged: origin/main holds this spec and its overlays (done; as of the last `git fetch`)" in pushed["items"]

    spec = work / "environments" / "minnie.yaml"
    spec.write_text(spec.read_text() + "# a reviewed change\n")
    git(work, "commit", "-q", "-am", "change minnie")
    changed = step()  # a new local commit: main on the remote does not hold it
    assert changed["status"] == "todo" and changed["values"]["changed"] == ["environments/minnie.yaml"]
    assert any(i.startswith("not merged: environments/minnie.yaml differ from origin/main") for i in changed["items"])

    git(work, "push", "-q", "origin", "HEAD:refs/heads/my-change")  # a pull request's branch is not main
    assert step()["status"] == "todo"
    assert book(capsys, "fanc", work)["overlays"]["status"] == "done", "fanc's files are all on origin/main"

    git(work, "push", "-q", "origin", "main")  # merged
    assert step()["status"] == "done"

    (work / "overlays" / "minnie" / "extra.yaml").write_text("kind: ConfigMap\n")  # untracked in its overlay
    untracked = step()
    assert untracked["status"] == "todo"
    assert "overlays/minnie/extra.yaml" in untracked["values"]["changed"]


def test_outside_a_git_repository_merged_is_unknown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_repo(tmp_path / "plain")
    step = book(capsys, "minnie", root)["overlays"]
    assert step["status"] == "unknown" and step["values"]["merged"] == "unknown"
    assert f"merged: unknown ({root} is not a git repository)" in step["items"]


# ---------------------------------------------------------------------- the validate command, as printed


def test_the_printed_validate_command_works_as_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The command runs as printed in a checkout with nothing beside it: the CRD schemas are the repository's own
    (schemas/crds/), which validate reads by default."""
    commands = book(capsys, "minnie")["overlays"]["commands"]
    assert not any(c.startswith("git clone ") for c in commands)
    validate = next(c for c in commands if c.startswith("python -m compiler validate "))
    root = copy_repo(tmp_path / "checkout" / "repo")
    bin_dir = Path(sys.executable).parent  # `python` is the virtualenv's, as after `source .venv/bin/activate`
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["bash", "-c", validate], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "validated minnie: valid" in proc.stdout + proc.stderr
    # the repository's schemas are what makes it pass: without them the custom resources have none
    shutil.rmtree(root / "schemas" / "crds")
    proc = subprocess.run(["bash", "-c", validate], cwd=root, env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode != 0 and "no schema for custom resource" in proc.stdout + proc.stderr, proc.stderr


# ---------------------------------------------------------------------- OAuth consent screen


def test_the_global_runbook_configures_the_consent_screen_before_the_client(
        capsys: pytest.CaptureFixture[str]) -> None:
    steps = book(capsys, "global")
    ids = list(steps)
    assert ids.index("oauth-consent") == ids.index("oauth-client") - 1
    consent = steps["oauth-consent"]["values"]
    assert consent["authorized_domains"] == ["cave-demo.org", "daf-apis.org"]
    assert consent["support_email"] == "admin@cave-demo.org"  # the first of auth's default_admins
    assert consent["app_name"] == "CAVE (global.cave-demo.org)"
    assert (consent["user_type"], consent["publishing_status"]) == ("External", "In production")
    assert consent["scopes"] == ["openid", "https://www.googleapis.com/auth/userinfo.email",
                                 "https://www.googleapis.com/auth/userinfo.profile"]
    assert "oauth-consent" not in book(capsys, "minnie")


# ---------------------------------------------------------------------- Argo CD


def test_argocd_is_installed_and_the_clusters_registered_in_its_own_clusters_runbook(
        capsys: pytest.CaptureFixture[str]) -> None:
    steps = book(capsys, "global")  # global's spec says argocd.server: https://kubernetes.default.svc
    install = steps["argocd-install"]
    commands = install["commands"]
    assert install["values"]["version"] == "v3.3.0"  # gitops.yaml argocd.version
    assert f"kubectl --context {GLOBAL_CONTEXT} apply -n argocd --server-side --force-conflicts -f " \
           "https://raw.githubusercontent.com/argoproj/argo-cd/v3.3.0/manifests/install.yaml" in commands
    adds = [c for c in commands if c.startswith("argocd cluster add ")]
    assert adds == [
        f"argocd cluster add gke_cave-demo-fanc_us-east1-c_daf-fanc --name daf-fanc --yes --core "
        f"--kube-context {GLOBAL_CONTEXT}",
        f"argocd cluster add {MINNIE_CONTEXT} --name daf-minnie --yes --core --kube-context {GLOBAL_CONTEXT}"]
    # each registration needs the registered cluster's credentials first
    minnie_credentials = "gcloud container clusters get-credentials daf-minnie --zone us-central1-a " \
                         "--project cave-demo-minnie"
    assert commands.index(minnie_credentials) == commands.index(adds[1]) - 1
    registered = {c["cluster"]: c["registered"] for c in install["values"]["clusters"]}
    assert registered == {"global": True, "fanc": False, "minnie": False}
    assert list(steps).index("argocd-install") < list(steps).index("argocd")
    for cluster in ("minnie", "fanc"):
        assert "argocd-install" not in book(capsys, cluster)


def test_a_local_applies_the_app_of_apps_in_the_argocd_clusters_context(capsys: pytest.CaptureFixture[str]) -> None:
    step = book(capsys, "minnie")["argocd"]
    commands = step["commands"]
    assert step["values"] == {"argocd_cluster": "global", "context": GLOBAL_CONTEXT}
    applies = [c for c in commands if "apply -k overlays/argocd" in c]
    assert applies == [f"kubectl --context {GLOBAL_CONTEXT} apply -k overlays/argocd"]
    assert "gcloud container clusters get-credentials daf-global --zone us-east1-b --project cave-demo-global" \
        in commands
    assert not any(c.startswith("kubectl ") and MINNIE_CONTEXT in c for c in commands)
    add = f"argocd cluster add {MINNIE_CONTEXT} --name daf-minnie --yes --core --kube-context {GLOBAL_CONTEXT}"
    assert add in commands
    assert "Argo CD itself is installed by `python -m compiler runbook global`" in step["items"]


def test_without_a_version_pin_the_install_step_is_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_repo(tmp_path / "repo")
    settings = root / "gitops.yaml"
    text, n = re.subn(r"^  version: v\S+.*\n", "", settings.read_text(), count=1, flags=re.M)
    assert n == 1
    settings.write_text(text)
    install = book(capsys, "global", root)["argocd-install"]
    assert install["status"] == "todo" and install["values"]["version"] is None
    assert install["items"][0] == ("install Argo CD <argocd.version> in namespace argocd of daf-global (gitops.yaml "
                                   "has no argocd.version: pin one exact release, like v3.3.0)")


@pytest.mark.parametrize("version", ["stable", "3.3.0", "v3.3"])
def test_the_version_pin_must_be_one_exact_release(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   version: str) -> None:
    root = copy_repo(tmp_path / "repo")
    settings = root / "gitops.yaml"
    text = settings.read_text()
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith("  version: v"))
    settings.write_text(re.sub(r"^  version: v\S+", f"  version: {version}", text, count=1, flags=re.M))
    code = main(["--root", str(root), "runbook", "global"])
    _, err = capsys.readouterr()
    assert code == 2
    assert f"gitops.yaml:{line}:12: " in err and f"{version!r} is not a pinned Argo CD release" in err
    assert "Traceback" not in err
