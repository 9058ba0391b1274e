"""The catalogue of CAVE services: the one place that knows which cluster kind runs what.

Each entry names its Kustomize base (base/<name>/), the workloads in it (so the compiler can patch
replicas and requests, and the spec can be checked against them), its images, its Ingress paths, the
config files the compiler renders from compiler/templates/<name>/, the Secret Manager secrets it
reads, the GCP service account its pods run as (Workload Identity) and the Google APIs they call with it
(the roles bootstrap grants). Facts come from
CAVEdeployment's templates and scripts; docs/pitfalls.md says what changed and why.

One module on purpose (over 500 lines): most of it is the entries themselves, one per service, and the point is
that a service's facts sit together in one entry, and all entries in one list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

ClusterKind = Literal["global", "local"]
Scaling = Literal["hpa", "fixed", "job"]
ImageRegistry = Literal["repository", "dockerhub", "data-project-gcr"]
SERVICE_LABEL = "cave.io/service"  # on every object of a service: build sets it, diff and the fleet rules read it
CLUSTER_LABEL = "cave.io/cluster"  # on every object of a cluster's overlay and on its Argo CD Applications
COMPONENT_LABEL = "cave.io/component"  # on an Application: "cave", an add-on's name, or "app-of-apps"


@dataclass(frozen=True)
class Workload:
    """One Deployment, Job or CronJob in a base."""

    name: str
    container: str
    scaling: Scaling = "hpa"
    kind: Literal["Deployment", "Job", "CronJob"] = "Deployment"
    hpa: str | None = None  # HorizontalPodAutoscaler name when scaling == "hpa"
    pool: Literal["standard", "lightweight", "mesh", "core"] | None = None  # node-pool role on local clusters
    # For HPAs scaling on a Pub/Sub backlog: the compiler.derive.Names attribute holding the subscription id,
    # which embeds the cluster name and so is patched into metrics[0] of the HPA by the overlay.
    hpa_subscription: str | None = None
    # A setting of the service's spec section this workload cannot work without (e.g. "dump_bucket"): the
    # workload is deployed only when it is set. It then lives in the Kustomize Component base/<service>/<name>/
    # (not in the service's base), which the overlay includes only in that case.
    requires: str | None = None


@dataclass(frozen=True)
class Image:
    """An image a base refers to by `placeholder`; the overlay's `images:` maps it to a real, pinned ref."""

    placeholder: str
    name: str
    tag: str = "v{version}"  # formatted with the service version
    registry: ImageRegistry = "repository"
    # Tags outside the release scheme this image is published under and a spec may pin (e.g. a branch build):
    # the spec's version is what the tag rule turns into one of them. Any other version must be semver.
    tags: tuple[str, ...] = ()

    def follows_version(self) -> bool:
        """Whether the tag is made from the service's version (some sidecars are pinned in the catalogue)."""
        return "{version}" in self.tag

    def version_of(self, tag: str) -> str | None:
        """The spec version the tag rule turns into `tag` (`vRequestorPays12` → `RequestorPays12`), if any."""
        prefix, _, suffix = self.tag.partition("{version}")
        inner = tag[len(prefix):len(tag) - len(suffix)]
        return inner if tag.startswith(prefix) and tag.endswith(suffix) and inner else None

    def ref(self, repository: str, data_project: str | None, version: str) -> tuple[str, str]:
        """(image name, tag) of this image at `version`, for a cluster with this docker repository and data project."""
        tag = self.tag.format(version=version)
        if self.registry == "dockerhub":
            return self.name, tag
        if self.registry == "data-project-gcr":
            if data_project is None:
                raise ValueError(f"image {self.name} lives in a data project's registry: a local cluster's")
            return f"gcr.io/{data_project}/{self.name}", tag
        return f"{repository}/{self.name}", tag


@dataclass(frozen=True)
class IngressPath:
    path: str
    service: str
    port: int = 80
    regex: bool = False


@dataclass(frozen=True)
class ConfigMap:
    """A ConfigMap the overlay generates (content-hashed name) from templates in compiler/templates/<svc>/.

    `files` maps the key inside the ConfigMap to its template. With `env=True` the single template renders
    KEY=value lines and becomes a configMapGenerator `envs:` source (for envFrom / configMapKeyRef).
    With `secret=True` the rendered files need secret values (an INI file cannot read the environment): the
    overlay gets an ExternalSecret named `name` whose target template is the rendered file, in which the
    template writes External Secrets placeholders such as `{{ .postgres_password }}` (one per key in the
    service's `secrets`). The resulting Secret is also called `name`.
    """

    name: str
    files: dict[str, str]
    env: bool = False
    secret: bool = False


GoogleScope = Literal["project", "data-project", "bucket"]


