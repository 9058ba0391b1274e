"""Settings of the segmentation services: the PyChunkedGraph (graph ids, resources, config, server logs), meshing
(its three switches) and the L2 cache (its table map, read from the file L2CACHE_CONFIG `cat`s)."""

from __future__ import annotations

from compiler import catalog
from compiler.errors import Problem, UserError
from compiler.importenv import values as envvalues
from compiler.importenv.mapping import Mapper, Skip
from compiler.importenv.specdoc import Block, Entry, Flow


def pychunkedgraph(m: Mapper, block: Block, workloads: Block, enabled: bool) -> Skip | None:
    svc = "services.pychunkedgraph"
    if not m.graph_ids:
        return Skip("PCG_GRAPH_IDS is not set")
    if enabled:
        cpu = m.number("PYCG_MILLI_CPU", f"{svc}.resources.cpu")
        mib = m.number("PYCG_MEM_MIB", f"{svc}.resources.memory")
        if cpu and mib:
            m.map_to("PYCG_MEM_GIB", f"{svc}.resources.memory (as PYCG_MEM_MIB of convert_variables.sh)")
            block.add("resources", Flow({"cpu": f"{cpu}m", "memory": f"{mib}Mi"}),
                      m.origin(m.var("PYCG_MEM_GIB")))
        read_cpu = m.number("PYCG_READ_MILLI_CPU", f"{svc}.workloads.pychunkedgraph-read.resources.cpu")
        read_mib = m.number("PYCG_READ_MEM_MIB", f"{svc}.workloads.pychunkedgraph-read.resources.memory")
        if read_cpu and read_mib:
            m.map_to("PYCG_READ_MEM_GIB", f"{svc}.workloads.pychunkedgraph-read.resources.memory")
            resources = Entry("resources", Flow({"cpu": f"{read_cpu}m", "memory": f"{read_mib}Mi"}),
                              m.origin(m.var("PYCG_READ_MILLI_CPU")))
            settings = workloads.get("pychunkedgraph-read")
            if settings is None:
                workloads.add("pychunkedgraph-read", Block([resources]))
            else:
                assert isinstance(settings.value, Block)
                settings.value.entries.append(resources)
    block.add("graph_ids", Flow(m.graph_ids), m.origin(m.var("PCG_GRAPH_IDS")))
    config_var = m.var("PCG_CONFIG")
    if config_var is not None and (config_var.text() or "").strip():
        config = m.convert("PCG_CONFIG", f"{svc}.config", envvalues.pcg_config)
        if config:
            block.add("config", Block([Entry(k, v) for k, v in config.items()]), m.origin(config_var))
    logs = {}
    for name, key in (("PCG_SERVER_ENABLE_LOGS", "enabled"), ("PCG_SERVER_LOGS_LEAVES_MANY", "leaves_many")):
        if m.convert(name, f"{svc}.server_logs.{key}", envvalues.python_bool):
            logs[key] = True
    if logs:
        block.add("server_logs", Flow(logs), m.origin(m.var("PCG_SERVER_ENABLE_LOGS")))
    return None


def meshing(m: Mapper, block: Block, workloads: Block, enabled: bool) -> Skip | None:
    if enabled:
        off = [n for n in _switches("meshing") if m.peek(n) <= 0]
        if off:
            m.decision(m.current, f"{', '.join(off)} = 0 in the env file, but the spec runs the meshing "
                                  "API and both mesh workers together.")
    return None


def l2cache(m: Mapper, block: Block, workloads: Block, enabled: bool) -> Skip | None:
    var = m.var("L2CACHE_CONFIG")
    content = m.file_content(var, "services.l2cache.tables") if var else None
    if content is not None:
        path, text = content
        try:
            tables = envvalues.l2_tables(text)
        except envvalues.ConvertError as err:
            raise UserError([Problem(str(path), err.line or 1, err.col or 1,
                                     f"{err.reason} (fix the L2 table map L2CACHE_CONFIG reads on "
                                     f"{m.display}:{var.line if var else 0})")]) from None
        block.add("tables", Block([Entry(g, Flow(t)) for g, t in tables.items()]), m.origin(var))
        m.used["L2CACHE_CONFIG"] = "services.l2cache.tables"
        m.note("file", var, f"L2CACHE_CONFIG: {path} -> services.l2cache.tables ({len(tables)} tables)")
        return None
    if not m.graph_ids:
        return Skip("neither the file L2CACHE_CONFIG reads nor PCG_GRAPH_IDS names its tables")
    guessed = Block()
    for graph_id in m.graph_ids:
        guessed.add(graph_id, Flow({"cv_path": f"graphene://https://{m.primary}/segmentation/table/{graph_id}",
                                    "l2cache_id": f"TODO-l2cache-{graph_id}"}))
    entry = block.add("tables", guessed, m.origin(var))
    m.decision(entry, "the L2 table map file (L2CACHE_CONFIG) was not found: tables guessed from PCG_GRAPH_IDS; "
                      "set each l2cache_id to its Bigtable L2 cache table.")
    return None


def _switches(service: str) -> tuple[str, ...]:
    old = catalog.BY_NAME[service].old_env
    return old.switches if old else ()
