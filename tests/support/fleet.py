"""Fleets for the fleet-rule tests: the examples as they were (the faults), the examples now, edited copies."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import shutil
from collections.abc import Callable
from pathlib import Path

from compiler.main import main
from compiler.validate.fleet import Fleet, load_fleet
from compiler.validate.fleet.rules import check_fleet
from compiler.validate.model import Finding
from tests.support import REPO

BEFORE = REPO / "tests" / "fixtures" / "fleet_2026_12_06"
PARTS = ("environments", "gitops.yaml", "base", "overlays")


def copy_fleet(source: Path, dest: Path, edit: Callable[[Path], None] | None = None) -> Path:
    """A copy of the fleet parts of `source` in `dest` (edited by `edit(dest)`, which may rebuild overlays)."""
    dest.mkdir(parents=True, exist_ok=True)
    for part in PARTS:
        src = source / part
        if src.is_dir():
            shutil.copytree(src, dest / part)
        elif src.is_file():
            shutil.copy2(src, dest / part)
    if edit is not None:
        edit(dest)
    return dest


def before_fleet(tmp: Path) -> Fleet:
    """The example fleet as the bring-up review found it."""
    return load_fleet(copy_fleet(BEFORE, tmp / "before"), use_cache=False)


def current_fleet(tmp: Path, edit: Callable[[Path], None] | None = None) -> Fleet:
    """The repository's examples now (optionally edited in a copy)."""
    return load_fleet(copy_fleet(REPO, tmp / "now", edit), use_cache=False)


def findings(fleet: Fleet, rule: str) -> list[Finding]:
    return [f for f in check_fleet(fleet, [rule]) if f.rule == rule]


def synthetic_fleet(dest: Path, locals_count: int, *, build: bool = False) -> Path:
    """bench/fleet.py's fleet (the example global and `locals_count` locals made from minnie) in `dest`, its
    overlays built when `build`."""
    spec = importlib.util.spec_from_file_location("bench_fleet", REPO / "bench" / "fleet.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    root: Path = module.make_fleet(dest, locals_count)
    if build:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert main(["-C", str(root), "build"]) == 0
    return root
