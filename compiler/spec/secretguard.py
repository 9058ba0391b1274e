"""The secret guard: does a literal look like a secret value? One detection for the spec loader and `validate`.

A value is reported (never quoted: callers show at most its length) when it is

1. **a known token shape** anywhere in it: a PEM private key, AWS access key ids (`AKIA...`), GitHub
   (`ghp_...`, `github_pat_...`), GitLab (`glpat-...`), Slack (`xox[abposr]-...`, incoming-webhook URLs),
   Google (`AIza...` API keys, `ya29.` OAuth tokens, `GOCSPX-` client secrets), Stripe live/test keys,
   npm tokens, JWTs (`eyJ...`.`eyJ...`);
2. **a URI with an embedded password** (`scheme://user:password@host`, a `$(VAR)`/`{...}` placeholder is fine);
3. **random-looking**: a run of >= 20 base64/base64url characters mixing lower case, upper case and digits
   whose class changes at >= 35% of its characters and whose Shannon entropy is >= 3.5 bits/char (random
   base62 keys of 20 characters: >= 97% caught; identifiers, paths, hostnames, image refs, dotted Python
   names, kustomize hash suffixes: class changes under 30%). Pure hex (digests, commit ids), UUIDs, public
   PEM blocks and ssh public keys are not secrets. Under a key-ish name (`*_KEY`, `salt`, `signature`,
   `auth`, `hmac`, ...) the bar is lower: >= 16 characters, two classes, hex included;
4. **a literal under a secret-like name**: the key's words (snake, kebab, camel, dotted) contain `password`,
   `passwd`, `pass`, `pwd`, `passphrase`, `secret`, `token(s)`, `credential(s)`, `creds`, `apikey`/`api_key`,
   `private_key`, `signing_key`, `csrf`, `bearer`, ... and only words that still name the value itself may
   follow (`key`, `value`, `access`, `hash`, `b64`, ...). So `SECRET_KEY`, `clientSecret`, `db-password`
   and `AWS_SECRET_ACCESS_KEY` are secret names, while `secret_name`, `TOKEN_TTL`, `tokens_per_minute`,
   `password_file`, `secretKeyRef` and `CSRF_ENABLED` name something about a secret. Values that point at a
   secret or are not one (empty, paths, URLs without a password, host names, `$(VAR)`/`${VAR}`/`{{ }}`
   placeholders, `projects/...` Secret Manager resources, numbers, booleans) are not reported.

`secret_name=True` checks a slot that holds a Secret Manager secret *name* (the spec's `secrets:`): the
name rule is off there, and the random-looking bar is lower (>= 16 characters, two classes, class changes
>= 40%, >= 3.3 bits/char): `minnie-postgres-password` passes, a pasted 16-character password does not.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

MIN_RANDOM_LEN = 20
MIN_KEYISH_LEN = 16
MIN_NAME_SLOT_LEN = 16
MIN_TRANSITIONS = 0.35
MIN_BITS = 3.5

_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a PEM private key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")),
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[0-9A-Z]{16}\b")),
    ("a GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})")),
    ("a GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a Slack webhook URL", re.compile(r"hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_-]{20,}")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("a Google OAuth access token", re.compile(r"\bya29\.[0-9A-Za-z_-]{20,}")),
    ("a Google OAuth client secret", re.compile(r"\bGOCSPX-[0-9A-Za-z_-]{20,}")),
    ("a Stripe key", re.compile(r"\b[rs]k_(?:live|test)_[0-9A-Za-z]{20,}")),
    ("an npm token", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b")),
    # The first `\beyJ` of a run of token characters decides for the whole run (later ones end at the same place),
    # so the match starts only at a run's start and the atomic group keeps it from retrying each `eyJ` inside a
    # long run (`eyJ-eyJ-…`), which would be quadratic.
    ("a JSON Web Token", re.compile(
        r"(?<![A-Za-z0-9_-])(?>[A-Za-z0-9_-]*?\beyJ)[A-Za-z0-9_-]{8,}+\.eyJ[A-Za-z0-9_-]{8,}")),
)

# The scheme is bounded (32 characters, longer than any real one): an unbounded `[a-z][a-z0-9+.-]*` tried at every
# start of a long dotted value (`a.a.a.…`) makes the search quadratic (200 KB: ~2 minutes). A longer scheme still
# matches by its last 32 characters, so nothing is missed.
URI_PASSWORD_RE = re.compile(r"[a-z][a-z0-9+.-]{0,31}://[^\s/:@'\"]+:([^\s/@'\"]+)@", re.I)
_PLACEHOLDER_RE = re.compile(r"\$\(|\$\{|\{\{|\{[A-Za-z_]|%\(|%s|^\$[A-Za-z_]|^<[^>]*>$|^\*+$")
_HOST_PATH_RE = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)+(:[0-9]+)?(/\S*)?")
_NUMBER_RE = re.compile(r"[-+]?[0-9][0-9._]*(e[-+]?[0-9]+)?[a-zA-Z]{0,2}")
_TOKEN_RE = re.compile(r"[A-Za-z0-9+/=_-]+")
_HEX_RE = re.compile(r"[0-9a-f]+|[0-9A-F]+")
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
# Public PEM blocks (a BEGIN line, up to the next END line: found in two linear searches, not by `.*?`, which
# rescans to the end from every BEGIN of a text without END) and ssh public keys.
_PUBLIC_BEGIN_RE = re.compile(r"-----BEGIN (?:CERTIFICATE|PUBLIC KEY|[A-Z ]{0,40}PUBLIC KEY(?: BLOCK)?)-----")
_PEM_END_RE = re.compile(r"-----END [A-Z ]+-----")
_SSH_PUBLIC_RE = re.compile(
    r"\b(?:ssh-(?:rsa|dss|ed25519)|ecdsa-sha2-nistp[0-9]+|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/=]+")
_WORD_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

SECRET_WORDS = frozenset({
    "password", "passwords", "passwd", "pass", "pwd", "passphrase", "secret", "secrets", "token", "tokens",
    "credential", "credentials", "creds", "apikey", "privatekey", "signingkey", "encryptionkey", "masterkey",
    "csrf", "bearer", "xsrf",
})
# Pairs of words that together name a secret: api_key, privateKey, signing-key...
_COMPOUNDS = {("api", "key"): "apikey", ("private", "key"): "privatekey", ("signing", "key"): "signingkey",
              ("encryption", "key"): "encryptionkey", ("master", "key"): "masterkey"}
# Words that may follow a secret word and still name the secret value itself (SECRET_KEY, password_hash...).
SECRET_SUFFIXES = frozenset({
    "key", "value", "val", "access", "data", "string", "str", "text", "hash", "salt", "b64", "base64", "hex",
    "raw", "plain", "plaintext", "json", "literal",
})
# Words that make a name hold key material more often than not: random values under them are reported sooner.
KEYISH_WORDS = frozenset({"key", "keys", "salt", "signature", "sig", "hmac", "auth", "cred", "nonce", "seed"})
# Last words of names that hold something about a key rather than the key (CACHE_KEY_PREFIX, AUTH_URL...).
_REFERENCE_WORDS = frozenset({
    "name", "names", "file", "files", "path", "paths", "dir", "url", "uri", "urls", "endpoint", "header", "enabled",
    "ttl", "expiry", "expires", "timeout", "seconds", "type", "location", "mount", "ref", "id", "ids", "prefix",
    "suffix", "length", "len", "size", "count", "limit", "version", "table", "env", "var", "field", "project",
})


@dataclass(frozen=True)
class Hit:
    """Why a value looks like a secret: `rule` (shape, uri-password, random, name) and a phrase for messages."""

    rule: str
    what: str
    detail: str = ""

    def describe(self, value: str) -> str:
        """The reason with what may be shown of the value: its length, never the value."""
        return f"{self.what} ({', '.join(filter(None, [mask(value), self.detail]))})"


def shannon_entropy(text: str) -> float:
    """Bits per character of a string."""
    counts = {c: text.count(c) for c in set(text)}
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values()) if text else 0.0


def _class(c: str) -> int:
    return 0 if c.islower() else 1 if c.isupper() else 2


def class_changes(text: str) -> float:
    """Share of neighbouring letters/digits that change class (lower, upper, digit): ~0.6 random, <0.3 words."""
    classes = [_class(c) for c in text if c.isalnum()]
    if len(classes) < 2:
        return 0.0
    return sum(a != b for a, b in itertools.pairwise(classes)) / (len(classes) - 1)


def _classes(text: str) -> set[int]:
    return {_class(c) for c in text if c.isalnum()}


def _random(token: str, *, min_len: int, min_classes: int, min_changes: float, min_bits: float,
            hex_ok: bool) -> bool:
    if len(token) < min_len or len(_classes(token)) < min_classes:
        return False
    if not hex_ok and (_HEX_RE.fullmatch(token) or _UUID_RE.fullmatch(token)):
        return False
    return class_changes(token) >= min_changes and shannon_entropy(token) >= min_bits


def looks_random(token: str) -> bool:
    """A generated key anywhere: >= 20 chars of lower, upper and digits, class changes >= 35%, >= 3.5 bits/char."""
    return _random(token, min_len=MIN_RANDOM_LEN, min_classes=3, min_changes=MIN_TRANSITIONS, min_bits=MIN_BITS,
                   hex_ok=False)


def _keyish_random(token: str) -> bool:
    return _random(token, min_len=MIN_KEYISH_LEN, min_classes=2, min_changes=0.25, min_bits=3.0, hex_ok=True)


def _name_slot_random(token: str) -> bool:
    return _random(token, min_len=MIN_NAME_SLOT_LEN, min_classes=2, min_changes=0.4, min_bits=3.3, hex_ok=False)


_GLUED_RE = re.compile(r"(?<=[a-z]{2})(password|passwd|secret|token|apikey)$")


def words(key: str) -> list[str]:
    """Lower-case words of a snake, kebab, camel or dotted name, compounds joined (apiKey → apikey), a secret
    word glued to a prefix split off (PGPASSWORD → pg password)."""
    out: list[str] = []
    for word in (p for w in _WORD_RE.findall(key) for p in _GLUED_RE.split(w.lower()) if p):
        if out and (out[-1], word) in _COMPOUNDS:
            out[-1] = _COMPOUNDS[(out[-1], word)]
        else:
            out.append(word)
    return out


def secret_like_name(key: str) -> bool:
    """Does `key` name a secret value (DB_PASSWORD, clientSecret, SECRET_KEY), not something about one?"""
    parts = words(key)
    last = max((i for i, w in enumerate(parts) if w in SECRET_WORDS), default=None)
    return last is not None and all(w in SECRET_SUFFIXES for w in parts[last + 1:])


def keyish_name(key: str) -> bool:
    """A name that often holds key material (SIGNING_SALT, hmac, auth) and does not point at it (AUTH_URL)."""
    parts = words(key)
    return bool(parts) and parts[-1] not in _REFERENCE_WORDS and any(
        w in KEYISH_WORDS or w in SECRET_WORDS for w in parts
    )


def is_reference(value: str) -> bool:
    """A value that points at a secret (path, placeholder, URL, Secret Manager resource) or is none at all."""
    v = value.strip().strip("\"'")
    return (
        not v
        or v.startswith(("/", "./", "../", "~/", "projects/", "sm://", "gcpsm://"))
        or bool(_PLACEHOLDER_RE.search(v))
        or ("://" in v and not URI_PASSWORD_RE.search(v))
        or bool(_HOST_PATH_RE.fullmatch(v))
        or v.lower() in ("true", "false", "yes", "no", "on", "off", "none", "null", "nil")
        or bool(_NUMBER_RE.fullmatch(v))
    )


def _public_removed(text: str) -> str:
    """`text` with public PEM blocks and ssh public keys replaced by a space."""
    if "-----BEGIN" in text:
        kept: list[str] = []
        at = 0
        while (begin := _PUBLIC_BEGIN_RE.search(text, at)) and (end := _PEM_END_RE.search(text, begin.end())):
            kept += [text[at:begin.start()], " "]
            at = end.end()
        text = "".join(kept) + text[at:]
    return _SSH_PUBLIC_RE.sub(" ", text) if "ssh-" in text or "ecdsa-" in text else text


def scan(text: str, *, keyish: bool = False, secret_name: bool = False) -> Hit | None:
    """Token shapes, URI passwords and random-looking runs anywhere in `text` (no key needed)."""
    text = _public_removed(text)
    for what, pattern in _SHAPES:
        if pattern.search(text):
            return Hit("shape", what)
    match = URI_PASSWORD_RE.search(text)
    if match and not _PLACEHOLDER_RE.search(match[1]):
        return Hit("uri-password", "a URI with an embedded password")
    for token in _TOKEN_RE.findall(text):
        token = token.strip("=")
        if (
            looks_random(token)
            or (keyish and _keyish_random(token))
            or (secret_name and _name_slot_random(token))
        ):
            return Hit("random", "a random-looking value", f"{shannon_entropy(token):.1f} bits/char")
    return None


def check(key: str | None, value: str, *, secret_name: bool = False) -> Hit | None:
    """Why the literal `value` held by `key` looks like a secret value, or None.

    `key` is the name that holds the value (a mapping key, an env var name; None when there is none);
    `secret_name=True` for a slot that holds a Secret Manager secret name (see the module docstring).
    """
    keyish = key is not None and not secret_name and keyish_name(key)
    hit = scan(value, keyish=keyish, secret_name=secret_name)
    if hit is not None:
        return hit
    if key is not None and not secret_name and secret_like_name(key) and not is_reference(value):
        return Hit("name", "a literal value under a secret-like name")
    return None


# --------------------------------------------------------------------------- config files, command lines

# `KEY = value`: the value (the rest of the line) is trimmed in Python, not by `\s*(.*?)\s*[,;]?\s*$`, whose
# nested whitespace runs backtrack cubically on a long blank value.
_LINE_RE = re.compile(r"""\s*(?:export\s+)?["']?([A-Za-z_][\w.-]*)["']?\s*[:=]""")
_INLINE_PAIR_RE = re.compile(r"""["']([A-Za-z_][\w.-]*)["']\s*:\s*(?:"([^"\n]*)"|'([^'\n]*)')""")
_BARE_TOKEN_RE = re.compile(r"^[^\s()\[\]{}<>,]+$")
_ARG_PAIR_RE = re.compile(r"""(?:^|\s)-{0,2}([A-Za-z_][\w.-]*)=("[^"]*"|'[^']*'|\S+)""")


def _trimmed(raw: str) -> str:
    """A config value without surrounding blanks and one trailing `,` or `;`."""
    raw = raw.strip()
    return raw[:-1].rstrip() if raw.endswith((",", ";")) else raw


def file_pairs(text: str) -> Iterator[tuple[int, str, str]]:
    """(line number, key, literal value) of `KEY = "value"`, `key: value` and `'key': 'value'` in a config file."""
    for number, line in enumerate(text.splitlines(), 1):
        match = _LINE_RE.match(line)
        if match:
            key, raw = match[1], _trimmed(line[match.end():])
            if len(raw) >= 2 and raw[0] in "\"'" and raw[-1] == raw[0]:
                yield number, key, raw[1:-1]
            elif _BARE_TOKEN_RE.match(raw) and not raw.startswith(('"', "'")):
                yield number, key, raw
        for inline in _INLINE_PAIR_RE.finditer(line):
            yield number, inline[1], inline[2] if inline[2] is not None else inline[3]


def check_text(text: str) -> Iterator[tuple[int, str | None, Hit]]:
    """(line, key or None, why) of every secret-looking literal of a multi-line config file, one per line."""
    pairs: dict[int, list[tuple[str, str]]] = {}
    for number, key, literal in file_pairs(text):
        pairs.setdefault(number, []).append((key, literal))
    for number, line in enumerate(_public_removed(text).splitlines(), 1):
        found: tuple[str | None, Hit] | None = None
        for key, literal in pairs.get(number, []):
            hit = check(key, literal)
            if hit is not None:
                found = (key, hit)
                break
        if found is None and (hit := scan(line)) is not None:
            found = (None, hit)
        if found is not None:
            yield number, found[0], found[1]


def check_args(args: Sequence[str]) -> Iterator[tuple[int, str | None, Hit]]:
    """(index, flag or None, why) of secret-looking literals in a container's command or args.

    `--password=x`, `PGPASSWORD=x` inside a shell line, and `--token x` (a flag, then its value) are
    checked with the flag as the name; every argument is scanned for token shapes and random runs.
    """
    for i, arg in enumerate(args):
        found: tuple[str | None, Hit] | None = None
        for match in _ARG_PAIR_RE.finditer(arg):
            value = match[2].strip("\"'")
            if (hit := check(match[1], value)) is not None:
                found = (match[1], hit)
                break
        previous = args[i - 1] if i else ""
        if found is None and previous.startswith("-") and "=" not in previous and not arg.startswith("-"):
            flag = previous.lstrip("-")
            if (hit := check(flag, arg)) is not None:
                found = (flag, hit)
        if found is None and (hit := scan(arg)) is not None:
            found = (None, hit)
        if found is not None:
            yield i, found[0], found[1]


def mask(value: str) -> str:
    """How a secret value may be shown: its length only."""
    return f"{len(value)} characters, not shown"


def redact(message: str, values: Sequence[str]) -> str:
    """`message` with every secret value in `values` replaced (for messages that would quote them)."""
    for value in sorted(values, key=len, reverse=True):
        if len(value) < 4:
            continue
        message = message.replace(repr(value), "<value not shown>")
        if len(value) >= 8:
            message = message.replace(value, "<value not shown>")
    return message
