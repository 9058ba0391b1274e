"""Container registries: does an image tag exist? The bump bot proposes only versions whose images do.

docker.io/<org> is asked through Docker Hub's tag API (`GET /v2/repositories/<org>/<image>/tags/<tag>`);
any other registry through the OCI distribution API (`HEAD /v2/<name>/manifests/<tag>`), with the anonymous
bearer-token handshake public registries (gcr.io, ghcr.io, Artifact Registry) ask for. `base_url` replaces
the API's scheme and host, so a mirror, a registry on plain HTTP or a local test server work unchanged.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from compiler.errors import UserError
from compiler.github import Retry, reason

DOCKER_HUB_API = "https://hub.docker.com"
DOCKER_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")
TIMEOUT_S = 20.0
MANIFEST_TYPES = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))


class _Status(Exception):
    def __init__(self, status: int, headers: dict[str, str]) -> None:
        super().__init__(status)
        self.status = status
        self.headers = headers


@dataclass
class RegistryClient:
    """Asks registries about image tags; answers are cached for the run."""

    base_url: str | None = None
    retry: Retry = field(default_factory=Retry)
    _known: dict[str, bool] = field(default_factory=dict)

    def exists(self, repository: str, image: str, tag: str) -> bool:
        """Whether `<repository>/<image>:<tag>` exists (repository like docker.io/caveconnectome or gcr.io/p)."""
        ref = f"{repository}/{image}:{tag}"
        if ref not in self._known:
            self._known[ref] = self._ask(repository, image, tag)
        return self._known[ref]

    def _ask(self, repository: str, image: str, tag: str) -> bool:
        host, _, path = repository.partition("/")
        name = f"{path}/{image}" if path else image
        quoted = urllib.parse.quote(tag, safe="")
        if host in DOCKER_HOSTS:
            if "/" not in name:
                name = f"library/{name}"
            url = f"{(self.base_url or DOCKER_HUB_API).rstrip('/')}/v2/repositories/{name}/tags/{quoted}"
            return self._probe("GET", url, f"{repository}/{image}:{tag}")
        base = (self.base_url or f"https://{host}").rstrip("/")
        return self._probe("HEAD", f"{base}/v2/{name}/manifests/{quoted}", f"{repository}/{image}:{tag}",
                           scope=f"repository:{name}:pull")

    def _probe(self, method: str, url: str, ref: str, scope: str | None = None) -> bool:
        token: str | None = None
        for attempt in range(self.retry.attempts):
            try:
                _request(method, url, token, MANIFEST_TYPES if scope else "application/json")
                return True
            except _Status as err:
                if err.status == 404:
                    return False
                challenge = err.headers.get("www-authenticate", "")
                if err.status == 401 and scope and token is None and challenge.lower().startswith("bearer "):
                    token = self._token(challenge, scope, ref)
                    continue
                wait = self.retry.wait(err.status, err.headers, attempt)
                if wait is None or attempt == self.retry.attempts - 1:
                    raise UserError(f"registry: asking for {ref}: HTTP {err.status} from {url} "
                                    "(check docker_repository in the spec, or --registry-url)") from None
            except OSError as err:
                wait = min(float(2**attempt), self.retry.max_wait)
                if attempt == self.retry.attempts - 1:
                    raise UserError(f"registry: asking for {ref}: cannot reach {url}: {reason(err)} "
                                    "(check the network, or --registry-url)") from None
            self.retry.sleep(wait)
        raise UserError(f"registry: asking for {ref}: no answer from {url} (run again later)")

    def _token(self, challenge: str, scope: str, ref: str) -> str:
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = params.pop("realm", "")
        if not realm:
            raise UserError(f"registry: asking for {ref}: the registry wants a login without saying where")
        query = urllib.parse.urlencode({"service": params.get("service", ""), "scope": params.get("scope", scope)})
        try:
            data = json.loads(_request("GET", f"{realm}?{query}", None, "application/json"))
        except (_Status, OSError, ValueError) as err:
            raise UserError(f"registry: asking for {ref}: no anonymous pull token from {realm}: {err} "
                            "(is the image private?)") from None
        token = data.get("token") or data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str):
            raise UserError(f"registry: asking for {ref}: {realm} gave no token (is the image private?)")
        return token


def _request(method: str, url: str, token: str | None, accept: str) -> bytes:
    request = urllib.request.Request(url, method=method, headers={"Accept": accept, "User-Agent": "cave-gitops"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as err:
        headers = {k.lower(): v for k, v in err.headers.items()}
        err.close()
        raise _Status(err.code, headers) from None
