"""Fleet rule `dns-zone` (issue 12 e): one Cloud DNS zone per DNS name across the fleet, and every cluster's
A records, Issuer project and dns.admin grant point at the project holding it; plus the fix (ownership in the
specs, bootstrap plans, runbook) and the build-time check."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from compiler.bootstrap.desired import desired
from compiler.main import main
from compiler.runbook.steps import Facts, build_runbook
from compiler.spec.load import load_environments
from compiler.validate.fleet.dns import _solver_for
from tests.support.fleet import BEFORE, REPO, before_fleet, current_fleet, findings

RULE = "dns-zone"


def _edit(cluster: str, old: str, new: str, part: str = "environments") -> Callable[[Path], None]:
    """An edit of a fleet copy: replace `old` (exactly once) in the cluster's spec or overlay kustomization."""

    def edit(root: Path) -> None:
        path = root / "environments" / f"{cluster}.yaml" if part == "environments" else \
            root / "overlays" / cluster / "kustomization.yaml"
        text = path.read_text()
        assert text.count(old) == 1, (path, old)
        path.write_text(text.replace(old, new))

    return edit


OWNED = "    cave-demo: {cluster: global, project: cave-demo-global}\n"


# --------------------------------------------------------------------------- the rule


def test_before_fleet_reports_the_three_cave_demo_zones(tmp_path: Path) -> None:
    found = findings(before_fleet(tmp_path), RULE)
    assert sorted(f.cluster for f in found) == ["fanc", "global", "minnie"]
    for f in found:
        assert re.fullmatch(rf"environments/{f.cluster}\.yaml:\d+:\d+", f.where), f.where
        assert "cave-demo.org. has 3 managed zones" in f.message
        others = {"fanc", "global", "minnie"} - {f.cluster}
        for other in others:
            assert f"{other} creates zone 'cave-demo' in project cave-demo-{other} (environments/{other}.yaml:" \
                in f.message
        assert "only one can be delegated at the registrar" in f.message
    # the line is the spec's `dns.zones: cave-demo:` entry
    minnie = next(f for f in found if f.cluster == "minnie")
    line = int(minnie.where.split(":")[1])
    assert (BEFORE / "environments" / "minnie.yaml").read_text().splitlines()[line - 1].strip() == \
        "cave-demo: cave-demo.org"
    assert "dns.zone_owners: {cave-demo: {cluster: global, project: cave-demo-global}}" in minnie.message


def test_current_fleet_is_silent(tmp_path: Path) -> None:
    assert findings(current_fleet(tmp_path), RULE) == []


def _minnie_without_owner(project_line: str = "") -> Callable[[Path], None]:
    """minnie's spec without its dns.zone_owners entry (optionally with a `dns.project` line instead)."""

    def edit(root: Path) -> None:
        path = root / "environments" / "minnie.yaml"
        text, n = re.subn(r"  zone_owners:.*\n" + re.escape(OWNED), project_line, path.read_text())
        assert n == 1
        path.write_text(text)

    return edit


def test_a_local_creating_its_own_zone_again_is_reported(tmp_path: Path) -> None:
    found = findings(current_fleet(tmp_path, _minnie_without_owner()), RULE)
    assert sorted(f.cluster for f in found) == ["global", "minnie"]
    assert all("cave-demo.org. has 2 managed zones" in f.message for f in found)


def test_two_specs_creating_the_same_zone_in_the_same_project_is_one_zone(tmp_path: Path) -> None:
    """minnie creating cave-demo in global's project is the same zone (its create is idempotent): no finding."""
    edit = _minnie_without_owner("  project: cave-demo-global\n")
    assert findings(current_fleet(tmp_path, edit), RULE) == []


