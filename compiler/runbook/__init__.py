"""The steps of the deployment protocol that no API does for us, generated per cluster with exact values.

Each step carries what to do (with the values derived from the spec: URIs, names, commands), why, and a
status where the tool can tell:
- done: verified here (overlays in sync, a resource or secret value exists in Google: `--online`);
- todo: verified missing;
- check: only a person can verify it (an OAuth console setting, an admin UI entry);
- unknown: verifiable with `--online` (it asks Google through the bootstrap plan).

The same `Step` list renders as markdown (a checklist for people) and JSON (for scripts), so both always
carry the same steps.
"""
