"""Import a CAVEdeployment env file into an environment spec (`python -m compiler import-env`).

The env file is read as bash would source it (compiler/envfile.py; nothing is run), with defaults.sh applied
before it and convert_variables.sh after it (local clusters, facts 4.3/4.4). Every variable of facts section 4
is then mapped to the spec, recognised as something the spec derives, a secret (only its Secret Manager name
goes into the spec), a live look-up (bootstrap resolves it) or a variable without effect; anything else is
reported as unknown. The spec is validated against the model and every rule, with problems pointing at the
env file's lines, then once more as a file in a copy of environments/, and written atomically.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, Literal

from compiler import catalog
from compiler.build import argocd
from compiler.errors import Problem, UserError
from compiler.importenv import values as envvalues
from compiler.importenv.catalogue import (
    FILE_SECRETS,
    FIXED_VALUES,
    GLOBAL_SERVICES,
    KIND_MARKERS,
    KNOWN,
    LAUNCH_POOLS,
    LOCAL_DEFAULTS,
    LOCAL_SERVICES,
    SECRET_KEYS,
    SECRET_VARIABLES,
    SQL_DEFAULTS,
    Kind,
    ServiceVars,
)
from compiler.importenv.envfile import Computed, EnvFile, Note, Var, parse
from compiler.importenv.specdoc import TODO, Block, Commented, Entry, Flow, Items, Node, Origin, origins, plain, render
from compiler.paths import ENV_DIR, SETTINGS_FILE
from compiler.spec import load, rules
from compiler.spec.derive import derive, secret_manager_name
from compiler.spec.model import (
    K8S_MAX_MINOR,
    K8S_MIN_MINOR,
    ClusterSpec,
    GlobalCluster,
    LocalCluster,
    zone_owner,
    zone_project,
)
from compiler.spec.settings import load_settings
from compiler.spec.yamlio import Document, Loc, load_document, to_plain

KUBERNETES_VERSION = f"1.{min(max(31, K8S_MIN_MINOR), K8S_MAX_MINOR)}"
AUTH_INFO_NGINX = "1.27.3"
NAME_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
NAME_MAX = 36
ACME = {"https://acme-v02.api.letsencrypt.org/directory": "production",
        "https://acme-staging-v02.api.letsencrypt.org/directory": "staging"}


@dataclass(frozen=True)
class Skip:
    """Why a service cannot be written; soft: leave it out with a TODO even when it runs today."""

    reason: str
    soft: bool = False
    todo: str = ""


# --------------------------------------------------------------------------- the report


Section = Literal["mapped", "derived", "secret", "live", "file", "unused", "unknown", "shell", "decision",
                  "assumption"]
SECTION_TITLES: dict[Section, str] = {
    "mapped": "mapped to the spec",
    "derived": "derived by the compiler or bootstrap (not copied)",
    "secret": "secrets (Secret Manager names only; no value was read into the spec)",
    "live": "live look-ups (bootstrap resolves them; not copied)",
    "file": "files read",
    "unused": "unused (CAVEdeployment variables without effect)",
    "unknown": "unknown (not CAVEdeployment variables; not imported)",
    "shell": "shell code not evaluated (import-env runs nothing)",
    "assumption": "assumed (the env file does not say; check)",
    "decision": "needs a person's decision (marked TODO(import) in the spec)",
}


@dataclass(frozen=True)
class Line:
    section: Section
    where: str  # "file.sh:12", "defaults.sh", "environments/x.yaml:40"
    what: str


@dataclass
class Result:
    name: str
    kind: Kind
    text: str
    target: Path | None  # None: printed to stdout
    lines: list[Line]

    def report(self) -> str:
        out = []
        for section, title in SECTION_TITLES.items():
            items = sorted((ln for ln in self.lines if ln.section == section), key=_by_place)
            if not items:
                continue
            out.append(f"{title} ({len(items)}):")
            width = max(len(ln.where) for ln in items)
            out.extend(f"  {ln.where:<{width}}  {ln.what}" for ln in items)
        return "\n".join(out)


def _by_place(line: Line) -> tuple[str, int]:
    path, _, number = line.where.rpartition(":")
    return (path, int(number)) if number.isdigit() else (line.where, 0)


# --------------------------------------------------------------------------- reading the env file


def read_env(path: Path, display: str, kind: Kind) -> EnvFile:
    """The variables of the env file, with defaults.sh before and convert_variables.sh after (local)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{display}: no such file (give the path of a CAVEdeployment env file)") from None
    except IsADirectoryError:
        raise UserError(f"{display}: is a directory (give the path of a CAVEdeployment env file)") from None
    except OSError as err:
        raise UserError(f"{display}: cannot read: {err.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise UserError([Problem(display, line, 1, "not a text file (an env file is UTF-8 bash: "
                                                   "`export NAME=value` lines)")]) from None
    if "\0" in text:
        raise UserError([Problem(display, text.count("\n", 0, text.index("\0")) + 1, 1,
                                 "not a text file (an env file is bash: `export NAME=value` lines)")])
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
        _convert_variables(env)
    return env


def _convert_variables(env: EnvFile) -> None:
    """infrastructure/local/convert_variables.sh, sourced after a local env file (facts 4.4)."""
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


# --------------------------------------------------------------------------- mapping


@dataclass
class _Context:
    """What the repository already holds: global hostnames and Cloud DNS zones of the existing specs."""

    global_hosts: dict[str, str] = field(default_factory=dict)  # hostname -> global cluster
    zones: dict[str, tuple[str, str]] = field(default_factory=dict)  # zone -> (DNS name, cluster)
    # DNS name -> (zone, cluster, project) of the spec whose bootstrap creates that zone (one per DNS name)
    owners: dict[str, tuple[str, str, str]] = field(default_factory=dict)


