"""Bad input: every problem reported as file:line:col with a helpful message, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.specs import build_errors, edit, line_of

# (cluster, old text, new text, anchor of the reported line, column, message)
CASES = [
    ("minnie", "  zone: us-central1-a\n", "  zone: [us-central1-a\n", "data:", 5,
     "YAML syntax error"),
    ("minnie", "  pprogress:\n", "  guidebook:\n    version: 1.0.0\n  pprogress:\n", "guidebook:#2", 3,
     "duplicate key 'guidebook' (first defined on line"),
    ("minnie", "global_server: global", "globl_server: global", "globl_server", 1,
     "unknown key 'globl_server' (did you mean 'global_server'?)"),
    ("minnie", "    replicas: {min: 1, max: 5}\n", "    replica: {min: 1, max: 5}\n", "replica: {min: 1, max: 5}", 5,
     "unknown key 'replica' (did you mean 'replicas'?)"),
    ("minnie", "replicas: {min: 1, max: 5}", "replicas: {min: one, max: 5}", "min: one", 21,
     "services.annotationengine.replicas.min: expected an integer, got a string ('one')"),
    ("minnie", "min_databases: 3", "min_databases: 0", "min_databases: 0", 20,
     "services.materializationengine.min_databases: Input should be greater than or equal to 1"),
    ("minnie", "replicas: {min: 1, max: 5}", "replicas: {min: 6, max: 5}", "min: 6", 21,
     "min replicas 6 is greater than max 5 (lower min or raise max)"),
    ("minnie", "    datastack: minnie65_public\n", "    datastack: minnie65_publik\n", "minnie65_publik", 16,
     "datastack 'minnie65_publik' is not among this cluster's datastacks (did you mean 'minnie65_public'?)"),
    ("minnie", "    health_aligned_volume: minnie65\n", "", "  materializationengine:", 3,
     "health_aligned_volume is required when materialization runs"),
    ("minnie", "    version: 4.23.0\n    replicas: {min: 1, max: 4}",
     "    version: 4.7.2\n    replicas: {min: 1, max: 4}", "merge_databases: false", 22,
     "merge_databases: false needs materializationengine >= 4.8, this cluster runs 4.7.2"),
    ("minnie", "global_server: global.cave-demo.org", "global_server: globel.cave-demo.org", "global_server", 16,
     "global_server 'globel.cave-demo.org' is not a hostname of any global cluster spec (did you mean "
     "'global.cave-demo.org'?)"),
    ("fanc", "    - hostname: api.fanc-cave.org\n      zone: fanc-legacy",
     "    - hostname: minnie.cave-demo.org\n      zone: cave-demo", "hostname: minnie.cave-demo.org", 17,
     "hostname 'minnie.cave-demo.org' is also used by cluster 'minnie'"),
    ("minnie", "global_server: global.cave-demo.org", "global_server: https://global.cave-demo.org",
     "global_server", 16, "is not valid: expected a bare lowercase host name like cave.example.org (no scheme, no "
     "path); drop the scheme prefix"),
    ("minnie", "bucket: cave-demo-skeletons/minnie", "bucket: gs://cave-demo-skeletons/minnie",
     "gs://cave-demo-skeletons", 13, "expected a bucket name without gs://"),
    ("minnie", 'kubernetes_version: "1.31"', 'kubernetes_version: "1.25"', "kubernetes_version", 21,
     "kubernetes_version: Kubernetes 1.25 is not supported (use 1.30 to 1.37)"),
    ("minnie", "kind: local", "kind: locale", "kind: locale", 7, "kind must be 'global' or 'local', not 'locale'"),
    ("global", "  auth_info:\n", "  annotationengine:\n    version: 4.14.1\n  auth_info:\n", "annotationengine:", 3,
     "service 'annotationengine' runs on local clusters, not on a global cluster"),
    ("minnie", "      celery-producer: {replicas", "      celery-produce: {replicas", "celery-produce:", 7,
     "materializationengine has no workload 'celery-produce' (did you mean 'celery-producer'?)"),
    ("minnie", "celery-beat-scheduler: {replicas: 1}", "celery-beat-scheduler: {replicas: {min: 1, max: 2}}",
     "celery-beat-scheduler", 41, "celery-beat-scheduler runs a fixed number of pods: give a single number"),
    ("minnie", "remeshworker: {replicas: {min: 1, max: 10}}", "remeshworker: {replicas: 4}", "remeshworker:", 32,
     "remeshworker is autoscaled: give `{min: N, max: M}`, not a single number"),
    ("fanc", "  - {name: mesh-pool, machine_type: t2d-standard-4, min_nodes: 0, max_nodes: 40, preemptible: true}\n",
     "", "  - {name: standard-pool", 3,
     "node pool 'mesh-pool' is missing; materializationengine/celery-consumer runs on it"),
    ("minnie", "  zone: us-central1-a", "  zone: us-east1-b", "zone: us-east1-b", 9,
     "zone 'us-east1-b' is not in region 'us-central1'"),
    ("fanc", "    fanc-legacy: fanc-cave.org", "    fanc-legacy: fanc-cave.net", "- hostname: api.fanc-cave.org", 7,
     "hostname 'api.fanc-cave.org' is not inside zone 'fanc-legacy' (fanc-cave.net)"),
    ("fanc", "      zone: fanc-legacy", "      zone: fanc-legasy", "zone: fanc-legasy", 13,
     "DNS zone 'fanc-legasy' is not declared in dns.zones (did you mean 'fanc-legacy'?)"),
    ("fanc", "name: fanc\n", "name: fanc2\n", "name: fanc2", 7,
     "name 'fanc2' differs from the file name fanc.yaml (rename the file or set `name: fanc`)"),
    ("fanc", "task: run_daily_periodic_materialization", "task: run_daily_materialization", "run_daily_materialization",
     45, "'run_daily_materialization' is not allowed (use one of"),
    ("fanc", 'hour: "*/6"', 'hour: "every 6h"', "every 6h", 81,
     "hour: 'every 6h' is not a cron field"),
    ("minnie", "resources: {cpu: 100m, memory: 300Mi}", "resources: {cpu: 100m, memory: 300 MB}", "300 MB", 36,
     "expected a Kubernetes quantity like 500m, 2 or 512Mi"),
    ("minnie", "postgres_password: minnie-postgres-password", "postgres_password: 'hunter2!pass word'", "hunter2", 22,
     "expected a Secret Manager secret name (letters, digits, '-', '_'), never a secret value"),
    ("minnie", "  project: cave-demo-minnie\n", "", "  region: us-central1", 3,
     "missing required key 'project' (add it under gcp)"),
    ("minnie", "max_databases: 7", "max_databases: 2", "min_databases: 3", 20,
     "min_databases 3 is greater than max_databases 2"),
    ("global", "version: 2.24.0\n    replicas: 2", "version: v 2.24\n    replicas: 2", "version: v 2.24", 14,
     "expected an image version like 4.23.0"),
    ("fanc", "  - {name: mesh-pool, machine_type: t2d-standard-4, min_nodes: 0, max_nodes: 40",
     "  - {name: mesh-pool, machine_type: t2d-standard-4, min_nodes: 50, max_nodes: 40", "name: mesh-pool", 64,
     "min_nodes 50 is greater than max_nodes 40"),
    # the secret guard (tests/spec/test_secretguard.py has one case per detection class)
    ("minnie", "slack_channel: cave-alerts", "slack_channel: xoxb-123456789012-abcdefABCDEF", "slack_channel", 20,
     "services.cavecanary.slack_channel looks like a secret value: a Slack token (30 characters, not shown) (specs "
     "hold no secret values: store it in Google Secret Manager (`gcloud secrets create NAME --data-file=-`"),
    ("minnie", "postgres_password: minnie-postgres-password", "postgres_password: q8Zr2LmX9vKp4TnW7yBc1HdF",
     "postgres_password", 22, "secrets.postgres_password holds what looks like a secret value, not a Secret Manager "
     "secret name"),
    ("fanc", "celery_host: 10.93.0.4", "celery_host: 'redis://cave:pw-4-redis@10.93.0.4'", "celery_host", 16,
     "redis.celery_host looks like a secret value: a URI with an embedded password"),
    ("minnie", "valence_map: {E: excitatory, I: inhibitory}", "api_key: s3cret-but-short", "api_key", 77,
     "services.dash.apps.minnie65_public.cell_types.config.api_key looks like a secret value: a literal value under "
     "a secret-like name"),
]


@pytest.mark.parametrize("cluster,old,new,anchor,col,message", CASES, ids=[c[5][:40] for c in CASES])
def test_bad_input(repo: Path, capsys: pytest.CaptureFixture[str], cluster: str, old: str, new: str,
                   anchor: str, col: int, message: str) -> None:
    text = edit(repo, cluster, old, new)
    errors = build_errors(repo, capsys)
    prefix = f"environments/{cluster}.yaml:{line_of(text, anchor)}:"
    hits = [e for e in errors if e.startswith(prefix) and message in e]
    assert hits, f"expected {prefix}<col>: ...{message}... in:\n" + "\n".join(errors)
    if col:
        assert hits[0].startswith(f"{prefix}{col}: "), hits[0]


def test_all_problems_reported_at_once(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(repo, "minnie", "min_databases: 3", "min_databases: 0")
    edit(repo, "fanc", "name: fanc\n", "name: fanc2\n")
    edit(repo, "global", "  zone: us-east1-b", "  zone: us-west1-b")
    errors = build_errors(repo, capsys)
    assert {e.split(":")[0] for e in errors} == {
        "environments/minnie.yaml", "environments/fanc.yaml", "environments/global.yaml"}


def test_secret_values_are_never_printed(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(repo, "minnie", "valence_map: {E: excitatory, I: inhibitory}", "api_key: s3cret-but-short")
    edit(repo, "fanc", "celery_host: 10.93.0.4", "celery_host: 'redis://cave:pw-4-redis@10.93.0.4'")
    errors = "\n".join(build_errors(repo, capsys))
    assert errors.count("looks like a secret value") == 2
    assert "s3cret-but-short" not in errors and "pw-4-redis" not in errors


def test_case_count() -> None:
    assert len(CASES) >= 25
