"""What CAVEdeployment's env variables are, and where import-env puts each.

Pure data about the env file as a whole: the secret variables and the spec keys naming their Secret Manager
secrets, the constants the compiler fixes, the launch defaults (node pools, SQL size), and for every other
variable what the compiler or bootstrap does instead. What one service's variables are (its switches, version
and replica variables) is on its entry in compiler/catalog.py (`old_env`), with the service's other facts.
"""

from __future__ import annotations

from typing import Any, Literal

Kind = Literal["global", "local"]

# Variables holding secrets → the spec's `secrets:` key holding their Secret Manager name.
SECRET_KEYS: dict[Kind, dict[str, str]] = {
    "global": {"POSTGRES_WRITE_USER_PASSWORD": "postgres_password", "AUTHSERVICE_SECRET_KEY": "auth_secret_key",
               "INFOSERVICE_SECRET_KEY": "info_secret_key", "INFOSERVICE_CSRF_SECRET_KEY": "info_csrf_key"},
    "local": {"POSTGRES_WRITE_USER_PASSWORD": "postgres_password", "GUIDEBOOK_CSRF_KEY": "guidebook_csrf_key",
              "DASH_SECRET_KEY": "dash_secret_key", "SLACK_API_TOKEN": "slack_api_token"},
}
SECRET_VARIABLES = frozenset({*SECRET_KEYS["global"], *SECRET_KEYS["local"], "MAT_REDIS_PASSWORD",
                              "REDIS_PASSWORD"})
# Secrets held in files beside the env repository, not in the env file (docs/pitfalls.md#p27).
FILE_SECRETS: dict[Kind, dict[str, str]] = {
    "global": {"oauth_client": "gcloud_keys/<env>/oauth-secret-<env>.json",
               "cave_token": "secrets/<env>/cave-secret.json"},
    "local": {"cave_token": "secrets/<env>/cave-secret.json",
              "pmanagement_token": "secrets/<env>/pmanagement-secret.json"},
}
# Variables only one kind of env file sets: a cheap check that --kind is right.
KIND_MARKERS: dict[Kind, tuple[str, ...]] = {
    "global": ("AUTH_VERSION", "INFOSERVICE_VERSION", "EMANNOTATIONSCHEMAS_VERSION", "JSON_DB_TABLE_NAME"),
    "local": ("BIGTABLE_INSTANCE_NAME", "PCG_GRAPH_IDS", "MATERIALIZE_VERSION", "PYCG_VERSION", "DATA_PROJECT_NAME"),
}
# defaults.sh, sourced before a local env file; the bucket pair is derived from the calling shell,
# which import-env does not have, so both start empty (docs/pitfalls.md#p16).
LOCAL_DEFAULTS = {"MAT_QUERY_LIMIT_SIZE": "500000", "MAT_LOG_LEVEL": "WARNING", "MAT_SERVICE_MEM": "850Mi",
                  "MATERIALIZATION_UPLOAD_BUCKET_NAME": "", "MATERIALIZATION_UPLOAD_BUCKET_PATH": ""}
# Node pools CAVEdeployment's launch_cluster.sh creates.
LAUNCH_POOLS: dict[Kind, list[dict[str, Any]]] = {
    "global": [{"name": "default-pool", "machine_type": "e2-medium", "min_nodes": 1, "max_nodes": 5,
                "tainted": False}],
    "local": [
        {"name": "standard-pool", "machine_type": "t2d-standard-4", "min_nodes": 1, "max_nodes": 10},
        {"name": "lightweight-pool", "machine_type": "e2-small", "min_nodes": 1, "max_nodes": 10, "disk_gb": 20,
         "preemptible": True},
        {"name": "mesh-pool", "machine_type": "t2d-standard-4", "min_nodes": 1, "max_nodes": 100,
         "preemptible": True},
        {"name": "core-pool", "machine_type": "e2-standard-2", "min_nodes": 1, "max_nodes": 4, "disk_gb": 20,
         "tainted": False},
    ],
}
SQL_DEFAULTS: dict[Kind, tuple[int, int]] = {"global": (1, 4), "local": (4, 16)}

