"""Upstream releases of the bumped components and the schema pins of a release."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from github import BadAttributeException, Github, IncompletableObject, UnknownObjectException
from github.Repository import Repository
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion
from packaging.version import Version as PyVersion

from compiler import catalog
from compiler.errors import UserError
from compiler.github import Retry, call
from compiler.spec import semver
from compiler.spec.semver import Version

SCHEMA = "emannotationschemas"
# Where each followed service is released (its catalogue entry's `upstream`); --upstream overrides (forks,
# mirrors, GitHub Enterprise).
UPSTREAMS = {s.name: s.upstream for s in catalog.SERVICES if s.upstream is not None}
# Where AnnotationEngine / MaterializationEngine declare the EMAnnotationSchemas they are built with.
REQUIREMENT_FILES = ("requirements.txt", "requirements.in", "setup.py", "pyproject.toml")
# The requirement's version specifier, as written: up to a quote, an environment marker, a comment or the line end.
_PIN = re.compile(r"(?im)^[^#\n]*?\bemannotationschemas\s*(?:\[[^\]]*\])?\s*([<>=!~][^\"'\n;#]*)")
BRANCH_PREFIX = "cave-bot/"
LABEL = "version-bump"
# The first line of a bot pull request's body: the set it proposes and the branch head the bot last pushed (anything
# else on the branch is a person's change).
SET_MARKER = "<!-- cave-bot:set {} head={} -->"
HELD_MARKER = "<!-- cave-bot:held {} -->"
SUPERSEDED_MARKER = "<!-- cave-bot:superseded-by #{} -->"
STOPPED_MARKER = "<!-- cave-bot:stopped {} -->"  # a Degraded stage, said on the pull request that brought it
STOPPED_LATER_MARKER = "<!-- cave-bot:stopped-later {} -->"  # said on a later stage's pull request, closing it
TRAILER = "Cave-Bot-Set"  # commit trailer naming the set the bot's commit carries
BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"


class Release(NamedTuple):
    version: Version
    tag: str
    url: str
    prerelease: bool


class Pin(NamedTuple):
    """The EMAnnotationSchemas requirement found in an upstream release, and where. `specifier` is None when
    the text is not a valid version specifier (`error` says why)."""

    requirement: str
    specifier: SpecifierSet | None
    path: str
    url: str
    error: str = ""

    def allows(self, version: str) -> bool:
        """Whether the schema `version` (semver text, pre-releases too) satisfies the whole specifier."""
        if self.specifier is None:
            return False
        try:
            return self.specifier.contains(PyVersion(version), prereleases=True)
        except InvalidVersion:
            return False


# --------------------------------------------------------------------------- upstream


class Malformed(UserError):
    """An upstream answer the bot cannot read: a note for that component; the others go on."""


class _Shape(ValueError):
    pass


# What PyGithub raises when a listing is not the list of objects it expects.
_MALFORMED = (_Shape, TypeError, AttributeError, KeyError, ValueError, BadAttributeException, IncompletableObject)


def _checked(rows: list[tuple[object, ...]], types: tuple[type, ...]) -> list[tuple[Any, ...]]:
    for row in rows:
        if any(not isinstance(value, kind) for value, kind in zip(row, types, strict=True)):
            raise _Shape(f"an entry has {row!r} where {', '.join(k.__name__ for k in types)} belong")
    return rows


@dataclass
class Upstream:
    """Releases and pinned schema versions of the followed services, read through the GitHub API."""

    gh: Github
    repos: dict[str, str] = field(default_factory=lambda: dict(UPSTREAMS))
    retry: Retry = field(default_factory=Retry)
    _repos: dict[str, Repository] = field(default_factory=dict)
    _releases: dict[str, list[Release]] = field(default_factory=dict)
    _pins: dict[tuple[str, str], Pin | None] = field(default_factory=dict)
    _broken: dict[str, Malformed] = field(default_factory=dict)

    def _repo(self, service: str) -> Repository:
        name = self.repos[service]
        if name not in self._repos:
            self._repos[name] = call(lambda: self.gh.get_repo(name), f"reading {name}", self.retry)
        return self._repos[name]

    def releases(self, service: str) -> list[Release]:
        """Semver releases and tags, newest first; drafts and non-semver tags left out."""
        if service in self._releases:
            return self._releases[service]
        if service in self._broken:
            raise self._broken[service]
        repo, name = self._repo(service), self.repos[service]

        def read(what: str, rows: Callable[[], list[tuple[object, ...]]], types: tuple[type, ...]) -> list[Any]:
            try:
                return _checked(rows(), types)
            except _MALFORMED as err:  # inside call(): a 5xx while paging is still retried
                self._broken[service] = Malformed(
                    f"the {what} of {name} is malformed ({type(err).__name__}: {' '.join(str(err).split())[:200]}); "
                    "check --upstream and --upstream-api-url (a proxy answering for GitHub?)")
                raise self._broken[service] from None

        published = call(lambda: read("release list", lambda: [(r.tag_name, r.html_url, r.prerelease, r.draft)
                                                               for r in repo.get_releases()], (str, str, bool, bool)),
                         f"listing releases of {name}", self.retry)
        tags = [tag for (tag,) in call(lambda: read("tag list", lambda: [(t.name,) for t in repo.get_tags()], (str,)),
                                       f"listing tags of {name}", self.retry)]
        found: dict[Version, Release] = {}
        for tag, url, pre, draft in published:
            if not draft and (v := semver.parse(tag)) is not None:
                found[v] = Release(v, tag, url, pre or v.prerelease)
        for tag in tags:
            if (v := semver.parse(tag)) is not None and v not in found:
                found[v] = Release(v, tag, f"{repo.html_url}/releases/tag/{tag}", v.prerelease)
        self._releases[service] = sorted(found.values(), key=lambda r: r.version.key(), reverse=True)
        return self._releases[service]

    def pin(self, service: str, release: Release) -> Pin | None:
        """The EMAnnotationSchemas requirement of the service at the release's tag (None: none declared); Malformed
        when a file's answer cannot be read (that component only)."""
        if (service, release.tag) in self._pins:
            return self._pins[(service, release.tag)]
        if (broken := self._broken.get(f"{service}@{release.tag}")) is not None:
            raise broken
        repo, name = self._repo(service), self.repos[service]
        found: Pin | None = None
        for path in REQUIREMENT_FILES:
            try:
                text = call(functools.partial(_file, repo, path, release.tag),
                            f"reading {path} of {name} at {release.tag}", self.retry)
            except (*_MALFORMED, AssertionError, UnicodeError) as err:  # bad base64, an encoding PyGithub refuses
                broken = self._broken[f"{service}@{release.tag}"] = Malformed(
                    f"the contents of {path} of {name} at {release.tag} are malformed ({type(err).__name__}: "
                    f"{' '.join(str(err).split())[:200]}); check --upstream and --upstream-api-url (a proxy "
                    "answering for GitHub?)")
                raise broken from None
            m = _PIN.search(text or "")
            if m:
                written = m.group(1).strip().rstrip(",").strip()
                url = f"{repo.html_url}/blob/{release.tag}/{path}"
                try:
                    found = Pin(f"emannotationschemas{written}", SpecifierSet(written), path, url)
                except InvalidSpecifier as err:
                    found = Pin(f"emannotationschemas{written}", None, path, url, str(err))
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
