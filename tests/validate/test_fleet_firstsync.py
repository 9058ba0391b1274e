"""Fleet rule `first-sync`: the model of Argo CD's first sync, on the fleet as reviewed, now, and small cases."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from compiler import catalog
from compiler.build import compile as build_compile
from compiler.build.argocd import ADDONS
from compiler.render.manifests import get
from compiler.spec.derive import secret_keys, secret_manager_name
from compiler.validate.engine import Specs, validate_selected
from compiler.validate.fleet import Fleet, argosync, firstsync
from compiler.validate.fleet.argosync import (
    IGNORE_HEALTH,
    MADE_WITH,
    WAVE,
    ObjectResult,
    PlanSecret,
    generated_secrets,
    operator_secrets,
    plan_secrets,
    simulate,
)
from compiler.validate.fleet.firstsync import RULE, bring_up
from compiler.validate.schemas import Schemas
from tests.support.fleet import REPO, before_fleet, copy_fleet, findings


@pytest.fixture(scope="module")
def before(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    return before_fleet(tmp_path_factory.mktemp("firstsync-before"))


# --------------------------------------------------------------------------- the fleet as reviewed


def test_before_global_cave_token_deadlock_with_its_chain(before: Fleet) -> None:
    found = [f for f in findings(before, RULE) if f.cluster == "global" and f.name == "cave-token"]
    assert len(found) == 1
    message = found[0].message
    assert message.startswith("deadlock on the first sync: ExternalSecret/cave-token (wave -2) of cave-global is "
                              "Degraded: Secret Manager global-cave-token has no version")
    # the chain: the token is made with auth, auth is in wave 0, the sync fails at wave -2 on the token itself
    assert "can only be made once Deployment/auth of global runs, and Deployment/auth (wave 0) of cave-global is " \
           "not applied: the sync of cave-global fails at wave -2 on ExternalSecret/cave-token" in message


def test_before_minnie_slack_token_gates_every_workload(before: Fleet) -> None:
    found = [f for f in findings(before, RULE) if f.cluster == "minnie" and f.name == "cave-secrets"]
    assert len(found) == 1
    message = found[0].message
    assert "an operator step blocks other objects: the sync of cave-minnie fails at wave -2" in message
    assert "minnie-slack-api-token" in message
    assert "10 workloads need the Secret it makes" in message


def test_before_simulation_stops_the_app_of_apps(before: Fleet) -> None:
    result = simulate(before, generated_secrets(before))
    assert result.root.operation == "Failed" and result.root.stuck.startswith("wave 1")
    assert result.apps["cave-global"].operation == "Failed"
    assert not result.apps["cave-minnie"].reached and not result.apps["cave-fanc"].reached
    up = bring_up(before)
    assert set(up.never) == {"global-cave-token", "minnie-cave-token", "fanc-cave-token",
                             "minnie-pmanagement-token"}
    assert not up.last.everything_healthy


# --------------------------------------------------------------------------- the fleet now


def test_now_no_finding(now: Fleet) -> None:
    assert findings(now, RULE) == []


def test_now_first_sync_with_generated_secrets_only(now: Fleet) -> None:
    operator = operator_secrets(now)
    result = simulate(now, generated_secrets(now))
    assert result.root.synced
    for app in result.apps.values():
        assert app.reached and app.synced, app.why()
        assert app.healthy, (app.name, [c.label for c in app.causes])
    gated = [o for o in result.objects() if not o.ok]
    assert gated, "the operator secrets hold back something"
    for o in gated:
        # only what waits for an operator secret is down, and it counts in no Application's health
        assert o.applied and o.waits and o.waits <= operator, (o.cluster, o.label, o.reason)
        assert not o.counted and o.wave == max(x.wave for x in result.app_of(o.cluster).objects)  # type: ignore
    auth = result.app_of("global").find("Deployment", "auth")  # type: ignore[union-attr]
    assert auth is not None and not auth.ok and auth.waits == {"global-oauth-client"}
    migration = result.app_of("minnie").find("Job", "materialize-db-migration")  # type: ignore[union-attr]
    assert migration is not None and migration.ok


def test_now_everything_healthy_once_the_operator_stored_the_runbook_secrets(now: Fleet) -> None:
    result = simulate(now, generated_secrets(now) | operator_secrets(now))
    assert result.everything_healthy, [(o.cluster, o.label, o.reason) for o in result.not_ok()]
    up = bring_up(now)
    assert up.never == {}
    # the order the operator can go in: OAuth client and Slack token first, the CAVE tokens once auth runs
    assert up.added == [["global-oauth-client", "minnie-slack-api-token"],
                        ["fanc-cave-token", "global-cave-token", "minnie-cave-token", "minnie-pmanagement-token"]]


def test_operator_secrets_come_from_the_plans(now: Fleet) -> None:
    planned = {r.name for c in now.clusters for r in now.plans[c]
               if r.kind == "secret" and r.params.get("value") == "operator"}
    assert operator_secrets(now) == planned
    assert all(catalog.SECRET_SOURCES.get(key) is not None for key in MADE_WITH)


# --------------------------------------------------------------------------- small cases


def _meta(name: str, wave: int | None = None, hook: str | None = None, ignore: bool = False) -> dict[str, Any]:
    annotations: dict[str, str] = {}
    if wave is not None:
        annotations[WAVE] = str(wave)
    if hook is not None:
        annotations["argocd.argoproj.io/hook"] = hook
    if ignore:
        annotations[IGNORE_HEALTH] = "true"
    return {"name": name, "annotations": annotations}


STORE = {"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore",
         "metadata": _meta("gcp-secret-manager", -3), "spec": {}}


def _es(name: str, keys: list[str], wave: int = -2, ignore: bool = False) -> dict[str, Any]:
    return {"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": _meta(name, wave, None, ignore),
            "spec": {"secretStoreRef": {"kind": "ClusterSecretStore", "name": "gcp-secret-manager"},
                     "target": {"name": name},
                     "data": [{"secretKey": k.split("-")[-1], "remoteRef": {"key": k}} for k in keys]}}


def _workload(kind: str, name: str, secret: str, wave: int = 0, hook: str | None = None, key: str | None = None,
              ignore: bool = False) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": "i"}
    pod: dict[str, Any] = {"containers": [container]}
    if key is None:
        pod["volumes"] = [{"name": "s", "secret": {"secretName": secret}}]
    else:
        container["env"] = [{"name": "E", "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}]
    return {"apiVersion": "apps/v1" if kind != "Job" else "batch/v1", "kind": kind,
            "metadata": _meta(name, wave, hook, ignore), "spec": {"template": {"spec": pod}}}


def _with(fleet: Fleet, cluster: str, objects: list[dict[str, Any]]) -> Fleet:
    """The fleet with `cluster`'s overlay replaced by `objects` (the rest as compiled now)."""
    return dataclasses.replace(fleet, objects={**fleet.objects, cluster: objects})


