"""Hostile specs (issue 17, class 1): bytes that are not UTF-8, binary garbage, nesting 30,000 deep, recursive
aliases, alias bombs, files too large or not regular, a broken global spec. Every command that reads the specs
answers with one line `path:line:col: what (how to fix)` and exit 2: no traceback, no crash, no stall, nothing
written. The secret guard stays linear on long adversarial values."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.spec import secretguard
from compiler.spec.yamlio import MAX_ALIASES, MAX_DEPTH, YAMLError, load_document, load_plain
from tests.support.hostile import digest, one_error, repo_copy, run

SPEC = "environments/minnie.yaml"
SECRET = "ghp_" + "Zq7Rt2Lm9Xw4Kp8Vn3Bc6Hd1Fj5Gs0Ya2Ee"  # a GitHub token shape: must never be printed


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return repo_copy(tmp_path_factory.mktemp("hostile") / "repo")


@pytest.fixture
def repo(copy: Path) -> Iterator[Path]:
    """The module's copy; environments/ and overlays/ are checked unchanged afterwards, then restored."""
    spec = copy / SPEC
    original = spec.read_bytes()
    before = digest(copy, "overlays")
    yield copy
    if spec.is_dir():
        spec.rmdir()
    elif spec.exists() or spec.is_symlink():
        spec.unlink()
    spec.write_bytes(original)
    for extra in (copy / "environments").iterdir():
        if extra.name not in ("fanc.yaml", "global.yaml", "minnie.yaml"):
            extra.unlink() if not extra.is_dir() else extra.rmdir()
    assert digest(copy, "overlays") == before, "a failed command wrote overlays/"


