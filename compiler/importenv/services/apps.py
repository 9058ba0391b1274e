"""Settings of the local apps: skeletoncache, guidebook, tourguide, dash (its apps, read from the config file
DASH_CONFIG `cat`s), pmanagement, proxy and cavecanary."""

from __future__ import annotations

import re
from typing import Any

from compiler.importenv import values as envvalues
from compiler.importenv.mapping import Mapper, Skip, strip_gs
from compiler.importenv.specdoc import Block, Entry, Flow, Node


def skeletoncache(m: Mapper, block: Block, workloads: Block, enabled: bool) -> Skip | None:
    svc = "services.skeletoncache"
    bucket = m.text("SKELETON_CACHE_BUCKET", f"{svc}.bucket")
    if not bucket:
        return Skip("SKELETON_CACHE_BUCKET is not set")
    entry = block.add("bucket", strip_gs(bucket), m.origin(m.var("SKELETON_CACHE_BUCKET")))
    if bucket.startswith("gs://"):
        entry.comment = "gs:// dropped: the config prepends it"
    rate = m.number("LIMITS_SKELETON_REQUESTS_PER_MINUTE", f"{svc}.requests_per_minute")
    if rate is not None and rate != 100:
        block.add("requests_per_minute", rate, m.origin(m.var("LIMITS_SKELETON_REQUESTS_PER_MINUTE")))
    remapping = m.convert("SKELETON_DATASTACK_NAME_REMAPPING", f"{svc}.datastack_name_remapping",
                          envvalues.string_map)
    if remapping:
        block.add("datastack_name_remapping", Flow(remapping),
                  m.origin(m.var("SKELETON_DATASTACK_NAME_REMAPPING")))
    server = m.text("SKELETON_INTEGRATION_TEST_SERVER", f"{svc}.integration_test.server")
    stack = m.text("SKELETON_INTEGRATION_TEST_DATASTACK__DEFAULT", f"{svc}.integration_test.datastack")
    if server and stack:
        block.add("integration_test", Flow({"server": re.sub(r"^[a-z]+://", "", server).split("/")[0],
                                            "datastack": stack}),
                  m.origin(m.var("SKELETON_INTEGRATION_TEST_SERVER")))
    return None


def guidebook(m: Mapper, block: Block, workloads: Block, enabled: bool) -> Skip | None:
    svc = "services.guidebook"
    datastack = m.text("GUIDEBOOK_DATASTACK", f"{svc}.datastack")
    if not datastack:
        return Skip("GUIDEBOOK_DATASTACK is not set")
    block.add("datastack", datastack, m.origin(m.var("GUIDEBOOK_DATASTACK")))
    if enabled:
        m.stacks_used.append((datastack, "guidebook"))
    res = m.convert("GUIDEBOOK_EXPECTED_RESOLUTION", f"{svc}.expected_resolution", envvalues.resolution)
    if not res:
        return Skip("GUIDEBOOK_EXPECTED_RESOLUTION is not set")
    block.add("expected_resolution", Flow(res), m.origin(m.var("GUIDEBOOK_EXPECTED_RESOLUTION")))
    for name, key, default in (("GUIDEBOOK_N_PARALLEL", "n_parallel", 1),
                               ("GUIDEBOOK_INVALIDATION_D", "invalidation_d", 3)):
        value = m.number(name, f"{svc}.{key}")
        if value is not None and value != default:
            block.add(key, value, m.origin(m.var(name)))
    return None


def tourguide(m: Mapper, block: Block, workloads: Block, enabled: bool) -> Skip | None:
    level = m.text("TOURGUIDE_LOG_LEVEL", "services.tourguide.log_level")
    if level and level.upper() != "INFO":
        block.add("log_level", level.upper(), m.origin(m.var("TOURGUIDE_LOG_LEVEL")))
    timeout = m.number("TOURGUIDE_TIMEOUT", "services.tourguide.timeout")
    if timeout is not None and timeout != 300:
        block.add("timeout", timeout, m.origin(m.var("TOURGUIDE_TIMEOUT")))
    url = m.text("TOURGUIDE_NEUROGLANCER_URL", "services.tourguide.neuroglancer_url")
    if url:
        block.add("neuroglancer_url", url, m.origin(m.var("TOURGUIDE_NEUROGLANCER_URL")))
    return None