def _run(fleet: Fleet, cluster: str, objects: list[dict[str, Any]]) -> Any:
    edited = _with(fleet, cluster, objects)
    return edited, simulate(edited, generated_secrets(edited)).app_of(cluster)


def test_job_in_wave_minus_1_reading_a_missing_secret_blocks_wave_0(now: Fleet) -> None:
    objects = [STORE, _workload("Job", "migrate", "nothing-makes-it", -1, hook="Sync"),
               _workload("Deployment", "web", "cave-secrets", 0),
               _es("cave-secrets", ["minnie-postgres-password"], -2)]
    edited, app = _run(now, "minnie", objects)
    assert app.operation == "Running" and app.stuck == "wave -1"
    assert [b.name for b in app.blockers] == ["migrate"]
    assert app.find("Job", "migrate").health == "Progressing"
    assert app.find("Deployment", "web").applied is False
    found = [f for f in findings(edited, RULE) if f.cluster == "minnie"]
    assert [f.name for f in found] == ["migrate"]
    assert "never completes" in found[0].message and "no object of minnie makes Secret nothing-makes-it" \
        in found[0].message


def test_a_wave_waiting_for_a_later_wave_is_a_deadlock(now: Fleet) -> None:
    # the ExternalSecret waits in the last wave with its consumers, but the hook at -1 needs its Secret too
    objects = [STORE, _es("token", ["minnie-cave-token"], 0, ignore=True),
               _workload("Job", "migrate", "token", -1, hook="Sync"),
               _workload("Deployment", "web", "token", 0, ignore=True)]
    edited, app = _run(now, "minnie", objects)
    assert app.operation == "Running" and [b.name for b in app.blockers] == ["migrate"]
    found = [f for f in findings(edited, RULE) if f.cluster == "minnie"]
    assert [f.name for f in found] == ["migrate"]
    assert found[0].message.startswith("deadlock on the first sync: the sync of cave-minnie waits at wave -1 for "
                                       "Job/migrate (Sync hook, wave -1), and Secret token")
    assert "is made only by ExternalSecret/token (wave 0)" in found[0].message


