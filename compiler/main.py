"""Command-line entry point: parses arguments and dispatches to one module per command."""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path

from compiler import progress
from compiler.errors import UserError
from compiler.paths import SETTINGS_FILE, find_root

# Each module in compiler/commands/ exposes add_arguments(parser) and run(args) -> int; its docstring is the
# command's --help. Only the chosen command's module is imported, so `build` does not pay for the validator.
COMMANDS = {
    "build": "validate specs and (re)write overlays/<cluster>/ (and overlays/argocd/)",
    "check": "exit 1 and list differences when overlays/ is not what build would write",
    "render": "print the rendered manifests of one cluster",
    "validate": "check rendered manifests against Kubernetes schemas, CRD schemas and CAVE rules",
    "crd-schema": "write validate's CRD JSON schemas (schemas/crds/) from CustomResourceDefinition manifests",
    "diff": "show what a change does to each cluster's rendered manifests",
    "bump": "set a service's version in the specs and rebuild",
    "bootstrap": "plan (or --apply) the one-off cloud resources a cluster needs, from its spec",
    "runbook": "the remaining manual steps of bringing a cluster up, with exact values, as a checklist",
    "new-cluster": "start environments/<name>.yaml for a new cluster, from a cluster or a template",
    "import-env": "import a CAVEdeployment env file (bash) into environments/<name>.yaml",
    "pr-comment": "post or update the one diff comment of a pull request (GitHub)",
    "bot": "open or update version-bump pull requests for new schema/annotation/materialize releases",
    "status": "the fleet at a glance: clusters, service versions per cluster, overlays in sync, pinned add-ons",
}

DESCRIPTION = """\
Compile CAVE environment specs (environments/<cluster>.yaml) into committed Kustomize
overlays (overlays/<cluster>/), then render, validate and diff what each cluster will run.

Typical flow: edit a spec, run `build`, review `diff`, open a pull request.
Exit codes: 0 ok, 1 a finding (stale, invalid, changed), 2 bad input, 3 an internal error (a bug: report it).
"""


def version_text(root: Path) -> str:
    """`--version`: the package, the Python running it, and the kustomize renders use (path and version, and the
    version gitops.yaml pins when it says one)."""
    import importlib.metadata
    import platform

    from compiler.render import kustomize
    from compiler.spec.settings import load_settings

    try:
        package = importlib.metadata.version("cave-gitops")
    except importlib.metadata.PackageNotFoundError:
        package = "(not installed)"
    lines = [f"cave-gitops {package} ({Path(__file__).resolve().parent})",
             f"Python {platform.python_version()} ({sys.executable})"]
    try:
        tool = kustomize.find(root)
        line = f"kustomize {tool.version} ({' '.join(tool.command)})"
    except UserError as err:
        line = f"kustomize: none usable ({err.problems[0].message})"
    try:
        loaded = load_settings(root)
        pin = loaded.settings.kustomize if loaded is not None else None
    except UserError:
        pin = None
    lines.append(line + (f"; {SETTINGS_FILE} pins {pin.version}" if pin is not None else ""))
    return "\n".join(lines) + "\n"


class _VersionAction(argparse.Action):
    """Print version_text for the root found from -C (or the current directory) and exit 0."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        sys.stdout.write(version_text(find_root(Path(getattr(namespace, "root", ".") or "."))))
        parser.exit()


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
        metavar="DIR",
        help="run as if started in DIR (default: the current directory); the repository root is found from there "
             "like git finds its top: the nearest folder at or above it with environments/ or gitops.yaml",
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0,
                        help="print the versions of this package, Python and the kustomize renders use, and exit")
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
    """Run one command. From the command line (`argv` None) an unexpected exception prints one line, "internal
    error ... please report it", and exits 3; called with `argv` (tests), it propagates with its traceback."""
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = make_parser(_chosen(argv))
    args = parser.parse_args(argv)
    args.root = str(find_root(Path(args.root)))  # commands work from any folder inside the repository
    try:
        with progress.to_stream(sys.stderr), _few_collections():  # long stages report on stderr
            code: int = args.run(args)
    except UserError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # the safety net of the command line only (see below)
        if not from_command_line or os.environ.get(DEBUG_ENV):
            raise
        print(internal_error(err), file=sys.stderr)
        return INTERNAL_ERROR_EXIT
    return code


@contextlib.contextmanager
def _few_collections() -> Iterator[None]:
    """Python's cyclic garbage collector, run far less often while a command runs: a command builds large, long-lived
    object trees (a fleet's parsed renders, tens of MB), which the default thresholds would walk again and again
    (validate of a 100-cluster fleet spent about 0.7 s of its 3 s in full collections). Cycles are still collected,
    and the settings are restored when the command ends."""
    before = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)


INTERNAL_ERROR_EXIT = 3  # not 1, which means "changes" or "findings", nor 2, bad input
DEBUG_ENV = "CAVE_DEBUG"


def internal_error(err: BaseException) -> str:
    """One line for an unexpected exception: its type, where it was raised, and that it is a bug to report. Not its
    message, which may quote a value of a spec or env file (a secret, even)."""
    package = Path(__file__).resolve().parent
    frames = traceback.extract_tb(err.__traceback__)
    ours = [f for f in frames if Path(f.filename).resolve().is_relative_to(package)]  # where in our code
    where = ""
    if ours:
        where = f" in {Path(ours[-1].filename).resolve().relative_to(package.parent)}:{ours[-1].lineno}"
    elif frames:
        where = f" in {Path(frames[-1].filename).name}:{frames[-1].lineno}"
    return (f"internal error: {type(err).__name__}{where} (a bug: please report it with the command you ran; "
            f"run it again with {DEBUG_ENV}=1 to see the traceback)")
