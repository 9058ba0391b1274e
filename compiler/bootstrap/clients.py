"""Where bootstrap's Google clients connect, and with which credentials.

Every API's endpoint can be overridden with an environment variable, so the same code runs against
Google, the emulators and the test servers:

    CAVE_GITOPS_<API>_ENDPOINT=http://127.0.0.1:8081   (API one of ENDPOINT_APIS, upper case)
    PUBSUB_EMULATOR_HOST=127.0.0.1:8085                (the Pub/Sub emulator, as gcloud sets it)

Credentials come from Application Default Credentials (`gcloud auth application-default login`, or
GOOGLE_APPLICATION_CREDENTIALS naming a key or authorized-user file).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from compiler.errors import UserError

ENDPOINT_APIS = ("compute", "container", "redis", "bigtableadmin", "sqladmin", "storage", "dns", "secretmanager",
                 "iam", "resourcemanager", "pubsub", "firestore", "serviceusage")
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


def endpoint_variable(api: str) -> str:
    return f"CAVE_GITOPS_{api.upper()}_ENDPOINT"


def endpoint(api: str) -> str | None:
    """The overridden endpoint of `api` (scheme://host:port), or None for Google's default."""
    if api not in ENDPOINT_APIS:
        raise KeyError(api)
    value = os.environ.get(endpoint_variable(api), "").strip()
    return value.rstrip("/") or None


def client_options(api: str) -> dict[str, Any]:
    """`client_options` for a google-cloud-* or googleapiclient client of `api`."""
    url = endpoint(api)
    return {"api_endpoint": url} if url else {}


@cache
def credentials() -> Any:
    """Application Default Credentials, or one clear UserError saying how to get them."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        creds, _project = google.auth.default(scopes=list(SCOPES))
    except DefaultCredentialsError:
        raise UserError(
            "no Google credentials found: run `gcloud auth application-default login`, or set "
            "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file (`--offline` plans without them)"
        ) from None
    return creds
