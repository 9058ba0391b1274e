"""Import a CAVEdeployment env file (the bash file its scripts source) into environments/<name>.yaml.

The file is read the way `source` would read it, without running anything: `export X=...`, quoting, $VAR
references in order, bash arrays, comments and line continuations; for a local file defaults.sh applies before
it and convert_variables.sh after it. Command substitutions are not run: `$(cat FILE)` of the materialization
schedule, dash config or L2 table map is read from FILE beside the env file (or absolute) and converted to
typed YAML; `$(gcloud ...)` look-ups (static IP, Redis hosts) become bootstrap's job, and the Redis hosts the
spec needs get a placeholder marked `TODO(import)`.

Secret values are never copied: each secret variable becomes a Secret Manager *name* under `secrets:`
(default <cluster>-<key>); `bootstrap CLUSTER` creates them, generates the random ones and lists the rest.

Import the global cluster first: a local spec's global_server must be a hostname of a global spec in
environments/. The spec is validated (model, rules, and once more as a file beside the other specs) before it
is written atomically; an existing spec is only replaced with --force. The report (on stderr) lists, with line
numbers, every variable: mapped, derived, secret, live look-up, file read, unused or unknown, and each value
that needs a person's decision.

Examples:
  python -m compiler import-env ~/cave-envs/cave-global.sh --kind global
  python -m compiler import-env ~/cave-envs/minnie.sh --kind local
  python -m compiler import-env old_env.sh --kind local --name minnie2 --output -    # preview on stdout

Exit codes: 0 written (or printed), 2 bad input (nothing written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compiler.importenv.mapper import import_env


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH.sh", help="the CAVEdeployment env file (bash)")
    parser.add_argument("--kind", required=True, choices=("global", "local"),
                        help="global (auth, info, schema, state) or local (everything else) env file")
    parser.add_argument("--name", help="cluster name of the spec (default: the file's ENVIRONMENT); a different "
                                       "name changes every name the spec derives")
    parser.add_argument("--output", metavar="FILE",
                        help="write here instead of environments/<name>.yaml ('-' prints the spec on stdout)")
    parser.add_argument("--force", action="store_true", help="replace an existing spec of that name")


def run(args: argparse.Namespace) -> int:
    root = Path(args.root)
    result = import_env(root, Path(args.path), args.path, args.kind, name=args.name, output=args.output,
                        force=args.force)
    if result.target is None:
        sys.stdout.write(result.text)
        where = "stdout"
    else:
        where = str(result.target)
        print(f"wrote {where} ({result.kind} cluster {result.name})")
    print(f"import-env: {args.path} -> {where}\n{result.report()}", file=sys.stderr)
    return 0