@dataclass(frozen=True)
class GoogleApi:
    """One Google API a service's pods call as their GCP service account (Workload Identity), and the role
    that allows it: the one fact bootstrap grants from (compiler/bootstrap/desired.py) and the google-identity
    fleet rule checks the plan against.

    `on` says where the role is granted: the cluster's project, the data project (Bigtable and PCG data live
    there; the cluster's project when the spec has no data project) or each bucket the spec names at
    `bucket_field` (a dotted path from the spec root: a bucket, `bucket/prefix`, or a mapping whose values
    are gs:// or https://storage.googleapis.com/ URLs). `requester_pays` buckets are not ours: bootstrap only
    grants on them (billed to the cluster's project, which the service also needs serviceusage on) and
    never creates them.
    """

    api: Literal["bigtable", "pubsub", "storage", "datastore", "cloudsql", "monitoring", "serviceusage"]
    role: str
    on: GoogleScope = "project"
    bucket_field: str = ""
    requester_pays: bool = False
    why: str = ""


@dataclass(frozen=True)
class SqlInstanceBucket:
    """A bucket the Cloud SQL instance's own service account reads (CSV import) or writes (export): Cloud
    SQL, not the pod, touches the objects of an import/export, so the instance needs the bucket role."""

    bucket_field: str
    role: str
    why: str = ""


@dataclass(frozen=True)
class OldReplicas:
    """One workload's replica variables in CAVEdeployment's env file: `max` (a fixed workload's count) and,
    for an autoscaled one, `min` (None when the file sets only a maximum)."""

    workload: str
    max: str
    min: str | None = None


def old_replicas(workload: str, prefix: str) -> OldReplicas:
    """The usual `<prefix>_MIN_REPLICAS` / `<prefix>_MAX_REPLICAS` pair."""
    return OldReplicas(workload, f"{prefix}_MAX_REPLICAS", f"{prefix}_MIN_REPLICAS")


@dataclass(frozen=True)
class OldEnv:
    """How the env file of CAVEdeployment (the deployment this project replaces) set a service; `import-env`
    reads it. `version`: the variable holding its image version; `switches`:
    any of them > 0 turns it on (none: always on, as on a global cluster); `replicas`: per workload, in spec
    order; `version_optional`: a missing version leaves the service out with a TODO instead of failing."""

    version: str
    switches: tuple[str, ...] = ()
    replicas: tuple[OldReplicas, ...] = ()
    version_optional: bool = False


@dataclass(frozen=True)
class Service:
    name: str
    kinds: tuple[ClusterKind, ...]
    workloads: tuple[Workload, ...]
    images: tuple[Image, ...]
    ingress: tuple[IngressPath, ...] = ()
    configmaps: tuple[ConfigMap, ...] = ()
    secrets: tuple[str, ...] = ()  # keys of the spec's `secrets:` section this service reads
    # Strategic-merge patches rendered from compiler/templates/<name>/<template> for values a base cannot hold
    # because they embed cluster names (e.g. HPA metric names built from Pub/Sub subscriptions).
    patches: tuple[str, ...] = ()
    service_account: str | None = None  # Kubernetes ServiceAccount name == GCP SA role (daf-<role>-<env>)
    google: tuple[GoogleApi, ...] = ()  # the Google APIs its pods call (needs service_account)
    sql_instance_buckets: tuple[SqlInstanceBucket, ...] = ()
    old_env: OldEnv | None = None  # its variables in CAVEdeployment's env file (None: it had none)
    aliases: tuple[str, ...] = ()
    # The GitHub repository (owner/name) whose releases the bump bot follows for this service. A service with
    # one is `Bumped` in the spec (its section takes a `bump:` policy, compiler/spec/model.py).
    upstream: str | None = None
    summary: str = ""
    deprecated: bool = False

    def workload(self, name: str) -> Workload | None:
        return next((w for w in self.workloads if w.name == name), None)

    def deployed(self, settings: object) -> tuple[Workload, ...]:
        """The workloads deployed with these spec settings (the service's spec section): those whose `requires`
        setting is unset are left out."""
        return tuple(w for w in self.workloads if w.requires is None or getattr(settings, w.requires, None))

    @property
    def main(self) -> Workload:
        return self.workloads[0]

    def explicit_versions(self) -> tuple[str, ...]:
        """Non-semver versions a spec may pin: those every image following the version is published under."""
        images = [i for i in self.images if i.follows_version()]
        found = [{v for t in i.tags if (v := i.version_of(t))} for i in images]
        return tuple(sorted(set.intersection(*found))) if found else ()


def _env(svc: str) -> ConfigMap:
    return ConfigMap(f"{svc.replace('_', '-')}-env", {"env": "env.j2"}, env=True)


