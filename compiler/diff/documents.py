"""Cheap stubs of rendered documents (kind, name, service) without parsing the whole YAML."""

from __future__ import annotations

import re

from compiler.catalog import SERVICE_LABEL
from compiler.diff.model import Obj

# --------------------------------------------------------------------------- parsing only what differs

_DOC_SEPARATOR = re.compile(r"^---[ \t]*\n", re.M)
_TOP_RE = re.compile(r"^(apiVersion|kind): *(.+)$", re.M)
META_RE = re.compile(r"^metadata:\n((?:(?:  .*)?\n)*)", re.M)
_META_FIELD_RE = re.compile(r"^  (name|namespace): *(.+)$", re.M)
_SERVICE_RE = re.compile(r"^  labels:\n(?:    .*\n)*?    " + re.escape(SERVICE_LABEL) + r": *(.+)$", re.M)


def _scalar(text: str) -> str:
    text = text.strip()
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"" else text


def document_stub(document: str) -> Obj | None:
    """Identity and service label of a document in kustomize's canonical layout, without parsing it
    (None when the layout is not recognised: the caller parses the document instead)."""
    top = dict(_TOP_RE.findall(document))
    meta = META_RE.search(document + "\n")
    if "kind" not in top or "apiVersion" not in top or not meta:
        return None
    fields = {k: _scalar(v) for k, v in _META_FIELD_RE.findall(meta[1])}
    if "name" not in fields or any(c in v for v in (*top.values(), *fields.values()) for c in "{}[]&*!|>#"):
        return None
    metadata: Obj = dict(fields)
    if service := _SERVICE_RE.search(meta[1]):
        metadata["labels"] = {SERVICE_LABEL: _scalar(service[1])}
    return {"apiVersion": _scalar(top["apiVersion"]), "kind": _scalar(top["kind"]), "metadata": metadata}


def split_documents(text: str) -> list[str]:
    """The documents of kustomize's output (empty ones dropped)."""
    return [d for d in _DOC_SEPARATOR.split(text) if d.strip()]