def _spec(repo: Path, text: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    (repo / SPEC).write_bytes(data)


def _deep_flow(depth: int) -> str:
    return f"kind: local\nextra: {'[' * depth}{']' * depth}\n"


# (what, spec bytes, expected start of the one error line)
CASES: list[tuple[str, bytes, str]] = [
    ("latin-1 byte in a comment", b"kind: local\n# caf\xe9 au lait\nname: minnie\n",
     f"{SPEC}:2:6: byte 0xe9 is not UTF-8 text"),
    ("NUL byte", b"kind: local\nname: min\x00nie\n", f"{SPEC}:2:10: control character '\\x00'"),
    ("escape byte", b"kind: local\nname: \x1b[31mminnie\n", f"{SPEC}:2:7: control character '\\x1b'"),
    ("30,000 deep flow sequence (segfaulted)", _deep_flow(30_000).encode(),
     f"{SPEC}:2:{len('extra: ') + MAX_DEPTH}: nested deeper than {MAX_DEPTH} levels"),
    ("600 deep flow mapping", ("kind: local\nx: " + "{a: " * 600 + "1" + "}" * 600 + "\n").encode(),
     f"{SPEC}:2:"),
    ("1,000 deep block mapping", ("kind: local\n" + "".join(f"{' ' * i}k{i}:\n" for i in range(1000))).encode(),
     f"{SPEC}:{MAX_DEPTH + 1}:"),
    ("1,000 deep block sequence", ("kind: local\nx:\n" + "".join(f"{' ' * (2 * i)}-\n" for i in range(1000))
                                   + " " * 2000 + "- 1\n").encode(), f"{SPEC}:"),
    ("recursive alias", b"kind: local\nname: &a [*a]\n", f"{SPEC}:2:7: this value contains itself through an alias"),
    ("alias bomb (700 bytes)", ("kind: local\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9))).encode(),
     f"{SPEC}:"),
    ("alias chain deeper than the limit", ("kind: local\na0: &a0 [x]\n" + "".join(
        f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 2 * MAX_DEPTH))).encode(), f"{SPEC}:"),
    ("too many aliases", ("kind: local\nv: &v 1\nlist:\n" + "- *v\n" * (MAX_ALIASES + 1)).encode(),
     f"{SPEC}:2:4: more than {MAX_ALIASES} aliases"),
    ("over 1 MiB", b"kind: local\n" + b"# padding padding padding\n" * 45_000, f"{SPEC}: larger than 1024 KiB"),
]
MESSAGES = {
    "600 deep flow mapping": f"nested deeper than {MAX_DEPTH} levels",
    "1,000 deep block mapping": f"nested deeper than {MAX_DEPTH} levels",
    "1,000 deep block sequence": f"nested deeper than {MAX_DEPTH} levels",
    "alias bomb (700 bytes)": "expands to more than 100000 values (aliases expanded)",
    "alias chain deeper than the limit": f"nested deeper than {MAX_DEPTH} levels, the limit (flatten it; an alias "
                                         "counts as the value it names)",
    "too many aliases": f"more than {MAX_ALIASES} aliases",
}


@pytest.mark.parametrize(("what", "data", "where"), CASES, ids=[c[0] for c in CASES])
def test_hostile_spec_is_one_line_error(repo: Path, what: str, data: bytes, where: str) -> None:
    _spec(repo, data)
    started = time.monotonic()
    line = one_error(run(repo, "build"), where)
    assert time.monotonic() - started < 20
    assert MESSAGES.get(what, "") in line
    assert "(" in line and line.endswith(")"), f"says how to fix it: {line}"


def test_binary_garbage(repo: Path) -> None:
    _spec(repo, bytes(random.Random(17).randrange(256) for _ in range(4000)))
    line = one_error(run(repo, "build"), f"{SPEC}:")
    assert "is not UTF-8 text" in line or "control character" in line


@pytest.mark.parametrize("command", ["check", "status", "validate"])
def test_every_command_reading_specs_survives_deep_nesting(repo: Path, command: str) -> None:
    """30,000 levels crashed the interpreter (exit 139) in every command that reads the specs."""
    _spec(repo, _deep_flow(30_000))
    one_error(run(repo, command), f"{SPEC}:2:{len('extra: ') + MAX_DEPTH}: nested deeper than {MAX_DEPTH} levels")


@pytest.mark.parametrize("command", ["build", "check", "validate"])
def test_fifo_and_directory_are_refused_without_reading(repo: Path, command: str) -> None:
    (repo / SPEC).unlink()
    os.mkfifo(repo / SPEC)  # reading it would wait forever for a writer
    line = one_error(run(repo, command, timeout=30), f"{SPEC}: is a named pipe (FIFO), not a regular file")
    assert "give the path of" in line
    (repo / SPEC).unlink()
    (repo / SPEC).mkdir()
    one_error(run(repo, command), f"{SPEC}: is a directory, not a regular file")


def test_error_quotes_no_secret(repo: Path) -> None:
    _spec(repo, f"kind: local\ntoken: {SECRET}\nx: {'[' * 500}{']' * 500}\n".encode())
    one_error(run(repo, "build"), f"{SPEC}:3:", secrets=(SECRET,))


def test_broken_global_spec_gives_no_derived_errors_in_locals(repo: Path) -> None:
    """A typo in the global spec used to add a misleading `global_server ... is not a hostname of any global
    cluster spec` (and `zone owner 'global' has no spec`) to every local, sorted before the real error."""
    path = repo / "environments" / "global.yaml"
    original = path.read_text()
    try:
        path.write_text(original.replace("  region: us-east1\n", "  region: 12\n", 1))
        line = one_error(run(repo, "build"), "environments/global.yaml:")
        assert "gcp.region: expected a string" in line
    finally:
        path.write_text(original)


def test_plain_yaml_reader_is_bounded_too() -> None:
    """The pure-Python reader of YAML inside an imported env file (its L2 table map) stops at the same depth."""
    with pytest.raises(YAMLError) as caught:
        load_plain("tables: " + "[" * 5000 + "]" * 5000)
    assert caught.value.problem.startswith(f"nested deeper than {MAX_DEPTH} levels")  # type: ignore[attr-defined]
    # the mapping is level 1, its value the first `[` level 2: the 64th `[` (0-based column 8 + 63) is level 65
    assert caught.value.problem_mark.column == len("tables: ") + MAX_DEPTH - 1  # type: ignore[attr-defined]


def test_fleet_still_loads(repo: Path) -> None:
    """The limits leave the real specs alone (the C composer path, no problems)."""
    for name in ("fanc", "global", "minnie"):
        doc, problems = load_document(repo / "environments" / f"{name}.yaml", name)
        assert doc is not None and problems == []


# --------------------------------------------------------------------------- generated, in-process

_PIECES = ["[", "]", "{", "}", "- ", "? ", ": ", "a", "&x ", "*x", "\n", "  ", ",", "'", '"', "#", "!!str ", "|\n"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=12), st.integers(1, 5000))
def test_generated_nesting_never_raises(tmp_path_factory: pytest.TempPathFactory, pieces: list[str],
                                        times: int) -> None:
    """Any repetition of YAML structure characters loads or comes back as problems: never an exception."""
    file = tmp_path_factory.mktemp("gen") / "spec.yaml"
    file.write_text("".join(pieces) * times)
    doc, problems = load_document(file, "spec.yaml")
    assert doc is not None or problems
    assert all(p.path == "spec.yaml" and p.line >= 1 for p in problems)


