"""Upstream releases of the bumped components and the schema pins of a release."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import NamedTuple

from github import Github, UnknownObjectException
from github.Repository import Repository

from compiler.github import Retry, call
from compiler.spec import semver
from compiler.spec.semver import Version

SCHEMA = "emannotationschemas"
# Where each followed service is released; --upstream overrides (forks, mirrors, GitHub Enterprise).
UPSTREAMS = {
    SCHEMA: "CAVEconnectome/EMAnnotationSchemas",
    "annotationengine": "CAVEconnectome/AnnotationEngine",
    "materializationengine": "CAVEconnectome/MaterializationEngine",
}
# Where AnnotationEngine / MaterializationEngine declare the EMAnnotationSchemas they are built with.
REQUIREMENT_FILES = ("requirements.txt", "requirements.in", "setup.py", "pyproject.toml")
_PIN = re.compile(r"(?im)^[^#\n]*?\bemannotationschemas\s*(?:\[[^\]]*\])?\s*(===?|>=|~=)\s*v?([0-9]+(?:\.[0-9]+){0,2})")
BRANCH_PREFIX = "cave-bot/"
LABEL = "version-bump"
SET_MARKER = "<!-- cave-bot:set {} -->"
HELD_MARKER = "<!-- cave-bot:held {} -->"
BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"


class Release(NamedTuple):
    version: Version
    tag: str
    url: str
    prerelease: bool


class Pin(NamedTuple):
    """The EMAnnotationSchemas requirement found in an upstream release, and where."""

    requirement: str
    minimum: Version
    path: str
    url: str


# --------------------------------------------------------------------------- upstream


@dataclass
class Upstream:
    """Releases and pinned schema versions of the followed services, read through the GitHub API."""

    gh: Github
    repos: dict[str, str] = field(default_factory=lambda: dict(UPSTREAMS))
    retry: Retry = field(default_factory=Retry)
    _repos: dict[str, Repository] = field(default_factory=dict)
    _releases: dict[str, list[Release]] = field(default_factory=dict)
    _pins: dict[tuple[str, str], Pin | None] = field(default_factory=dict)

    def _repo(self, service: str) -> Repository:
        name = self.repos[service]
        if name not in self._repos:
            self._repos[name] = call(lambda: self.gh.get_repo(name), f"reading {name}", self.retry)
        return self._repos[name]

    def releases(self, service: str) -> list[Release]:
        """Semver releases and tags, newest first; drafts and non-semver tags left out."""
        if service in self._releases:
            return self._releases[service]
        repo, name = self._repo(service), self.repos[service]
        published = call(lambda: [(r.tag_name, r.html_url, r.prerelease) for r in repo.get_releases() if not r.draft],
                         f"listing releases of {name}", self.retry)
        tags = call(lambda: [t.name for t in repo.get_tags()], f"listing tags of {name}", self.retry)
        found: dict[Version, Release] = {}
        for tag, url, pre in published:
            if (v := semver.parse(tag)) is not None:
                found[v] = Release(v, tag, url, pre or v.prerelease)
        for tag in tags:
            if (v := semver.parse(tag)) is not None and v not in found:
                found[v] = Release(v, tag, f"{repo.html_url}/releases/tag/{tag}", v.prerelease)
        self._releases[service] = sorted(found.values(), key=lambda r: r.version.key(), reverse=True)
        return self._releases[service]

    def pin(self, service: str, release: Release) -> Pin | None:
        """The EMAnnotationSchemas requirement of the service at the release's tag (None: none declared)."""
        if (service, release.tag) in self._pins:
            return self._pins[(service, release.tag)]
        repo, name = self._repo(service), self.repos[service]
        found: Pin | None = None
        for path in REQUIREMENT_FILES:
            text = call(functools.partial(_file, repo, path, release.tag), f"reading {path} of {name} at {release.tag}",
                        self.retry)
            m = _PIN.search(text or "")
            if m:
                parts = [*m.group(2).split("."), "0", "0"][:3]
                minimum = semver.parse(".".join(str(int(p)) for p in parts))
                assert minimum is not None
                requirement = f"emannotationschemas{m.group(1)}{m.group(2)}"
                found = Pin(requirement, minimum, path, f"{repo.html_url}/blob/{release.tag}/{path}")
                break
        self._pins[(service, release.tag)] = found
        return found


def _file(repo: Repository, path: str, ref: str) -> str | None:
    try:
        content = repo.get_contents(path, ref=ref)
    except UnknownObjectException:
        return None
    if isinstance(content, list):
        return None
    return content.decoded_content.decode("utf-8", errors="replace")
