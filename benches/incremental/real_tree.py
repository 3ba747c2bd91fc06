#!/usr/bin/env python3
"""Incremental benchmark of `tangent build` / `tangent check` on a real tree (issue 15).

    cargo build --release -p tangent-cli
    python3 benches/incremental/real_tree.py            # numpy + scipy + autograd sources
    python3 benches/incremental/real_tree.py --quick    # autograd alone (seconds)

The tree is the `.py` files of the wheels of numpy 2.4.6, scipy 1.17.1 and autograd 1.9.1,
downloaded once with pip (pinned versions, cached under `--cache`) and extracted as shipped.
Each row runs the CLI in a fresh process, as CI, a pre-commit hook or a developer does:

  cold      `tangent build TREE --out OUT --cache-dir NEW` (empty cache, no artifacts)
  warm      the same again, nothing changed
  check     `tangent check` with nothing changed
  comment   a comment appended to `numpy/_core/fromnumeric.py`, then `build`
  body      one statement added to the body of `numpy/_core/fromnumeric.py:sum`, then `build`

For each: wall-clock seconds, the process's CPU seconds and max RSS (`os.wait4`), and how many
artifacts under OUT were written (their modification time changed). Results go to
`real_tree_results.json` next to this file (`--json PATH` to write elsewhere) and print as a
Markdown table. Standard library only; nothing here is a timed assertion.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

WHEELS = {"numpy": "2.4.6", "scipy": "1.17.1", "autograd": "1.9.1"}
EDITED = Path("numpy/_core/fromnumeric.py")
EDITED_FUNCTION = "sum"

# Issue 15's targets, printed beside the numbers.
TARGETS = {
    "warm_s": 1.0,
    "check_s": 1.0,
    "comment_s": 1.0,
    "comment_regenerated": 1,
    "body_s": 2.0,
    "cold_max_rss_mb": 1024.0,
}


def download(cache: Path, packages: dict[str, str]) -> list[Path]:
    """The wheels of `packages` (name -> version), from `cache` or downloaded into it."""
    cache.mkdir(parents=True, exist_ok=True)
    wheels = []
    for name, version in packages.items():
        found = sorted(cache.glob(f"{name}-{version}-*.whl"))
        if not found:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                 "--only-binary=:all:", "-d", str(cache), f"{name}=={version}"],
                check=True,
            )
            found = sorted(cache.glob(f"{name}-{version}-*.whl"))
        if not found:
            sys.exit(f"no wheel of {name}=={version} in {cache}")
        wheels.append(found[0])
    return wheels


def extract(wheels: list[Path], tree: Path) -> int:
    """Extracts the `.py` files of `wheels` into `tree`; returns how many."""
    count = 0
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as z:
            for info in z.infolist():
                if info.filename.endswith(".py") and ".dist-info/" not in info.filename:
                    z.extract(info, tree)
                    count += 1
    return count


def run(cmd: list[str]) -> dict:
    """Runs `cmd` in a fresh process: wall seconds, CPU seconds, max RSS (MB), exit code and
    the last line it printed."""
    with tempfile.TemporaryFile() as output:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        output.seek(0)
        printed = output.read().decode(errors="replace").strip().splitlines()
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "max_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "exit": os.waitstatus_to_exitcode(status),
        "last_line": printed[-1] if printed else "",
    }


def artifact_times(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*.py")}


def written_since(before: dict[str, int], out: Path) -> int:
    after = artifact_times(out)
    return sum(1 for k, t in after.items() if before.get(k) != t)


def edit_body(path: Path, function: str) -> None:
    """Adds one statement at the start of `function`'s body (after its docstring)."""
    text = path.read_text()
    tree = ast.parse(text)
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    first = node.body[0]
    after = first if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) else None
    line = (after.end_lineno if after else node.body[0].lineno - 1)
    indent = " " * node.body[0].col_offset
    lines = text.splitlines(keepends=True)
    lines.insert(line, f"{indent}_tangent_bench_edit = 1\n")
    path.write_text("".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "tangent-bench" / "wheels")
    parser.add_argument("--tangent", type=Path, default=REPO / "target" / "release" / "tangent")
    parser.add_argument("--json", type=Path, default=HERE / "real_tree_results.json")
    parser.add_argument("--quick", action="store_true", help="autograd's sources alone")
    parser.add_argument("--keep", action="store_true", help="keep the tree in a temporary directory")
    args = parser.parse_args()
    if not args.tangent.exists():
        sys.exit(f"{args.tangent} not found: cargo build --release -p tangent-cli")

    packages = {"autograd": WHEELS["autograd"]} if args.quick else WHEELS
    wheels = download(args.cache, packages)
    work = Path(tempfile.mkdtemp(prefix="tangent-real-tree-"))
    tree, out, cache = work / "src", work / "out", work / "cache"
    files = extract(wheels, tree)
    lines = sum(len(p.read_text(errors="replace").splitlines()) for p in tree.rglob("*.py"))
    build = [str(args.tangent), "build", str(tree), "--out", str(out), "--cache-dir", str(cache), "-q"]
    check = [str(args.tangent), "check", str(tree), "--out", str(out), "--cache-dir", str(cache), "-q"]

    rows: dict[str, dict] = {}
    rows["cold"] = run(build)
    rows["cold"]["written"] = len(artifact_times(out))
    before = artifact_times(out)
    rows["warm"] = run(build)
    rows["warm"]["written"] = written_since(before, out)
    rows["check"] = run(check)
    rows["check"]["written"] = written_since(before, out)
    edited = tree / EDITED
    if edited.exists():
        with edited.open("a") as f:
            f.write("\n# a comment added by the benchmark\n")
        before = artifact_times(out)
        rows["comment"] = run(build)
        rows["comment"]["written"] = written_since(before, out)
        edit_body(edited, EDITED_FUNCTION)
        before = artifact_times(out)
        rows["body"] = run(build)
        rows["body"]["written"] = written_since(before, out)

    result = {
        "tree": {"packages": packages, "files": files, "lines": lines},
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg": os.getloadavg(),
            "python": platform.python_version(),
            "tangent": subprocess.run([str(args.tangent), "--version"], capture_output=True, text=True).stdout.strip(),
            "revision": subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
        },
        "rows": rows,
        "targets": TARGETS,
    }
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{files} files, {lines} lines ({', '.join(f'{k} {v}' for k, v in packages.items())})\n")
    print("| run | wall s | cpu s | max RSS MB | artifacts written | exit |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['wall_s']} | {r['cpu_s']} | {r['max_rss_mb']} | {r['written']} | {r['exit']} |")
    if args.keep:
        print(f"\ntree kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
