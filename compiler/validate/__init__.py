"""Validate rendered clusters: Kubernetes schemas of the cluster's version, CRD schemas, CAVE rules.

Schema sources: kubernetes-validate's bundled strict schemas for built-in kinds; for custom resources
a directory of JSON schemas (`<group>/<kind>_<version>.json`, draft 7) and/or CRD manifests
(`apiextensions.k8s.io/v1` CustomResourceDefinition, their `openAPIV3Schema`), manifests first.
CAVE rules are the `rule_*` functions below, each checking one thing over a cluster's whole object set.
"""