# What import-env does with the variables it does not map: (class, what the spec does instead).
Class = Literal["derived", "live", "unused", "secret"]
_SA = "Workload Identity service account daf-<role>-<name> (no key files)"
_PUBSUB = "Pub/Sub name <name>_... derived from the cluster name"
_CONFIG_VERSION = "ConfigMaps are content-hashed, so a config change rolls the pods"
_FOLDER = "a working directory of the scripts; the compiler needs none"
# Some of these name one service (TOURGUIDE_*, PMANAGEMENT_*, MAT_TASKQUEUE_*, ...), yet they stay here, not on
# the service's catalog.OldEnv: OldEnv holds what import-env maps into a spec (version, switches, replicas), while
# these are mapped nowhere; they only explain why the variable is dropped (a Class and a reason, words of this
# report that compiler/catalog.py, below import-env in the layering, does not know).
KNOWN: dict[str, tuple[Class, str]] = {
    "CLUSTER_NAME": ("derived", "cluster daf-<name> (bootstrap)"),
    "NETWORK_NAME": ("derived", "network daf-<name>-network (bootstrap)"),
    "SUBNETWORK_NAME": ("derived", "subnetwork daf-<name>-network-sub (bootstrap)"),
    "CLUSTER_NAME_SAFE": ("unused", "never referenced"),
    "DNS_HOSTNAME": ("derived", "primary hostname <name>.<dns.domain>"),
    **{v: ("derived", "Ingress rules and certificate SANs come from dns") for v in (
        "DNS_HOSTNAMES_DASHED", "DNS_HOSTNAMES_DB_TABBED", "DNS_HOSTNAMES_TR_TABBED", "DNS_INGRESS_PARA")},
    "EXTERNAL_IP_ADDRESS_WO_QUOTES": ("live", "the address of daf-<name>: spec static_ip (left to fill in)"),
    "EXTERNAL_IP_ADDRESS": ("live", "the address of daf-<name>: spec static_ip (left to fill in)"),
    "LETSENCRYPT_ISSUER_NAME": ("derived", "issuer letsencrypt-<tls.acme>, named after its ACME server"),
    "NGINX_INGRESS_CONTROLLER_NAME": ("unused", "ingress-nginx is installed outside the overlays"),
    "NGINX_INGRESS_SERVICE_NAME": ("unused", "ingress-service.yml was never applied"),
    "CRD_GITHUB_PATH": ("unused", "dead (only in a commented-out line)"),
    "SQL_DB_TYPE": ("derived", "the compiler always uses postgresql:// (SQLAlchemy rejects postgres://)"),
    **{v: ("derived", "database names are fixed in the config templates") for v in (
        "SQL_ANNO_DB_NAME", "SQL_AUTH_DB_NAME", "SQL_INFO_DB_NAME", "SQL_MAT_DB_NAME")},
    "POSTGRES_WRITE_USER": ("derived", "the config templates use the postgres user"),
    **{v: ("derived", _SA) for v in (
        "NGLSTATE_SERVICE_ACCOUNT_NAME", "CLOUD_SQL_SERVICE_ACCOUNT_NAME", "AUTH_SERVICE_ACCOUNT_NAME",
        "CLOUD_DNS_SERVICE_ACCOUNT_NAME", "PYCG_SERVICE_ACCOUNT_NAME", "SKELETON_SERVICE_ACCOUNT_NAME",
        "AE_SERVICE_ACCOUNT_NAME", "PMANAGEMENT_SERVICE_ACCOUNT_NAME")},
    **{v: ("derived", "Kubernetes Secrets come from Secret Manager through External Secrets") for v in (
        "NGLSTATE_SERVICE_ACCOUNT_SECRET", "INFOSERVICE_SERVICE_ACCOUNT_SECRET", "CLOUD_SQL_SERVICE_ACCOUNT_SECRET",
        "AUTH_SERVICE_ACCOUNT_SECRET", "CLOUD_DNS_SERVICE_ACCOUNT_SECRET", "AUTH_OAUTH_SECRET",
        "PYCG_SERVICE_ACCOUNT_SECRET", "SKELETON_SERVICE_ACCOUNT_SECRET", "AE_SERVICE_ACCOUNT_SECRET",
        "PMANAGEMENT_SERVICE_ACCOUNT_SECRET", "GOOGLE_SECRET_FILENAME", "OAUTH_SECRET_FILENAME",
        "CAVE_SECRET_FILENAME", "PMANAGEMENT_SECRET_FILENAME")},
    "ADD_STORAGE_NAME": ("unused", "never referenced"),
    **{v: ("unused", _FOLDER) for v in (
        "ROOT_FOLDER", "KEY_FOLDER", "YAML_FOLDER", "ADD_STORAGE_SECRET_FOLDER", "INFRASTRUCTURE_FOLDER",
        "KEY_FOLDER_NAME", "YAML_FOLDER_NAME", "ENV_REPO_PATH")},
    **{v: ("derived", "URLs derive from global_server") for v in (
        "AUTH_URI", "AUTH_URL", "INFO_URL", "STICKY_AUTH_URL")},
    **{v: ("derived", _CONFIG_VERSION) for v in (
        "AUTHSERVICE_CONFIG_VERSION", "INFOSERVICE_CONFIG_VERSION", "NGINX_CONFIG_VERSION",
        "ANNOTATION_ENGINE_CONFIG_VERSION", "MATERIALIZE_CONFIG_VERSION", "PCG_CONFIG_VERSION",
        "PCGL2CACHE_CONFIG_VERSION", "L2CACHE_CONFIG_VERSION", "SKELETONCACHE_CONFIG_VERSION", "DASH_CONFIG_VERSION",
        "PROXY_CONFIG_VERSION", "CAVECANARY_CONFIG_VERSION", "PMANAGEMENT_CONFIG_VERSION")},
    "INFO_REPLICAS": ("unused", "info runs an HPA fixed at 1..10"),
    "REDIS_NAME": ("derived", "Memorystore daf-redis-<name> (bootstrap)"),
    "REDIS_IP": ("live", "Memorystore host: spec redis.host"),
    "PCG_REDIS_NAME": ("derived", "Memorystore pcg-cache (bootstrap)"),
    "PCG_REDIS_IP": ("live", "Memorystore host: spec redis.pcg_host"),
    "MAT_REDIS_NAME": ("derived", "Memorystore <project>-celery-redis (bootstrap)"),
    "MAT_REDIS_HOST": ("live", "Memorystore host: spec redis.celery_host"),
    "MAT_REDIS_PORT": ("derived", "Memorystore listens on 6379"),
    "REDIS_HOST": ("unused", "undeclared in current templates (4.5)"),
    "REDIS_PORT": ("unused", "undeclared in current templates (4.5)"),
    "LIMITER_URI": ("derived", "redis://<redis.pcg_host>:6379/0"),
    "MAT_LIMITER_CATEGORIES": ("derived", "built from services.materializationengine.limits"),
    "SK_LIMITER_CATEGORIES": ("derived", "built from services.skeletoncache.requests_per_minute"),
    **{v: ("derived", _PUBSUB) for v in (
        "PYCHUNKEDGRAPH_EDITS_EXCHANGE", "PYCHUNKEDGRAPH_REMESH_QUEUE", "PYCHUNKEDGRAPH_LOW_PRIORITY_REMESH_QUEUE",
        "PYCHUNKEDGRAPH_LOW_PRIORITY_EXCHANGE", "L2CACHE_UPDATE_QUEUE", "L2CACHE_EXCHANGE", "L2CACHE_TRIGGER_QUEUE",
        "L2CACHE_TRIGGER_LOW_PRIORITY_QUEUE", "SKELETON_CACHE_LOW_PRIORITY_EXCHANGE",
        "SKELETON_CACHE_HIGH_PRIORITY_EXCHANGE", "SKELETON_CACHE_LOW_PRIORITY_RETRIEVE_QUEUE",
        "SKELETON_CACHE_HIGH_PRIORITY_RETRIEVE_QUEUE", "SKELETON_CACHE_HIGH_PRIORITY_RETRIEVE_QUEUE_SAFE",
        "SKELETON_CACHE_LOW_PRIORITY_RETRIEVE_QUEUE_SAFE", "SKELETON_CACHE_HIGH_PRIORITY_RETRIEVE_QUEUE_SAFE_LOWER",
        "SKELETON_CACHE_LOW_PRIORITY_RETRIEVE_QUEUE_SAFE_LOWER", "SKELETON_CACHE_DEAD_LETTER_EXCHANGE",
        "SKELETON_CACHE_DEAD_LETTER_RETRIEVE_QUEUE")},
    **{v: ("derived", "celery queues and worker names are fixed in the bases") for v in (
        "CONSUMER_QUEUE_NAME", "PRODUCER_QUEUE_NAME", "ORCHESTRATION_QUEUE_NAME", "CELERY_CONSUMER_WORKER_NAME",
        "CELERY_PRODUCER_WORKER_NAME", "CELERY_ORCHESTRATION_WORKER_NAME")},
    "CELERY_WORKER_POOL": ("unused", "the celery pool is never created"),
    **{v: ("derived", "node pools are spec node_pools; workloads select them by role") for v in (
        "STANDARD_POOL", "LIGHTWEIGHT_POOL", "CORE_POOL", "MESH_POOL")},
    "GUIDEBOOK_ENABLE_L2CACHE": ("derived", "USE_L2CACHE follows services.l2cache"),
    "ANNOTATION_UI_VERSION": ("unused", "no annotationui template"),
    "DASH2_VERSION": ("unused", "never referenced"),
    "MATERIALIZE_CRONJOB_SUSPENDED": ("unused", "never referenced"),
    "CAVECANARY_MIN_REPLICAS": ("unused", "cavecanary has no HPA"),
    "PYCG_SERVICE_ACCOUNT_ADDON": ("unused", "extra key files for the PCG service account; Workload Identity "
                                             "replaces key files"),
    "PYCG_MEM_GIB": ("derived", "converted by convert_variables.sh to PYCG_MEM_MIB"),
    "PYCG_READ_MEM_GIB": ("derived", "converted by convert_variables.sh to PYCG_READ_MEM_MIB"),
    "MAT_TASKQUEUE_CPU": ("unused", "only the orphan materialize_pubsub_worker.yml"),
    "MAT_TASKQUEUE_MEMORY": ("unused", "only the orphan materialize_pubsub_worker.yml"),
    "NGLSTATE_BUCKET_PATH": ("derived", "gs://<services.nglstate.bucket>"),
    "PCG_CONFIG": ("unused", "empty"),
    "DATA_REGION": ("unused", "defined but unused"),
    "TOURGUIDE_TMP_DIR": ("derived", "a constant (/dev/shm) in base/tourguide"),
    "TOURGUIDE_SERVER_ADDRESS": ("derived", "the global server URL"),
    "PMANAGEMENT_CONFIG_VERSION": ("derived", "ConfigMaps are content-hashed, so a config change rolls the pods"),
    **{v: ("unused", "only in the deployment protocol; the pmanagement spec has no such setting") for v in (
        "PMANAGEMENT_PROOFREADINGREVIEW_TABLE", "PMANAGEMENT_PROOFREADINGREVIEW_TEST_TABLE",
        "PMANAGEMENT_NEURONINFORMATION_TEST_TABLE", "PMANAGEMENT_DATASTORE_BUCKET_PATH")},
    **{v: ("secret", "") for v in SECRET_VARIABLES},
}
# Constants of the CAVEdeployment templates the compiler fixes: a different value in the env file cannot be kept.
FIXED_VALUES = {
    "SQL_ANNO_DB_NAME": "annotation", "SQL_AUTH_DB_NAME": "authentication", "SQL_INFO_DB_NAME": "infoservice",
    "POSTGRES_WRITE_USER": "postgres", "MAT_REDIS_PORT": "6379", "CONSUMER_QUEUE_NAME": "process",
    "PRODUCER_QUEUE_NAME": "workflow", "ORCHESTRATION_QUEUE_NAME": "orchestration",
    "STANDARD_POOL": "standard-pool", "LIGHTWEIGHT_POOL": "lightweight-pool", "CORE_POOL": "core-pool",
    "MESH_POOL": "mesh-pool", "PCG_REDIS_NAME": "pcg-cache",
}

