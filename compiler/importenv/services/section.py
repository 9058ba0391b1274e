"""The services section, driven by the catalogue: each service of the cluster's kind that CAVEdeployment's env
file configured (`old_env` on its catalogue entry) is switched on or off, given its version and the replicas
of each workload, then its own settings (compiler/importenv/services/__init__.py BUILDERS)."""

from __future__ import annotations

from compiler import catalog
from compiler.importenv import values as envvalues
from compiler.importenv.envfile import Var
from compiler.importenv.mapping import Mapper, Skip
from compiler.importenv.services import BUILDERS
from compiler.importenv.specdoc import Block, Commented, Entry, Flow, plain

AUTH_INFO_NGINX = "1.27.3"
# A service that reads another's settings (rules.segmentation): when it runs, the other one is written too
# (disabled when it is off).
READS_SETTINGS_OF = {"meshing": "pychunkedgraph", "l2cache": "pychunkedgraph"}


def services(m: Mapper, top: Block) -> None:
    """services: every catalogued service the env file configures, in catalogue order, then auth_info."""
    block = Block()
    top.add("services", block)
    if m.kind == "local":
        # settings several local services share
        m.graph_ids = m.convert("PCG_GRAPH_IDS", "services.pychunkedgraph.graph_ids", envvalues.name_list) or []
        m.mat_stacks = m.convert("MAT_DATASTACKS", "services.materializationengine.datastacks",
                                 envvalues.name_list) or []
    configured = [(s, s.old_env) for s in catalog.SERVICES if m.kind in s.kinds and s.old_env is not None]
    states = {s.name: _state(m, s.name, old.switches) if old.switches else (True, None) for s, old in configured}
    for reader, read in READS_SETTINGS_OF.items():
        if reader in states and read in states and states[reader][0] and not states[read][0]:
            states[read] = (False, states[read][1])
    for svc, old in configured:
        on, switch = states[svc.name]
        if on is not None:
            service(m, block, svc.name, old, on, switch)
    _auth_info(m, block)
    if m.kind == "local":
        _datastacks_used(m, top)


def _state(m: Mapper, service: str, names: tuple[str, ...]) -> tuple[bool | None, Var | None]:
    """Whether any of the service's switches is > 0 (None: the file sets none of them), and the variable
    that says so."""
    found = [(n, v) for n in names if (v := m.var(n)) is not None]
    if not found:
        return None, None
    for n, _ in found:
        m.number(n, f"services.{service}.enabled")
    on = any(m.peek(n) > 0 for n, _ in found)
    return on, next((v for n, v in found if m.peek(n) > 0), found[0][1])


def _replicas(m: Mapper, service: str, workload: str, min_name: str | None, max_name: str) -> Entry | None:
    """`{min, max}` (autoscaled workloads) or a number (fixed ones), as the catalogue says."""
    main = catalog.BY_NAME[service].main.name == workload
    to = f"services.{service}" + ("" if main else f".workloads.{workload}") + ".replicas"
    high = m.number(max_name, to)
    low = m.number(min_name, to) if min_name else None
    if high is None and low is None:
        return None
    scaling = catalog.BY_NAME[service].workload(workload)
    assert scaling is not None
    if scaling.scaling == "fixed":
        entry = Entry("replicas", high if high is not None else low, m.origin(m.var(max_name)))
        if entry.value == 0 and workload == "celery-beat-scheduler":
            entry.comment = "materialization paused (CELERY_BEAT_REPLICAS=0, e.g. during a move to a new cluster)"
        return entry
    low = 1 if low is None else low
    high = max(low, 1) if high is None else high
    at = m.var(min_name) if min_name and low > high else m.var(max_name)
    entry = Entry("replicas", Flow({"min": max(low, 1), "max": high}), m.origin(at))
    if low < 1 <= high:
        entry.comment = f"{min_name}={low}: an HPA needs min >= 1 (0 needs a Kubernetes feature gate)"
    if high < 1:
        entry.value = Flow({"min": 1, "max": 1})
        m.decision(entry, f"{max_name}=0 turned {workload} off in CAVEdeployment; the spec runs every "
                          f"workload of an enabled {service}: keep 1 pod or disable {service}.")
    return entry


