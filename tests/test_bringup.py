"""The example fleet from nothing to synced: bootstrap --apply of every cluster against the Google fakes
(global first), Argo CD's first sync modelled with exactly the secrets that then exist, the operator steps the
runbook names (performed here: adding the secret versions), and the first sync again."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from compiler.main import main
from compiler.validate.fleet import Fleet, load_fleet
from compiler.validate.fleet.argosync import generated_secrets, operator_secrets, simulate
from compiler.validate.fleet.rules import check_fleet
from tests.support import REPO
from tests.support.bootstrap import Cloud, run

ORDER = ("global", "minnie", "fanc")  # the global cluster first: the locals' DNS records go into its zone


def stored(fakes: Cloud) -> frozenset[str]:
    """Secret Manager secrets that have an enabled version in the fake, by name."""
    sm = fakes.fakes["secretmanager"]
    return frozenset(name for (_, name), versions in sm.versions.items()
                     if any(v["state"] == "ENABLED" for v in versions))


def runbook_secret_steps(capsys: pytest.CaptureFixture[str], cluster: str) -> list[tuple[str, str]]:
    """(secret, project) of every `gcloud secrets versions add` command the cluster's runbook prints."""
    assert main(["-C", str(REPO), "runbook", cluster, "--format", "json"]) == 0
    text = json.dumps(json.loads(capsys.readouterr().out))
    return sorted(set(re.findall(r"gcloud secrets versions add ([\w-]+) --project[= ]([\w-]+)", text)))


def test_example_fleet_comes_up(
        cloud: Cloud, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for cluster in ORDER:
        code, out, _ = run(capsys, root, cluster, "--apply")
        assert code in (0, 1), out  # 1: values only the operator has are still missing
    fleet: Fleet = load_fleet(REPO)
    world = stored(cloud)
    assert world == generated_secrets(fleet), "bootstrap stores exactly the values it may generate"

    first = simulate(fleet, world)
    assert first.root.synced and all(a.reached and a.synced and a.healthy for a in first.apps.values()), [
        a.why() for a in first.apps.values() if not a.synced]
    waiting = first.not_ok()
    assert waiting, "something waits for the operator"
    assert all(o.waits and o.waits <= operator_secrets(fleet) for o in waiting), [
        (o.cluster, o.label, o.reason) for o in waiting if not o.waits]

    steps = [step for cluster in ORDER for step in runbook_secret_steps(capsys, cluster)]
    assert {name for name, _ in steps} == operator_secrets(fleet), "the runbooks name every operator secret"
    for name, project in steps:
        cloud.fakes["secretmanager"].add_version(project, name, b"operator-provided")
    second = simulate(fleet, stored(cloud))
    assert second.everything_healthy, [(o.cluster, o.label, o.reason) for o in second.not_ok()]
    assert [f for f in check_fleet(fleet, ["schedulable", "metric-source"])] == []


def test_a_local_waits_while_its_global_is_not_healthy() -> None:
    fleet = load_fleet(REPO)
    world = generated_secrets(fleet) | operator_secrets(fleet)
    broken = frozenset(n for n in world if not n.startswith("global-postgres"))  # the global database password
    result = simulate(fleet, broken)
    glob = result.app_of("global")
    assert glob is not None and not (glob.synced and glob.healthy)
    for cluster in ("minnie", "fanc"):
        app = result.app_of(cluster)
        assert app is not None and not app.reached, app.why()  # waits for the root's next wave: not failed
        assert app.operation == "not started"
    assert result.root.operation != "Succeeded"