def test_records_and_grant_in_a_project_without_the_zone(tmp_path: Path) -> None:
    fleet = current_fleet(tmp_path, _edit("minnie", OWNED, OWNED.replace("project: cave-demo-global",
                                                                         "project: cave-demo-minnie")))
    found = findings(fleet, RULE)
    assert len(found) == 2 and {f.cluster for f in found} == {"minnie"}
    assert all(f.where.startswith("environments/minnie.yaml:") for f in found)
    record, grant = sorted(found, key=lambda f: "A record" not in f.message)
    assert "the A record of minnie.cave-demo.org goes into zone 'cave-demo' of project cave-demo-minnie" \
        in record.message and "zone 'cave-demo' of project cave-demo-global" in record.message
    assert "daf-clouddns-minnie@cave-demo-minnie.iam.gserviceaccount.com is not granted roles/dns.admin in " \
           "cave-demo-global" in grant.message


def test_issuer_solving_in_a_project_without_the_zone(tmp_path: Path) -> None:
    edit = _edit("minnie", "            cloudDNS:\n              project: cave-demo-global",
                 "            cloudDNS:\n              project: cave-demo-minnie", part="overlays")
    found = findings(current_fleet(tmp_path, edit), RULE)
    assert len(found) == 1
    [f] = found
    assert (f.cluster, f.kind, f.name, f.path) == ("minnie", "Issuer", "letsencrypt",
                                                   "spec.acme.solvers[0].dns01.cloudDNS.project")
    assert "solves DNS-01 for minnie.cave-demo.org in project cave-demo-minnie, which holds no zone for " \
           "cave-demo.org." in f.message


def test_a_zone_nobody_creates(tmp_path: Path) -> None:
    """global hands cave-demo to minnie, which does not create it either: no zone for cave-demo.org at all."""
    edit = _edit("global", "    legacy-daf: daf-apis.org\n", "    legacy-daf: daf-apis.org\n  zone_owners:\n"
                 "    cave-demo: {cluster: minnie, project: cave-demo-minnie}\n")
    found = findings(current_fleet(tmp_path, edit), RULE)
    assert sorted(f.cluster for f in found) == ["fanc", "global", "minnie"]
    assert all("no cluster creates a zone for cave-demo.org." in f.message for f in found)


def test_solver_selection_follows_cert_manager() -> None:
    plain = {"dns01": {"cloudDNS": {"project": "p0"}}}
    by_name = {"selector": {"dnsNames": ["a.example.org"]}, "dns01": {"cloudDNS": {"project": "p1"}}}
    by_zone = {"selector": {"dnsZones": ["example.org"]}, "dns01": {"cloudDNS": {"project": "p2"}}}
    solvers = [plain, by_zone, by_name]
    assert _solver_for(solvers, "a.example.org") == (2, by_name)
    assert _solver_for(solvers, "b.example.org") == (1, by_zone)
    assert _solver_for(solvers, "c.other.org") == (0, plain)
    assert _solver_for([by_name], "c.other.org") is None


# --------------------------------------------------------------------------- the fix


def test_bootstrap_plans_one_managed_zone_for_cave_demo_across_the_fleet() -> None:
    specs = load_environments(REPO)
    made = [(c, r.project) for c in ("global", "minnie", "fanc") for r in desired(specs[c])
            if r.kind == "dns-zone" and r.fields["dns_name"] == "cave-demo.org." and not r.owner]
    assert made == [("global", "cave-demo-global")]
    for local in ("minnie", "fanc"):
        plan = {r.key: r for r in desired(specs[local])}
        zone = plan["dns-zone/cave-demo"]
        assert (zone.owner, zone.project, zone.outputs) == ("global", "cave-demo-global", {})
        record = plan[f"dns-record/{local}.cave-demo.org."]
        assert record.project == "cave-demo-global" and "dns-zone/cave-demo" in record.depends
        member = f"serviceAccount:daf-clouddns-{local}@cave-demo-{local}.iam.gserviceaccount.com"
        assert f"project-iam-binding/cave-demo-global:roles/dns.admin:{member}" in plan
    fanc = {r.key: r for r in desired(specs["fanc"])}
    assert fanc["dns-zone/fanc-legacy"].owner == "" and fanc["dns-zone/fanc-legacy"].project == "cave-demo-fanc"
    member = "serviceAccount:daf-clouddns-fanc@cave-demo-fanc.iam.gserviceaccount.com"
    assert f"project-iam-binding/cave-demo-fanc:roles/dns.admin:{member}" in fanc  # its own zone fanc-cave.org
    minnie = [r.key for r in desired(specs["minnie"]) if r.kind == "project-iam-binding"
              and r.fields["role"] == "roles/dns.admin"]
    assert minnie == ["project-iam-binding/cave-demo-global:roles/dns.admin:serviceAccount:"
                      "daf-clouddns-minnie@cave-demo-minnie.iam.gserviceaccount.com"]


