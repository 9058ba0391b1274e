"""Semantic diff of rendered clusters between a git ref and the working tree, object by object.

Only clusters whose overlay inputs differ (content hash) are rendered; both sides render in parallel
through the render cache. When a cluster's only changed inputs are service bases, just those bases are
rendered, both sides in one kustomize process ("reduced renders", below; CAVE_GITOPS_FULL_RENDER=1 turns
them off). Objects are matched by cluster + api group/kind + namespace + name, with
kustomize hash suffixes of generated ConfigMaps/Secrets stripped (and references to them normalised),
so a config edit is one content change, not a delete and an add. Values of Secrets and of ExternalSecret
templates are never shown: only their key names and "value changed".

JSON schema (`--format json`), stable; fields are only ever added, `version` bumps otherwise:

    {
      "version": 1,
      "base": {"ref": str, "commit": str},          # what the working tree is compared with
      "changed": bool,                              # same as exit code 1
      "summary": {
        "clusters": {"added": [str], "removed": [str], "changed": [str], "unchanged": [str]},
        "objects": {"added": int, "removed": int, "changed": int}
      },
      "images": [{"cluster", "kind", "namespace", "name", "container", "old", "new"}],   # old/new: str|null
      "argocd": [{"cluster", "kind", "namespace", "name", "annotation", "old", "new"}],  # old/new: str|null
      "matrix": {"services": [str], "clusters": [str], "cells": {service: {cluster: status}}},
      "warnings": [str],                            # only when there is one: e.g. overlays at the base that
                                                    # differ from what the specs there compile to
      "versions": [{"service", "cluster", "old", "new"}],   # versions the specs change (old/new: str|null,
                                                    # "disabled" for a service turned off); the `status` rows
      "applications": [{                            # overlays/argocd/: objects added, removed or changed
          "kind", "name": str, "cluster": str|null, "status": "added"|"removed"|"changed",
          "summary": str,                           # what it deploys where: chart and version or path, destination
          "changes": [{"field": str, "old": str|null, "new": str|null}],   # chart version, destination, wave...
          "other": [str]                            # other changed paths (Helm values, sync policy, ...)
      }],
      "waves": {"before": [APP], "after": [APP]},   # the Applications added, removed or moved to another sync
                                                    # wave, on each side: APP = {"kind", "name", "cluster": str|null,
                                                    # "wave": int, "what", "destination"} (build/waves.py)
      "clusters": [{
        "name": str,
        "status": "added"|"removed"|"changed"|"unchanged",
        "rendered": bool,                           # false: inputs identical, nothing rendered
        "unchanged_objects": int,
        "new_cluster": {"objects": {kind: int}, "images": [{"image": str, "services": [str]}],
                        "versions": {service: str}},   # only for an added cluster
        "objects": [{                               # objects that are not unchanged, sorted
          "group", "kind", "namespace", "name", "service": str,
          "status": "added"|"removed"|"changed",
          "old_name", "new_name": str|null,         # generated (hash-suffixed) names on each side
          "changes": [{"path": str, "op": "added"|"removed"|"changed"|"reordered",
                       "old": any, "new": any, "redacted": bool}],   # redacted: old/new are null
          "notes": [str]
        }]
      }]
    }

Matrix cell status: "added", "removed", "changed", "unchanged" (service has objects, none differ).
The exit code is 1 when a cluster or overlays/argocd/ differs. Text and Markdown show an added cluster as its
`new_cluster` summary rather than one line per object (the JSON still lists every object).
"""