def test_optional_secret_does_not_block(now: Fleet) -> None:
    job = _workload("Job", "migrate", "token", -1, hook="Sync")
    job["spec"]["template"]["spec"]["volumes"][0]["secret"]["optional"] = True
    _, app = _run(now, "minnie", [STORE, _es("token", ["minnie-cave-token"], 0, ignore=True), job,
                                   _workload("Deployment", "web", "token", 0, ignore=True)])
    assert app.synced and app.healthy and app.find("Job", "migrate").ok


def test_final_wave_is_not_awaited(now: Fleet) -> None:
    last = [STORE, _es("token", ["minnie-cave-token"], 0)]
    _, app = _run(now, "minnie", last)
    assert app.synced and app.find("ExternalSecret", "token").health == "Degraded"
    assert app.health == "Degraded"  # not awaited by the sync, but counted in the health: ignore-healthcheck
    not_last = [STORE, _es("token", ["minnie-cave-token"], 0),
                {"apiVersion": "v1", "kind": "Service", "metadata": _meta("after", 1), "spec": {}}]
    _, app = _run(now, "minnie", not_last)
    assert app.operation == "Failed" and app.stuck == "wave 0"
    assert not app.find("Service", "after").applied


def test_degraded_fails_progressing_waits(now: Fleet) -> None:
    later = {"apiVersion": "v1", "kind": "Service", "metadata": _meta("after", 1), "spec": {}}
    _, app = _run(now, "minnie", [STORE, _workload("Deployment", "web", "nothing-makes-it", 0), later])
    assert app.operation == "Failed" and app.blockers[0].health == "Degraded"
    assert "no object of minnie makes Secret nothing-makes-it" in app.blockers[0].reason
    _, app = _run(now, "minnie", [STORE, _workload("StatefulSet", "db", "nothing-makes-it", 0), later])
    assert app.operation == "Running" and app.blockers[0].health == "Progressing"
    assert not app.find("Service", "after").applied


def test_missing_key_in_the_secret(now: Fleet) -> None:
    objects = [STORE, _es("cave-secrets", ["minnie-postgres-password"], -2),
               _workload("Deployment", "web", "cave-secrets", 0, key="slack")]
    edited, app = _run(now, "minnie", objects)
    web = app.find("Deployment", "web")
    assert web.health == "Degraded" and "Secret cave-secrets has no key slack" in web.reason
    assert any(f.name == "web" and "never healthy" in f.message for f in findings(edited, RULE))


def test_counted_operator_wait_holds_back_the_app_of_apps(now: Fleet) -> None:
    objects = [STORE, _es("oauth-client", ["global-oauth-client"], 0, ignore=True),
               _workload("Deployment", "auth", "oauth-client", 0)]
    edited = _with(now, "global", objects)
    result = simulate(edited, generated_secrets(edited))
    assert result.apps["cave-global"].synced and result.apps["cave-global"].health == "Degraded"
    assert result.root.operation == "Failed" and not result.apps["cave-minnie"].reached
    found = [f for f in findings(edited, RULE) if f.cluster == "global" and f.name == "auth"]
    assert len(found) == 1 and "the app-of-apps waits for cave-global to be Healthy" in found[0].message
    objects[2] = _workload("Deployment", "auth", "oauth-client", 0, ignore=True)
    edited = _with(now, "global", objects)
    result = simulate(edited, generated_secrets(edited))
    assert result.root.synced and result.apps["cave-minnie"].reached
    assert not [f for f in findings(edited, RULE) if f.cluster == "global"]


