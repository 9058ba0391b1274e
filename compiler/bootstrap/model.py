"""What bootstrap plans and creates: desired cloud resources, what was observed, and the provider interface.

A `Resource` is one thing in Google Cloud that a cluster needs before Argo CD can sync it. Its `fields`
are the settings we compare with what exists (`observe` returns the same keys); `params` are create-only
inputs that cannot be read back (a password's Secret Manager name, the node pools a GKE cluster is created
with); `outputs` are values the cloud chooses that the spec also holds (the static IP, Redis hosts), compared
so the operator learns when the spec is out of date. `depends` orders creation.

`project` is the GCP project the resource lives in (the data project for the Bigtable instance). Names are
short ids; providers build the full resource paths. Observed values use the same Python types as `fields`
(ints, bools, strings, sorted lists, dicts); a binding that is present observes as its own fields.

Kinds, their names and fields (every provider reads and returns exactly these keys):

- project (project id): no fields; observed: number, pubsub_service_agent (never created: must exist)
- api ("<project>:<service>", e.g. "cave-demo-minnie:compute.googleapis.com"): no fields; observed {} when
  enabled; created by enabling it (never disabled). Every resource of a planned project depends on the API it
  is created through (desired.KIND_APIS), so the APIs are enabled first.
- network (VPC name): auto_create_subnetworks (False)
- subnet: region, network, ip_cidr_range
- address: region; outputs: address
- gke-cluster: location, network, subnetwork, workload_pool, release_channel;
  params: node_pools (node-pool fields + name each), kubernetes_version
- node-pool: cluster, location, machine_type, disk_size_gb, min_nodes, max_nodes, preemptible,
  taints (list of "k=v:NoSchedule")
- sql-instance: region, database_version, tier; params: root_password_secret;
  observed also: service_account_member ("serviceAccount:<the instance's own service account>")
- sql-database (database name): instance
- sql-user (user name): instance; params: password_secret
- redis (instance id): region, memory_size_gb, tier, network, redis_configs (dict); outputs: host
- bigtable-instance (in the data project): zone, storage_type ("SSD"), serve_nodes,
  clusters (1: no replication)
- pubsub-topic: no fields
- pubsub-subscription: topic, ack_deadline_seconds, filter, dead_letter_topic, max_delivery_attempts,
  max_retry_delay_seconds, expires (False)
- dns-record (FQDN with trailing dot): zone, type, ttl, rrdatas (list; may hold a Ref to the address)
- dns-zone (managed zone name): dns_name; outputs: name_servers (`owner` set when another cluster creates it)
- service-account (account id): display_name
- project-iam-binding ("<project>:<role>:<member>"): role, member (added to the project's policy,
  other bindings kept)
- bucket-iam-binding ("<bucket>:<role>:<member>"): bucket, role, member
- sa-iam-binding ("<account email>:<role>:<member>"): account (email), role, member (Workload Identity:
  roles/iam.workloadIdentityUser for serviceAccount:<project>.svc.id.goog[<ns>/<ksa>])
- secret (Secret Manager id): replication ("automatic"); params: value ("generate" or "operator"), hint;
  observed also has versions (number of enabled versions)
- bucket: location (upper case, e.g. US-CENTRAL1), uniform_access (True)
- datastore-database ("(default)"): location, type ("DATASTORE_MODE")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Status = Literal["exists", "missing", "differs", "offline", "needs-operator", "error"]

# Kinds whose resources hold data: bootstrap never deletes, shrinks or replaces them.
DATA_KINDS = frozenset({"sql-instance", "sql-database", "bucket", "bigtable-instance", "redis",
                        "datastore-database", "secret"})


@dataclass(frozen=True)
class Ref:
    """A value known only once another resource exists: output `output` of resource `key` (kind/name)."""

    key: str
    output: str

    def __str__(self) -> str:
        return f"<{self.output} of {self.key}>"


@dataclass(frozen=True)
class Resource:
    kind: str
    name: str
    project: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)  # output → value the spec holds (None: not set)
    spec_paths: Mapping[str, str] = field(default_factory=dict)  # output → spec path to update, e.g. "static_ip"
    depends: tuple[str, ...] = ()
    note: str = ""
    # The cluster whose bootstrap creates it ("": this plan does). A resource owned elsewhere (a DNS zone of
    # another cluster) is only read: while missing it is never created here and what depends on it waits.
    owner: str = ""

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def data(self) -> bool:
        return self.kind in DATA_KINDS


class NeedsOperator(Exception):
    """The resource can only be created by a person (e.g. an OAuth client secret); the message says how."""


class ProviderError(Exception):
    """A call to Google failed; the message names the resource and the API's error."""


@dataclass
class Context:
    """What a provider may use while creating: resolved references and secret values (never logged)."""

    resolve: Callable[[Any], Any]
    secret_value: Callable[[str, str], str]  # (project, secret id) → latest value
    progress: Callable[[str], None] = lambda message: None


class Provider(Protocol):
    """One Google API family. `observe` must not write; `create` waits until the resource is usable and
    treats "already exists" as success."""

    kinds: frozenset[str]

    def observe(self, resource: Resource, ctx: Context) -> dict[str, Any] | None:
        """Current fields (+ outputs) of the resource in the same keys as `resource.fields`, or None if absent."""
        ...

    def create(self, resource: Resource, ctx: Context) -> None:
        ...
