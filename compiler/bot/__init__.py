"""The version-bump bot: upstream releases of schema, annotation and materialize become bump pull requests.

A run (1) reads the specs at the base branch; (2) asks upstream GitHub for releases and tags (semver only,
pre-releases only where a spec opts in) and, per cluster, picks the newest one its `bump:` policy allows
whose images exist in the cluster's registry and, for annotation/materialize, whose pinned
EMAnnotationSchemas the global cluster runs (or will run: then the global schema bump joins the change);
(3) only then writes: per set of linked components, one branch `cave-bot/<components>` made with
`python -m compiler bump` on a fresh worktree, pushed (force only over the bot's own commits) and one pull
request opened or updated. Everything it learns from outside comes before the first write, so a failure
leaves nothing half-done.
"""