# Values the guard's patterns once backtracked on (quadratic or worse): `a.a.a…` took 112 s at 200 KB.
_UNITS = ["a.", "eyJ-", "-----BEGIN CERTIFICATE-----", " ", "\t", "a://", "a:", "k=", "x ", "ghp_", "AKIA",
          "ssh-rsa ", "'a': 'b', ", "--a=b ", "aA1", "$(", "{a", "1.", "_", "@"]


@settings(max_examples=15, deadline=None)
@given(st.lists(st.sampled_from(_UNITS), min_size=1, max_size=3))
def test_secret_guard_is_linear(units: list[str]) -> None:
    unit = "".join(units)
    value = (unit * (50_000 // len(unit) + 1))[:50_000]
    started = time.monotonic()
    secretguard.check("api_key", value)
    secretguard.check(None, value, secret_name=True)
    list(secretguard.check_text(f'KEY = "{value}"\n{value}'))
    list(secretguard.check_args(["--token", value]))
    assert time.monotonic() - started < 2.0, f"{unit!r}: {time.monotonic() - started:.1f} s"


def test_secret_guard_still_finds_what_it_found() -> None:
    """The linear patterns keep their findings (JWT after a dash, URI password, PEM blocks removed)."""
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig"
    assert secretguard.scan(f"x-{jwt}") == secretguard.Hit("shape", "a JSON Web Token")
    assert secretguard.scan("eyJ-" * 20 + ".eyJabcdefghij") is not None  # one run up to the dot, as before
    assert secretguard.scan("eyJ-" * 20 + ".x eyJabcdefghij") is None
    assert secretguard.scan("redis://cache:S3cr3tPassw0rd@10.0.0.3:6379") is not None
    assert secretguard.scan("postgres://u:$(DB_PASSWORD)@db") is None
    cert = "-----BEGIN CERTIFICATE-----\nMIIB3kLmQ9zX7pR2tY8wV4nH6jK1sD5fG0aZ\n-----END CERTIFICATE-----"
    assert secretguard.scan(cert) is None
    assert secretguard.scan(cert + " " + SECRET) is not None
    assert list(secretguard.file_pairs('  PASSWORD = "hunter2hunter2"  ;  ')) == [(1, "PASSWORD", "hunter2hunter2")]


@pytest.mark.parametrize(("content", "expected"), [
    (b"# caf\xe9\n{{ spec.name }}\n", "env.j2:1:6: byte 0xe9 is not UTF-8 text (save the template as UTF-8)"),
    (b"{{ spec.name \n", "(a template bug: fix the Jinja syntax)"),
])
def test_a_broken_template_is_one_line_naming_it(repo: Path, content: bytes, expected: str) -> None:
    """A template is the developers' input, but a broken one is still one line naming it, exit 2 (not the
    internal-error exit 3), and nothing written."""
    template = repo / "compiler" / "templates" / "pprogress" / "env.j2"
    template.write_bytes(content)
    before = digest(repo, "overlays", "environments")
    line = one_error(run(repo, "build"), "compiler/templates/pprogress/env.j2")
    assert expected in line
    assert digest(repo, "overlays", "environments") == before


# --------------------------------------------------------------------------- values YAML reads into non-JSON types

DASH_CONFIG = "config: {cell_type_table: aibs_metamodel_celltypes_v661, valence_map: {E: excitatory, I: inhibitory}}"


def _edited(repo: Path, old: str, new: str) -> int:
    """Replace `old` by `new` in the spec; the 1-based line of the edit."""
    text = (repo / SPEC).read_text()
    assert text.count(old) == 1
    _spec(repo, text.replace(old, new))
    return text[: text.index(old)].count("\n") + 1


@pytest.mark.parametrize(("value", "col", "what"), [
    ("{d: 2024-01-01}", 23, 'got a date (datetime.date(2024, 1, 1)) (quote it: "2024-01-01"'),
    ("{b: !!binary aGVsbG8=}", 23, "got a bytes (b'hello') (write a plain string, number, boolean, list or mapping"),
    ("{s: !!set {a, b}}", 23, "got a set"),
    ("{f: [1, .nan]}", 27, "config.f[1]: nan is not a finite number (write a finite number"),
    ("{f: 1e400}", 23, "config.f: inf is not a finite number"),
])
def test_dash_config_takes_json_like_values_only(repo: Path, value: str, col: int, what: str) -> None:
    """A date, bytes, set or non-finite float in a dash config used to reach escape.pyrepr: an internal error."""
    line_no = _edited(repo, DASH_CONFIG, f"config: {value}")
    line = one_error(run(repo, "check"), f"{SPEC}:{line_no}:{col}: services.dash.apps.minnie65_public.cell_types.")
    assert what in line
    assert line.endswith(")")


def test_pychunkedgraph_config_takes_finite_numbers_only(repo: Path) -> None:
    line_no = _edited(repo, "    graph_ids: [minnie3_v1]\n", "    graph_ids: [minnie3_v1]\n    config: {X: -.inf}\n")
    line = one_error(run(repo, "check"), f"{SPEC}:{line_no + 1}:17: services.pychunkedgraph.config.X:")
    assert "-inf is not a finite number (write a finite number" in line


@pytest.mark.parametrize("email", ["ops\x1b[31m@cave-demo.org", "$(id)@cave-demo.org", "{{ x }}@cave-demo.org",
                                   "<!--@cave-demo.org", "a\"b@cave-demo.org"])
def test_tls_email_is_an_email_address(email: str) -> None:
    from pydantic import ValidationError

    from compiler.spec.model import ArgoCd, Tls
    with pytest.raises(ValidationError, match="is not an e-mail address"):
        Tls(email=email)
    assert Tls(email="cave-ops@cave-demo.org").email == "cave-ops@cave-demo.org"
    with pytest.raises(ValidationError, match="holds the control character '\\\\x1b'"):
        ArgoCd(server="https://kube.example.org/\x1b[2J")
    with pytest.raises(ValidationError, match="holds the control character '\\\\x07'"):
        ArgoCd(server="https://kube\x07.example.org")


def test_a_long_value_is_not_echoed_whole(repo: Path) -> None:
    old = "description: MICrONS minnie65 EM imagery, 4x4x40 nm"
    line_no = _edited(repo, old, "description: " + "a." * 100_000)
    line = one_error(run(repo, "check"), f"{SPEC}:{line_no}:")
    assert "String should have at most 500 characters (got 'a.a.a." in line
    assert len(line) < 300, line


def test_a_long_value_in_a_validator_message_is_cut(repo: Path) -> None:
    old = "description: MICrONS minnie65 EM imagery, 4x4x40 nm"
    line_no = _edited(repo, old, 'description: "' + "b" * 400 + '\\x07"')
    line = one_error(run(repo, "check"), f"{SPEC}:{line_no}:")
    assert f"'{'b' * 78}… holds the control character '\\x07'" in line, line


def test_flat_long_lists_stay_fast_and_are_counted_without_aliases(repo: Path) -> None:
    """~950 KB of flat lists (over 1,000 brackets, no nesting, no alias) used to go to the pure-Python composer
    (19 s, 366 MB) and blame aliases it does not have."""
    text = "kind: local\n" + "".join(f"k{i}: [{', '.join(['1'] * 50)}]\n" for i in range(6000))
    _spec(repo, text)
    started = time.monotonic()
    line = one_error(run(repo, "check"), f"{SPEC}:1925:8: has more than 100000 values")
    assert time.monotonic() - started < 10
    assert "alias" not in line


def test_flat_lists_under_the_limit_load_on_the_c_composer() -> None:
    from compiler.spec import yamlio
    text = "kind: local\n" + "".join(f"k{i}: [{', '.join(['1'] * 5)}]\n" for i in range(2000))
    assert yamlio._nesting_bound(text) > yamlio._C_SAFE_DEPTH
    assert yamlio._too_deep_for_c(text, "x") is False
    deep = "x: " + '[ "]", ' * 1500 + "1" + "]" * 1500  # closers inside strings do not hide the depth
    assert yamlio._too_deep_for_c(deep, "x") is True


@pytest.mark.parametrize(("added", "col", "key"), [
    ("? [a, b]\n: 1\n", 3, "unknown key \"('a', 'b')\""),
    ("~: 1\n", 1, "unknown key 'None'"),
])
def test_complex_and_null_keys_are_reported_where_they_are(repo: Path, added: str, col: int, key: str) -> None:
    text = (repo / SPEC).read_text()
    _spec(repo, text + added)
    line = one_error(run(repo, "check"), f"{SPEC}:{text.count(chr(10)) + 1}:{col}: {key}")
    assert line.endswith(")")


def test_unreadable_rendered_output_is_one_line() -> None:
    from compiler.errors import UserError
    from compiler.render.manifests import parse_objects
    with pytest.raises(UserError) as raised:
        parse_objects("a: " + "[" * 2000 + "]" * 2000, "overlays/minnie")
    (problem,) = raised.value.problems
    assert str(problem) == ("overlays/minnie: rendered output is not YAML: exceeded maximum nesting depth at line 1, "
                            "column 1003 of the output (check the overlay)")
