"""The secrets section, written once the spec is valid (the names derive from it): the Secret Manager name of
each secret variable the env file sets and of the file secrets beside it. No secret value is read into it."""

from __future__ import annotations

from compiler.importenv.catalogue import FILE_SECRETS, SECRET_KEYS
from compiler.importenv.envfile import Computed
from compiler.importenv.mapping import Mapper
from compiler.importenv.specdoc import Block
from compiler.spec.derive import secret_manager_name
from compiler.spec.model import ClusterSpec


def secrets(m: Mapper, spec: ClusterSpec) -> Block:
    """Secret Manager names for the secret variables the file sets; their values are never read here."""
    block = Block()
    for name, key in SECRET_KEYS[m.kind].items():
        var = m.var(name)
        if var is None or var.origin != "file":
            continue
        secret = secret_manager_name(spec, key)
        block.add(key, secret, m.origin(var))
        detail = ""
        if isinstance(var.value, Computed):
            detail = f" (computed by `{var.value.command}`: upload it by hand)"
        elif not var.text():
            detail = " (empty in the env file: create the secret by hand)"
        m.note("secret", var, f"{name} -> secrets.{key}: Secret Manager secret {secret}{detail}")
        m.reported.add(name)
    if block.entries:
        m.note("secret", None, f"upload their values with `gcloud secrets versions add NAME --data-file=-`; "
                               f"`python -m compiler bootstrap {m.name}` generates the random ones and "
                               "lists the rest")
    for key, where in FILE_SECRETS[m.kind].items():
        m.note("secret", None, f"secrets.{key}: Secret Manager secret {secret_manager_name(spec, key)}, "
                               f"from the file {where.replace('<env>', m.name)} (not in the env file)")
    return block
