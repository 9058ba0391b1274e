"""The JSON Schema of a spec, for editors: generated from the pydantic model, committed as schemas/spec.schema.json.

Each spec names it on its first line, `# yaml-language-server: $schema=../schemas/spec.schema.json`, the modeline
the YAML language server (VS Code's YAML extension, Neovim, Helix, JetBrains via LSP) reads, so an editor
completes keys, shows each field's description and flags unknown keys and wrong types as you type. The schema is
a union of the two cluster kinds discriminated by `kind`. It says less than `build` does (cross-field and
cross-spec rules, cron ranges and version rules are checked only there), never more: a spec `build` accepts
is valid against it.

`build` writes it (compiler/build/specschema.py) and `check` reports it stale when the model or the service
catalogue changed since.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from compiler.spec.model import GlobalCluster, LocalCluster

# relative to a spec in environments/, as the YAML language server resolves it
MODELINE = "# yaml-language-server: $schema=../schemas/spec.schema.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def spec_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a spec: the union of the global and local models, discriminated by `kind`.

    Pydantic writes the union as `oneOf` plus an OpenAPI `discriminator`, which JSON Schema validators ignore: a
    spec with one wrong key then fails both branches and the error names neither the key nor the kind. So the
    union is written as JSON Schema's discriminated form, `kind` required and one `if kind is K then model K`
    per kind (the `discriminator` mapping kept as an annotation): an error names the offending key, and an
    editor completes the keys of the spec's own kind.
    """
    adapter: TypeAdapter[GlobalCluster | LocalCluster] = TypeAdapter(
        Annotated[GlobalCluster | LocalCluster, Field(discriminator="kind")])
    generated = adapter.json_schema(mode="validation")
    discriminator = generated["discriminator"]
    mapping: dict[str, str] = discriminator["mapping"]
    return {
        "$schema": DIALECT,
        "title": "CAVE cluster spec (environments/<cluster>.yaml)",
        "description": "Generated from compiler/spec/model.py by `python -m compiler build`; do not edit. "
                       "`kind: global` or `kind: local` selects the model.",
        "type": "object",
        "required": [discriminator["propertyName"]],
        "properties": {discriminator["propertyName"]: {
            "enum": list(mapping), "description": "the cluster kind: it selects the model of the rest of the spec"}},
        "discriminator": discriminator,
        "allOf": [
            {"if": {"properties": {discriminator["propertyName"]: {"const": kind}},
                    "required": [discriminator["propertyName"]]},
             "then": {"$ref": ref}}
            for kind, ref in mapping.items()
        ],
        "$defs": generated["$defs"],
    }


def schema_text() -> str:
    """The committed file's exact text (deterministic: pydantic's field order, two-space indent, one final newline)."""
    return json.dumps(spec_schema(), indent=2, ensure_ascii=False) + "\n"


def with_modeline(text: str) -> str:
    """A spec's text with the modeline as its first line (added when missing)."""
    return text if has_modeline(text) else f"{MODELINE}\n{text}"


def has_modeline(text: str) -> bool:
    return text.split("\n", 1)[0].strip() == MODELINE