def test_compiled_overlays_keep_operator_secrets_out_of_waited_waves(now: Fleet) -> None:
    operator = operator_secrets(now)
    for cluster, objects in now.objects.items():
        last = max(int((get(o, "metadata", "annotations") or {}).get(WAVE, 0)) for o in objects)
        for o in objects:
            if o.get("kind") != "ExternalSecret":
                continue
            keys = {str(get(d, "remoteRef", "key")) for d in get(o, "spec", "data") or []}
            annotations = get(o, "metadata", "annotations") or {}
            if keys & operator:
                assert int(annotations[WAVE]) == last and annotations[IGNORE_HEALTH] == "true", (cluster, o)
                assert annotations["cave.io/waits-for-operator"]
            else:
                assert IGNORE_HEALTH not in annotations, (cluster, o)


def test_rule_is_silent_without_argocd(now: Fleet, tmp_path: Path) -> None:
    assert findings(dataclasses.replace(now, argocd=[]), RULE) == []


def test_runbook_says_what_starts_once_each_operator_secret_is_stored(now: Fleet) -> None:
    from compiler.runbook.steps import Facts, build_runbook

    specs = {c: now.spec(c) for c in now.clusters}
    book = build_runbook(now.root, "minnie", specs, Facts([]))
    [step] = [s for s in book.steps if s.id == "operator-secrets"]
    by_key = {e["key"]: e for e in step.values["secrets"]}
    assert set(by_key) == {"cave_token", "pmanagement_token", "slack_api_token"}
    assert {e["secret"] for e in by_key.values()} == {s for s in operator_secrets(now) if s.startswith("minnie-")}
    assert by_key["slack_api_token"]["external_secrets"] == ["cavecanary-config"]
    assert by_key["slack_api_token"]["workloads"] == ["deployment/cavecanary"]
    assert "deployment/materialize" in by_key["cave_token"]["workloads"]
    assert any("argocd app sync cave-minnie" in item for item in step.items)
    assert any("kubectl rollout restart" in item for item in step.items)


# --------------------------------------------------------------------------- review fixes


def _annotate(obj: dict[str, Any], **annotations: str) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"].setdefault("annotations", {}).update(annotations)
    return out


def test_unapplied_objects_with_a_health_check_count_as_missing(now: Fleet) -> None:
    # the reviewer's repro: global's gated ExternalSecrets in wave -2: the sync fails there, auth and the other
    # workloads are never applied, so cave-global is Missing and the app-of-apps waits at wave 1 forever
    gated = {"cave-token", "oauth-client"}
    objects = [_annotate(o, **{WAVE: "-2"}) if o["kind"] == "ExternalSecret" and o["metadata"]["name"] in gated
               else o for o in now.objects["global"]]
    edited = _with(now, "global", objects)
    result = simulate(edited, generated_secrets(edited))
    app = result.apps["cave-global"]
    assert app.operation == "Failed" and app.stuck == "wave -2"
    auth = app.find("Deployment", "auth")
    assert auth is not None and not auth.applied and auth.counted  # ignore-healthcheck is read from the live object
    assert app.health == "Missing" and auth in app.causes
    assert result.root.operation == "Running" and result.root.stuck.startswith("wave 1 (cave-global is Missing")
    assert not result.apps["cave-minnie"].reached
    unapplied = {o.kind: o.counted for o in app.objects if not o.applied}
    assert unapplied["Deployment"] and unapplied["Service"] and not unapplied["ConfigMap"]


def test_never_applied_is_reported_under_the_applications_cluster(tmp_path: Path) -> None:
    blocked = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: blocked
  annotations: {argocd.argoproj.io/sync-wave: "-1"}
