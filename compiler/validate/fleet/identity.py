"""google-identity: every pod that talks to Google has an identity that may.

Under Workload Identity a pod calls Google as the GCP service account its Kubernetes ServiceAccount is annotated
with, and only if bootstrap made that account, let the ServiceAccount act as it and granted it the roles of the
APIs the pod uses. A link missing anywhere in that chain (catalogue `google` entry → serviceAccountName →
ServiceAccount in the cluster → `iam.gke.io/gcp-service-account` → GSA in the plan → workloadIdentityUser
binding for `<project>.svc.id.goog[<ns>/<ksa>]` → role on the right project or bucket) fails only at run time,
as a 403 from a pod that otherwise looks healthy (the proxy ran as `default` and could read no private or
requester-pays bucket; materialization could not import CSV into Cloud SQL with cloudsql.client alone).
"""

from __future__ import annotations

from collections.abc import Iterator

from compiler import catalog
from compiler.bootstrap.desired import Grant, google_grants, sql_instance_bucket_roles
from compiler.render.manifests import field_path, get
from compiler.spec.derive import derive, workload_identity_member
from compiler.validate.fleet import ClusterView, Fleet, fleet_rule
from compiler.validate.model import Finding, object_finding
from compiler.validate.rules import PodTemplate

RULE = "google-identity"
ANNOTATION = catalog.WORKLOAD_IDENTITY


def _uses(grants: list[Grant]) -> str:
    return ", ".join(sorted({g.use.api for g in grants}))


def _where(grant: Grant) -> str:
    return f"bucket gs://{grant.bucket}" if grant.bucket else f"project {grant.project}"


@fleet_rule(RULE)
def google_identity(fleet: Fleet) -> Iterator[Finding]:
    for view in fleet.views():
        yield from _cluster(fleet, view)


def _cluster(fleet: Fleet, view: ClusterView) -> Iterator[Finding]:
    plan = {r.key for r in view.plan}
    grants = google_grants(view.spec)
    for template in view.objects.pod_templates:
        entry = catalog.BY_NAME.get(str(get(template.owner, "metadata", "labels", catalog.SERVICE_LABEL)))
        if entry is None or not entry.google:
            continue
        needed = [g for g in grants if g.service == entry.name]
        if not needed:
            continue  # its buckets are not set in this spec
        yield from _pod(view, template, entry, needed, plan)
    yield from _sql_instance(fleet, view.cluster, plan)


def _pod(view: ClusterView, template: PodTemplate, entry: catalog.Service, needed: list[Grant],
         plan: set[str]) -> Iterator[Finding]:
    cluster, obj, project = view.cluster, template.owner, view.spec.gcp.project
    path = field_path([*template.path, "spec"])
    ksa, account = view.service_account(obj, template.spec)
    uses = _uses(needed)
    fix_ksa = (f"give catalogue service {entry.name} a service_account, set serviceAccountName to it in "
               f"base/{entry.name} and rebuild") if entry.service_account is None else (
        f"set serviceAccountName: {entry.service_account} in base/{entry.name} and rebuild")
    if account is None or (entry.service_account is not None and ksa != entry.service_account):
        what = "which the cluster does not have" if account is None else (
            f"not {entry.service_account}, the one the catalogue grants its Google roles to")
        yield object_finding(cluster, obj, f"{path}.serviceAccountName", RULE,
                                   f"calls Google ({uses}) as Kubernetes ServiceAccount {ksa!r}, {what}: "
                                   f"it has no Google identity that may ({fix_ksa})")
        return
    email = get(account, "metadata", "annotations", ANNOTATION)
    if not isinstance(email, str) or "@" not in email:
        yield object_finding(cluster, account, f"metadata.annotations.{ANNOTATION}", RULE,
                                   f"ServiceAccount {ksa!r}, which {obj.get('kind')}/{get(obj, 'metadata', 'name')} "
                                   f"runs as to call Google ({uses}), has no {ANNOTATION} annotation: its pods get "
                                   f"no Google identity (annotate it with its GCP service account, "
                                   f"{derive(view.spec).gcp_service_account(ksa)}, and rebuild)")
        return
    where = f"{obj.get('kind')}/{get(obj, 'metadata', 'name')} (ServiceAccount {ksa} → {email})"
    gsa = email.split("@")[0]
    if f"service-account/{gsa}" not in plan:
        yield object_finding(cluster, obj, f"{path}.serviceAccountName", RULE,
                                   f"{where}: bootstrap does not create GCP service account {gsa} "
                                   f"(the catalogue's service_account of {entry.name} and the annotation must "
                                   f"name the same daf-<role>-<env> account)")
        return
    wi_member = workload_identity_member(project, view.namespace(obj), ksa)
    if f"sa-iam-binding/{email}:roles/iam.workloadIdentityUser:{wi_member}" not in plan:
        yield object_finding(cluster, obj, f"{path}.serviceAccountName", RULE,
                                   f"{where}: bootstrap does not let {wi_member} act as {email} "
                                   f"(roles/iam.workloadIdentityUser on the GCP service account is missing; "
                                   f"the service account's role must match the ServiceAccount name {ksa})")
    for grant in sorted(needed, key=lambda g: (g.use.role, g.project, g.bucket or "")):
        if grant.key(email) not in plan:
            yield object_finding(cluster, obj, f"{path}.serviceAccountName", RULE,
                                       f"{where}: {entry.name} calls {grant.use.api} ({grant.use.why or 'catalogue'})"
                                       f" but bootstrap does not grant {grant.use.role} on {_where(grant)} to "
                                       f"{email} (plan the grant from the catalogue's google entry in "
                                       f"compiler/bootstrap/desired.py)")


def _sql_instance(fleet: Fleet, cluster: str, plan: set[str]) -> Iterator[Finding]:
    """Cloud SQL import/export reads and writes the bucket as the instance's own account: it needs the role."""
    spec = fleet.spec(cluster)
    for bucket, role, why in sql_instance_bucket_roles(spec):
        if f"bucket-iam-binding/{bucket}:{role}:cloud-sql-instance" not in plan:
            yield fleet.spec_finding(cluster, ("cloud_sql", "instance"), RULE,
                                     f"the Cloud SQL instance {spec.cloud_sql.instance}'s own service account lacks "
                                     f"{role} on gs://{bucket} ({why}; plan that bucket grant in "
                                     f"compiler/bootstrap/desired.py)")