# Google API uses several services share.
CLOUDSQL_CLIENT = GoogleApi("cloudsql", "roles/cloudsql.client", why="connects through the Cloud SQL Auth proxy")
BIGTABLE_DATA = GoogleApi("bigtable", "roles/bigtable.user", on="data-project",
                          why="reads the PCG tables (BIGTABLE_PROJECT is the data project)")
PUBSUB = GoogleApi("pubsub", "roles/pubsub.editor", why="publishes to and pulls from the cluster's topics")
DATASTORE = GoogleApi("datastore", "roles/datastore.user", why="keeps state in Datastore")
# Every service whose pods write custom metrics (the prometheus-to-sd sidecars feeding the HPAs) needs it; the
# fleet rule `metric-source` checks the rendered writers against the plan.
METRIC_WRITER = GoogleApi("monitoring", "roles/monitoring.metricWriter",
                          why="prometheus-to-sd writes the custom metric its HPA scales on")
# CSV import into and export from Cloud SQL through the Cloud SQL Admin API. Among predefined roles only
# roles/cloudsql.admin holds cloudsql.instances.import (roles/cloudsql.editor has export, not import); a
# project custom role with cloudsql.instances.get/import/export would be narrower, but bootstrap does not
# manage custom roles yet.
CLOUDSQL_IMPORT_EXPORT = GoogleApi("cloudsql", "roles/cloudsql.admin",
                                   why="imports/exports CSV through the Cloud SQL Admin API "
                                       "(cloudsql.instances.import is in no narrower predefined role)")


def bucket_objects(field: str, role: str = "roles/storage.objectAdmin", why: str = "") -> GoogleApi:
    return GoogleApi("storage", role, on="bucket", bucket_field=field, why=why)


GCS_HOSTS = ("storage.googleapis.com", "storage.cloud.google.com")


def bucket_of(value: str) -> str | None:
    """The bucket a spec value names: `bucket`, `bucket/prefix`, `gs://bucket/...`, or an https URL of Cloud
    Storage (path or virtual-host style); None for an https URL of another host (no bucket to grant on)."""
    if value.startswith("gs://"):
        return value[5:].split("/")[0] or None
    if value.startswith(("https://", "http://")):
        host, _, path = value.split("://", 1)[1].partition("/")
        if host in GCS_HOSTS:
            return path.split("/")[0] or None
        suffix = next((f".{h}" for h in GCS_HOSTS if host.endswith(f".{h}")), None)
        return host.removesuffix(suffix) if suffix else None
    return value.split("/")[0] or None


def field_value(spec: object, field: str) -> object:
    """The value at dotted `field` of a spec (see GoogleApi.bucket_field); None where the field, or a service on
    the way, is absent or disabled."""
    value: object = spec
    for part in field.split("."):
        value = getattr(value, part, None)
        if value is None or getattr(value, "enabled", True) is False:
            return None
    return value


def bucket_names(spec: object, field: str) -> list[str]:
    """The buckets at dotted `field` of a spec (see GoogleApi.bucket_field), sorted; [] where the field, or a
    service on the way, is absent or disabled."""
    value = field_value(spec, field)
    if value is None:
        return []
    values = list(value.values()) if isinstance(value, dict) else [value]
    return sorted({b for v in values if isinstance(v, str) and (b := bucket_of(v))})


# Images used by shared components (base/components/), mapped in every overlay. CAVE images go through
# placeholders so the registry comes from the spec; third-party images are pinned in the bases themselves.
CLUSTER_IMAGES = (Image("uwsgi-export-workers", "uwsgi-export-workers", tag="v14"),)