spec:
  selector: {matchLabels: {app: blocked}}
  template:
    metadata: {labels: {app: blocked}}
    spec:
      containers:
      - {name: c, image: "busybox:1.36", envFrom: [{configMapRef: {name: nothing-makes-it}}]}
"""

    def edit(root: Path) -> None:
        (root / "overlays/global/blocked.yaml").write_text(blocked)
        kustomization = root / "overlays/global/kustomization.yaml"
        text = kustomization.read_text()
        kustomization.write_text(text.replace("- secrets.yaml\n", "- secrets.yaml\n- blocked.yaml\n"))

    root = copy_fleet(REPO, tmp_path / "blocked", edit)
    result = validate_selected(root, ["minnie"], Schemas.from_options(None, [], root), Specs(root, strict=False),
                               kubernetes_version="1.31", use_cache=False)
    found = [f for f in result.findings if f.rule == RULE and f.kind == "Application"]
    assert [(f.cluster, f.name) for f in found] == [("minnie", "cave-minnie")]
    assert found[0].message.startswith("never applied on the first sync: the app-of-apps cave-apps failed at wave 1 "
                                     "(cave-global is Degraded), before wave 3 of cave-minnie")


def _auth_needs_a_configmap_nobody_makes(now: Fleet) -> Fleet:
    objects = copy.deepcopy(now.objects["global"])
    [auth] = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "auth"]
    container = auth["spec"]["template"]["spec"]["containers"][0]
    container.setdefault("envFrom", []).append({"configMapRef": {"name": "nothing-makes-it"}})
    return _with(now, "global", objects)


def test_a_token_whose_maker_never_runs_for_another_reason_is_no_deadlock(now: Fleet) -> None:
    edited = _auth_needs_a_configmap_nobody_makes(now)
    up = bring_up(edited)
    assert set(up.never) == {"global-cave-token", "minnie-cave-token", "fanc-cave-token", "minnie-pmanagement-token"}
    found = findings(edited, RULE)
    assert not [f for f in found if "deadlock" in f.message], [str(f) for f in found]
    cannot = [f for f in found if "cannot be made because it can only be made once Deployment/auth of global runs, "
              "and Deployment/auth (wave 0) of cave-global is Degraded: waits for no object of global makes "
              "ConfigMap nothing-makes-it" in f.message]
    assert len(cannot) == 4
    [auth] = [f for f in found if f.cluster == "global" and f.name == "auth"]
    assert "never healthy" in auth.message and "ConfigMap nothing-makes-it" in auth.message


def test_cronjob_is_healthy_once_applied_whatever_its_pods_need(now: Fleet) -> None:
    cron = _workload("Job", "nightly", "nothing-makes-it", 0)
    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": cron["metadata"],
            "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": cron["spec"]}}}
    later = {"apiVersion": "v1", "kind": "Service", "metadata": _meta("after", 1), "spec": {}}
    _, app = _run(now, "minnie", [STORE, cron, later])
    assert app.synced and app.healthy
    assert app.find("CronJob", "nightly").ok and app.find("Service", "after").applied


def test_pod_needs_are_the_config_refs_of_the_validate_rules(now: Fleet) -> None:
    # a volume's items[].key is needed too
    web = _workload("Deployment", "web", "cave-secrets", 0)
    web["spec"]["template"]["spec"]["volumes"][0]["secret"]["items"] = [{"key": "slack", "path": "slack"}]
    _, app = _run(now, "minnie", [STORE, _es("cave-secrets", ["minnie-postgres-password"], -2), web])
    assert app.find("Deployment", "web").health == "Degraded"
    assert "Secret cave-secrets has no key slack" in app.find("Deployment", "web").reason
    # lookups are namespace-aware: a Secret of another namespace does not do
    other = _es("cave-secrets", ["minnie-postgres-password"], -2)
    other["metadata"]["namespace"] = "elsewhere"
    _, app = _run(now, "minnie", [STORE, other, _workload("Deployment", "web", "cave-secrets", 0)])
    assert "no object of minnie makes Secret cave-secrets" in app.find("Deployment", "web").reason
    # the keys of an ExternalSecret are those the validate rules see (templateFrom: not knowable, so not missing)
    es = _es("cave-secrets", ["minnie-postgres-password"], -2)
    es["spec"]["target"]["template"] = {"templateFrom": [{"configMap": {"name": "t", "items": [{"key": "k"}]}}]}
    _, app = _run(now, "minnie", [STORE, es, _workload("Deployment", "web", "cave-secrets", 0, key="slack")])
    assert app.find("Deployment", "web").ok


def test_plan_secrets_come_from_the_specs(now: Fleet) -> None:
    assert [f.name for f in dataclasses.fields(PlanSecret)] == ["cluster", "name", "key", "operator"]
    edited = dataclasses.replace(now)
    edited.__dict__["plans"] = {c: [] for c in now.clusters}  # the plans' notes are not parsed any more
    expected = {secret_manager_name(now.spec(c), k): (c, k, catalog.is_operator_secret(k))
                for c in now.clusters for k in secret_keys(now.spec(c))}
    assert {n: (s.cluster, s.key, s.operator) for n, s in plan_secrets(edited).items()} == expected


def test_constants_come_from_the_build() -> None:
    assert argosync.WAVE is build_compile.WAVE and argosync.IGNORE_HEALTH is build_compile.IGNORE_HEALTH
    assert set(argosync.ADDON_OF_KIND.values()) <= {a.name for a in ADDONS}


def test_the_rule_simulates_each_world_once(now: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"simulate": 0, "plan_secrets": 0}
    simulate_, plan_secrets_ = firstsync.simulate_world, argosync.plan_secrets

    def counted_simulate(*args: Any, **kwargs: Any) -> Any:
        calls["simulate"] += 1
        return simulate_(*args, **kwargs)

    def counted_plan_secrets(*args: Any, **kwargs: Any) -> Any:
        calls["plan_secrets"] += 1
        return plan_secrets_(*args, **kwargs)

    monkeypatch.setattr(firstsync, "simulate_world", counted_simulate)
    monkeypatch.setattr(argosync, "plan_secrets", counted_plan_secrets)
    assert findings(now, RULE) == []
    # the bring-up rounds only: every Application is reached in round 1, so no reach_all replay
    assert calls == {"simulate": 3, "plan_secrets": 1}
    r = ObjectResult("c", "a", {"kind": "Job", "metadata": {"name": "n", "namespace": "ns"}}, 0, 0, False)
    assert (r.kind, r.namespace, r.name) == ("Job", "ns", "n") and "kind" in vars(r)


def test_a_need_reports_the_worst_of_its_makers(now: Fleet) -> None:
    # Secret tok: an ExternalSecret of wave 1 (not applied yet) and a Secret of wave -1 without the key
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": _meta("tok", -1), "data": {"other": ""}}
    later = {"apiVersion": "v1", "kind": "Service", "metadata": _meta("after", 2), "spec": {}}
    objects = [STORE, _es("tok", ["minnie-postgres-password"], 1), secret,
               _workload("Deployment", "web", "tok", 0, key="k"), later]
    _, app = _run(now, "minnie", objects)
    web = app.find("Deployment", "web")
    assert web.health == "Degraded" and "Secret tok has no key k (Secret/tok (wave -1) gives other)" in web.reason


def test_the_root_waits_for_its_last_application_wave_when_other_objects_come_later(now: Fleet) -> None:
    gated = [STORE, _es("token", ["minnie-cave-token"], 0)]  # counted: cave-minnie is Degraded
    edited = _with(now, "minnie", gated)
    assert simulate(edited, generated_secrets(edited)).root.synced  # wave 3 is the root's last: not waited for
    late = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {**_meta("late", 9), "namespace": "argocd"}}
    edited = dataclasses.replace(edited, argocd=[*edited.argocd, late])
    result = simulate(edited, generated_secrets(edited))
    assert result.root.operation == "Failed" and result.root.stuck == "wave 3 (cave-minnie is Degraded)"