def dash(m: Mapper, block: Block, workloads: Block, enabled: bool) -> Skip | None:
    var = m.var("DASH_CONFIG")
    content = m.file_content(var, "services.dash.apps") if var else None
    todo = ("add services.dash with `apps` (datastack -> app -> {create_app, config}) from the dash config.py "
            "DASH_CONFIG reads.")
    if content is None:
        return Skip("the dash config file DASH_CONFIG reads was not found", soft=True, todo=todo)
    path, text = content
    try:
        apps, had_secret = envvalues.dash_apps(text)
    except envvalues.ConvertError as err:
        return Skip(f"{path}:{err.line}:{err.col}: {err.reason}", soft=True, todo=todo)
    m.used["DASH_CONFIG"] = "services.dash.apps"
    m.note("file", var, f"DASH_CONFIG: {path} -> services.dash.apps ({sum(map(len, apps.values()))} apps)")
    if had_secret:
        m.note("secret", var, f"DASH_CONFIG: {path} sets SECRET_KEY; ignored (the dash pods read "
                              "secrets.dash_secret_key from Secret Manager)")
    apps_block = Block()
    for datastack, entries in apps.items():
        stack = Block()
        for app_name, app in entries.items():
            settings = Block()
            settings.add("create_app", app["create_app"])
            if app["config"]:
                settings.add("config", _tree(app["config"]))
            stack.add(app_name, settings)
        apps_block.add(datastack, stack)
        if enabled:
            m.stacks_used.append((datastack, "dash"))
    block.add("apps", apps_block, m.origin(var))
    return None


def pmanagement(m: Mapper, block: Block, workloads: Block, enabled: bool) -> Skip | None:
    svc = "services.pmanagement"
    for name, key, example in (("PMANAGEMENT_PROOFREADING_TABLE", "proofreading_table",
                                "proofreading_status_public_v1"),
                               ("PMANAGEMENT_NEURONINFORMATION_TABLE", "neuroninformation_table",
                                "neuron_information_v2")):
        value = m.text(name, f"{svc}.{key}")
        entry = block.add(key, value or example, m.origin(m.var(name)))
        if not value:
            m.decision(entry, f"{name} was never declared in CAVEdeployment (4.5); this is the deployment "
                              "protocol's example: set the table pmanagement uses.")
    database = m.text("AUTH_DATABASE_NAME", f"{svc}.auth_database_name")
    entry = block.add("auth_database_name", database or "fafb", m.origin(m.var("AUTH_DATABASE_NAME")))
    if not database:
        m.decision(entry, "CAVEdeployment hard-coded AUTH_DATABASE_NAME=fafb in pmanagement.yml: set the auth "
                          "database this cluster's pmanagement uses.")
    return None


def proxy(m: Mapper, block: Block, workloads: Block, enabled: bool) -> Skip | None:
    mapping = m.convert("PROXY_MAP", "services.proxy.map", envvalues.proxy_map)
    if not mapping:
        return Skip("PROXY_MAP (datastack -> bucket URL) is not set")
    block.add("map", Block([Entry(k, v) for k, v in mapping.items()]), m.origin(m.var("PROXY_MAP")))
    return None


def cavecanary(m: Mapper, block: Block, workloads: Block, enabled: bool) -> Skip | None:
    if not m.mat_stacks:
        return Skip("MAT_DATASTACKS (the canary's DATASTACK_NAME) is not set")
    entry = block.add("datastack", m.mat_stacks[0], m.origin(m.var("MAT_DATASTACKS")))
    if len(m.mat_stacks) > 1:
        entry.comment = "the first of MAT_DATASTACKS"
    if enabled:
        m.stacks_used.append((m.mat_stacks[0], "cavecanary"))
    channel = m.text("SLACK_CHANNEL", "services.cavecanary.slack_channel")
    if not channel:
        return Skip("SLACK_CHANNEL is not set")
    block.add("slack_channel", channel, m.origin(m.var("SLACK_CHANNEL")))
    return None


def _tree(value: Any) -> Node:
    """Nested config data as blocks (readable), with lists and small mappings of scalars on one line."""
    if isinstance(value, dict) and value and any(isinstance(v, dict | list) for v in value.values()):
        return Block([Entry(str(k), _tree(v)) for k, v in value.items()])
    if isinstance(value, dict | list):
        return Flow(value)
    return value  # type: ignore[no-any-return]
