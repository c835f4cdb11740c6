"""A build after one edit, this tree's beside `--tree`'s: the trees take turns, round after
round, each edit built in a fresh process on the tree's own copy of the generated corpus. On a
machine whose speed drifts within minutes, rounds taken in turn see the same drift; one run of
bench.speed per tree does not."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import harness as h
from bench.corpora import articles, write


def one(content: str, index: str, edit: int) -> None:
    """In the tree's process: append a sentence to one article (none when `edit` < 0), then
    build; prints the wall and CPU seconds and the articles rendered."""
    from kb.knowledge.build import build

    if edit >= 0:
        files = articles(Path(content))
        with open(files[edit * 37 % len(files)], "a", encoding="utf-8") as handle:
            handle.write("\nUne phrase ajoutée pour mesurer la reconstruction.\n")
    start, cpu = time.perf_counter(), time.process_time()
    report = build(Path(content), Path(index))
    print(f"{time.perf_counter() - start} {time.process_time() - cpu} {report.changed}")


def _built(tree: Path, content: Path, index: Path, edit: int) -> tuple[float, float, int]:
    kb_dir = str(tree / "kb")
    # kb pinned to the tree's folder (a namespace package: see harness.in_tree), bench this one's.
    code = (f"import sys; sys.path.insert(0, {str(tree)!r}); import kb; "
            f"kb.__path__ = [{kb_dir!r}]; sys.path.insert(0, {str(h.ROOT)!r}); "
            f"from bench.rebuild import one; "
            f"one({str(content)!r}, {str(index)!r}, {edit})")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"bench.rebuild: {tree}: {done.stderr[-2000:]}")
    wall, cpu, changed = done.stdout.split()
    return float(wall), float(cpu), int(changed)


def main() -> int:
    parser = h.parser("bench.rebuild", __doc__)
    parser.add_argument("--generated", type=int, default=20000, help="articles (20000)")
    parser.add_argument("--rounds", type=int, default=7, help="edits built by each tree (7)")
    args = parser.parse_args()
    trees = {"this tree": h.ROOT, **({"--tree": args.tree.resolve()} if args.tree else {})}
    runs: dict[str, list[tuple[float, float, int]]] = {name: [] for name in trees}
    with h.scratch("rebuild") as work:
        write("generated", work / "corpus", args.generated)
        for number, (name, tree) in enumerate(trees.items()):
            shutil.copytree(work / "corpus", work / f"content-{number}")
            print(f"{name}: full build of {args.generated} articles…", file=sys.stderr)
            _built(tree, work / f"content-{number}", work / f"index-{number}", -1)
        time.sleep(2.5)  # past the 2 s in which a file just written is read again anyway
        for number in range(len(trees)):  # that reading, once, then never again
            _built(list(trees.values())[number], work / f"content-{number}",
                   work / f"index-{number}", -1)  # fmt: skip
        for round_ in range(args.rounds):
            order = list(enumerate(trees.items()))
            for number, (name, tree) in order if round_ % 2 == 0 else order[::-1]:
                content, index = work / f"content-{number}", work / f"index-{number}"
                runs[name].append(_built(tree, content, index, round_))
    figures: dict[str, Any] = {}
    rows = [["", "median wall, s", "rounds", "spread", "median CPU, s", "rendered"]]
    for name, measured in runs.items():
        wall = h.median_spread([w for w, _, _ in measured])
        cpu = h.median_spread([c for _, c, _ in measured])
        commit = subprocess.run(["git", "-C", str(trees[name]), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()  # fmt: skip
        figures[name] = {"tree": str(trees[name]), "commit": commit, "wall_s": wall,
                         "cpu_s": cpu, "rendered": [n for _, _, n in measured]}  # fmt: skip
        rows.append([name, f"{wall['median']:.3f}", " ".join(f"{w:.2f}" for w in wall["runs"]),
                     f"{100 * wall['spread']:.0f} %", f"{cpu['median']:.3f}",
                     " ".join(str(n) for _, _, n in measured)])  # fmt: skip
    print(f"{args.generated} generated articles, a build after one edit, {args.rounds} rounds "
          f"taken in turn\n" + h.table(rows, "<>>>>>", "  "))  # fmt: skip
    wall = figures["this tree"]["wall_s"]["median"]
    this_tree = argparse.Namespace(**{**vars(args), "tree": None})  # each tree is in figures
    h.write_result("rebuild", this_tree, figures, [
        h.row(f"rebuild after one edit, {args.generated} articles, median of {args.rounds}",
              f"{wall:.2f} s", "", "≤ 1 s", wall <= 1.0),
    ])  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
