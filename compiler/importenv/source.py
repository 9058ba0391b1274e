"""The env file as CAVEdeployment's scripts source it: defaults.sh before it and convert_variables.sh after
it on a local cluster, with the checks that it is a rendered env file at all."""

from __future__ import annotations

import re
from pathlib import Path

from compiler.errors import Problem, UserError
from compiler.importenv.catalogue import LOCAL_DEFAULTS, Kind
from compiler.importenv.envfile import EnvFile, parse
from compiler.spec.yamlio import read_text


def read_env(path: Path, display: str, kind: Kind) -> EnvFile:
    """The variables of the env file, with defaults.sh before and convert_variables.sh after (local)."""
    # A regular file of at most 1 MiB, UTF-8, no control characters (a FIFO, /dev/zero or a binary is refused
    # before it can hang the import or fill memory).
    text = read_text(path, display, what="a CAVEdeployment env file")
    m = re.search(r"\{\{\s*[A-Za-z_]\w*\s*\}\}", text)
    if m:
        line = text.count("\n", 0, m.start()) + 1
        col = m.start() - text.rfind("\n", 0, m.start())
        raise UserError([Problem(display, line, col, "this is an env file template with Jinja placeholders, "
                                                     "not a rendered env file (render it with "
                                                     "render_global_env.py / render_local_env.py, or fill in "
                                                     "the value)")])
    env = EnvFile(display)
    env.set("ENV_REPO_PATH", str(path.resolve().parent), "env_config.sh")
    if kind == "local":
        for name, value in LOCAL_DEFAULTS.items():
            env.set(name, value, "defaults.sh")
    parse(text, display, env)
    if env.assigned_in_file == 0:
        raise UserError([Problem(display, 1, 1, "no variable assignments found: not a CAVEdeployment env file "
                                                "(expected lines like `export ENVIRONMENT=minnie`)")])
    if kind == "local":
        convert_variables(env)
    return env


def convert_variables(env: EnvFile) -> None:
    """infrastructure/local/convert_variables.sh, sourced after a local env file."""
    def number(name: str) -> float | None:
        var = env.get(name)
        text = var.text() if var else None
        try:
            return float(text) if text else None
        except ValueError:
            return None

    for gib, mib in (("PYCG_MEM_GIB", "PYCG_MEM_MIB"), ("PYCG_READ_MEM_GIB", "PYCG_READ_MEM_MIB")):
        value = number(gib)
        env.set(mib, str(int(value * 1024 + 0.5)) if value is not None else "", "convert_variables.sh",
                frozenset({gib}))
    env_var = env.get("ENVIRONMENT")
    name = (env_var.text() if env_var else None) or ""
    cluster = env.get("CLUSTER_NAME")
    env.set("CLUSTER_NAME_SAFE", ((cluster.text() if cluster else None) or "").replace("-", "_"),
            "convert_variables.sh")
    for level in ("LOW", "HIGH"):
        queue = f"{name}_SKELETON_CACHE_WORKER_{level}_PRIORITY"
        env.set(f"SKELETON_CACHE_{level}_PRIORITY_EXCHANGE", f"{name}_SKELETON_CACHE_{level}_PRIORITY",
                "convert_variables.sh", frozenset({"ENVIRONMENT"}))
        env.set(f"SKELETON_CACHE_{level}_PRIORITY_RETRIEVE_QUEUE", queue, "convert_variables.sh",
                frozenset({"ENVIRONMENT"}))
        env.set(f"SKELETON_CACHE_{level}_PRIORITY_RETRIEVE_QUEUE_SAFE", queue.replace("-", "_"),
                "convert_variables.sh", frozenset({"ENVIRONMENT"}))
        env.set(f"SKELETON_CACHE_{level}_PRIORITY_RETRIEVE_QUEUE_SAFE_LOWER", queue.replace("-", "_").lower(),
                "convert_variables.sh", frozenset({"ENVIRONMENT"}))
    orchestration = env.get("ORCHESTRATION_QUEUE_NAME")
    if orchestration is None or not orchestration.text():
        env.set("ORCHESTRATION_QUEUE_NAME", "orchestration", "convert_variables.sh")