SERVICES: tuple[Service, ...] = (
    # ------------------------------------------------------------------ global cluster
    Service(
        name="auth",
        kinds=("global",),
        old_env=OldEnv("AUTH_VERSION", replicas=(OldReplicas("auth", "AUTH_REPLICAS"),)),
        summary="middle_auth: OAuth login, tokens, permissions",
        workloads=(Workload("auth", "auth", scaling="fixed"),),
        images=(Image("auth--middle_auth", "middle_auth"),),
        ingress=(IngressPath("/auth", "auth-service"),),
        configmaps=(ConfigMap("auth-config", {"config.cfg": "config.cfg.j2"}), _env("auth")),
        secrets=("postgres_password", "auth_secret_key", "oauth_client"),
        service_account="auth",
        google=(CLOUDSQL_CLIENT,),
    ),
    Service(
        name="sticky_auth",
        kinds=("global",),
        old_env=OldEnv("AUTH_VERSION"),
        summary="middle_auth with sticky sessions and the admin UI",
        workloads=(Workload("sticky-auth", "auth", scaling="fixed"),),
        images=(Image("sticky_auth--middle_auth", "middle_auth"),),
        ingress=(IngressPath("/sticky_auth", "sticky-auth-service"),),
        configmaps=(ConfigMap("sticky-auth-config", {"config.cfg": "config.cfg.j2"}), _env("sticky_auth")),
        secrets=("postgres_password", "auth_secret_key", "oauth_client"),
        service_account="auth",
        google=(CLOUDSQL_CLIENT,),
    ),
    Service(
        name="infoservice",
        kinds=("global",),
        old_env=OldEnv("INFOSERVICE_VERSION"),
        summary="datastack and aligned-volume info service",
        workloads=(Workload("infoservice", "infoservice", hpa="infoservice-scaler"),),
        images=(Image("infoservice--annotationframeworkinfoservice", "annotationframeworkinfoservice"),),
        ingress=(
            IngressPath("/info", "infoservice-service"),
            IngressPath("/swaggerui", "infoservice-service"),
            IngressPath("/static", "infoservice-service"),
        ),
        configmaps=(ConfigMap("info-config", {"config.cfg": "config.cfg.j2"}), _env("infoservice")),
        secrets=("postgres_password", "info_secret_key", "info_csrf_key", "cave_token"),
        service_account="infoservice",
        google=(CLOUDSQL_CLIENT,),
    ),
    Service(
        name="emannotationschemas",
        kinds=("global",),
        old_env=OldEnv("EMANNOTATIONSCHEMAS_VERSION",
                       replicas=(OldReplicas("emannotationschemas-dep", "EMANNOTATIONSCHEMAS_REPLICAS"),)),
        aliases=("schema",),
        upstream="CAVEconnectome/EMAnnotationSchemas",
        summary="schema service (EMAnnotationSchemas)",
        workloads=(Workload("emannotationschemas-dep", "emannotationschemas", scaling="fixed"),),
        images=(Image("emannotationschemas--emannotationschemas", "emannotationschemas"),),
        ingress=(IngressPath("/schema", "emannotationschemas-service"),),
        configmaps=(_env("emannotationschemas"),),
    ),
    Service(
        name="nglstate",
        kinds=("global",),
        old_env=OldEnv("NGLSTATE_VERSION", replicas=(OldReplicas("nglstate", "NGL_STATE_REPLICAS"),)),
        summary="neuroglancer JSON state server / link shortener",
        workloads=(Workload("nglstate", "neuroglancerjsonserver", scaling="fixed"),),
        images=(Image("nglstate--neuroglancerjsonserver", "neuroglancerjsonserver"),),
        ingress=(IngressPath("/nglstate", "nglstate-service"),),
        configmaps=(_env("nglstate"),),
        service_account="nglstate",
        google=(DATASTORE, bucket_objects("services.nglstate.bucket", why="stores link states")),
    ),
    # ------------------------------------------------------------------ local clusters
    Service(
        name="annotationengine",
        kinds=("local",),
        old_env=OldEnv("ANNOTATION_ENGINE_VERSION", ("ANNOTATIONENGINE_MAX_REPLICAS",),
                       (old_replicas("annotationengine", "ANNOTATIONENGINE"),)),
        aliases=("annotation",),
        upstream="CAVEconnectome/AnnotationEngine",
        summary="AnnotationEngine: annotation tables API",
        workloads=(Workload("annotationengine", "annotationengine", hpa="annotationengine-scaler", pool="standard"),),
        images=(Image("annotationengine--annotationengine", "annotationengine"),),
        ingress=(
            IngressPath("/annotation", "annotation-service"),
            IngressPath("/swaggerui", "annotation-service"),
            IngressPath("/static", "annotation-service"),
        ),
        configmaps=(ConfigMap("annotationengine-config", {"config.cfg": "config.cfg.j2"}), _env("annotationengine")),
        secrets=("postgres_password", "cave_token"),
        service_account="annotationengine",
        google=(CLOUDSQL_CLIENT, GoogleApi("bigtable", "roles/bigtable.user", why="create_service_accounts.sh")),
    ),
    Service(
        name="materializationengine",
        kinds=("local",),
        # CELERY_PRODUCER_MIN_REPLICAS is the materialize_worker switch (update_services.sh tested it)
        old_env=OldEnv("MATERIALIZE_VERSION", ("MAT_MAX_REPLICAS", "CELERY_PRODUCER_MIN_REPLICAS"), (
            old_replicas("materialize", "MAT"), old_replicas("celery-producer", "CELERY_PRODUCER"),
            old_replicas("celery-consumer", "CELERY_CONSUMER"),
            OldReplicas("celery-beat-scheduler", "CELERY_BEAT_REPLICAS"))),
        aliases=("materialize",),
        upstream="CAVEconnectome/MaterializationEngine",
        summary="MaterializationEngine API, celery workers, beat scheduler, flower and the DB migration hook",
        workloads=(
            Workload("materialize", "materialize", hpa="materialize-scaler", pool="lightweight"),
            Workload("celery-producer", "celery", hpa="celery-producer-scaler", pool="standard"),
            Workload("celery-orchestration", "celery", scaling="fixed", pool="standard"),
            Workload("celery-consumer", "celery", hpa="celery-consumer-scaler", pool="mesh"),
            # Delta Lake exports go to <dump_bucket>/deltalake_exports: without dump_bucket there is nowhere to write.
            Workload("celery-deltalake", "celery", hpa="celery-deltalake-scaler", pool="mesh", requires="dump_bucket"),
            Workload("celery-beat-scheduler", "celery-beat-scheduler", scaling="fixed", pool="standard"),
            Workload("flower", "flower", scaling="fixed", pool="standard"),
            Workload("materialize-db-migration", "migration", scaling="job", kind="Job", pool="standard"),
        ),
        images=(
            Image("materializationengine--materializationengine", "materializationengine"),
            Image("materializationengine--celery-metric-exporter", "celery-metric-exporter", tag="v5"),
        ),
        ingress=(IngressPath("/materialize", "materialize-service"),),
        configmaps=(
            ConfigMap("materializationengine-config", {"config.cfg": "config.cfg.j2"}),
            _env("materializationengine"),
        ),
        secrets=("postgres_password", "cave_token"),
        service_account="pychunkedgraph",
        google=(
            CLOUDSQL_CLIENT, CLOUDSQL_IMPORT_EXPORT, BIGTABLE_DATA, METRIC_WRITER,
            bucket_objects("services.materializationengine.upload_bucket", why="uploads CSV for import"),
            bucket_objects("services.materializationengine.dump_bucket", why="reads database dumps"),
        ),
        sql_instance_buckets=(
            SqlInstanceBucket("services.materializationengine.upload_bucket", "roles/storage.objectViewer",
                              why="Cloud SQL imports the uploaded CSV from it"),
            SqlInstanceBucket("services.materializationengine.dump_bucket", "roles/storage.objectCreator",
                              why="Cloud SQL exports into it"),
        ),
    ),
    Service(
        name="pychunkedgraph",
        kinds=("local",),
        old_env=OldEnv("PYCG_VERSION", ("PYCG_MAX_REPLICAS",), (
            old_replicas("pychunkedgraph", "PYCG"), old_replicas("pychunkedgraph-read", "PYCG_READ"))),
        summary="PyChunkedGraph segmentation API (edit and read pods)",
        workloads=(
            Workload("pychunkedgraph", "pychunkedgraph", hpa="pychunkedgraph-scaler", pool="standard"),
            Workload("pychunkedgraph-read", "pychunkedgraph", hpa="pychunkedgraph-read-scaler", pool="mesh"),
        ),
        images=(
            Image("pychunkedgraph--pychunkedgraph", "pychunkedgraph"),
        ),
        ingress=(
            IngressPath(r"/segmentation/.*/(split|merge|undo|redo|rollback|split_preview)$", "pychunkedgraph-service",
                        regex=True),
            IngressPath("/segmentation", "pychunkedgraph-read-service"),
            IngressPath("/segmentation_proc", "pychunkedgraph-service"),
        ),
        configmaps=(ConfigMap("pychunkedgraph-config", {"config.cfg": "config.cfg.j2"}), _env("pychunkedgraph")),
        secrets=("cave_token",),
        service_account="pychunkedgraph",
        google=(
            BIGTABLE_DATA, DATASTORE, PUBSUB, METRIC_WRITER,
            GoogleApi("storage", "roles/storage.objectViewer", why="reads segmentation data"),
            GoogleApi("storage", "roles/storage.objectAdmin", on="bucket", bucket_field="data.pcg_bucket",
                      why="the PCG bucket in the data project"),
        ),
    ),
    Service(
        name="meshing",
        kinds=("local",),
        old_env=OldEnv("PYCG_VERSION",
                       ("MESHING_MAX_REPLICAS", "MESHWORKER_MAX_REPLICAS", "REMESHWORKER_MAX_REPLICAS"),
                       (old_replicas("meshing", "MESHING"), old_replicas("meshworker", "MESHWORKER"),
                        old_replicas("remeshworker", "REMESHWORKER"))),
        summary="mesh API and the mesh / remesh Pub/Sub workers",
        workloads=(
            Workload("meshing", "meshing", hpa="meshing-scaler", pool="mesh"),
            Workload("meshworker", "meshworker", hpa="meshworker-scaler", pool="mesh",
                     hpa_subscription="pcg_remesh_queue"),
            Workload("remeshworker", "remeshworker", hpa="remeshworker-scaler", pool="mesh",
                     hpa_subscription="pcg_low_priority_remesh_queue"),
        ),
        images=(Image("meshing--pychunkedgraph", "pychunkedgraph"),),
        ingress=(IngressPath("/meshing", "meshing-service"),),
        configmaps=(ConfigMap("meshing-config", {"config.cfg": "config.cfg.j2"}), _env("meshing")),
        secrets=("cave_token",),
        service_account="pychunkedgraph",
        google=(BIGTABLE_DATA, PUBSUB),
    ),
    Service(
        name="l2cache",
        kinds=("local",),
        old_env=OldEnv("PCGL2CACHE_VERSION", ("PCGL2CACHE_MAX_REPLICAS",), (
            old_replicas("pcgl2cache", "PCGL2CACHE"), old_replicas("pcgl2cache-worker", "PCGL2CACHE_WORKER"),
            old_replicas("pcgl2cache-highpriority-worker", "PCGL2CACHE_WORKER"),
            old_replicas("pcgl2cache-lowpriority-worker", "PCGL2CACHE_WORKER"))),
        summary="PCG L2 cache API and its three Pub/Sub workers",
        workloads=(
            Workload("pcgl2cache", "pcgl2cache", hpa="pcgl2cache-scaler", pool="mesh"),
            Workload("pcgl2cache-worker", "pcgl2cache-worker", hpa="pcgl2cache-worker-scaler", pool="mesh",
                     hpa_subscription="l2cache_update_queue"),
            Workload("pcgl2cache-highpriority-worker", "pcgl2cache-highpriority-worker",
                     hpa="pcgl2cache-highpriorityworker-scaler", pool="mesh", hpa_subscription="l2cache_trigger_queue"),
            Workload("pcgl2cache-lowpriority-worker", "pcgl2cache-lowpriority-worker",
                     hpa="pcgl2cache-lowpriorityworker-scaler", pool="mesh",
                     hpa_subscription="l2cache_trigger_low_priority_queue"),
        ),
        images=(
            Image("l2cache--pcgl2cache", "pcgl2cache"),
            Image("l2cache--pcgl2cache-worker", "pcgl2cache", tag="worker_pcgv1_v{version}"),
        ),
        ingress=(IngressPath("/l2cache", "pcgl2cache-service"),),
        configmaps=(
            ConfigMap("pcgl2cache-config", {"config.cfg": "config.cfg.j2", "L2_table_map.yml": "L2_table_map.yml.j2"}),
            _env("l2cache"),
        ),
        secrets=("cave_token",),
        service_account="pychunkedgraph",
        google=(BIGTABLE_DATA, PUBSUB),
    ),
    Service(
        name="skeletoncache",
        kinds=("local",),
        old_env=OldEnv("SKELETONCACHE_VERSION", ("SKELETONCACHE_MAX_REPLICAS",), (
            old_replicas("skeletoncache", "SKELETONCACHE"),
            old_replicas("skeletoncache-worker", "SKELETONCACHE_WORKER"))),
        summary="skeleton cache API, Pub/Sub worker and queue-stats exporter",
        workloads=(
            Workload("skeletoncache", "skeletoncache", hpa="skeletoncache-scaler", pool="mesh"),
            Workload("skeletoncache-worker", "skeletoncache-worker", hpa="skeletoncache-worker-scaler", pool="mesh"),
            Workload("skeletoncache-stats-exporter", "stats-exporter", scaling="fixed", pool="mesh"),
        ),
        images=(
            Image("skeletoncache--skeletoncache", "skeletoncache"),
            Image("skeletoncache--pubsub-stats", "uwsgi-export-workers", tag="vpubsub_stats14"),
        ),
        ingress=(IngressPath("/skeletoncache", "skeletoncache-service"),),
        configmaps=(ConfigMap("skeletoncache-config", {"config.cfg": "config.cfg.j2"}), _env("skeletoncache")),
        patches=("hpa-skeletoncache-worker-scaler.yaml.j2",),
        secrets=("cave_token",),
        service_account="skeleton",
        google=(
            PUBSUB,
            GoogleApi("monitoring", "roles/monitoring.viewer", why="the stats exporter reads subscription backlogs"),
            GoogleApi("monitoring", "roles/monitoring.metricWriter", why="the stats exporter writes its metric"),
            bucket_objects("services.skeletoncache.bucket", why="stores skeletons"),
        ),
    ),
    Service(
        name="guidebook",
        kinds=("local",),
        old_env=OldEnv("GUIDEBOOK_VERSION", ("GUIDEBOOK_MAX_REPLICAS",), (
            old_replicas("guidebook", "GUIDEBOOK"), old_replicas("guidebook-worker", "GUIDEBOOK_WORKER"))),
        summary="guidebook: path and proofreading guidance for one datastack",
        workloads=(
            Workload("guidebook", "guidebook", hpa="guidebook-scaler", pool="lightweight"),
            Workload("guidebook-worker", "guidebook-worker", hpa="guidebook-worker-scaler", pool="lightweight"),
        ),
        images=(Image("guidebook--guidebook", "guidebook"),),
        ingress=(IngressPath("/guidebook", "guidebook-service"),),
        configmaps=(_env("guidebook"),),
        secrets=("cave_token", "guidebook_csrf_key"),
        service_account="pychunkedgraph",
    ),
    Service(
        name="tourguide",
        kinds=("local",),
        # TOURGUIDE_VERSION was never declared in CAVEdeployment (it was empty): without it the service is left out.
        old_env=OldEnv("TOURGUIDE_VERSION", ("TOURGUIDE_MAX_REPLICAS",), (old_replicas("tourguide", "TOURGUIDE"),),
                       version_optional=True),
        summary="tourguide: neuroglancer tour rendering",
        workloads=(Workload("tourguide", "tourguide", hpa="tourguide-scaler", pool="mesh"),),
        images=(
            Image("tourguide--tourguide", "tourguide"),
            Image("tourguide--tourguide-metrics", "tourguide-metrics"),
        ),
        ingress=(IngressPath("/tourguide", "tourguide-service"),),
        configmaps=(_env("tourguide"),),
        service_account="tourguide",
        google=(METRIC_WRITER,),
    ),
    Service(
        name="dash",
        kinds=("local",),
        old_env=OldEnv("DASH_VERSION", ("DASH_MAX_REPLICAS",), (old_replicas("dash", "DASH"),)),
        summary="dash apps (cell types, synapses) per datastack",
        workloads=(Workload("dash", "dash", hpa="dash-scaler", pool="lightweight"),),
        images=(
            Image("dash--dashonflask", "dashonflask"),
        ),
        ingress=(IngressPath("/dash", "dash-service"),),
        configmaps=(ConfigMap("dash-config", {"config.py": "config.py.j2"}), _env("dash")),
        secrets=("dash_secret_key",),
        service_account="dash",
        google=(METRIC_WRITER,),
    ),
    Service(
        name="pprogress",
        kinds=("local",),
        old_env=OldEnv("PPROGRESS_VERSION", ("PPROGRESS_MAX_REPLICAS",), (old_replicas("pprogress", "PPROGRESS"),)),
        summary="proofreading progress",
        workloads=(Workload("pprogress", "pprogress", hpa="pprogress-scaler", pool="lightweight"),),
        images=(Image("pprogress--proofreadingprogress", "proofreadingprogress"),),
        ingress=(IngressPath("/progress", "pprogress-service"),),
        configmaps=(_env("pprogress"),),
        secrets=("cave_token",),
        service_account="pychunkedgraph",
    ),
    Service(
        name="pmanagement",
        kinds=("local",),
        old_env=OldEnv("PMANAGEMENT_VERSION", ("PMANAGEMENT_MAX_REPLICAS",),
                       (old_replicas("pmanagement", "PMANAGEMENT"),)),
        summary="proofreading management API and the nightly tallyedits CronJob",
        workloads=(
            Workload("pmanagement", "pmanagement", hpa="pmanagement-scaler", pool="lightweight"),
            Workload("tallyedits", "tallyedits", scaling="job", kind="CronJob", pool="standard"),
        ),
        images=(Image("pmanagement--proofreadingmanagement", "proofreadingmanagement"),),
        ingress=(IngressPath("/neurons", "pmanagement-service"),),
        configmaps=(_env("pmanagement"),),
        patches=("cronjob-tallyedits.yaml.j2",),
        secrets=("pmanagement_token",),
        service_account="pmanagement",
        google=(DATASTORE,),
    ),
    Service(
        name="proxy",
        kinds=("local",),
        old_env=OldEnv("PROXY_VERSION", ("PROXY_MAX_REPLICAS",), (old_replicas("proxy", "PROXY"),)),
        deprecated=True,
        summary="(deprecated) requester-pays bucket proxy; opt-in",
        workloads=(Workload("proxy", "proxy", hpa="proxy-scaler", pool="lightweight"),),
        images=(Image("proxy--middle_auth_proxy", "middle_auth_proxy", registry="data-project-gcr",
                      tags=("vRequestorPays12",)),),  # the requester-pays build, never released under semver
        ingress=(IngressPath("/proxy", "proxy-service"),),
        configmaps=(ConfigMap("proxy-config", {"config.cfg": "config.cfg.j2"}), _env("proxy")),
        service_account="proxy",
        google=(
            GoogleApi("storage", "roles/storage.objectViewer", on="bucket", bucket_field="services.proxy.map",
                      requester_pays=True, why="reads the buckets it proxies"),
            GoogleApi("serviceusage", "roles/serviceusage.serviceUsageConsumer",
                      why="bills requester-pays reads to the cluster's project (serviceusage.services.use)"),
        ),
    ),
    Service(
        name="cavecanary",
        kinds=("local",),
        old_env=OldEnv("CAVECANARY_VERSION", ("CAVECANARY_MAX_REPLICAS",)),
        summary="canary that writes and reads test annotations and reports to Slack",
        workloads=(Workload("cavecanary", "cavecanary", scaling="fixed", pool="lightweight"),),
        images=(Image("cavecanary--cavecanary", "cavecanary"),),
        configmaps=(ConfigMap("cavecanary-config", {"config.cfg": "config.cfg.j2"}, secret=True), _env("cavecanary")),
        secrets=("postgres_password", "slack_api_token", "cave_token"),
        service_account="pychunkedgraph",
        google=(CLOUDSQL_CLIENT,),
    ),
    # ------------------------------------------------------------------ global and local clusters
    Service(
        name="auth_info",
        kinds=("global", "local"),
        summary="static nginx endpoint telling clients where to log in and which datastacks exist",
        workloads=(Workload("nginx", "nginx", scaling="fixed", pool="standard"),),
        images=(Image("auth_info--nginx", "nginx", tag="{version}", registry="dockerhub"),),
        ingress=(IngressPath("/auth_info", "auth-info-service"),),
        configmaps=(ConfigMap("nginx-conf", {"nginx.conf": "nginx.conf.j2"}),),
    ),
)