class _Mapper:
    """Builds the spec tree from the env file's variables and records what happened to each variable."""

    def __init__(self, env: EnvFile, kind: Kind, name_override: str | None, context: _Context,
                 env_dir: Path, gitops: bool = False) -> None:
        self.env = env
        self.kind = kind
        self.display = env.display
        self.name_override = name_override
        self.context = context
        self.env_dir = env_dir
        self.gitops = gitops  # the repository has a gitops.yaml: build needs a destination and a static IP
        self.used: dict[str, str] = {}  # variable -> where it went in the spec
        self.reported: set[str] = set()  # variables already reported in a section other than "mapped"
        self.lines: list[Line] = []
        self.problems: list[Problem] = []
        self.name = ""
        self.domain = ""
        self.primary = ""
        self.current = Entry("", None)  # the service being written (for its TODOs)
        self.graph_ids: list[str] = []
        self.mat_stacks: list[str] = []
        self.stacks_used: list[tuple[str, str]] = []  # (datastack, the service using it)

    # ------------------------------------------------------------------ variables

    def var(self, name: str) -> Var | None:
        return self.env.get(name)

    def origin(self, var: Var | None) -> Origin | None:
        if var is None or var.origin != "file" or not var.line:
            return None
        return Origin(var.line, var.col, var.name)

    def where(self, var: Var | None) -> str:
        if var is None:
            return self.display
        if var.origin == "file":
            return f"{self.display}:{var.line}"
        return f"{self.display}:{var.lines[-1]}" if var.lines else var.origin  # set again after the file

    def fail(self, var: Var | None, message: str) -> None:
        line, col = (var.line, var.col) if var is not None and var.origin == "file" else (1, 1)
        self.problems.append(Problem(self.display, line, col, message))

    def text(self, name: str, to: str) -> str | None:
        """The variable's plain text, marked as mapped to `to`; None when unset or computed."""
        var = self.var(name)
        if var is None:
            return None
        secret = sorted(var.refs & SECRET_VARIABLES)
        if secret and name not in SECRET_VARIABLES:
            self.fail(var, f"{name} is built from the secret variable {secret[0]}: import-env never copies a "
                           f"secret value into a spec (set {name} to a plain value)")
            return None
        value = var.text()
        if value is None:
            return None
        self.map_to(name, to)
        return value.strip()

    def map_to(self, name: str, to: str) -> None:
        if not to:
            return
        before = self.used.get(name)
        if before is None or before.endswith(" (enabled: false)"):
            self.used[name] = to
        elif to not in before.split(", "):
            self.used[name] = f"{before}, {to}"

    def peek(self, name: str) -> int:
        """A switch's value (0 when unset or not a number), without marking it as mapped."""
        var = self.var(name)
        try:
            return int((var.text() if var else None) or 0)
        except ValueError:
            return 0

    def required(self, name: str, to: str) -> str:
        var = self.var(name)
        value = self.text(name, to)
        if var is not None and isinstance(var.value, Computed):
            self.fail(var, f"{name} is computed by `{var.value.command}` when the file is sourced: import-env "
                           f"does not run it (set {name} to its value)")
        elif not value:
            self.fail(var, f"missing required variable {name} (add `export {name}=...`; it sets {to})"
                      if var is None else f"{name} is empty (set it: it becomes {to})")
        return value or ""

    def number(self, name: str, to: str) -> int | None:
        value = self.text(name, to)
        if value is None or value == "":
            return None
        try:
            return int(value)
        except ValueError:
            self.fail(self.var(name), f"{name} must be a whole number (it sets {to})")
            return None

    def convert(self, name: str, to: str, fn: Callable[[str], Any]) -> Any:
        value = self.text(name, to)
        if value is None:
            return None
        try:
            return fn(value)
        except envvalues.ConvertError as err:
            self.fail(self.var(name), f"{name}: {err.reason} (fix the value; it sets {to})")
            return None

    def note(self, section: Section, var: Var | None, what: str) -> None:
        self.lines.append(Line(section, self.where(var), what))

    def decision(self, entry: Entry, text: str) -> None:
        entry.todo = f"{entry.todo} {text}".strip() if entry.todo else text

    # ------------------------------------------------------------------ the spec

    def build(self) -> Block:
        top = Block()
        self.identity(top)
        self.gcp(top)
        if self.kind == "local":
            self.global_server(top)
            self.data(top)
        self.dns(top)
        self.tls(top)
        repo = self.var("DOCKER_REPOSITORY")
        top.add("docker_repository", self.required("DOCKER_REPOSITORY", "docker_repository"), self.origin(repo))
        k8s = top.add("kubernetes_version", KUBERNETES_VERSION)
        self.decision(k8s, "the env file does not say which Kubernetes version the cluster runs; set the GKE "
                           "minor version (`gcloud container clusters describe daf-" + self.name +
                           f" --zone {self.zone()} --format='value(currentMasterVersion)'`).")
        self.node_pools(top)
        self.cloud_sql(top)
        self.static_ip(top)
        self.redis(top)
        self.argocd_destination(top)
        if self.kind == "local":
            self.local_lists(top)
        services = Block()
        top.add("services", services)
        if self.kind == "global":
            self.global_services(services)
        else:
            self.local_services(services, top)
        return top

    def identity(self, top: Block) -> None:
        top.add("kind", self.kind)
        var = self.var("ENVIRONMENT")
        env_name = self.required("ENVIRONMENT", "name")
        if self.name_override:
            self.name = self.name_override
            entry = top.add("name", self.name, self.origin(var))
            if env_name and env_name != self.name:
                self.decision(entry, f"--name {self.name} differs from ENVIRONMENT={env_name}: the names this "
                                     f"spec derives (cluster daf-{self.name}, service accounts, Pub/Sub topics, "
                                     f"secret names) differ from the running cluster's.")
            return
        self.name = env_name
        if env_name and (not NAME_RE.match(env_name) or len(env_name) > NAME_MAX):
            self.fail(var, f"ENVIRONMENT {env_name!r} is not a valid cluster name (lowercase letters, digits and "
                           f"'-', starting with a letter, at most {NAME_MAX} characters): pass --name NAME")
        top.add("name", env_name, self.origin(var))

    def gcp(self, top: Block) -> None:
        gcp = Block()
        for key, name in (("project", "PROJECT_NAME"), ("region", "REGION"), ("zone", "ZONE")):
            gcp.add(key, self.required(name, f"gcp.{key}"), self.origin(self.var(name)))
        top.add("gcp", gcp)

    def global_server(self, top: Block) -> None:
        var = self.var("GLOBAL_SERVER")
        value = self.required("GLOBAL_SERVER", "global_server")
        bare = re.sub(r"^[a-z]+://", "", value).split("/")[0].lower()
        entry = top.add("global_server", bare, self.origin(var))
        if bare != value:
            entry.comment = "GLOBAL_SERVER without scheme or path (P13)"

    def data(self, top: Block) -> None:
        data = Block()
        data.add("project", self.required("DATA_PROJECT_NAME", "data.project"),
                 self.origin(self.var("DATA_PROJECT_NAME")))
        region = self.text("DATA_REGION", "data.region")
        if region:
            data.add("region", region, self.origin(self.var("DATA_REGION")))
        else:
            gcp_region = self.var("REGION")
            data.add("region", (gcp_region.text() if gcp_region else "") or "",
                     comment="DATA_REGION is not set: assumed the cluster's REGION")
            self.note("assumption", None, "data.region: DATA_REGION is not set; assumed REGION")
        data.add("bigtable_instance", self.required("BIGTABLE_INSTANCE_NAME", "data.bigtable_instance"),
                 self.origin(self.var("BIGTABLE_INSTANCE_NAME")))
        bucket = self.text("PCG_BUCKET_NAME", "data.pcg_bucket")
        if bucket:
            entry = data.add("pcg_bucket", _strip_gs(bucket), self.origin(self.var("PCG_BUCKET_NAME")))
            if bucket.startswith("gs://"):
                entry.comment = "gs:// dropped"
        top.add("data", data)

    def dns(self, top: Block) -> None:
        zone_var, domain_var = self.var("DNS_ZONE"), self.var("DOMAIN_NAME")
        zone = self.required("DNS_ZONE", "dns.zone")
        self.domain = self.required("DOMAIN_NAME", "dns.domain").lower().rstrip(".")
        self.primary = f"{self.name}.{self.domain}"
        dns = Block()
        dns.add("domain", self.domain, self.origin(domain_var), comment=f"primary hostname: {self.primary}")
        dns.add("zone", zone, self.origin(zone_var))
        zones = Block()
        dns.add("zones", zones)
        known = self.context.zones.get(zone)
        if known and (self.primary == known[0] or self.primary.endswith("." + known[0])):
            zones.add(zone, known[0], self.origin(zone_var), comment=f"as in environments/{known[1]}.yaml")
        else:
            zones.add(zone, self.domain, self.origin(zone_var),
                      comment="assumed: the zone of the primary hostname holds DOMAIN_NAME")
            self.note("assumption", zone_var, f"dns.zones.{zone}: its DNS name is assumed to be DOMAIN_NAME "
                                              f"({self.domain}); check `gcloud dns managed-zones describe {zone}`")
        hosts_var, zones_var = self.var("DNS_HOSTNAMES"), self.var("DNS_ZONES")
        hosts = self.items("DNS_HOSTNAMES", "dns.extra_hostnames")
        zone_names = self.items("DNS_ZONES", "dns.extra_hostnames[].zone")
        looks_like_hosts = any("." in z for z in zone_names[1:]) or (zone_names[1:] and zone_names[1:] == hosts[1:])
        bad_zones = bool(looks_like_hosts) or (len(zone_names) != len(hosts) and len(hosts) > 1)
        extras: list[Block] = []
        seen = {self.primary}
        for i, raw in enumerate(hosts):
            host = raw.lower().rstrip(".")
            if not host or host in seen:
                continue
            seen.add(host)
            item = Block()
            item.add("hostname", host, self.origin(hosts_var))
            z = None if bad_zones or i >= len(zone_names) else zone_names[i]
            zone_entry = item.add("zone", "", self.origin(zones_var))
            if z is None:
                z, how = self.guess_zone(host, zones)
                reason = ("DNS_ZONES repeats the hostnames instead of naming Cloud DNS zones (the "
                          "render_local_env.py bug, P11)" if looks_like_hosts else
                          "DNS_ZONES does not pair a zone with every hostname (P11)")
                self.decision(zone_entry, f"{reason}: zone {how}; check `gcloud dns managed-zones list`.")
            zone_entry.value = z
            self.add_zone(zones, z, host)
            extras.append(item)
        if extras:
            dns.add("extra_hostnames", Items(list(extras)))
        self.zone_owners(dns, zones)
        top.add("dns", dns)
        server = self.var("GLOBAL_SERVER")
        if self.kind == "global" and server is not None:
            bare = re.sub(r"^[a-z]+://", "", server.text() or "").split("/")[0].lower()
            self.reported.add("GLOBAL_SERVER")
            if bare in seen:
                self.note("derived", server, "GLOBAL_SERVER: a global cluster serves auth and info on its own "
                                             "hostnames")
            else:
                self.note("decision", server, f"GLOBAL_SERVER={bare} is not a hostname of this cluster; local specs "
                                              f"name this global cluster by one of its hostnames ({self.primary})")

    def zone_owners(self, dns: Block, zones: Block) -> None:
        """A zone an existing spec already creates stays that cluster's: this one only adds its records there
        (one zone per DNS name across the fleet; a second one could not be delegated)."""
        owners = Block()
        for entry in zones.entries:
            found = self.context.owners.get(str(entry.value))
            if found is None or found[0] != entry.key or found[1] == self.name:
                continue
            _, cluster, project = found
            owner = Block()
            owner.add("cluster", cluster)
            owner.add("project", project)
            owners.add(entry.key, owner, comment=f"created by environments/{cluster}.yaml: only our records here")
        if owners.entries:
            dns.add("zone_owners", owners)

    def items(self, name: str, to: str) -> list[str]:
        var = self.var(name)
        if var is None or isinstance(var.value, Computed):
            return []
        self.used[name] = to
        values = var.value if isinstance(var.value, tuple) else tuple(var.value.split())
        return [v.strip() for v in values]

    def guess_zone(self, host: str, zones: Block) -> tuple[str, str]:
        for entry in zones.entries:
            if isinstance(entry.value, str) and (host == entry.value or host.endswith("." + entry.value)):
                return entry.key, f"{entry.key} chosen because it holds {entry.value}"
        for zone, (dns_name, cluster) in sorted(self.context.zones.items()):
            if host == dns_name or host.endswith("." + dns_name):
                return zone, f"{zone} taken from environments/{cluster}.yaml ({dns_name})"
        parent = host.split(".", 1)[1] if host.count(".") >= 2 else host
        guess = re.sub(r"[^a-z0-9-]", "-", parent)[:63].strip("-")
        return guess, f"{guess} guessed from the hostname"

    def add_zone(self, zones: Block, zone: str, host: str) -> None:
        existing = zones.get(zone)
        if existing is not None:
            dns_name = str(existing.value)
            if host == dns_name or host.endswith("." + dns_name):
                return
            common = _common_suffix(dns_name, host)
            if common.count(".") >= 1:
                existing.value = common
                existing.comment = f"widened to hold {host}"
            return
        known = self.context.zones.get(zone)
        if known and (host == known[0] or host.endswith("." + known[0])):
            zones.add(zone, known[0], comment=f"as in environments/{known[1]}.yaml")
            return
        parent = host.split(".", 1)[1] if host.count(".") >= 2 else host
        entry = zones.add(zone, parent)
        self.decision(entry, f"the env file names zone {zone} but not its DNS name; guessed {parent} from "
                             f"{host}: check `gcloud dns managed-zones describe {zone} --format='value(dnsName)'`.")

    def tls(self, top: Block) -> None:
        tls = Block()
        tls.add("email", self.required("LETSENCRYPT_EMAIL", "tls.email"), self.origin(self.var("LETSENCRYPT_EMAIL")))
        server_var = self.var("LETSENCRYPT_SERVER")
        server = self.text("LETSENCRYPT_SERVER", "tls.acme")
        acme = tls.add("acme", ACME.get(server or "", "production"), self.origin(server_var))
        if server and server not in ACME:
            self.decision(acme, "LETSENCRYPT_SERVER is not a Let's Encrypt directory; the spec supports "
                                "production and staging only.")
        issuer = self.var("LETSENCRYPT_ISSUER_NAME")
        issuer_name = issuer.text() if issuer else None
        if issuer_name and acme.value == "production" and "staging" in issuer_name:
            acme.comment = f"LETSENCRYPT_ISSUER_NAME={issuer_name} but the server is production (P43)"
        top.add("tls", tls)

    def node_pools(self, top: Block) -> None:
        pools = [dict(p) for p in LAUNCH_POOLS[self.kind]]
        entry = top.add("node_pools", Items([Flow(p) for p in pools]))
        entry.above.append("node pools as CAVEdeployment's launch_cluster.sh creates them (the env file names no "
                           f"machine types); check `gcloud container node-pools list --cluster daf-{self.name} "
                           f"--zone {self.zone()}`")
        self.note("assumption", None, "node_pools: from CAVEdeployment's launch_cluster.sh")
        renamed = []
        for name, default in FIXED_VALUES.items():
            if name.endswith("_POOL") and (v := self.var(name)) and v.text() not in (None, default):
                renamed.append(f"{name}={v.text()}")
        if renamed:
            self.decision(entry, f"the env file renames node pools ({', '.join(renamed)}); the bases select the "
                                 "standard names standard-pool, lightweight-pool, mesh-pool and core-pool.")

    def static_ip(self, top: Block) -> None:
        """The regional address daf-<name>: the env file looks it up live; DNS records point at it."""
        var = self.var("EXTERNAL_IP_ADDRESS_WO_QUOTES")
        value = self.text("EXTERNAL_IP_ADDRESS_WO_QUOTES", "static_ip")
        if value and re.fullmatch(r"[0-9]{1,3}(\.[0-9]{1,3}){3}", value.strip("'\"")):
            top.add("static_ip", value.strip("'\""), self.origin(var))
            return
        region = (v.text() if (v := self.var("REGION")) else None) or "REGION"
        todo = (f"EXTERNAL_IP_ADDRESS_WO_QUOTES is looked up live (P03) and the DNS records point at that address: "
                f"set static_ip to it (`gcloud compute addresses describe daf-{self.name} --region {region} "
                "--format='value(address)'`)" + ("; `build` refuses this cluster until then." if self.gitops
                                                  else "."))
        top.entries.append(Entry("static_ip", Commented([f"static_ip: <the address of daf-{self.name}>"]), todo=todo))

    def argocd_destination(self, top: Block) -> None:
        if not self.gitops:
            return
        entry = top.add("argocd", Flow({"name": f"daf-{self.name}"}))
        self.decision(entry, f"the Argo CD destination: register the cluster as daf-{self.name} (`argocd cluster "
                             f"add CONTEXT --name daf-{self.name}`), or use {{server: https://kubernetes.default.svc}} "
                             "for the cluster Argo CD runs in.")

    def cloud_sql(self, top: Block) -> None:
        sql = Block()
        sql.add("instance", self.required("SQL_INSTANCE_NAME", "cloud_sql.instance"),
                self.origin(self.var("SQL_INSTANCE_NAME")))
        if self.kind == "local":
            sql.add("database_version", "POSTGRES_13", comment="launch_cluster.sh creates POSTGRES_13")
            self.note("assumption", None, "cloud_sql.database_version: POSTGRES_13, as launch_cluster.sh creates it")
        else:
            version = sql.add("database_version", "POSTGRES_13")
            self.decision(version, "CAVEdeployment's global launch_cluster.sh creates POSTGRES_9_6 (end of life, "
                                   "P54), which the spec does not accept: upgrade the instance and set the "
                                   "version it runs.")
        default_cpu, default_mem = SQL_DEFAULTS[self.kind]
        cpu = self.number("SQL_INSTANCE_CPU", "cloud_sql.tier") or default_cpu
        memory = self.number("SQL_INSTANCE_MEMORY", "cloud_sql.tier") or default_mem
        sql.add("tier", f"db-custom-{cpu}-{memory * 1024}", self.origin(self.var("SQL_INSTANCE_CPU")),
                comment=f"SQL_INSTANCE_CPU={cpu}, SQL_INSTANCE_MEMORY={memory} (GiB)")
        top.add("cloud_sql", sql)

    def redis(self, top: Block) -> None:
        redis = Block()
        hosts = ({"host": ("REDIS_IP", f"daf-redis-{self.name}", "TODO-redis-host")} if self.kind == "global" else
                 {"celery_host": ("MAT_REDIS_HOST", self._mat_redis_name(), "TODO-celery-redis-host"),
                  "pcg_host": ("PCG_REDIS_IP", "pcg-cache", "TODO-pcg-redis-host")})
        for key, (name, instance, placeholder) in hosts.items():
            var = self.var(name)
            value = self.text(name, f"redis.{key}")
            if value:
                redis.add(key, value, self.origin(var))
                continue
            entry = redis.add(key, placeholder, self.origin(var))
            region = (v.text() if (v := self.var("REGION")) else None) or "REGION"
            self.decision(entry, f"{name} is looked up live when the env file is sourced (P03); put the host of "
                                 f"Memorystore {instance} here (`gcloud redis instances describe {instance} "
                                 f"--region={region} --format='value(host)'`).")
            if var is not None:
                how = f"`{var.value.command}`" if isinstance(var.value, Computed) else "empty"
                self.note("live", var, f"{name}: {how} -> redis.{key}: placeholder {placeholder} (see below)")
                self.reported.add(name)
        top.add("redis", redis)

    def zone(self) -> str:
        return (v.text() if (v := self.var("ZONE")) else None) or "ZONE"

    def _mat_redis_name(self) -> str:
        var = self.var("MAT_REDIS_NAME")
        return (var.text() if var else None) or f"{(v.text() if (v := self.var('PROJECT_NAME')) else '')}-celery-redis"

    def local_lists(self, top: Block) -> None:
        stacks = self.convert("SUPPORTED_DATASTACKS", "datastacks", envvalues.name_list) or []
        top.add("datastacks", Flow(stacks), self.origin(self.var("SUPPORTED_DATASTACKS")))
        groups_var = self.var("ANNOTATION_EXCLUDED_PERMISSION_GROUPS")
        misassigned = self.env.misassigned.get("ANNOTATION_EXCLUDED_PERMISSION_GROUPS")
        if groups_var is not None:
            groups = self.convert("ANNOTATION_EXCLUDED_PERMISSION_GROUPS", "annotation_excluded_groups",
                                  envvalues.name_list) or []
            if groups:
                top.add("annotation_excluded_groups", Flow(groups), self.origin(groups_var))
        elif misassigned is not None and isinstance(misassigned.value, str) and misassigned.value.strip():
            groups = envvalues.name_list(misassigned.value)
            entry = top.add("annotation_excluded_groups", Flow(groups), Origin(misassigned.line, misassigned.col,
                                                                                misassigned.name))
            self.decision(entry, f"line {misassigned.line} has spaces around '=', so bash never set "
                                 "ANNOTATION_EXCLUDED_PERMISSION_GROUPS and the running cluster excludes no "
                                 "groups (P17). Keep this list (what the line meant) or remove it.")
            self.used["ANNOTATION_EXCLUDED_PERMISSION_GROUPS"] = "annotation_excluded_groups"

    # ------------------------------------------------------------------ services

    def switch(self, service: str, names: tuple[str, ...]) -> tuple[bool | None, Var | None]:
        """Whether any of the service's switches is > 0 (None: the file sets none of them)."""
        found = [(n, v) for n in names if (v := self.var(n)) is not None]
        if not found:
            return None, None
        for n, _ in found:
            self.number(n, f"services.{service}.enabled")
        on = any(self.peek(n) > 0 for n, _ in found)
        return on, next((v for n, v in found if self.peek(n) > 0), found[0][1])

    def replicas(self, service: str, workload: str, min_name: str | None, max_name: str) -> Entry | None:
        """`{min, max}` (autoscaled workloads) or a number (fixed ones), as the catalogue says."""
        main = catalog.BY_NAME[service].main.name == workload
        to = f"services.{service}" + ("" if main else f".workloads.{workload}") + ".replicas"
        high = self.number(max_name, to)
        low = self.number(min_name, to) if min_name else None
        if high is None and low is None:
            return None
        scaling = catalog.BY_NAME[service].workload(workload)
        assert scaling is not None
        if scaling.scaling == "fixed":
            entry = Entry("replicas", high if high is not None else low, self.origin(self.var(max_name)))
            if entry.value == 0 and workload == "celery-beat-scheduler":
                entry.comment = "materialization paused (CELERY_BEAT_REPLICAS=0, P56)"
            return entry
        low = 1 if low is None else low
        high = max(low, 1) if high is None else high
        at = self.var(min_name) if min_name and low > high else self.var(max_name)
        entry = Entry("replicas", Flow({"min": max(low, 1), "max": high}), self.origin(at))
        if low < 1 <= high:
            entry.comment = f"{min_name}={low}: an HPA needs min >= 1 (P19)"
        if high < 1:
            entry.value = Flow({"min": 1, "max": 1})
            self.decision(entry, f"{max_name}=0 turned {workload} off in CAVEdeployment; the spec runs every "
                                 f"workload of an enabled {service}: keep 1 pod or disable {service}.")
        return entry

    def service(self, services: Block, name: str, vars_: ServiceVars, enabled: bool, switch: Var | None) -> None:
        """One services.<name> entry: enabled, version, replicas, then the service's own settings."""
        block = Block()
        entry = Entry(name, block, self.origin(switch))
        self.current = entry
        if not enabled:
            block.add("enabled", False, comment=f"{switch.name}=0 in the env file" if switch else "")
        version = self.text(vars_.version, f"services.{name}.version")
        skip: Skip | None = None
        if version:
            block.add("version", version, self.origin(self.var(vars_.version)))
        elif vars_.version_optional:
            skip = Skip(f"{vars_.version} is not set", soft=True,
                        todo=f"{vars_.version} was never declared in CAVEdeployment (4.5), so {name} ran an "
                             f"unpullable image tagged `v`; add services.{name} with its version to run it.")
        else:
            skip = Skip(f"{vars_.version} is not set")
        workloads = Block()
        for workload, (min_name, max_name) in vars_.scale.items():
            if not enabled:
                for n in (min_name, max_name):
                    if n and self.var(n) is not None:
                        self.used.setdefault(n, f"services.{name} (enabled: false)")
                continue
            got = self.replicas(name, workload, min_name, max_name)
            if got is None:
                continue
            if workload == catalog.BY_NAME[name].main.name:
                block.entries.append(got)
            else:
                workloads.add(workload, Block([got]))
        filler = getattr(self, f"fill_{name}", None)
        problems = len(self.problems)
        if skip is None and filler is not None:
            skip = filler(block, workloads, enabled)
        if skip is not None:
            why = f"{skip.reason} ({switch.name}={switch.text()})" if enabled and switch else skip.reason
            if len(self.problems) > problems:
                return  # the value is there but wrong: that problem says what to fix
            if enabled and not skip.soft:
                self.fail(switch or self.var(vars_.version),
                          f"{skip.reason} but {name} runs: set it" if switch else f"{skip.reason}: set it")
                return
            for n in (vars_.version, *vars_.switches, *(v for pair in vars_.scale.values() for v in pair if v)):
                if n in self.used:
                    self.used[n] = f"services.{name} (not imported)"
            services.entries.append(Entry(name, Commented([f"{name}: not imported: {why}."]),
                                          todo=(skip.todo or f"{why}.") if enabled else ""))
            if not enabled:
                self.note("unused", switch, f"services.{name}: not imported (it is off): {why}")
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

    def global_services(self, services: Block) -> None:
        for name, vars_ in GLOBAL_SERVICES.items():
            self.service(services, name, vars_, True, None)
        self.auth_info(services)

    def auth_info(self, services: Block) -> None:
        block = Block()
        block.add("version", AUTH_INFO_NGINX, comment="nginx image tag; CAVEdeployment pulled untagged nginx (P35)")
        services.add("auth_info", block)
        self.note("assumption", None, f"services.auth_info.version: nginx {AUTH_INFO_NGINX} (CAVEdeployment used an "
                                      "untagged image)")

    def local_services(self, services: Block, top: Block) -> None:
        self.graph_ids = self.convert("PCG_GRAPH_IDS", "services.pychunkedgraph.graph_ids", envvalues.name_list) or []
        self.mat_stacks = self.convert("MAT_DATASTACKS", "services.materializationengine.datastacks",
                                       envvalues.name_list) or []
        states = {name: self.switch(name, v.switches) for name, v in LOCAL_SERVICES.items()}
        if any(states[n][0] for n in ("meshing", "l2cache")) and not states["pychunkedgraph"][0]:
            # meshing and the L2 cache read the PyChunkedGraph's settings (rules.segmentation)
            states["pychunkedgraph"] = (False, states["pychunkedgraph"][1])
        for name, vars_ in LOCAL_SERVICES.items():
            on, switch = states[name]
            if on is not None:
                self.service(services, name, vars_, on, switch)
        self.auth_info(services)
        self.datastacks_used(top)

    # ------------------------------------------------------------------ per-service settings

    def fill_auth(self, block: Block, workloads: Block, enabled: bool) -> Skip | None:
        admins = self.convert("AUTH_DEFAULT_ADMINS", "services.auth.default_admins", envvalues.default_admins)
        if admins:
            block.add("default_admins", Items([Flow(a) for a in admins]), self.origin(self.var("AUTH_DEFAULT_ADMINS")))
        return None

    def fill_infoservice(self, block: Block, workloads: Block, enabled: bool) -> Skip | None:
        url = self.text("NEUROGLANCER_VIEWER_URL", "services.infoservice.neuroglancer_url")
        if url:
            block.add("neuroglancer_url", url, self.origin(self.var("NEUROGLANCER_VIEWER_URL")))
        return None

    def fill_nglstate(self, block: Block, workloads: Block, enabled: bool) -> Skip | None:
        namespace = self.text("JSON_DB_TABLE_NAME", "services.nglstate.datastore_namespace")
        if not namespace:
            return Skip("JSON_DB_TABLE_NAME (the Datastore namespace of the links) is not set")
        entry = block.add("datastore_namespace", namespace, self.origin(self.var("JSON_DB_TABLE_NAME")))
        if not NAME_RE.match(namespace):
            entry.value = re.sub(r"[^a-z0-9-]+", "-", namespace.lower()).strip("-") or "ngl-links"
            self.decision(entry, f"the running nglstate keeps links in Datastore namespace {namespace!r}, which the "
                                 "spec's datastore_namespace does not accept (lowercase letters, digits, '-'); this "
                                 "value is a new, empty namespace. Keeping the old links needs a spec change.")
        bucket = self.text("NGLSTATE_BUCKET_NAME", "services.nglstate.bucket")
        if bucket:
            block.add("bucket", _strip_gs(bucket), self.origin(self.var("NGLSTATE_BUCKET_NAME")))
        return None

    def fill_materializationengine(self, block: Block, workloads: Block, enabled: bool) -> Skip | None:
        svc = "services.materializationengine"
        stacks = self.mat_stacks
        if not stacks:
            return Skip("MAT_DATASTACKS is not set")
        api = self.peek("MAT_MAX_REPLICAS") > 0
        workers = self.peek("CELERY_PRODUCER_MIN_REPLICAS") > 0
        if enabled and not (api and workers):
            off = "API (MAT_MAX_REPLICAS=0)" if workers else "workers (CELERY_PRODUCER_MIN_REPLICAS=0)"
            self.decision(self.current, f"CAVEdeployment ran without the {off}; the spec runs the API and the "
                                        "workers together.")
        memory = self.text("MAT_SERVICE_MEM", f"{svc}.resources.memory")
        if memory and memory != LOCAL_DEFAULTS["MAT_SERVICE_MEM"]:
            block.add("resources", Flow({"cpu": "200m", "memory": memory}), self.origin(self.var("MAT_SERVICE_MEM")),
                      comment="cpu: the base's request")
        entry = block.add("datastacks", Flow(stacks), self.origin(self.var("MAT_DATASTACKS")))
        if len(stacks) > 1:
            entry.comment = "MAT_DATASTACKS split into a list (P14)"
        if enabled:
            self.stacks_used.extend((s, "materializationengine") for s in stacks)
        volume = self.text("MAT_HEALTH_ALIGNED_VOLUME_NAME", f"{svc}.health_aligned_volume")
        if volume:
            block.add("health_aligned_volume", volume, self.origin(self.var("MAT_HEALTH_ALIGNED_VOLUME_NAME")))
        elif enabled:
            return Skip("MAT_HEALTH_ALIGNED_VOLUME_NAME (an aligned volume whose database exists, P23) is not set")
        for name, key, default in (("MIN_DATABASES", "min_databases", 1), ("MAX_DATABASES", "max_databases", 2)):
            value = self.number(name, f"{svc}.{key}")
            if value is not None and value != default:
                block.add(key, value, self.origin(self.var(name)))
        if self.convert("MERGE_MATERIALIZE_DATABASES", f"{svc}.merge_databases", envvalues.python_bool) is False:
            block.add("merge_databases", False, self.origin(self.var("MERGE_MATERIALIZE_DATABASES")))
        limit = self.number("MAT_QUERY_LIMIT_SIZE", f"{svc}.query_limit_size")
        if limit is not None and limit != 500000:
            block.add("query_limit_size", limit, self.origin(self.var("MAT_QUERY_LIMIT_SIZE")))
        level = self.text("MAT_LOG_LEVEL", f"{svc}.log_level")
        if level and level.upper() != "WARNING":
            block.add("log_level", level.upper(), self.origin(self.var("MAT_LOG_LEVEL")))
        self.buckets(block)
        limits = {}
        for name, key, default in (("LIMITS_QUERY_PER_MINUTE", "query_per_minute", 200),
                                   ("LIMITS_FAST_QUERY_PER_MINUTE", "fast_query_per_minute", 2000)):
            value = self.number(name, f"{svc}.limits.{key}")
            if value is not None and value != default:
                limits[key] = value
        if limits:
            block.add("limits", Flow(limits), self.origin(self.var("LIMITS_QUERY_PER_MINUTE")))
        consumer = self.number("CELERY_CONSUMER_CONCURRENCY", f"{svc}.celery_consumer_concurrency")
        producer = self.number("CELERY_PRODUCER_CONCURRENCY", f"{svc}.celery_producer_concurrency")
        if producer is not None and consumer is not None and producer != consumer:
            block.add("celery_producer_concurrency", producer, self.origin(self.var("CELERY_PRODUCER_CONCURRENCY")))
            block.add("celery_consumer_concurrency", consumer, self.origin(self.var("CELERY_CONSUMER_CONCURRENCY")))
        elif (concurrency := consumer or producer) is not None and concurrency != 2:
            block.add("celery_concurrency", concurrency, self.origin(self.var("CELERY_CONSUMER_CONCURRENCY")))
        self.celery(workloads)
        self.beat_schedule(block)
        return None

    def buckets(self, block: Block) -> None:
        svc = "services.materializationengine"
        for name in ("MATERIALIZATION_UPLOAD_BUCKET_PATH", "MATERIALIZATION_UPLOAD_BUCKET_NAME"):
            upload = self.text(name, f"{svc}.upload_bucket")
            if upload:
                bucket = _strip_gs(upload).split("/")[0]
                entry = block.add("upload_bucket", bucket, self.origin(self.var(name)))
                if bucket != upload:
                    entry.comment = "plain bucket name (P16)"
                break
        dump = self.text("MATERIALIZATION_DUMP_BUCKET_NAME", f"{svc}.dump_bucket")
        if dump:
            block.add("dump_bucket", _strip_gs(dump), self.origin(self.var("MATERIALIZATION_DUMP_BUCKET_NAME")))

    def celery(self, workloads: Block) -> None:
        svc = "services.materializationengine.workloads"
        cpu = self.text("CELERY_CPU", f"{svc}.celery-*.resources.cpu") or "500m"
        memory = self.text("CELERY_MEMORY", f"{svc}.celery-*.resources.memory") or "400Mi"
        if (cpu, memory) != ("500m", "400Mi"):
            for workload in ("celery-producer", "celery-consumer"):
                settings = workloads.get(workload)
                resources = Entry("resources", Flow({"cpu": cpu, "memory": memory}),
                                  self.origin(self.var("CELERY_CPU")))
                if settings is None:
                    workloads.add(workload, Block([resources]))
                else:
                    assert isinstance(settings.value, Block)
                    settings.value.entries.append(resources)

    def beat_schedule(self, block: Block) -> None:
        var = self.var("MAT_BEAT_SCHEDULES")
        if var is None:
            return
        to = "services.materializationengine.beat_schedule"
        content = self.file_content(var, to)
        if content is None:
            entry = block.add("beat_schedule", Flow([]), self.origin(var))
            self.decision(entry, "the schedule file MAT_BEAT_SCHEDULES reads was not found; fill in the schedule as a "
                                 "list of {name, task, minute, hour, day_of_week, day_of_month}.")
            return
        path, text = content
        try:
            entries, dropped = envvalues.beat_schedule(text)
        except envvalues.ConvertError as err:
            raise UserError([Problem(str(path), err.line or 1, err.col or 1,
                                     f"{err.reason} (fix the schedule file MAT_BEAT_SCHEDULES reads on "
                                     f"{self.display}:{var.line})")]) from None
        entry = block.add("beat_schedule", Items([Flow(e) for e in entries]), self.origin(var))
        self.used["MAT_BEAT_SCHEDULES"] = to
        self.note("file", var, f"MAT_BEAT_SCHEDULES: {path} -> {to} ({len(entries)} entries)")
        if dropped:
            self.decision(entry, f"the schedule file has keys the spec does not know ({', '.join(dropped)}); "
                                 "they were left out.")

    def file_content(self, var: Var, to: str) -> tuple[Path, str] | None:
        """The text of the file a `$(cat FILE)` value reads, relative to the env file (or absolute)."""
        if not isinstance(var.value, Computed):
            text = var.text()
            return (Path(self.display), text) if text and text.strip() else None  # inlined by hand
        if var.value.how != "file" or not var.value.path:
            self.note("file", var, f"{var.name}: computed by `{var.value.command}`, not a file read; fill in {to}")
            self.reported.add(var.name)
            return None
        raw = os.path.expanduser(var.value.path)
        candidates = [Path(raw)] if os.path.isabs(raw) else [self.env_dir / raw, self.env_dir / Path(raw).name]
        for path in candidates:
            if path.is_file():
                try:
                    return path, path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    break
        self.note("file", var, f"{var.name}: {raw} not found beside the env file; fill in {to}")
        self.reported.add(var.name)
        return None

    def fill_pychunkedgraph(self, block: Block, workloads: Block, enabled: bool) -> Skip | None:
        svc = "services.pychunkedgraph"
        if not self.graph_ids:
            return Skip("PCG_GRAPH_IDS is not set")
        if enabled:
            cpu = self.number("PYCG_MILLI_CPU", f"{svc}.resources.cpu")
            mib = self.number("PYCG_MEM_MIB", f"{svc}.resources.memory")
            if cpu and mib:
                self.map_to("PYCG_MEM_GIB", f"{svc}.resources.memory (as PYCG_MEM_MIB of convert_variables.sh)")
                block.add("resources", Flow({"cpu": f"{cpu}m", "memory": f"{mib}Mi"}),
                          self.origin(self.var("PYCG_MEM_GIB")))
            read_cpu = self.number("PYCG_READ_MILLI_CPU", f"{svc}.workloads.pychunkedgraph-read.resources.cpu")
            read_mib = self.number("PYCG_READ_MEM_MIB", f"{svc}.workloads.pychunkedgraph-read.resources.memory")
            if read_cpu and read_mib:
                self.map_to("PYCG_READ_MEM_GIB", f"{svc}.workloads.pychunkedgraph-read.resources.memory")
                resources = Entry("resources", Flow({"cpu": f"{read_cpu}m", "memory": f"{read_mib}Mi"}),
                                  self.origin(self.var("PYCG_READ_MILLI_CPU")))
                settings = workloads.get("pychunkedgraph-read")
                if settings is None:
                    workloads.add("pychunkedgraph-read", Block([resources]))
                else:
                    assert isinstance(settings.value, Block)
                    settings.value.entries.append(resources)
        block.add("graph_ids", Flow(self.graph_ids), self.origin(self.var("PCG_GRAPH_IDS")))
        config_var = self.var("PCG_CONFIG")
        if config_var is not None and (config_var.text() or "").strip():
            config = self.convert("PCG_CONFIG", f"{svc}.config", envvalues.pcg_config)
            if config:
                block.add("config", Block([Entry(k, v) for k, v in config.items()]), self.origin(config_var))
        logs = {}
        for name, key in (("PCG_SERVER_ENABLE_LOGS", "enabled"), ("PCG_SERVER_LOGS_LEAVES_MANY", "leaves_many")):
            if self.convert(name, f"{svc}.server_logs.{key}", envvalues.python_bool):
                logs[key] = True
        if logs:
            block.add("server_logs", Flow(logs), self.origin(self.var("PCG_SERVER_ENABLE_LOGS")))
        return None

    def fill_meshing(self, block: Block, workloads: Block, enabled: bool) -> Skip | None:
        if enabled:
            off = [n for n in LOCAL_SERVICES["meshing"].switches if self.peek(n) <= 0]
            if off:
                self.decision(self.current, f"{', '.join(off)} = 0 in the env file, but the spec runs the meshing "
                                            "API and both mesh workers together.")
        return None

    def fill_l2cache(self, block: Block, workloads: Block, enabled: bool) -> Skip | None:
        var = self.var("L2CACHE_CONFIG")
        content = self.file_content(var, "services.l2cache.tables") if var else None
        if content is not None:
            path, text = content
            try:
                tables = envvalues.l2_tables(text)
            except envvalues.ConvertError as err:
                raise UserError([Problem(str(path), err.line or 1, err.col or 1,
                                         f"{err.reason} (fix the L2 table map L2CACHE_CONFIG reads on "
                                         f"{self.display}:{var.line if var else 0})")]) from None
            block.add("tables", Block([Entry(g, Flow(t)) for g, t in tables.items()]), self.origin(var))
            self.used["L2CACHE_CONFIG"] = "services.l2cache.tables"
            self.note("file", var, f"L2CACHE_CONFIG: {path} -> services.l2cache.tables ({len(tables)} tables)")
            return None
        if not self.graph_ids:
            return Skip("neither the file L2CACHE_CONFIG reads nor PCG_GRAPH_IDS names its tables")
        guessed = Block()
        for graph_id in self.graph_ids:
            guessed.add(graph_id, Flow({"cv_path": f"graphene://https://{self.primary}/segmentation/table/{graph_id}",
                                        "l2cache_id": f"TODO-l2cache-{graph_id}"}))
        entry = block.add("tables", guessed, self.origin(var))
        self.decision(entry, "the L2 table map file (L2CACHE_CONFIG) was not found: tables guessed from PCG_GRAPH_IDS; "
                             "set each l2cache_id to its Bigtable L2 cache table.")
        return None

    def fill_skeletoncache(self, block: Block, workloads: Block, enabled: bool) -> Skip | None:
        svc = "services.skeletoncache"
        bucket = self.text("SKELETON_CACHE_BUCKET", f"{svc}.bucket")
        if not bucket:
            return Skip("SKELETON_CACHE_BUCKET is not set")
        entry = block.add("bucket", _strip_gs(bucket), self.origin(self.var("SKELETON_CACHE_BUCKET")))
        if bucket.startswith("gs://"):
            entry.comment = "gs:// dropped: the config prepends it (P15)"
        rate = self.number("LIMITS_SKELETON_REQUESTS_PER_MINUTE", f"{svc}.requests_per_minute")
        if rate is not None and rate != 100:
            block.add("requests_per_minute", rate, self.origin(self.var("LIMITS_SKELETON_REQUESTS_PER_MINUTE")))
        remapping = self.convert("SKELETON_DATASTACK_NAME_REMAPPING", f"{svc}.datastack_name_remapping",
                                 envvalues.string_map)
        if remapping:
            block.add("datastack_name_remapping", Flow(remapping),
                      self.origin(self.var("SKELETON_DATASTACK_NAME_REMAPPING")))
        server = self.text("SKELETON_INTEGRATION_TEST_SERVER", f"{svc}.integration_test.server")
        stack = self.text("SKELETON_INTEGRATION_TEST_DATASTACK__DEFAULT", f"{svc}.integration_test.datastack")
        if server and stack:
            block.add("integration_test", Flow({"server": re.sub(r"^[a-z]+://", "", server).split("/")[0],
                                                "datastack": stack}),
                      self.origin(self.var("SKELETON_INTEGRATION_TEST_SERVER")))
        return None

    def fill_guidebook(self, block: Block, workloads: Block, enabled: bool) -> Skip | None:
        svc = "services.guidebook"
        datastack = self.text("GUIDEBOOK_DATASTACK", f"{svc}.datastack")
        if not datastack:
            return Skip("GUIDEBOOK_DATASTACK is not set")
        block.add("datastack", datastack, self.origin(self.var("GUIDEBOOK_DATASTACK")))
        if enabled:
            self.stacks_used.append((datastack, "guidebook"))
        res = self.convert("GUIDEBOOK_EXPECTED_RESOLUTION", f"{svc}.expected_resolution", envvalues.resolution)
        if not res:
            return Skip("GUIDEBOOK_EXPECTED_RESOLUTION is not set")
        block.add("expected_resolution", Flow(res), self.origin(self.var("GUIDEBOOK_EXPECTED_RESOLUTION")))
        for name, key, default in (("GUIDEBOOK_N_PARALLEL", "n_parallel", 1),
                                   ("GUIDEBOOK_INVALIDATION_D", "invalidation_d", 3)):
            value = self.number(name, f"{svc}.{key}")
            if value is not None and value != default:
                block.add(key, value, self.origin(self.var(name)))
        return None

    def fill_tourguide(self, block: Block, workloads: Block, enabled: bool) -> Skip | None:
        level = self.text("TOURGUIDE_LOG_LEVEL", "services.tourguide.log_level")
        if level and level.upper() != "INFO":
            block.add("log_level", level.upper(), self.origin(self.var("TOURGUIDE_LOG_LEVEL")))
        timeout = self.number("TOURGUIDE_TIMEOUT", "services.tourguide.timeout")
        if timeout is not None and timeout != 300:
            block.add("timeout", timeout, self.origin(self.var("TOURGUIDE_TIMEOUT")))
        url = self.text("TOURGUIDE_NEUROGLANCER_URL", "services.tourguide.neuroglancer_url")
        if url:
            block.add("neuroglancer_url", url, self.origin(self.var("TOURGUIDE_NEUROGLANCER_URL")))
        return None

    def fill_dash(self, block: Block, workloads: Block, enabled: bool) -> Skip | None:
        var = self.var("DASH_CONFIG")
        content = self.file_content(var, "services.dash.apps") if var else None
        todo = ("add services.dash with `apps` (datastack -> app -> {create_app, config}) from the dash config.py "
                "DASH_CONFIG reads.")
        if content is None:
            return Skip("the dash config file DASH_CONFIG reads was not found", soft=True, todo=todo)
        path, text = content
        try:
            apps, had_secret = envvalues.dash_apps(text)
        except envvalues.ConvertError as err:
            return Skip(f"{path}:{err.line}:{err.col}: {err.reason}", soft=True, todo=todo)
        self.used["DASH_CONFIG"] = "services.dash.apps"
        self.note("file", var, f"DASH_CONFIG: {path} -> services.dash.apps ({sum(map(len, apps.values()))} apps)")
        if had_secret:
            self.note("secret", var, f"DASH_CONFIG: {path} sets SECRET_KEY; ignored (the dash pods read "
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
                self.stacks_used.append((datastack, "dash"))
        block.add("apps", apps_block, self.origin(var))
        return None

    def fill_pmanagement(self, block: Block, workloads: Block, enabled: bool) -> Skip | None:
        svc = "services.pmanagement"
        for name, key, example in (("PMANAGEMENT_PROOFREADING_TABLE", "proofreading_table",
                                    "proofreading_status_public_v1"),
                                   ("PMANAGEMENT_NEURONINFORMATION_TABLE", "neuroninformation_table",
                                    "neuron_information_v2")):
            value = self.text(name, f"{svc}.{key}")
            entry = block.add(key, value or example, self.origin(self.var(name)))
            if not value:
                self.decision(entry, f"{name} was never declared in CAVEdeployment (4.5); this is the deployment "
                                     "protocol's example: set the table pmanagement uses.")
        database = self.text("AUTH_DATABASE_NAME", f"{svc}.auth_database_name")
        entry = block.add("auth_database_name", database or "fafb", self.origin(self.var("AUTH_DATABASE_NAME")))
        if not database:
            self.decision(entry, "CAVEdeployment hard-coded AUTH_DATABASE_NAME=fafb in pmanagement.yml: set the auth "
                                 "database this cluster's pmanagement uses.")
        return None

    def fill_proxy(self, block: Block, workloads: Block, enabled: bool) -> Skip | None:
        mapping = self.convert("PROXY_MAP", "services.proxy.map", envvalues.proxy_map)
        if not mapping:
            return Skip("PROXY_MAP (datastack -> bucket URL) is not set")
        block.add("map", Block([Entry(k, v) for k, v in mapping.items()]), self.origin(self.var("PROXY_MAP")))
        return None

    def fill_cavecanary(self, block: Block, workloads: Block, enabled: bool) -> Skip | None:
        if not self.mat_stacks:
            return Skip("MAT_DATASTACKS (the canary's DATASTACK_NAME) is not set")
        entry = block.add("datastack", self.mat_stacks[0], self.origin(self.var("MAT_DATASTACKS")))
        if len(self.mat_stacks) > 1:
            entry.comment = "the first of MAT_DATASTACKS"
        if enabled:
            self.stacks_used.append((self.mat_stacks[0], "cavecanary"))
        channel = self.text("SLACK_CHANNEL", "services.cavecanary.slack_channel")
        if not channel:
            return Skip("SLACK_CHANNEL is not set")
        block.add("slack_channel", channel, self.origin(self.var("SLACK_CHANNEL")))
        return None

    def datastacks_used(self, top: Block) -> None:
        entry = top.get("datastacks")
        assert entry is not None and isinstance(entry.value, Flow)
        supported: list[str] = entry.value.data
        added: dict[str, list[str]] = {}
        for stack, by in self.stacks_used:
            if stack not in supported:
                added.setdefault(stack, []).append(by)
        supported.extend(added)
        if added:
            names = "; ".join(f"{s} (used by {', '.join(dict.fromkeys(b))})" for s, b in added.items())
            self.decision(entry, f"added to SUPPORTED_DATASTACKS: {names}. The rules require every datastack a "
                                 "service uses to be listed; auth_info will now advertise it.")
        if not supported:
            self.fail(self.var("SUPPORTED_DATASTACKS"), "SUPPORTED_DATASTACKS is empty and no service names a "
                                                       "datastack: set it (e.g. '\"my_datastack\"')")

    # ------------------------------------------------------------------ secrets and the report

    def secrets(self, spec: ClusterSpec) -> Block:
        """Secret Manager names for the secret variables the file sets; their values are never read here."""
        block = Block()
        for name, key in SECRET_KEYS[self.kind].items():
            var = self.var(name)
            if var is None or var.origin != "file":
                continue
            secret = secret_manager_name(spec, key)
            block.add(key, secret, self.origin(var))
            detail = ""
            if isinstance(var.value, Computed):
                detail = f" (computed by `{var.value.command}`: upload it by hand)"
            elif not var.text():
                detail = " (empty in the env file: create the secret by hand)"
            self.note("secret", var, f"{name} -> secrets.{key}: Secret Manager secret {secret}{detail}")
            self.reported.add(name)
        if block.entries:
            self.note("secret", None, f"upload their values with `gcloud secrets versions add NAME --data-file=-`; "
                                      f"`python -m compiler bootstrap {self.name}` generates the random ones and "
                                      "lists the rest")
        for key, where in FILE_SECRETS[self.kind].items():
            self.note("secret", None, f"secrets.{key}: Secret Manager secret {secret_manager_name(spec, key)}, "
                                      f"from the file {where.replace('<env>', self.name)} (not in the env file)")
        return block

    def classify(self) -> None:
        """Report every variable: where it went, or why it did not go anywhere."""
        secret_lines = {ln for name in SECRET_VARIABLES if (v := self.var(name)) for ln in v.lines}
        for name, var in sorted(self.env.variables.items(), key=lambda kv: (kv[1].line, kv[0])):
            if name in self.reported or (var.origin != "file" and not var.text() and not var.lines):
                continue
            if name in self.used:
                self.note("mapped", var, f"{name} -> {self.used[name]}")
                continue
            if var.origin != "file" and not var.lines:
                continue
            cls, what = KNOWN.get(name, ("unknown", ""))
            if var.origin == "convert_variables.sh":
                what = f"{what} (convert_variables.sh sets it again after the file)"
            value = var.text()
            if cls == "secret":
                if name.endswith("REDIS_PASSWORD") and (value or isinstance(var.value, Computed)):
                    self.note("decision", var, f"{name} is set, but the spec's Memorystore has no AUTH password: "
                                               "drop the password, or ask for spec support before moving")
                else:
                    self.note("unused", var, f"{name}: a secret no {self.kind} cluster's service reads")
                continue
            fixed = FIXED_VALUES.get(name)
            if fixed is not None and value not in (None, fixed):
                self.note("decision", var, f"{name}={value} differs from CAVEdeployment's {fixed}, which the "
                                           "compiler always uses: the spec cannot keep it")
            elif (isinstance(var.value, Computed) and var.value.how == "live") or cls == "live":
                how = f"`{var.value.command}`; " if isinstance(var.value, Computed) else ""
                self.note("live", var, f"{name}: {how}{what or 'not imported'}")
            elif cls == "unknown":
                self.note("unknown", var, name)
            elif cls == "derived":
                self.note("derived", var, f"{name}: {what}")
            else:
                self.note("unused", var, f"{name}: {what}")
        for name, var in self.env.misassigned.items():
            if name not in self.used:
                self.note("shell", var, f"{name}: spaces around '=', so bash never set it (not imported)")
        for note in self.env.notes:
            self.shell_note(note, secret_lines)

    def shell_note(self, note: Note, secret_lines: set[int]) -> None:
        where = f"{self.display}:{note.line}"
        if note.kind == "block":
            names = ", ".join(note.names) or "no variables"
            self.lines.append(Line("shell", where, f"`{note.what}` block skipped (sets {names})"))
        elif note.kind == "command":
            what = "the rest of a secret's line" if note.line in secret_lines else f"`{note.what}`"
            extra = " (quote the value: bash runs the text after ';' as a command, P18)" \
                if note.line in secret_lines else ""
            self.lines.append(Line("shell", where, f"command {what} ignored{extra}"))
        elif note.kind == "prefix":
            names = ", ".join(note.names)
            self.lines.append(Line("decision", where, f"{names}: the value ends at an unquoted space and bash runs "
                                                      f"the rest as a command, so {names} is never set (quote the "
                                                      "value)"))
        elif note.kind == "source":
            self.lines.append(Line("shell", where, f"`{note.what}` of another file ignored: its variables are not "
                                                   "imported"))
        elif note.kind == "unset-ref":
            self.lines.append(Line("shell", where, f"${note.what} is not set here (expands to nothing)"))
        elif note.kind == "unset":
            self.lines.append(Line("shell", where, f"unset {note.what}"))


def _strip_gs(value: str) -> str:
    return value.removeprefix("gs://").rstrip("/")


def _common_suffix(a: str, b: str) -> str:
    out: list[str] = []
    for x, y in zip(reversed(a.split(".")), reversed(b.split(".")), strict=False):
        if x != y:
            break
        out.append(x)
    return ".".join(reversed(out))


def _tree(value: Any) -> Node:
    """Nested config data as blocks (readable), with lists and small mappings of scalars on one line."""
    if isinstance(value, dict) and value and any(isinstance(v, dict | list) for v in value.values()):
        return Block([Entry(str(k), _tree(v)) for k, v in value.items()])
    if isinstance(value, dict | list):
        return Flow(value)
    return value  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- validation


class _EnvDocument(Document):
    """Spec data whose positions are the env file's lines; problems name the variable set there."""

    def __init__(self, display: str, data: Any, where: dict[Loc, Origin]) -> None:
        positions = {loc: (o.line, o.col, o.line, o.col) for loc, o in where.items()}
        super().__init__(display, data, positions)
        self._where = where

    def problem(self, loc: Loc, message: str = "", *, key: bool = False) -> Problem:
        found = super().problem(loc, message, key=key)
        for n in range(len(loc), 0, -1):
            origin = self._where.get(loc[:n])
            if origin is not None:
                return Problem(found.path, found.line, found.col, f"{origin.name}: {message}")
        return found


def _existing(root: Path, skip: str | None) -> dict[str, load.Loaded]:
    if not load.spec_files(root):
        return {}
    loaded = load.load_all(root)
    return {k: v for k, v in loaded.items() if k != skip}


def _context(existing: dict[str, load.Loaded]) -> _Context:
    ctx = _Context()
    for name, item in sorted(existing.items()):
        for zone, dns_name in item.spec.dns.zones.items():
            ctx.zones.setdefault(zone, (dns_name, name))
            if zone_owner(item.spec, zone) == name and zone in derive(item.spec).hostname_zones:
                ctx.owners.setdefault(dns_name, (zone, name, zone_project(item.spec, zone)))
        if isinstance(item.spec, GlobalCluster):
            for host in derive(item.spec).hostnames:
                ctx.global_hosts[host] = name
    return ctx


def _validate(root: Path, mapper: _Mapper, tree: Block, existing: dict[str, load.Loaded]) -> ClusterSpec:
    doc = _EnvDocument(mapper.display, plain(tree), origins(tree))
    spec, problems = load.validate_document(doc)
    if problems:
        raise UserError(problems)
    assert spec is not None
    if isinstance(spec, LocalCluster) and spec.global_server not in mapper.context.global_hosts:
        known = ", ".join(sorted(mapper.context.global_hosts)) or "none"
        raise UserError([doc.problem(("global_server",), f"global_server {spec.global_server!r} is not a hostname "
                                                         "of a global spec in environments/ (global hostnames "
                                                         f"here: {known}); import the global cluster's env file "
                                                         "first: python -m compiler import-env GLOBAL.sh "
                                                         "--kind global")])
    found = rules.check_all({**{k: (v.spec, v.doc) for k, v in existing.items()}, spec.name: (spec, doc)})
    if found:
        raise UserError(found)
    settings = load_settings(root)
    if settings is not None:
        # static_ip is left to fill in (TODO) after an import: check the rest of what build checks with
        # stand-in addresses for every spec still without one.
        loaded = {**existing, spec.name: load.Loaded(spec, doc)}
        taken = {str(v.spec.static_ip) for v in loaded.values() if v.spec.static_ip is not None}
        stand_ins = iter(f"192.0.2.{i}" for i in range(1, 255) if f"192.0.2.{i}" not in taken)
        for name, item in loaded.items():
            if item.spec.static_ip is None:
                stand_in = item.spec.model_copy(update={"static_ip": IPv4Address(next(stand_ins))})
                loaded[name] = load.Loaded(stand_in, item.doc)
        found = argocd.problems(settings, loaded)
        if found:
            raise UserError(found)
    return spec


def _check_file(root: Path, name: str, text: str, data: Any) -> None:
    """Load the written text as `build` will, in a copy of environments/ with the new spec added."""
    with tempfile.TemporaryDirectory(prefix="import-env-") as tmp:
        envs = Path(tmp) / ENV_DIR
        envs.mkdir()
        for file in load.spec_files(root):
            if file.stem != name:
                shutil.copy2(file, envs / file.name)
        (envs / f"{name}.yaml").write_text(text, encoding="utf-8")
        try:
            load.load_all(Path(tmp))
        except UserError as err:
            raise UserError([Problem(p.path, p.line, p.col, f"{p.message} [import-env wrote an invalid spec: "
                                                            "please report this]") for p in err.problems]) from None
        doc, problems = load_document(envs / f"{name}.yaml", f"{ENV_DIR}/{name}.yaml")
        if problems or doc is None or to_plain(doc.data) != data:
            raise UserError(f"{ENV_DIR}/{name}.yaml: the written YAML does not read back as the imported "
                            "data [import-env bug: please report this]")


# --------------------------------------------------------------------------- the command's work


def import_env(root: Path, path: Path, display: str, kind: Kind, *, name: str | None = None,
               output: str | None = None, force: bool = False) -> Result:
    """Read, map, validate and (unless output is "-") write the spec; the Result carries text and report."""
    if name is not None and (not NAME_RE.match(name) or len(name) > NAME_MAX):
        raise UserError(f"--name {name!r} is not a valid cluster name (lowercase letters, digits and '-', "
                        f"starting with a letter, at most {NAME_MAX} characters)")
    env = read_env(path, display, kind)
    other: Kind = "local" if kind == "global" else "global"
    mine = [n for n in KIND_MARKERS[kind] if env.get(n)]
    theirs = [env.get(n) for n in KIND_MARKERS[other] if env.get(n)]
    if theirs and not mine:
        var = theirs[0]
        assert var is not None
        raise UserError([Problem(display, var.line or 1, var.col or 1,
                                 f"{var.name} is set: this looks like a {other} env file (use --kind {other})")])
    spec_name = name or ((v.text() if (v := env.get("ENVIRONMENT")) else None) or "").strip()
    target = None if output == "-" else (Path(output) if output else root / ENV_DIR / f"{spec_name}.yaml")
    if target is not None and target.exists() and not force and spec_name:
        raise UserError(f"{target}: already exists (pass --force to overwrite it, or --output FILE)")
    existing = _existing(root, spec_name if force else None)
    if spec_name in existing:
        raise UserError(f"{ENV_DIR}/{spec_name}.yaml: a spec named {spec_name} already exists (pass --force "
                        "to replace it, or --name NAME)")
    mapper = _Mapper(env, kind, name, _context(existing), path.resolve().parent,
                     gitops=(root / SETTINGS_FILE).is_file())
    tree = mapper.build()
    if mapper.problems:
        raise UserError(mapper.problems)
    spec = _validate(root, mapper, tree, existing)
    secrets = mapper.secrets(spec)
    if secrets.entries:
        services_at = next(i for i, e in enumerate(tree.entries) if e.key == "services")
        tree.entries.insert(services_at, Entry("secrets", secrets, above=[
            "Secret Manager secret names (never values); `bootstrap` creates them and lists the values to add"]))
    mapper.classify()
    header = [f"{kind.capitalize()} CAVE cluster {spec_name}, imported by `python -m compiler import-env` from "
              f"{path.name}.", f"Review every `{TODO}` comment: each marks a value the env file could not settle."]
    rendered = render(tree, header)
    data = plain(tree)
    _check_file(root, spec_name, rendered.text, data)
    shown = str(target) if target is not None else f"{ENV_DIR}/{spec_name}.yaml"
    for line, (dotted, entry) in sorted(rendered.lines.items()):
        if entry.todo:
            mapper.lines.append(Line("decision", f"{shown}:{line}", f"{dotted}: {entry.todo}"))
    if target is not None:
        _write_atomically(target, rendered.text)
    return Result(spec_name, kind, rendered.text, target, mapper.lines)


def _write_atomically(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"{target}: could not write ({err.strerror}); nothing was changed") from None