def service(m: Mapper, services: Block, name: str, old: catalog.OldEnv, enabled: bool, switch: Var | None) -> None:
    """One services.<name> entry: enabled, version, replicas, then the service's own settings."""
    block = Block()
    entry = Entry(name, block, m.origin(switch))
    m.current = entry
    if not enabled:
        block.add("enabled", False, comment=f"{switch.name}=0 in the env file" if switch else "")
    version = m.text(old.version, f"services.{name}.version")
    skip: Skip | None = None
    if version:
        block.add("version", version, m.origin(m.var(old.version)))
    elif old.version_optional:
        skip = Skip(f"{old.version} is not set", soft=True,
                    todo=f"{old.version} was never declared in CAVEdeployment (4.5), so {name} ran an "
                         f"unpullable image tagged `v`; add services.{name} with its version to run it.")
    else:
        skip = Skip(f"{old.version} is not set")
    workloads = Block()
    for pair in old.replicas:
        if not enabled:
            for n in (pair.min, pair.max):
                if n and m.var(n) is not None:
                    m.used.setdefault(n, f"services.{name} (enabled: false)")
            continue
        got = _replicas(m, name, pair.workload, pair.min, pair.max)
        if got is None:
            continue
        if pair.workload == catalog.BY_NAME[name].main.name:
            block.entries.append(got)
        else:
            workloads.add(pair.workload, Block([got]))
    builder = BUILDERS.get(name)
    problems = len(m.problems)
    if skip is None and builder is not None:
        skip = builder(m, block, workloads, enabled)
    if skip is not None:
        why = f"{skip.reason} ({switch.name}={switch.text()})" if enabled and switch else skip.reason
        if len(m.problems) > problems:
            return  # the value is there but wrong: that problem says what to fix
        if enabled and not skip.soft:
            m.fail(switch or m.var(old.version),
                   f"{skip.reason} but {name} runs: set it" if switch else f"{skip.reason}: set it")
            return
        for n in (old.version, *old.switches, *(v for pair in old.replicas for v in (pair.min, pair.max) if v)):
            if n in m.used:
                m.used[n] = f"services.{name} (not imported)"
        services.entries.append(Entry(name, Commented([f"{name}: not imported: {why}."]),
                                      todo=(skip.todo or f"{why}.") if enabled else ""))
        if not enabled:
            m.note("unused", switch, f"services.{name}: not imported (it is off): {why}")
        return
    if workloads.entries:
        flat = Block()
        for w in workloads.entries:
            assert isinstance(w.value, Block)
            first = w.value.entries[0]
            flat.add(w.key, Flow({e.key: plain(e.value) for e in w.value.entries}), first.origin,
                     comment=first.comment, todo=" ".join(e.todo for e in w.value.entries if e.todo))
        block.add("workloads", flat)
    services.entries.append(entry)


def _auth_info(m: Mapper, services: Block) -> None:
    block = Block()
    block.add("version", AUTH_INFO_NGINX, comment="nginx image tag; CAVEdeployment pulled untagged nginx")
    services.add("auth_info", block)
    m.note("assumption", None, f"services.auth_info.version: nginx {AUTH_INFO_NGINX} (CAVEdeployment used an "
                               "untagged image)")


def _datastacks_used(m: Mapper, top: Block) -> None:
    entry = top.get("datastacks")
    assert entry is not None and isinstance(entry.value, Flow)
    supported: list[str] = entry.value.data
    added: dict[str, list[str]] = {}
    for stack, by in m.stacks_used:
        if stack not in supported:
            added.setdefault(stack, []).append(by)
    supported.extend(added)
    if added:
        names = "; ".join(f"{s} (used by {', '.join(dict.fromkeys(b))})" for s, b in added.items())
        m.decision(entry, f"added to SUPPORTED_DATASTACKS: {names}. The rules require every datastack a "
                          "service uses to be listed; auth_info will now advertise it.")
    if not supported:
        m.fail(m.var("SUPPORTED_DATASTACKS"), "SUPPORTED_DATASTACKS is empty and no service names a "
                                             "datastack: set it (e.g. '\"my_datastack\"')")
