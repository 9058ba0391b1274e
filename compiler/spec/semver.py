"""Semantic versions (https://semver.org) and the version ranges a spec's `bump:` policy may allow.

Release tags are read with or without a leading `v`; anything else (`vFastCsv2`, `RequestorPays12`) is not a
version and cannot be ordered, so the bump bot ignores it. A spec's `version:` is stricter (`parse_plain`,
`version_problem`): semver without the `v`, which the image's tag rule adds, or a tag the catalogue lists.
Ranges use the npm/Cargo spellings people know:
`~4.23` (4.23.x), `^4` (4.x.y), `^0.6` (0.6.x), `>=4.20,<5` (comparators, all must hold), `4.23.1` (exact).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from compiler import catalog

_SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
_PARTIAL = re.compile(r"^v?(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?$")
_COMPARATOR = re.compile(r"^(>=|<=|>|<|=|==)?\s*(\S+)$")
KEYWORDS = ("latest", "pinned")
CATALOG = "compiler/catalog.py"
MOVING_TAGS = ("latest", "stable", "main", "master", "dev", "edge", "nightly")


class Version(NamedTuple):
    major: int
    minor: int
    patch: int
    pre: tuple[int | str, ...] = ()

    @property
    def prerelease(self) -> bool:
        return bool(self.pre)

    def key(self) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
        """Sort key: a release sorts after its pre-releases; numeric identifiers before alphanumeric ones."""
        return (self.major, self.minor, self.patch, 0 if self.pre else 1,
                tuple((0, p) if isinstance(p, int) else (1, p) for p in self.pre))

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return f"{core}-{'.'.join(str(p) for p in self.pre)}" if self.pre else core


def parse(text: str) -> Version | None:
    """The version a tag or spec value names (`v4.24.0`, `4.24.0-rc.1`), or None when it is not semver."""
    m = _SEMVER.match(text.strip())
    if m is None:
        return None
    pre = tuple(int(p) if p.isdigit() else p for p in m.group(4).split(".")) if m.group(4) else ()
    return Version(int(m.group(1)), int(m.group(2)), int(m.group(3)), pre)


def parse_plain(text: str) -> Version | None:
    """The version a spec's `version:` names: semver with no leading `v` (the image's tag rule adds it) and no
    `+build` part (an image tag cannot hold `+`); None for anything else (`v4.24.0`, `latest`, `4.24`)."""
    if text != text.strip() or text.startswith("v") or "+" in text:
        return None
    return parse(text)


def version_problem(svc: catalog.Service, version: str) -> str | None:
    """Why `version` cannot be the spec version of `svc`, with the fix; None when it is semver (without the `v`)
    or one of the explicit tags the catalogue allows for the service's images (catalog.Image.tags)."""
    explicit = svc.explicit_versions()
    if parse_plain(version) is not None or version in explicit:
        return None
    image = next((i for i in svc.images if i.follows_version()), None)
    bare = version[1:] if version.startswith("v") else ""
    if image is not None and bare and (parse_plain(bare) is not None or bare in explicit):
        if image.tag.startswith("v{version}"):
            return (f"{version!r} is not a version: write {bare}: the v is added by the image's tag rule "
                    f"({image.tag} makes the tag {image.tag.format(version=bare)}; as written it would be "
                    f"{image.tag.format(version=version)})")
        return f"{version!r} is not a version: write {bare} (the image is tagged {image.tag.format(version=bare)})"
    allowed = f"; or one of the tags the catalogue allows for {svc.name}: {', '.join(explicit)}" if explicit else ""
    if version.lower() in MOVING_TAGS:
        return (f"{version!r} is a moving tag, not a version: pin a release like 4.14.1 (semver without the v) "
                f"so that every render names the same image{allowed}")
    if "+" in version and parse_plain(version.partition("+")[0]) is not None:
        return f"{version!r} is not a version: write {version.partition('+')[0]} (an image tag cannot hold '+')"
    if _PARTIAL.match(version) and not version.startswith("v"):
        triple = ".".join([*version.split("."), "0", "0"][:3])
        return f"{version!r} is not a version: write all three parts, like {triple}"
    return (f"{version!r} is not a version: write a release as semver without the v (like 4.14.1 or 4.15.0-rc.1)"
            f"{allowed or f'; an image tag outside semver must first be listed in the tags of its image in {CATALOG}'}")


def lt(a: Version, b: Version) -> bool:
    return a.key() < b.key()


def _partial(text: str) -> tuple[int, int | None, int | None]:
    m = _PARTIAL.match(text)
    if m is None:
        raise ValueError(f"{text!r} is not a version (like 4, 4.23 or 4.23.1)")
    return int(m.group(1)), _int(m.group(2)), _int(m.group(3))


def _int(text: str | None) -> int | None:
    return int(text) if text is not None else None


@dataclass(frozen=True)
class Range:
    """Half-open bounds [low, high) on the release triple; `exact` for `4.23.1`. Pre-release tags compare by
    their release triple, so `~4.24` admits 4.24.0-rc.1 when the policy opts in to pre-releases."""

    text: str
    low: tuple[int, int, int] = (0, 0, 0)
    high: tuple[int, int, int] | None = None
    exclusive_low: bool = False
    inclusive_high: bool = False

    def allows(self, version: Version) -> bool:
        triple = (version.major, version.minor, version.patch)
        if triple < self.low or (self.exclusive_low and triple == self.low):
            return False
        if self.high is None:
            return True
        return triple <= self.high if self.inclusive_high else triple < self.high


def parse_range(text: str) -> Range:
    """A range from `~4.23`, `^4`, `>=4.20,<5` or `4.23.1`; ValueError with a fix when it is none of them."""
    spec = text.strip()
    if not spec:
        raise ValueError("empty version range (use latest, pinned, ~4.23, ^4 or >=4.20,<5)")
    if spec[0] in "~^":
        major, minor, patch = _partial(spec[1:].strip())
        low = (major, minor or 0, patch or 0)
        if spec[0] == "~" and minor is not None:
            high = (major, minor + 1, 0)
        elif spec[0] == "~" or major > 0 or minor is None:
            high = (major + 1, 0, 0)
        elif minor > 0 or patch is None:
            high = (0, minor + 1, 0)
        else:
            high = (0, 0, patch + 1)
        return Range(text, low, high)
    if "," not in spec and (spec[0].isdigit() or spec.startswith("v")):
        major, minor, patch = _partial(spec)
        if minor is None or patch is None:
            raise ValueError(f"{text!r}: an exact version needs three parts (or write ~{spec} for a range)")
        return Range(text, (major, minor, patch), (major, minor, patch), inclusive_high=True)
    out = Range(text)
    for part in spec.split(","):
        m = _COMPARATOR.match(part.strip())
        if m is None or m.group(1) is None:
            raise ValueError(f"{part.strip()!r} in {text!r} is not a comparator (like >=4.20 or <5)")
        op, (major, minor, patch) = m.group(1), _partial(m.group(2))
        bound = (major, minor or 0, patch or 0)
        if op in (">=", ">"):
            out = Range(text, bound, out.high, op == ">", out.inclusive_high)
        elif op in ("<", "<="):
            out = Range(text, out.low, bound, out.exclusive_low, op == "<=")
        else:
            out = Range(text, bound, bound, False, True)
    return out


def check_policy(text: str) -> str:
    """`text` if it is `latest`, `pinned` or a valid range, else ValueError."""
    if text.strip() not in KEYWORDS:
        parse_range(text)
    return text.strip()
