"""Fleet rule `secret-owner`: every Secret of a cluster has exactly one object that makes it.

Two makers of one Secret fight: cert-manager's ingress-shim turns an Ingress annotated `cert-manager.io/issuer`
(or `cluster-issuer`) into a Certificate per `spec.tls[].secretName`, so an explicit Certificate for the same
secret gives two Certificates racing for it (cert-manager #4846: they reissue in a loop; since #6406 one is
elected owner and the other never becomes Ready, which keeps the Argo CD Application Degraded). The same holds
for an ExternalSecret and a committed Secret, or two ExternalSecrets with one target.

A Secret's makers, per cluster and namespace: a Secret object; an ExternalSecret (`spec.target.name`, default
its own name); a Certificate (`spec.secretName`); ingress-shim (each `spec.tls[].secretName` of an Ingress with
the annotation); an ACME Issuer or ClusterIssuer (its account key, `spec.acme.privateKeySecretRef.name`); and the
add-on charts whose controllers write a Secret of their own (webhook certificates, named after the release).
"""

from __future__ import annotations

from collections.abc import Iterator

from compiler import catalog
from compiler.render.manifests import get
from compiler.validate.fleet import Fleet, fleet_rule
from compiler.validate.model import Finding, Obj, object_finding

RULE = "secret-owner"
SHIM_ANNOTATIONS = ("cert-manager.io/issuer", "cert-manager.io/cluster-issuer")
# chart -> suffix of the Secret its controller writes in the release namespace (<release><suffix>)
ADDON_SECRETS = {
    "cert-manager": "-webhook-ca",  # the webhook's serving CA (cainjector / dynamic serving)
    "external-secrets": "-webhook",  # the webhook certificate the cert-controller writes
    "ingress-nginx": "-admission",  # the admission webhook certificate of the admission jobs
}
Owner = tuple[str, Obj | None, str]  # (description, object or None for an add-on, field path)


def _owners(fleet: Fleet, cluster: str) -> dict[tuple[str, str], list[Owner]]:
    """(namespace, Secret name) -> every object of the cluster that makes that Secret."""
    default_ns = fleet.spec(cluster).argocd.namespace
    owners: dict[tuple[str, str], list[Owner]] = {}

    def add(obj: Obj, name: object, what: str, path: str) -> None:
        if isinstance(name, str) and name:
            ns = get(obj, "metadata", "namespace") or default_ns
            owners.setdefault((ns, name), []).append((what, obj, path))

    for obj in fleet.objects.get(cluster, []):
        kind, name = obj.get("kind"), get(obj, "metadata", "name")
        ident = f"{kind} {name}"
        if kind == "Secret":
            add(obj, name, f"the {ident} object itself", "metadata.name")
        elif kind == "ExternalSecret":
            target = get(obj, "spec", "target", "name")
            add(obj, target or name, ident, "spec.target.name" if target else "metadata.name")
        elif kind == "Certificate":
            add(obj, get(obj, "spec", "secretName"), ident, "spec.secretName")
        elif kind in ("Issuer", "ClusterIssuer"):
            add(obj, get(obj, "spec", "acme", "privateKeySecretRef", "name"), f"{ident} (its ACME account key)",
                "spec.acme.privateKeySecretRef.name")
        elif kind == "Ingress":
            annotations = get(obj, "metadata", "annotations") or {}
            shim = [a for a in SHIM_ANNOTATIONS if a in annotations]
            for i, tls in enumerate(get(obj, "spec", "tls") or []):
                if shim:
                    add(obj, get(tls, "secretName"), f"ingress-shim, from {shim[0]} on {ident}",
                        f"spec.tls[{i}].secretName")
    for app in fleet.argocd_objects("Application"):
        if get(app, "metadata", "labels", catalog.CLUSTER_LABEL) != cluster:
            continue
        chart = get(app, "spec", "source", "chart")
        suffix = ADDON_SECRETS.get(chart) if isinstance(chart, str) else None
        if suffix is None:
            continue
        release = get(app, "spec", "source", "helm", "releaseName") or get(app, "metadata", "name")
        ns = get(app, "spec", "destination", "namespace") or default_ns
        owners.setdefault((ns, f"{release}{suffix}"), []).append(
            (f"the {chart} add-on (Application {get(app, 'metadata', 'name')})", None, ""))
    return owners


def _fix(owners: list[Owner]) -> str:
    if any(what.startswith("ingress-shim") for what, _, _ in owners) and any(
            o is not None and o.get("kind") == "Certificate" for _, o, _ in owners):
        return ("drop the cert-manager.io/issuer annotation from the Ingress and keep the explicit Certificate "
                "in the Ingress patch compiler/build/compile.py writes, then rebuild")
    return "keep one of them and rename or remove the others"


@fleet_rule(RULE)
def secret_owner(fleet: Fleet) -> Iterator[Finding]:
    """Two or more makers of one Secret: a finding on each object-backed maker, naming all of them."""
    for cluster in fleet.clusters:
        for (ns, name), owners in sorted(_owners(fleet, cluster).items()):
            if len(owners) < 2:
                continue
            listed = "; ".join(what for what, _, _ in owners)
            message = (f"Secret {ns}/{name} has {len(owners)} owners: {listed}; two controllers writing one Secret "
                       f"overwrite each other or leave one never Ready ({_fix(owners)})")
            for _, obj, path in owners:
                if obj is not None:
                    yield object_finding(cluster, obj, path, RULE, message)
