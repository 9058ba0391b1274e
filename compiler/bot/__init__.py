"""The version-bump bot: upstream releases of schema, annotation and materialize become bump pull requests.

A run (1) reads the specs at the base branch; (2) asks upstream GitHub for releases and tags (semver only,
pre-releases only where a spec opts in) and, per cluster, picks the newest one its `bump:` policy allows
whose images exist in the cluster's registry and, for annotation/materialize, whose EMAnnotationSchemas pin
(a version specifier) the schema the global cluster runs satisfies (or will run: then the global schema bump
joins the change); a staged rollout (stages.py) keeps the bumps of later stages back until the stage before has
soaked on main and, with gitops.yaml's argocd.api_url, Argo CD (argo.py) reports it Healthy and Synced; (3) only then
writes: per set of linked components, one branch `cave-bot/<components>` made
with `python -m compiler bump` on a fresh worktree, pushed (force only over the commit the bot last pushed,
recorded on the pull request) and one pull request opened or reconciled. Everything it learns from outside comes
before the first write, so a failure leaves nothing half-done.
"""
