"""The environment spec: what people write in environments/<cluster>.yaml (pydantic v2, extra keys forbidden).

Only inputs live here. Everything derived from them (cluster and service-account names, URLs, queue
names, Secret Manager names by default) is computed in compiler/derive.py. Secrets appear only as
Secret Manager secret *names*, never as values. The `services:` sections are built from the service catalogue
(compiler/catalog.py; see `Services` for how, and for how Python reads them typed).

One module on purpose (over 500 lines): it is the spec's schema, one class per section in the order a spec reads,
from which `schemas/spec.schema.json` is generated; splitting it would split one document's definition.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from typing_extensions import TypeAliasType

from compiler import catalog
from compiler.spec import cron, semver

K8S_MIN_MINOR = 30
K8S_MAX_MINOR = 37

Label = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$", max_length=63),
]
Fqdn = Annotated[
    str,
    StringConstraints(pattern=r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", max_length=253),
]
Bucket = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][-a-z0-9_.]{1,61}[a-z0-9](/[^\s]*)?$"),
                   AfterValidator(lambda v: _one_line(v))]
Version = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,126}$")]
Quantity = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$")]
SecretName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,255}$")]
Datastack = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]  # Python and JSON configs have no inf or nan literal
ScalarValue = str | int | FiniteFloat | bool
# JSON-like data written into a Python config (a dash app's config): no date, bytes, set or non-finite float
ConfigValue = TypeAliasType(
    "ConfigValue", "str | int | FiniteFloat | bool | list[ConfigValue] | dict[str, ConfigValue] | None")


# Free text and names written into config files, env files, External Secrets templates, Markdown and shell
# commands (README "Writing a spec", escaping): each field's type keeps out what its places cannot carry; the
# writers escape the rest (compiler/escape.py).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_HOST = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9_]{0,61}[A-Za-z0-9])?)*")


def _one_line(v: str) -> str:
    if found := _CONTROL.search(v):
        raise ValueError(f"{v!r} holds the control character {found.group()!r} (write it on one line, without "
                         "control characters: it goes into config files and the runbook)")
    return v


def _host(v: str) -> str:
    if len(v) > 253 or not _HOST.fullmatch(v):
        raise ValueError(f"{v!r} is not a host name or IPv4 address (like 10.82.0.3 or "
                         "redis-master.redis.svc.cluster.local: letters, digits, '-' and '.', nothing else)")
    return v


def _slack_channel(v: str) -> str:
    if not re.fullmatch(r"#?[a-z0-9_-]{1,80}", v):
        raise ValueError(f"{v!r} is not a Slack channel name (lowercase letters, digits, '-' and '_', up to 80, "
                         "optionally after '#', like cave-alerts)")
    return v


def _email(v: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", v) or len(v) > 254:
        raise ValueError(f"{v!r} is not an e-mail address (like ada@example.org)")
    return v


OneLine = Annotated[str, StringConstraints(max_length=500), AfterValidator(_one_line)]  # a name, a description
Host = Annotated[str, AfterValidator(_host)]  # a host name or an IPv4 address
SlackChannel = Annotated[str, AfterValidator(_slack_channel)]
Email = Annotated[str, AfterValidator(_email)]
# YAML has no IP address type: these are parsed from strings (the only lax fields of the strict spec).
IPv4Addr = Annotated[IPv4Address, Strict(False)]
IPv4Net = Annotated[IPv4Network, Strict(False)]


class Model(BaseModel):
    """Base of every spec model: unknown keys are errors, and so is every type coercion (strict mode).

    Pydantic's lax mode would take `day_of_week: true` as 1, `replicas: 2.0` as 2 or `"3"` as 3 and
    `enabled: "no"` as False: a spec means exactly what its YAML types say, or it is refused
    (compiler/spec/load.py words the error "expected an integer, got a boolean"). Integers are accepted where
    a number is expected. IP addresses and networks are written as strings (IPv4Addr, IPv4Net).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# --------------------------------------------------------------------------- shared building blocks


