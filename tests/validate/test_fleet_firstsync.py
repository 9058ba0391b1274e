"""Fleet rule `first-sync`: the model of Argo CD's first sync, on the fleet as reviewed, now, and small cases."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from compiler import catalog
from compiler.validate.fleet import Fleet, get
from compiler.validate.fleet.firstsync import (
    IGNORE_HEALTH,
    MADE_WITH,
    RULE,
    bring_up,
    generated_secrets,
    operator_secrets,
    simulate,
)
from tests.validate.fleet_support import before_fleet, current_fleet, findings

WAVE = "argocd.argoproj.io/sync-wave"


@pytest.fixture(scope="module")
def before(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    return before_fleet(tmp_path_factory.mktemp("firstsync-before"))


@pytest.fixture(scope="module")
def now(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    return current_fleet(tmp_path_factory.mktemp("firstsync-now"))


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
