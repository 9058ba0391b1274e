"""Where things live in a CAVE GitOps repository: the one place for every path the stages share."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES = PACKAGE_DIR / "templates"  # config files of the services, rendered by build
ENV_DIR = "environments"  # one spec per cluster: the only thing people edit
OVERLAYS = "overlays"  # generated overlays, one folder per cluster, plus ARGOCD_DIR
ARGOCD_DIR = "argocd"  # overlays/argocd/: the Argo CD app-of-apps
SETTINGS_FILE = "gitops.yaml"  # repository-level settings
CACHE_DIR = Path(".cache/cave-gitops/renders")  # render cache, relative to the repository root


def overlay_rel(cluster: str) -> str:
    """`overlays/<cluster>`, relative to the repository root."""
    return f"{OVERLAYS}/{cluster}"


def spec_rel(cluster: str) -> str:
    """`environments/<cluster>.yaml`, relative to the repository root."""
    return f"{ENV_DIR}/{cluster}.yaml"