class Gcp(Model):
    """GCP project and location of the cluster and its databases, Redis, Pub/Sub."""

    project: Annotated[str, StringConstraints(pattern=r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")]
    region: Annotated[str, StringConstraints(pattern=r"^[a-z]+-[a-z]+[0-9]+$")]
    zone: Annotated[str, StringConstraints(pattern=r"^[a-z]+-[a-z]+[0-9]+-[a-z]$")]


class ExtraHostname(Model):
    hostname: Fqdn
    zone: Label


class ZoneOwner(Model):
    """Where a zone of `dns.zones` that another cluster creates lives: that cluster and its DNS project."""

    cluster: Annotated[str, StringConstraints(pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$", max_length=36)]
    project: Annotated[str, StringConstraints(pattern=r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")]


class Dns(Model):
    """Hostnames: the primary one is <name>.<domain>; each hostname is paired with its Cloud DNS zone.

    One DNS name is one Cloud DNS managed zone in one project across the fleet (only one can be delegated at
    the registrar). A zone of `zones` is created by this cluster's bootstrap, in `project` (default
    `gcp.project`), unless `zone_owners` names the cluster that creates it and the project it is in: then
    this cluster only adds its A records there, its cert-manager solves DNS-01 there, and its DNS service
    account is granted roles/dns.admin there. Clusters sharing a domain name its global cluster as the owner.
    """

    domain: Fqdn
    zone: Label
    zones: dict[Label, Fqdn] = Field(min_length=1, description="Cloud DNS managed zone name → its DNS name")
    project: Annotated[str, StringConstraints(pattern=r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")] | None = None  # of the zones
    extra_hostnames: list[ExtraHostname] = []
    zone_owners: dict[Label, ZoneOwner] = {}  # zones of `zones` another cluster creates (default: none)


class Tls(Model):
    email: Email
    acme: Literal["production", "staging"] = "production"


class NodePool(Model):
    name: Label
    machine_type: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+-[a-z0-9-]+$")]
    min_nodes: int = Field(1, ge=0, le=1000)
    max_nodes: int = Field(3, ge=1, le=1000)
    disk_gb: int = Field(40, ge=10, le=65536)
    preemptible: bool = False
    tainted: bool = True

    @property
    def taints(self) -> list[str]:
        """The taints bootstrap creates the pool with ("key=value:effect"): `pool=<name>:NoSchedule` unless
        `tainted: false`. Workloads select a pool with the matching toleration (base/components/node-pools)."""
        return [f"pool={self.name}:NoSchedule"] if self.tainted else []


class CloudSql(Model):
    instance: Label
    database_version: Literal["POSTGRES_13", "POSTGRES_14", "POSTGRES_15", "POSTGRES_16"] = "POSTGRES_15"
    tier: Annotated[str, StringConstraints(pattern=r"^db-[a-z0-9-]+$")] = "db-custom-4-16384"


class ArgoCd(Model):
    """How Argo CD reaches this cluster and syncs its overlay (overlays/argocd/, when gitops.yaml exists).

    `server` (the API server URL) or `name` (the cluster's name in Argo CD, `argocd cluster add --name`);
    the cluster Argo CD itself runs in uses server https://kubernetes.default.svc.
    """

    server: str | None = None
    name: str | None = None
    namespace: Label = "default"
    prune: bool = True
    self_heal: bool = True

    @field_validator("server")
    @classmethod
    def _server_url(cls, v: str) -> str:
        _one_line(v)
        if not re.fullmatch(r"https://[^\s/]+(/\S*)?", v):
            raise ValueError(f"{v!r} is not an API server URL (use https://<host>, as `argocd cluster list` shows it)")
        return v

    @field_validator("name")
    @classmethod
    def _cluster_name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][-A-Za-z0-9_.:@/]{0,252}", v):
            raise ValueError(f"{v!r} is not a cluster name as Argo CD lists it (like daf-minnie, no spaces)")
        return v

    @model_validator(mode="after")
    def _one_destination(self) -> ArgoCd:
        if self.server is not None and self.name is not None:
            raise ValueError("set either server or name, not both (they are two ways to name one cluster)")
        return self


class Replicas(Model):
    min: int = Field(ge=1, le=1000)
    max: int = Field(ge=1, le=1000)


class Resources(Model):
    cpu: Quantity
    memory: Quantity


class WorkloadSettings(Model):
    """Replicas and resource requests of one workload of a service."""

    replicas: int | Replicas | None = None
    resources: Resources | None = None


class Service(Model):
    """What every service has: on/off, image version, replicas and requests of its main workload."""

    enabled: bool = True
    version: Version
    replicas: int | Replicas | None = None
    resources: Resources | None = None
    workloads: dict[str, WorkloadSettings] = {}


class BumpPolicy(Model):
    """Which upstream releases the bump bot may propose for a service of this cluster."""

    allow: str = "latest"  # latest, pinned, or a range: ~4.23, ^4, >=4.20,<5, 4.23.1
    prereleases: bool = False
    # Staged rollout: the stage (one of gitops.yaml's bump.stages) this cluster gets a new release in; None: with
    # the first proposal, unstaged. The next stage is proposed once this one's bump has been on main for `soak`.
    stage: Label | None = None
    soak: str = "24h"  # 30m, 24h, 2d

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"allow": data} if isinstance(data, str) else data  # `bump: ~4.23` is `bump: {allow: ~4.23}`

    @field_validator("allow")
    @classmethod
    def _valid(cls, v: str) -> str:
        return semver.check_policy(v)

    @field_validator("soak")
    @classmethod
    def _duration(cls, v: str) -> str:
        if not re.fullmatch(r"[0-9]{1,4}[mhd]", v):
            raise ValueError(f"{v!r} is not a soak time (write minutes, hours or days: 30m, 24h, 2d)")
        return v

    @property
    def soak_seconds(self) -> int:
        return int(self.soak[:-1]) * {"m": 60, "h": 3600, "d": 86400}[self.soak[-1]]


class Bumped(Service):
    """A service the bump bot follows (schema, annotation, materialize); `bump:` is its policy here."""

    bump: BumpPolicy = BumpPolicy()


# --------------------------------------------------------------------------- global services


class AdminUser(Model):
    email: Email
    name: Annotated[OneLine, StringConstraints(min_length=1, max_length=200)]  # a person's name
    pi: Annotated[OneLine, StringConstraints(max_length=200)] = ""


class Auth(Service):
    default_admins: list[AdminUser] = []


class Infoservice(Service):
    neuroglancer_url: Annotated[str, StringConstraints(pattern=r"^https://\S+$"), AfterValidator(_one_line)] = (
        "https://neuroglancer-demo.appspot.com"
    )


class Nglstate(Service):
    datastore_namespace: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,100}$")]
    bucket: Bucket | None = None


# --------------------------------------------------------------------------- local services


class BeatEntry(Model):
    """One periodic materialization task (BEAT_SCHEDULES entry)."""

    name: Annotated[OneLine, StringConstraints(min_length=1)]
    task: Literal[
        "run_daily_periodic_materialization",
        "run_weekly_periodic_materialization",
        "run_lts_periodic_materialization",
        "remove_expired_databases",
        "run_periodic_database_update",
        "run_periodic_materialization",
    ]
    minute: int | str
    hour: int | str
    day_of_week: int | list[int] | str | None = None
    day_of_month: int | str | None = None
    month_of_year: int | str | None = None
    datastack_params: dict[str, ScalarValue | list[ScalarValue]] = {}

    @field_validator("minute", "hour", "day_of_month", "day_of_week", "month_of_year")
    @classmethod
    def _cron_field(cls, v: Any, info: ValidationInfo) -> Any:
        if v is not None and (why := cron.beat_field_problem(str(info.field_name), v)):  # ranges too: "*/77"
            raise ValueError(why)
        return v


class QueryLimits(Model):
    query_per_minute: int = Field(200, ge=1)
    fast_query_per_minute: int = Field(2000, ge=1)


class Materializationengine(Bumped):
    datastacks: list[Datastack] = Field(min_length=1)
    health_aligned_volume: Datastack | None = None
    beat_schedule: list[BeatEntry] = []
    min_databases: int = Field(1, ge=1, le=100)
    max_databases: int = Field(2, ge=1, le=100)
    merge_databases: bool = True
    query_limit_size: int = Field(500000, ge=1000, le=100_000_000)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    upload_bucket: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][-a-z0-9_.]{1,61}[a-z0-9]$")] | None = None
    dump_bucket: Bucket | None = None
    limits: QueryLimits = QueryLimits()
    # Celery --concurrency: `celery_concurrency` is the default of both kinds of worker (CAVEdeployment's
    # CELERY_PRODUCER_CONCURRENCY and CELERY_CONSUMER_CONCURRENCY, both 2); the two below override it for the
    # producer (workflow queue) and for the consumer and deltalake workers (process and deltalake queues).
    celery_concurrency: int = Field(2, ge=1, le=64)
    celery_producer_concurrency: int | None = Field(None, ge=1, le=64)
    celery_consumer_concurrency: int | None = Field(None, ge=1, le=64)

    @property
    def producer_concurrency(self) -> int:
        """--concurrency of celery-producer."""
        return self.celery_producer_concurrency or self.celery_concurrency

    @property
    def consumer_concurrency(self) -> int:
        """--concurrency of celery-consumer and celery-deltalake (CAVEdeployment ran both with the consumer's)."""
        return self.celery_consumer_concurrency or self.celery_concurrency


class ServerLogs(Model):
    enabled: bool = False
    leaves_many: bool = False


class Pychunkedgraph(Service):
    graph_ids: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$")]] = Field(min_length=1)
    config: dict[Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]*$")], ScalarValue] = {}
    server_logs: ServerLogs = ServerLogs()


class L2Table(Model):
    cv_path: Annotated[str, StringConstraints(pattern=r"^graphene://https://\S+$"), AfterValidator(_one_line)]
    l2cache_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$")]  # a Bigtable table id


class L2cache(Service):
    tables: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$")], L2Table] = Field(min_length=1)


class SkeletonIntegrationTest(Model):
    server: Fqdn
    datastack: Datastack


class Skeletoncache(Service):
    bucket: Bucket
    requests_per_minute: int = Field(100, ge=1)
    datastack_name_remapping: dict[Datastack, Datastack] = {}
    integration_test: SkeletonIntegrationTest | None = None


class Guidebook(Service):
    datastack: Datastack
    expected_resolution: Annotated[list[Annotated[int, Field(gt=0)]], Field(min_length=3, max_length=3)]
    n_parallel: int = Field(1, ge=1, le=64)
    invalidation_d: int = Field(3, ge=0)


class Tourguide(Service):
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    timeout: int = Field(300, ge=1)
    neuroglancer_url: Annotated[str, StringConstraints(pattern=r"^https://\S+$"), AfterValidator(_one_line)] = (
        "https://spelunker.cave-explorer.org"
    )


class DashApp(Model):
    create_app: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$")]
    config: dict[str, ConfigValue] = {}


class Dash(Service):
    apps: dict[Datastack, dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], DashApp]] = (
        Field(min_length=1)
    )


class Pmanagement(Service):
    proofreading_table: Label | Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
    neuroninformation_table: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
    auth_database_name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
    tally_schedule: str = "0 0 * * *"  # the tally CronJob's schedule (five cron fields, or @daily)

    @field_validator("tally_schedule")
    @classmethod
    def _crontab(cls, v: str) -> str:
        if why := cron.crontab_problem(v):
            raise ValueError(why)
        return v


class Proxy(Service):
    map: dict[Datastack, Annotated[str, StringConstraints(pattern=r"^(gs|https)://\S+$"), AfterValidator(_one_line)]] \
        = Field(min_length=1)


class Cavecanary(Service):
    datastack: Datastack
    slack_channel: SlackChannel
    num_test_annotations: int = Field(1000, ge=1)
    check_interval: int = Field(60, ge=1)


# --------------------------------------------------------------------------- the services sections


# The settings model of each service with settings of its own. Any other catalogue service is a `Service`, or a
# `Bumped` one when the catalogue names its upstream repository (a model listed here must then be a Bumped too).
SETTINGS: dict[str, type[Service]] = {
    "auth": Auth,
    "infoservice": Infoservice,
    "nglstate": Nglstate,
    "materializationengine": Materializationengine,
    "pychunkedgraph": Pychunkedgraph,
    "l2cache": L2cache,
    "skeletoncache": Skeletoncache,
    "guidebook": Guidebook,
    "tourguide": Tourguide,
    "dash": Dash,
    "pmanagement": Pmanagement,
    "proxy": Proxy,
    "cavecanary": Cavecanary,
}

S = TypeVar("S", bound=Service)


class Services(Model):
    """A cluster's `services:` section: one optional field per catalogue service its kind runs.

    GlobalServices and LocalServices are built from compiler/catalog.py (`_services_model`), so a service
    without settings of its own needs no change here: its catalogue entry makes it a field, typed `Service`
    (or `Bumped` when the entry names an `upstream`), in catalogue order, default None. A service with
    settings of its own has its model in SETTINGS.

    The fields exist only at run time, so Python reads a service's settings through `settings(name, model)`,
    which mypy types from the model passed and which checks at run time that the section has that model;
    templates read `services.<name>` as attributes. (A TYPE_CHECKING copy of the fields would have to be
    edited for every new service and could drift from the catalogue; a `__getattr__` would type them as Any.)
    """

    def settings(self, name: str, model: type[S]) -> S | None:
        """The settings of service `name` (None when the spec leaves it out, or this cluster kind never runs it),
        as `model`, the settings model of the service or one of its bases (Service, Bumped)."""
        if name not in catalog.BY_NAME:
            raise KeyError(f"no service {name!r} in compiler/catalog.py")
        value = getattr(self, name, None)
        if value is not None and not isinstance(value, model):
            raise TypeError(f"services.{name} is a {type(value).__name__}, not a {model.__name__}")
        return value

    def enabled(self) -> dict[str, Service]:
        """The services turned on, by name, in catalogue order."""
        out: dict[str, Service] = {}
        for name in type(self).model_fields:
            svc = getattr(self, name)
            if svc is not None and svc.enabled:
                out[name] = svc
        return out


def settings_model(entry: catalog.Service) -> type[Service]:
    """The model of the spec section of a catalogue service."""
    model = SETTINGS.get(entry.name, Bumped if entry.upstream else Service)
    if issubclass(model, Bumped) != (entry.upstream is not None):
        raise TypeError(f"{model.__name__} (services.{entry.name}) must {'' if entry.upstream else 'not '}be a Bumped: "
                        f"the catalogue {'names' if entry.upstream else 'names no'} upstream for {entry.name}")
    return model


def _services_model(kind: catalog.ClusterKind) -> type[Services]:
    unknown = sorted(set(SETTINGS) - set(catalog.BY_NAME))
    if unknown:
        raise KeyError(f"SETTINGS names services missing from compiler/catalog.py: {', '.join(unknown)}")
    fields: dict[str, Any] = {}
    for entry in catalog.SERVICES:
        if kind in entry.kinds:
            if hasattr(Services, entry.name):
                raise NameError(f"service name {entry.name!r} is taken by an attribute of spec.model.Services")
            fields[entry.name] = (settings_model(entry) | None, None)
    name = f"{kind.capitalize()}Services"
    return create_model(name, __base__=Services, __module__=__name__,
                        __doc__=f"The services a {kind} cluster can run (compiler/catalog.py).", **fields)


if TYPE_CHECKING:
    class GlobalServices(Services):
        """Fields built from the catalogue at run time (see Services)."""

    class LocalServices(Services):
        """Fields built from the catalogue at run time (see Services)."""
else:
    GlobalServices = _services_model("global")
    LocalServices = _services_model("local")


# --------------------------------------------------------------------------- secrets (names only)


class GlobalSecrets(Model):
    """Secret Manager secret names; omitted ones default to <cluster>-<key with dashes>."""

    postgres_password: SecretName | None = None
    auth_secret_key: SecretName | None = None
    oauth_client: SecretName | None = None
    info_secret_key: SecretName | None = None
    info_csrf_key: SecretName | None = None
    cave_token: SecretName | None = None


class LocalSecrets(Model):
    """Secret Manager secret names; omitted ones default to <cluster>-<key with dashes>."""

    postgres_password: SecretName | None = None
    cave_token: SecretName | None = None
    pmanagement_token: SecretName | None = None
    guidebook_csrf_key: SecretName | None = None
    dash_secret_key: SecretName | None = None
    slack_api_token: SecretName | None = None


# --------------------------------------------------------------------------- the two cluster kinds


class GlobalRedis(Model):
    host: Host
    in_cluster: bool = False  # a Redis add-on in the cluster (overlays/argocd) instead of Memorystore
    memory_gb: int = Field(1, ge=1, le=300)  # Memorystore size bootstrap creates (daf-redis-<name>)


class LocalRedis(Model):
    celery_host: Host
    pcg_host: Host
    in_cluster: bool = False  # a Redis add-on in the cluster (overlays/argocd) instead of Memorystore
    celery_memory_gb: int = Field(1, ge=1, le=300)  # Memorystore sizes bootstrap creates
    pcg_memory_gb: int = Field(1, ge=1, le=300)


class DataProject(Model):
    project: Annotated[str, StringConstraints(pattern=r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")]
    region: Annotated[str, StringConstraints(pattern=r"^[a-z]+-[a-z]+[0-9]+$")]
    bigtable_instance: Label
    bigtable_nodes: int = Field(1, ge=1, le=1000)  # manual scaling, one cluster (docs/pitfalls.md#p48)
    bigtable_zone: Annotated[str, StringConstraints(pattern=r"^[a-z]+-[a-z]+[0-9]+-[a-z]$")] | None = None
    pcg_bucket: Bucket | None = None


class ReadOnly(Model):
    """Data another cluster writes and this one only reads, said explicitly (compiler/spec/sharing.py).

    Two clusters writing one database, table, bucket or secret corrupt each other's data, so `build` refuses
    it; a cluster listed here as a reader is not counted as a writer. Each entry must be data this spec uses.
    """

    buckets: list[Bucket] = []  # values of data.pcg_bucket, services.*.bucket, upload_bucket, dump_bucket
    bigtable_tables: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$")]] = []  # in data.*
    secret_keys: list[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]] = []  # of `secrets:`


class Network(Model):
    """The VPC bootstrap creates for the cluster (custom subnet mode); defaults follow CAVEdeployment."""

    name: Label | None = None  # default daf-<name>-network
    subnet_cidr: IPv4Net = IPv4Network("10.142.0.0/20")


class ClusterBase(Model):
    name: Annotated[str, StringConstraints(pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$", max_length=36)]
    gcp: Gcp
    dns: Dns
    tls: Tls
    docker_repository: Annotated[str, StringConstraints(pattern=r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+$")]
    kubernetes_version: Annotated[str, StringConstraints(pattern=r"^1\.[0-9]+$")]
    node_pools: list[NodePool] = Field(min_length=1)
    cloud_sql: CloudSql
    static_ip: IPv4Addr | None = None  # the regional address daf-<name> bootstrap reserves; ingress-nginx uses it
    network: Network = Network()
    release_channel: Literal["RAPID", "REGULAR", "STABLE", "EXTENDED"] = "REGULAR"  # GKE release channel
    argocd: ArgoCd = ArgoCd()
    read_only: ReadOnly = ReadOnly()  # shared data this cluster only reads (another cluster writes it)

    @field_validator("kubernetes_version")
    @classmethod
    def _supported_version(cls, v: str) -> str:
        minor = int(v.split(".")[1])
        if not K8S_MIN_MINOR <= minor <= K8S_MAX_MINOR:
            raise ValueError(
                f"Kubernetes {v} is not supported (use 1.{K8S_MIN_MINOR} to 1.{K8S_MAX_MINOR})"
            )
        return v


class GlobalCluster(ClusterBase):
    kind: Literal["global"]
    redis: GlobalRedis
    secrets: GlobalSecrets = GlobalSecrets()
    services: GlobalServices


class AlignedVolume(Model):
    """An aligned set of images, registered in the info service; `dataset` is its auth dataset."""

    image_source: Annotated[str, StringConstraints(pattern=r"^(precomputed|n5|zarr|zarr2|boss)://\S+$"),
                            AfterValidator(_one_line)]
    description: Annotated[OneLine, StringConstraints(min_length=1)]
    dataset: Datastack


class RegisteredDatastack(Model):
    """A datastack as the info service lists it: an aligned volume paired with a PCG segmentation."""

    aligned_volume: Datastack
    pcg_table: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$")]
    description: Annotated[OneLine, StringConstraints(min_length=1)]
    dataset: Datastack | None = None  # default: the aligned volume's dataset
    # default: graphene://https://<this cluster's primary hostname>/segmentation/table/<pcg_table>
    segmentation_source: Annotated[str, StringConstraints(pattern=r"^graphene://https://\S+$"),
                                   AfterValidator(_one_line)] | None = None
    viewer_resolution: Annotated[list[Annotated[int | float, Field(gt=0)]], Field(min_length=3, max_length=3)] | None \
        = None
    viewer_site: Annotated[str, StringConstraints(pattern=r"^https://\S+$"), AfterValidator(_one_line)] | None = None
    synapse_table: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")] | None = None
    soma_table: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")] | None = None


class DatastackRegistry(Model):
    """What the global auth and info services must know about this cluster's data (the runbook's input)."""

    aligned_volumes: dict[Datastack, AlignedVolume] = Field(min_length=1)
    datastacks: dict[Datastack, RegisteredDatastack] = Field(min_length=1)


class LocalCluster(ClusterBase):
    kind: Literal["local"]
    global_server: Fqdn
    data: DataProject
    datastacks: list[Datastack] = Field(min_length=1)
    redis: LocalRedis
    annotation_excluded_groups: list[Annotated[OneLine, StringConstraints(min_length=1)]] = []
    registry: DatastackRegistry | None = None
    secrets: LocalSecrets = LocalSecrets()
    services: LocalServices


ClusterSpec = GlobalCluster | LocalCluster
CLUSTER_MODELS: dict[str, type[GlobalCluster] | type[LocalCluster]] = {
    "global": GlobalCluster,
    "local": LocalCluster,
}


def zone_project(spec: ClusterSpec, zone: str) -> str:
    """The GCP project holding DNS zone `zone` of the spec: its owner's (`dns.zone_owners`) or this cluster's."""
    owner = spec.dns.zone_owners.get(zone)
    return owner.project if owner is not None else spec.dns.project or spec.gcp.project


def zone_owner(spec: ClusterSpec, zone: str) -> str:
    """The cluster whose bootstrap creates DNS zone `zone` of the spec (this one unless `dns.zone_owners` says)."""
    owner = spec.dns.zone_owners.get(zone)
    return owner.cluster if owner is not None else spec.name


def enabled_services(spec: ClusterSpec) -> dict[str, Service]:
    """Services the spec turns on, by name, in catalogue order."""
    return spec.services.enabled()