BY_NAME: dict[str, Service] = {s.name: s for s in SERVICES}
ALIASES: dict[str, str] = {a: s.name for s in SERVICES for a in s.aliases}

# Secrets whose value is a whole file (mounted), as opposed to one env variable.
FILE_SECRETS = {"cave_token": "cave-secret.json", "pmanagement_token": "cave-secret.json",
                "oauth_client": "client_secret.json"}

# Where each secret's value comes from: None = random, ours to choose (bootstrap generates it); otherwise
# only the operator has it, and the text says what to store.
SECRET_SOURCES: dict[str, str | None] = {
    "postgres_password": None,
    "auth_secret_key": None,
    "info_secret_key": None,
    "info_csrf_key": None,
    "guidebook_csrf_key": None,
    "dash_secret_key": None,
    "oauth_client": "the OAuth web client JSON downloaded from APIs & Services > Credentials",
    "cave_token": 'the CAVE service-account token as {"token": "..."}, created in the global auth admin UI',
    "pmanagement_token": 'the pmanagement CAVE token as {"token": "..."}, created in the global auth admin UI',
    "slack_api_token": "the Slack bot token the canary posts with",
}
# The CAVE tokens: an operator creates them in the global auth service's admin UI, so only once auth runs.
AUTH_TOKENS = frozenset({"cave_token", "pmanagement_token"})


