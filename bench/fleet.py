"""Generate a synthetic CAVE fleet (1 global + N local specs) from the example specs, for benchmarks."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def make_fleet(dest: Path, locals_count: int = 99) -> Path:
    """A repository-shaped directory with environments/ (1 global + N locals) and a copy of base/."""
    env = dest / "environments"
    env.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "environments" / "global.yaml", env / "global.yaml")
    template = (REPO / "environments" / "minnie.yaml").read_text()
    for i in range(1, locals_count + 1):
        name = f"l{i:03d}"
        # names, hostnames, Argo CD cluster name, and the data each cluster writes: its PCG tables, datastacks and
        # PCG bucket path (two clusters writing the same data are refused: compiler/spec/sharing.py)
        text = re.sub(r"minnie", name, template)
        text = text.replace("pcg_bucket: cave-demo-pcg-edges", f"pcg_bucket: cave-demo-pcg-edges/{name}")
        # each cluster reserves its own address (198.18.0.0/15, the benchmarking range: room for 131,070)
        text = re.sub(r"static_ip: \S+", f"static_ip: 198.{18 + i // 65536}.{i // 256 % 256}.{i % 256}", text)
        (env / f"{name}.yaml").write_text(text)
    if not (dest / "base").exists():
        shutil.copytree(REPO / "base", dest / "base")
    if (REPO / "gitops.yaml").exists():
        shutil.copy(REPO / "gitops.yaml", dest / "gitops.yaml")
    (dest / ".gitignore").write_text(".cache/\n")  # as the repository's own: caches are never committed
    return dest
