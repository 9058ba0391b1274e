"""Strict versions: a service's `version` is semver without the `v` (the image's tag rule adds what its tags need)
or a tag the catalogue allows for its image; anything else fails `build` at file:line:col with the fix. And a
version-like string YAML reads as a number (`kubernetes_version: 1.30`) is refused with how to quote it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from compiler import catalog
from compiler.main import main
from compiler.render import kustomize
from compiler.spec import semver
from tests.support import REPO
from tests.support.specs import build_errors, edit, line_of

# (cluster, old text, new text, anchor of the reported line, column, the whole message after file:line:col)
CASES = [
    ("minnie", "    version: 4.14.1\n", "    version: v4.14.1\n", "version: v4.14.1", 14,
     "services.annotationengine.version: 'v4.14.1' is not a version: write 4.14.1: the v is added by the image's "
     "tag rule (v{version} makes the tag v4.14.1; as written it would be vv4.14.1)"),
    ("minnie", "    version: 4.14.1\n", "    version: latest\n", "version: latest", 14,
     "services.annotationengine.version: 'latest' is a moving tag, not a version: pin a release like 4.14.1 "
     "(semver without the v) so that every render names the same image"),
    ("global", "    version: 1.27.3\n", "    version: v1.27.3\n", "version: v1.27.3", 14,  # nginx: tag = version
     "services.auth_info.version: 'v1.27.3' is not a version: write 1.27.3 (the image is tagged 1.27.3)"),
    ("fanc", "    version: RequestorPays12\n", "    version: vRequestorPays12\n", "vRequestorPays12", 14,
     "services.proxy.version: 'vRequestorPays12' is not a version: write RequestorPays12: the v is added by the "
     "image's tag rule (v{version} makes the tag vRequestorPays12; as written it would be vvRequestorPays12)"),
    ("fanc", "    version: RequestorPays12\n", "    version: RequestorPays13\n", "RequestorPays13", 14,
     "services.proxy.version: 'RequestorPays13' is not a version: write a release as semver without the v (like "
     "4.14.1 or 4.15.0-rc.1); or one of the tags the catalogue allows for proxy: RequestorPays12"),
    ("minnie", "    version: 2.15.1\n    graph_ids", "    version: 3.0.0a1\n    graph_ids", "version: 3.0.0a1", 14,
     "services.pychunkedgraph.version: '3.0.0a1' is not a version: write a release as semver without the v (like "
     "4.14.1 or 4.15.0-rc.1); an image tag outside semver must first be listed in the tags of its image in "
     "compiler/catalog.py"),
    ("minnie", "    version: 0.3.2\n", '    version: "0.4"\n', 'version: "0.4"', 14,
     "services.guidebook.version: '0.4' is not a version: write all three parts, like 0.4.0"),
    ("minnie", 'kubernetes_version: "1.31"', "kubernetes_version: 1.31", "kubernetes_version", 21,
     'kubernetes_version: expected a string, got a number (1.31); quote it as you meant it, e.g. "1.31" '
     "(unquoted YAML reads 1.30 as the number 1.3)"),
    ("minnie", 'kubernetes_version: "1.31"', "kubernetes_version: 1.30", "kubernetes_version", 21,
     'kubernetes_version: expected a string, got a number (1.3); quote it as you meant it, e.g. "1.3" or "1.30" '
     "(unquoted YAML reads 1.30 as the number 1.3)"),
    ("minnie", "    version: 4.14.1\n", "    version: 4.20\n", "version: 4.20", 14,
     'services.annotationengine.version: expected a string, got a number (4.2); quote it as you meant it, e.g. '
     '"4.2" or "4.20" (unquoted YAML reads 1.30 as the number 1.3)'),
]


@pytest.mark.parametrize("cluster,old,new,anchor,col,message", CASES, ids=[c[2].strip()[:30] for c in CASES])
def test_bad_versions(repo: Path, capsys: pytest.CaptureFixture[str], cluster: str, old: str, new: str,
                      anchor: str, col: int, message: str) -> None:
    text = edit(repo, cluster, old, new)
    errors = build_errors(repo, capsys)
    assert errors == [f"environments/{cluster}.yaml:{line_of(text, anchor)}:{col}: {message}"]


@pytest.mark.parametrize("text,ok", [
    ("4.14.1", True), ("0.0.47", True), ("4.15.0-rc.1", True), ("3.0.0-alpha.1", True), ("2.20.1-0.3.7", True),
    ("v2.20.1", False), ("4.14", False), ("4", False), ("4.14.1+build.5", False), ("04.1.0", False),
    ("3.0.0a1", False), (" 4.14.1", False), ("latest", False), ("", False),
])
def test_semver_without_the_v(text: str, ok: bool) -> None:
    assert (semver.parse_plain(text) is not None) is ok
    assert (semver.version_problem(catalog.BY_NAME["pychunkedgraph"], text) is None) is ok


def test_explicit_tags_come_from_the_catalogue() -> None:
    proxy = catalog.BY_NAME["proxy"]
    assert proxy.explicit_versions() == ("RequestorPays12",)
    assert semver.version_problem(proxy, "RequestorPays12") is None
    assert semver.version_problem(catalog.BY_NAME["annotationengine"], "RequestorPays12") is not None
    # a service whose images all follow the version needs the tag on each of them
    worker = catalog.Image("w", "pcgl2cache", tag="worker_pcgv1_v{version}", tags=("worker_pcgv1_vSpecial",))
    api = catalog.Image("a", "pcgl2cache", tags=("vSpecial",))
    assert worker.version_of("worker_pcgv1_vSpecial") == "Special" and worker.version_of("vSpecial") is None
    both = catalog.Service("x", ("local",), (), (api, worker))
    one = catalog.Service("x", ("local",), (), (api, catalog.Image("w", "pcgl2cache", tag="worker_v{version}")))
    assert both.explicit_versions() == ("Special",) and one.explicit_versions() == ()


def test_a_prerelease_renders_its_tag(tmp_path: Path, kustomize_tool: kustomize.Kustomize) -> None:
    """Real kustomize: the version as written becomes the image tag, with exactly one v."""
    for part in ("environments", "base"):
        shutil.copytree(REPO / part, tmp_path / part)
    edit(tmp_path, "minnie", "    version: 4.14.1\n", "    version: 4.15.0-rc.1\n")
    assert main(["--root", str(tmp_path), "build", "minnie"]) == 0
    rendered = kustomize_tool.build(tmp_path / "overlays" / "minnie")
    assert "image: docker.io/caveconnectome/annotationengine:v4.15.0-rc.1\n" in rendered
    assert ":vv" not in rendered
