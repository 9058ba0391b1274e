"""The repository-level settings in gitops.yaml: where Argo CD runs, what it syncs, which add-on charts it installs.

Loaded with positions like the specs (one `gitops.yaml:line:col: message` per problem). Without the file,
`build` writes no overlays/argocd/: the repository is then deployed some other way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from compiler.errors import UserError
from compiler.paths import SETTINGS_FILE
from compiler.spec.load import secret_problems, validation_problems
from compiler.spec.model import Label, Model
from compiler.spec.yamlio import Document, load_document, to_plain


class ArgoCdSettings(Model):
    """Where Argo CD runs and what it syncs: this repository at `target_revision`."""

    namespace: Label = "argocd"
    project: Label = "cave"
    repo_url: str
    target_revision: str = "main"
    # The Argo CD release installed in the cluster it runs in (the runbook's install step applies its
    # manifests/install.yaml): one exact version, so every install of the fleet is the same.
    version: str | None = None
    # Argo CD's API (the bump bot's staged rollout reads Application health there; token: $ARGOCD_TOKEN).
    api_url: str | None = None

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, v: str) -> str:
        if not re.fullmatch(r"(https://[A-Za-z0-9.-]+|http://(127\.0\.0\.1|localhost))(:[0-9]+)?(/\S*)?", v):
            raise ValueError(f"{v!r} is not an Argo CD API URL (https://argocd.example.org; plain http only on "
                             "localhost: the token must not cross a network unencrypted)")
        return v.rstrip("/")

    @field_validator("version")
    @classmethod
    def _argocd_version(cls, v: str) -> str:
        if not re.fullmatch(r"v[0-9]+\.[0-9]+\.[0-9]+(-rc[0-9]+)?", v):
            raise ValueError(f"{v!r} is not a pinned Argo CD release (write one exact tag like v3.3.0; "
                             "no ranges, no 'stable' or 'latest')")
        return v

    @field_validator("repo_url")
    @classmethod
    def _git_url(cls, v: str) -> str:
        if not re.fullmatch(r"(https|ssh)://\S+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\S+", v):
            raise ValueError(f"{v!r} is not a git URL Argo CD can clone (like https://github.com/org/repo.git)")
        return v

    @field_validator("target_revision")
    @classmethod
    def _revision(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,254}", v):
            raise ValueError(f"{v!r} is not a branch, tag or commit (like main)")
        return v

    @field_validator("project")
    @classmethod
    def _own_project(cls, v: str) -> str:
        if v == "default":
            raise ValueError("'default' is Argo CD's built-in project; name your own (like cave)")
        return v


class Chart(Model):
    """A Helm chart pinned to one version; `values` are merged over the values the compiler derives."""

    repo_url: str
    chart: str
    version: str
    values: dict[str, Any] = Field(default_factory=dict)

    @field_validator("repo_url")
    @classmethod
    def _chart_repo(cls, v: str) -> str:
        if not re.fullmatch(r"https://\S+|[a-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._-]+)+", v):
            raise ValueError(f"{v!r} is not a Helm repository (https://... or an OCI registry path without oci://)")
        return v

    @field_validator("chart")
    @classmethod
    def _chart_name(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9_.]*[a-z0-9])?", v):
            raise ValueError(f"{v!r} is not a chart name (like ingress-nginx)")
        return v

    @field_validator("version")
    @classmethod
    def _pinned(cls, v: str) -> str:
        if not re.fullmatch(r"v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?", v):
            raise ValueError(f"{v!r} is not a pinned chart version (write one exact version like 4.11.3; "
                             "no ranges, no 'latest')")
        return v


class PinnedImage(Model):
    """A container image pinned to one tag, for an add-on this repository deploys from its own base."""

    image: str
    tag: str

    @field_validator("image")
    @classmethod
    def _image(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+", v):
            raise ValueError(f"{v!r} is not an image name without tag (like gcr.io/gke-release/name)")
        return v

    @field_validator("tag")
    @classmethod
    def _tag(cls, v: str) -> str:
        if v == "latest" or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", v):
            raise ValueError(f"{v!r} is not a pinned image tag (write one exact tag like v0.16.9-gke.0)")
        return v


class Addons(Model):
    """Cluster add-ons CAVEdeployment installed with Helm; each becomes one Argo CD Application per cluster."""

    ingress_nginx: Chart
    cert_manager: Chart
    external_secrets: Chart
    redis: Chart | None = None  # only needed when a spec sets redis.in_cluster
    # The Custom Metrics Stackdriver Adapter has no Helm chart: base/addons/custom-metrics-stackdriver-adapter/
    # runs this image; needed once a spec's HPAs read Cloud Monitoring metrics (catalog.needs_metrics_adapter).
    custom_metrics_adapter: PinnedImage | None = None


class KustomizeSettings(Model):
    """The kustomize every machine renders with (developers, CI, the bot): the one of the Argo CD release."""

    version: str

    @field_validator("version")
    @classmethod
    def _kustomize_version(cls, v: str) -> str:
        if not re.fullmatch(r"v[0-9]+\.[0-9]+\.[0-9]+", v):
            raise ValueError(f"{v!r} is not a pinned kustomize release (write one exact version like v5.8.1)")
        return v


class BumpSettings(Model):
    """The bump bot's staged rollout: the order of the stages a spec's `bump: {stage: ...}` names."""

    stages: list[Label] = Field(default_factory=list)  # e.g. [canary, main]

    @field_validator("stages")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if dupes := sorted({s for s in v if v.count(s) > 1}):
            raise ValueError(f"stage {', '.join(dupes)} is listed twice (list each stage once, in rollout order)")
        return v


class Settings(Model):
    argocd: ArgoCdSettings
    addons: Addons
    kustomize: KustomizeSettings | None = None
    bump: BumpSettings = BumpSettings()


@dataclass(frozen=True)
class LoadedSettings:
    """The validated settings and the document they came from (for positions in cross-file problems)."""

    settings: Settings
    doc: Document


def load_settings(root: Path) -> LoadedSettings | None:
    """gitops.yaml validated, or None when the repository has none; UserError lists every problem."""
    file = root / SETTINGS_FILE
    if not file.is_file():
        return None
    doc, problems = load_document(file, SETTINGS_FILE)
    if doc is None:
        raise UserError(problems)
    if not isinstance(doc.data, dict):
        raise UserError([*problems, doc.problem((), "gitops.yaml must be a YAML mapping (start with `argocd:`)")])
    guarded, _values = secret_problems(doc)  # add-on `values:` land in Argo CD Applications: no secrets there
    if guarded:  # the messages never quote the values
        raise UserError([*problems, *guarded])
    try:
        settings = Settings.model_validate(to_plain(doc.data))
    except ValidationError as err:
        raise UserError([*problems, *validation_problems(doc, Settings, err.errors(include_url=False))]) from None
    if problems:
        raise UserError(problems)
    return LoadedSettings(settings, doc)
