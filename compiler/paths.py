"""Where things live in a CAVE GitOps repository: the one place for every path the stages share."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES = PACKAGE_DIR / "templates"  # config files of the services, rendered by build
ENV_DIR = "environments"  # one spec per cluster: the only thing people edit
OVERLAYS = "overlays"  # generated overlays, one folder per cluster, plus ARGOCD_DIR
ARGOCD_DIR = "argocd"  # overlays/argocd/: the Argo CD app-of-apps
SETTINGS_FILE = "gitops.yaml"  # repository-level settings
STATE_DIR = Path(".cache/cave-gitops")  # the commands' own state, relative to the repository root (not committed)
CACHE_DIR = STATE_DIR / "renders"  # render cache
COMPILED_CACHE_DIR = STATE_DIR / "compiled"  # what build writes, by input hash (build/check.py)
PARSED_CACHE_DIR = STATE_DIR / "parsed"  # parsed YAML as JSON, by text hash (render/cache.py)
VALIDATED_CACHE_DIR = STATE_DIR / "validated"  # validate's findings, by content hash (validate/cache.py)
# The caches keyed by content, which CI saves after each merge to main and restores for pull requests
# (.github/workflows/render-cache.yml, ci.yml); the rest of STATE_DIR (build's records, its lock) is per checkout.
CONTENT_CACHES = (CACHE_DIR, PARSED_CACHE_DIR, VALIDATED_CACHE_DIR, COMPILED_CACHE_DIR)
SCHEMA_REL = "schemas/spec.schema.json"  # the editors' schema of a spec (spec/schema.py), written by build
CRD_SCHEMAS = Path("schemas/crds")  # validate's default CRD schemas, <group>/<kind>_<version>.json (schemas/README.md)


def find_root(start: Path) -> Path:
    """The repository root for a command started in `start`, found the way git finds its top folder.

    The nearest folder at or above `start` that holds environments/ or gitops.yaml, looking no higher than the
    git repository's top (the folder with .git), which is the answer when nothing below it has either; `start`
    itself when it is in no repository. So every command works from any folder inside the repository.
    """
    here = start.absolute()
    for folder in (here, *here.parents):
        if (folder / ENV_DIR).is_dir() or (folder / SETTINGS_FILE).is_file():
            return start if folder == here else folder
        if (folder / ".git").exists():
            return start if folder == here else folder
    return start


def overlay_rel(cluster: str) -> str:
    """`overlays/<cluster>`, relative to the repository root."""
    return f"{OVERLAYS}/{cluster}"


def spec_rel(cluster: str) -> str:
    """`environments/<cluster>.yaml`, relative to the repository root."""
    return f"{ENV_DIR}/{cluster}.yaml"
