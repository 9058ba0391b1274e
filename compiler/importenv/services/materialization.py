"""Settings of the materialization engine: datastacks, the health-check volume, database counts, buckets,
limits, celery concurrency and resources, and the beat schedule read from the file MAT_BEAT_SCHEDULES `cat`s."""

from __future__ import annotations

from compiler.errors import Problem, UserError
from compiler.importenv import values as envvalues
from compiler.importenv.catalogue import LOCAL_DEFAULTS
from compiler.importenv.mapping import Mapper, Skip, strip_gs
from compiler.importenv.specdoc import Block, Entry, Flow, Items


def materializationengine(m: Mapper, block: Block, workloads: Block, enabled: bool) -> Skip | None:
    svc = "services.materializationengine"
    stacks = m.mat_stacks
    if not stacks:
        return Skip("MAT_DATASTACKS is not set")
    api = m.peek("MAT_MAX_REPLICAS") > 0
    workers = m.peek("CELERY_PRODUCER_MIN_REPLICAS") > 0
    if enabled and not (api and workers):
        off = "API (MAT_MAX_REPLICAS=0)" if workers else "workers (CELERY_PRODUCER_MIN_REPLICAS=0)"
        m.decision(m.current, f"CAVEdeployment ran without the {off}; the spec runs the API and the "
                              "workers together.")
    memory = m.text("MAT_SERVICE_MEM", f"{svc}.resources.memory")
    if memory and memory != LOCAL_DEFAULTS["MAT_SERVICE_MEM"]:
        block.add("resources", Flow({"cpu": "200m", "memory": memory}), m.origin(m.var("MAT_SERVICE_MEM")),
                  comment="cpu: the base's request")
    entry = block.add("datastacks", Flow(stacks), m.origin(m.var("MAT_DATASTACKS")))
    if len(stacks) > 1:
        entry.comment = "MAT_DATASTACKS split into a list (the old template made it one name)"
    if enabled:
        m.stacks_used.extend((s, "materializationengine") for s in stacks)
    volume = m.text("MAT_HEALTH_ALIGNED_VOLUME_NAME", f"{svc}.health_aligned_volume")
    if volume:
        block.add("health_aligned_volume", volume, m.origin(m.var("MAT_HEALTH_ALIGNED_VOLUME_NAME")))
    elif enabled:
        return Skip("MAT_HEALTH_ALIGNED_VOLUME_NAME (an aligned volume whose database exists) is not set")
    for name, key, default in (("MIN_DATABASES", "min_databases", 1), ("MAX_DATABASES", "max_databases", 2)):
        value = m.number(name, f"{svc}.{key}")
        if value is not None and value != default:
            block.add(key, value, m.origin(m.var(name)))
    if m.convert("MERGE_MATERIALIZE_DATABASES", f"{svc}.merge_databases", envvalues.python_bool) is False:
        block.add("merge_databases", False, m.origin(m.var("MERGE_MATERIALIZE_DATABASES")))
    limit = m.number("MAT_QUERY_LIMIT_SIZE", f"{svc}.query_limit_size")
    if limit is not None and limit != 500000:
        block.add("query_limit_size", limit, m.origin(m.var("MAT_QUERY_LIMIT_SIZE")))
    level = m.text("MAT_LOG_LEVEL", f"{svc}.log_level")
    if level and level.upper() != "WARNING":
        block.add("log_level", level.upper(), m.origin(m.var("MAT_LOG_LEVEL")))
    _buckets(m, block)
    limits = {}
    for name, key, default in (("LIMITS_QUERY_PER_MINUTE", "query_per_minute", 200),
                               ("LIMITS_FAST_QUERY_PER_MINUTE", "fast_query_per_minute", 2000)):
        value = m.number(name, f"{svc}.limits.{key}")
        if value is not None and value != default:
            limits[key] = value
    if limits:
        block.add("limits", Flow(limits), m.origin(m.var("LIMITS_QUERY_PER_MINUTE")))
    consumer = m.number("CELERY_CONSUMER_CONCURRENCY", f"{svc}.celery_consumer_concurrency")
    producer = m.number("CELERY_PRODUCER_CONCURRENCY", f"{svc}.celery_producer_concurrency")
    if producer is not None and consumer is not None and producer != consumer:
        block.add("celery_producer_concurrency", producer, m.origin(m.var("CELERY_PRODUCER_CONCURRENCY")))
        block.add("celery_consumer_concurrency", consumer, m.origin(m.var("CELERY_CONSUMER_CONCURRENCY")))
    elif (concurrency := consumer or producer) is not None and concurrency != 2:
        block.add("celery_concurrency", concurrency, m.origin(m.var("CELERY_CONSUMER_CONCURRENCY")))
    _celery(m, workloads)
    _beat_schedule(m, block)
    return None


def _buckets(m: Mapper, block: Block) -> None:
    svc = "services.materializationengine"
    for name in ("MATERIALIZATION_UPLOAD_BUCKET_PATH", "MATERIALIZATION_UPLOAD_BUCKET_NAME"):
        upload = m.text(name, f"{svc}.upload_bucket")
        if upload:
            bucket = strip_gs(upload).split("/")[0]
            entry = block.add("upload_bucket", bucket, m.origin(m.var(name)))
            if bucket != upload:
                entry.comment = "plain bucket name, no sub-path"
            break
    dump = m.text("MATERIALIZATION_DUMP_BUCKET_NAME", f"{svc}.dump_bucket")
    if dump:
        block.add("dump_bucket", strip_gs(dump), m.origin(m.var("MATERIALIZATION_DUMP_BUCKET_NAME")))


def _celery(m: Mapper, workloads: Block) -> None:
    svc = "services.materializationengine.workloads"
    cpu = m.text("CELERY_CPU", f"{svc}.celery-*.resources.cpu") or "500m"
    memory = m.text("CELERY_MEMORY", f"{svc}.celery-*.resources.memory") or "400Mi"
    if (cpu, memory) != ("500m", "400Mi"):
        for workload in ("celery-producer", "celery-consumer"):
            settings = workloads.get(workload)
            resources = Entry("resources", Flow({"cpu": cpu, "memory": memory}),
                              m.origin(m.var("CELERY_CPU")))
            if settings is None:
                workloads.add(workload, Block([resources]))
            else:
                assert isinstance(settings.value, Block)
                settings.value.entries.append(resources)


def _beat_schedule(m: Mapper, block: Block) -> None:
    var = m.var("MAT_BEAT_SCHEDULES")
    if var is None:
        return
    to = "services.materializationengine.beat_schedule"
    content = m.file_content(var, to)
    if content is None:
        entry = block.add("beat_schedule", Flow([]), m.origin(var))
        m.decision(entry, "the schedule file MAT_BEAT_SCHEDULES reads was not found; fill in the schedule as a "
                          "list of {name, task, minute, hour, day_of_week, day_of_month}.")
        return
    path, text = content
    try:
        entries, dropped = envvalues.beat_schedule(text)
    except envvalues.ConvertError as err:
        raise UserError([Problem(str(path), err.line or 1, err.col or 1,
                                 f"{err.reason} (fix the schedule file MAT_BEAT_SCHEDULES reads on "
                                 f"{m.display}:{var.line})")]) from None
    entry = block.add("beat_schedule", Items([Flow(e) for e in entries]), m.origin(var))
    m.used["MAT_BEAT_SCHEDULES"] = to
    m.note("file", var, f"MAT_BEAT_SCHEDULES: {path} -> {to} ({len(entries)} entries)")
    if dropped:
        m.decision(entry, f"the schedule file has keys the spec does not know ({', '.join(dropped)}); "
                          "they were left out.")