def is_operator_secret(key: str) -> bool:
    """Whether only an operator can store the value of secret `key` (bootstrap lists it, never generates it)."""
    return SECRET_SOURCES.get(key) is not None

# The Workload Identity annotation: the GCP service account a Kubernetes ServiceAccount's pods act as.
WORKLOAD_IDENTITY = "iam.gke.io/gcp-service-account"
# GCP service accounts daf-<role>-<cluster> of cluster add-ons (overlays/argocd), by role.
DNS_ROLE = "clouddns"
SECRETS_ROLE = "secrets"
METRICS_ROLE = "metrics"
# role → (namespace, Kubernetes ServiceAccount) of the add-on acting as it.
ADDON_SERVICE_ACCOUNTS: dict[str, tuple[str, str]] = {
    DNS_ROLE: ("cert-manager", "cert-manager"),  # DNS-01 challenges (roles/dns.admin)
    SECRETS_ROLE: ("external-secrets", "external-secrets"),  # reads Secret Manager for the ClusterSecretStore
    # the custom-metrics Stackdriver adapter reads Cloud Monitoring (roles/monitoring.viewer); only on clusters
    # that need it (needs_metrics_adapter)
    METRICS_ROLE: ("custom-metrics", "custom-metrics-stackdriver-adapter"),
}

# Services with an HPA on a Cloud Monitoring metric (custom.googleapis.com Pods or External metrics,
# pubsub.googleapis.com External metrics): a cluster running one needs the custom-metrics Stackdriver adapter
# add-on (docs/pitfalls.md#p40). The fleet rule `metric-source` checks this against the rendered HPAs.
CUSTOM_METRIC_HPA_SERVICES = frozenset({
    "dash", "l2cache", "materializationengine", "meshing", "pychunkedgraph", "skeletoncache", "tourguide",
})


def needs_metrics_adapter(services: Iterable[str]) -> bool:
    """Whether a cluster running `services` (catalogue names) needs the custom-metrics Stackdriver adapter."""
    return any(name in CUSTOM_METRIC_HPA_SERVICES for name in services)


def resolve(name: str) -> Service | None:
    """A service by its name or alias (`schema`, `annotation`, `materialize`)."""
    return BY_NAME.get(ALIASES.get(name, name))
