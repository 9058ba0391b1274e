"""Command-line entry point: parses arguments and dispatches to one module per command."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from compiler.errors import UserError

# Each module in compiler/commands/ exposes add_arguments(parser) and run(args) -> int; its docstring is the
# command's --help. Only the chosen command's module is imported, so `build` does not pay for the validator.
COMMANDS = {
    "build": "validate specs and (re)write overlays/<cluster>/ (and overlays/argocd/)",
    "check": "exit 1 and list differences when overlays/ is not what build would write",
    "render": "print the rendered manifests of one cluster",
    "validate": "check rendered manifests against Kubernetes schemas, CRD schemas and CAVE rules",
    "diff": "show what a change does to each cluster's rendered manifests",
    "bump": "set a service's version in the specs and rebuild",
    "bootstrap": "plan (or --apply) the one-off cloud resources a cluster needs, from its spec",
    "runbook": "the remaining manual steps of bringing a cluster up, with exact values, as a checklist",
    "import-env": "import a CAVEdeployment env file (bash) into environments/<name>.yaml",
    "pr-comment": "post or update the one diff comment of a pull request (GitHub)",
    "bot": "open or update version-bump pull requests for new schema/annotation/materialize releases",
}

DESCRIPTION = """\
Compile CAVE environment specs (environments/<cluster>.yaml) into committed Kustomize
overlays (overlays/<cluster>/), then render, validate and diff what each cluster will run.

Typical flow: edit a spec, run `build`, review `diff`, open a pull request.
Exit codes: 0 ok, 1 a finding (stale, invalid, changed), 2 bad input.
"""


def _chosen(argv: Sequence[str]) -> str | None:
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("-C", "--root"):
            skip = True
        elif arg in COMMANDS:
            return arg
    return None


def make_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m compiler",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-C",
        "--root",
        default=".",
        help="repository root holding environments/, base/ and overlays/ (default: current directory)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, summary in COMMANDS.items():
        if name != chosen:
            sub.add_parser(name, help=summary)
            continue
        module = importlib.import_module(f"compiler.commands.{name.replace('-', '_')}")
        cmd = sub.add_parser(
            name,
            help=summary,
            description=(module.__doc__ or summary).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(cmd)
        cmd.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = make_parser(_chosen(argv))
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except UserError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code
