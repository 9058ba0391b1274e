"""Fleet rule `shared-data`: no two clusters write the same data (the build-time check, as findings).

`build` refuses specs where two clusters write one Cloud SQL instance, Bigtable table, bucket, Secret Manager
secret, Pub/Sub topic or subscription, datastack registration or static IP (compiler/spec/sharing.py, run by
`check_all`). The fleet loader skips that check so that `validate` of a repository whose specs predate it
still loads; this rule then reports the same problems, at the same `environments/<cluster>.yaml:LINE:COL`.
"""

from __future__ import annotations

from collections.abc import Iterator

from compiler.spec.sharing import shared_data
from compiler.validate.fleet import Fleet, fleet_rule
from compiler.validate.model import Finding

RULE = "shared-data"


@fleet_rule(RULE)
def shared(fleet: Fleet) -> Iterator[Finding]:
    specs = {c: (fleet.spec(c), fleet.loaded[c].doc) for c in fleet.clusters}
    cluster_of = {doc.path: c for c, (_, doc) in specs.items()}
    for problem in shared_data(specs):
        cluster = cluster_of[problem.path]
        yield Finding(cluster, "", "", "", "", RULE, problem.message,
                      where=f"{problem.path}:{problem.line}:{problem.col}")