def test_runbook_of_a_local_does_not_ask_to_delegate() -> None:
    specs = load_environments(REPO)
    for local in ("minnie", "fanc"):
        book = build_runbook(REPO, local, specs, Facts([]))
        step = next(s for s in book.steps if s.id == "dns-registrar")
        text = "\n".join(step.items)
        assert "at the registrar of cave-demo.org" not in text
        assert step.values["zones_elsewhere"]["cave-demo"] == {
            "dns_name": "cave-demo.org", "owner": "global", "project": "cave-demo-global", "exists": None}
        assert f"{local}.cave-demo.org → the static IP daf-{local} (A record in zone cave-demo of project " \
               "cave-demo-global" in text
        assert "python -m compiler runbook global" in text
    fanc = next(s for s in build_runbook(REPO, "fanc", specs, Facts([])).steps if s.id == "dns-registrar")
    assert list(fanc.values["zones"]) == ["fanc-legacy"]  # fanc still delegates its own fanc-cave.org
    glob = next(s for s in build_runbook(REPO, "global", specs, Facts([])).steps if s.id == "dns-registrar")
    assert any(i.startswith("at the registrar of cave-demo.org: set the name servers") for i in glob.items)


# --------------------------------------------------------------------------- the build-time check


def _repo(tmp_path: Path, source: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(source / "environments", root / "environments")
    shutil.copy2(source / "gitops.yaml", root / "gitops.yaml")
    shutil.copytree(REPO / "base", root / "base")
    return root


def test_build_refuses_two_zones_for_one_dns_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _repo(tmp_path, BEFORE)
    code = main(["--root", str(root), "build"])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if "for cave-demo.org would be created" in line]
    assert len(lines) == 3, err
    minnie = next(line for line in lines if line.startswith("environments/minnie.yaml:"))
    assert re.match(r"environments/minnie\.yaml:\d+:\d+: zone 'cave-demo' for cave-demo\.org would be created in "
                    r"project cave-demo-minnie", minnie)
    assert re.search(r"environments/global\.yaml:\d+:\d+ creates zone 'cave-demo' in project cave-demo-global", minnie)
    assert re.search(r"environments/fanc\.yaml:\d+:\d+ creates zone 'cave-demo' in project cave-demo-fanc", minnie)
    assert not (root / "overlays").exists(), "build wrote something"


def test_build_refuses_a_zone_owner_in_another_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _repo(tmp_path, REPO)
    _edit("minnie", OWNED, OWNED.replace("cave-demo-global", "cave-demo-minnie"))(root)
    code = main(["--root", str(root), "build"])
    err = capsys.readouterr().err
    assert code == 2
    assert re.search(r"^environments/minnie\.yaml:\d+:\d+: cluster 'global' creates zone 'cave-demo' in project "
                     r"cave-demo-global \(environments/global\.yaml:\d+:\d+\), not cave-demo-minnie "
                     r"\(set project: cave-demo-global\)$", err, re.M), err
    assert not (root / "overlays").exists()


def test_zone_owners_must_name_a_declared_zone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _repo(tmp_path, REPO)
    _edit("minnie", OWNED, OWNED.replace("    cave-demo:", "    cave-dmeo:"))(root)
    assert main(["--root", str(root), "build"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"^environments/minnie\.yaml:\d+:\d+: zone 'cave-dmeo' of dns\.zone_owners is not declared in "
                     r"dns\.zones", err, re.M), err
