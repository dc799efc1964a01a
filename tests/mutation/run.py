"""``make mutate``: mutation testing of the modules that hold breachflow's rules (mutmut).

For each group of ``groups.toml`` the sources are staged as the installed package
(``var/mutation/<group>/src/breachflow/...``, so mutmut's module names are the ones the tests
import), mutmut mutates the group's files and runs, per mutant, the group's tests that call the
mutated function. Prints the score of each group and of all, and every surviving mutant with its
diff. Survivors judged equivalent in ``equivalent.toml`` are left out of the score; an entry there
that matches nothing is reported as stale. Exit 1 when the score is under ``--target`` (95 %).

``--compliance`` then checks ``docs/compliance.md`` by mutation (``compliance.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
STAGE = ROOT / "var" / "mutation"
PACKAGES = ("workflow", "api", "notifications", "templates")
DETECTED = {"killed", "timeout", "caught by type check"}  # a test (or the type checker) noticed


@dataclass
class Survivor:
    name: str
    status: str
    diff: str
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)

    @property
    def function(self) -> str:
        return self.name.partition("__mutmut_")[0]


@dataclass
class GroupResult:
    name: str
    counts: Counter[str]
    survivors: list[Survivor]
    seconds: float


def stage(name: str, mutate: list[str], tests: list[str], not_mutated: list[str]) -> Path:
    """A fresh copy of the sources laid out as the package ``breachflow``, with its tests and a
    ``pyproject.toml`` that tells mutmut what to mutate and which tests to run."""
    where = STAGE / name
    shutil.rmtree(where, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    package = where / "src" / "breachflow"
    for folder in PACKAGES:
        shutil.copytree(ROOT / folder, package / folder, ignore=ignore)
    # a regular package: imported from mutmut's copy ahead of the editable install's finder
    (package / "__init__.py").write_text('"""breachflow, staged for mutation testing."""\n')
    shutil.copytree(ROOT / "tests", where / "tests", ignore=shutil.ignore_patterns("__pycache__", "mutation"))
    settings = {
        "source_paths": ["src"],
        "only_mutate": [f"src/breachflow/{path}" for path in mutate],
        "pytest_add_cli_args_test_selection": tests,
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-m", "not browser"],
        "use_git_change_detection": False,
        "do_not_mutate_patterns": not_mutated,
    }
    lines = ["", "[tool.mutmut]"] + [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    (where / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text() + "\n".join(lines) + "\n")
    return where


def verdicts(where: Path) -> dict[str, str]:
    """Every mutant of the staged run → its status as mutmut names it."""
    from mutmut.stats import status_by_exit_code

    found: dict[str, str] = {}
    for meta in sorted((where / "mutants").rglob("*.py.meta")):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            found[name] = status_by_exit_code[code]
    return found


DIFFS = """
import json, sys
from mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant
names = json.loads(sys.stdin.read())
print(json.dumps({name: get_diff_for_mutant(name, path=find_mutant(name).path) for name in names}))
"""


def survivors_of(where: Path, found: dict[str, str]) -> list[Survivor]:
    """The mutants no test noticed, each with its diff (``mutmut show``'s, read in one process)."""
    names = sorted(name for name, status in found.items() if status not in DETECTED)
    shown = subprocess.run([sys.executable, "-c", DIFFS], cwd=where, input=json.dumps(names), capture_output=True,
                           text=True, check=True)
    survivors = []
    for name, diff in json.loads(shown.stdout).items():
        body = [line for line in diff.splitlines() if not line.startswith(("---", "+++"))]
        survivors.append(Survivor(name=name, status=found[name], diff=diff,
                                  before=[line[1:].strip() for line in body if line.startswith("-")],
                                  after=[line[1:].strip() for line in body if line.startswith("+")]))
    return survivors


def run_group(name: str, group: dict, not_mutated: list[str], verbose: bool, again: bool) -> GroupResult:
    started = time.monotonic()
    where = STAGE / name
    modules = [module_of(path) for path in group["mutate"]]
    patterns = [f"{module}.{prefix}{function}__mutmut_*" for module in modules for function in group.get("functions", [])
                for prefix in ("x_", "xǁ*ǁ")]
    if again:
        print(f"== {name}: mutating {', '.join(group['mutate'])} against {', '.join(group['tests'])}", flush=True)
        stage(name, group["mutate"], group["tests"], not_mutated)
        env = os.environ | {"PYTHONDONTWRITEBYTECODE": "1"}
        env.pop("BREACHFLOW_TEST_DATABASE_URL", None)  # mutants run on SQLite, each test in its own file
        log = where / "mutmut.log"
        with log.open("w") as out:
            done = subprocess.run([sys.executable, "-m", "mutmut", "run", *patterns], cwd=where, env=env,
                                  stdout=None if verbose else out, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            raise SystemExit(f"mutmut failed on group {name} (exit {done.returncode}); see {log}")
    elif not (where / "mutants").is_dir():
        raise SystemExit(f"group {name} has not run yet: run it without --report")
    found = verdicts(where)
    if group.get("functions"):
        found = {k: v for k, v in found.items() if function_name(k) in group["functions"]}
    survivors = survivors_of(where, found)
    return GroupResult(name, Counter(found.values()), survivors, time.monotonic() - started)


def module_of(path: str) -> str:
    """The module a source file is imported as: ``workflow/guards.py`` → ``breachflow.workflow.guards``."""
    return "breachflow." + path.removesuffix(".py").replace("/", ".")


def function_name(mutant: str) -> str:
    """The function or method a mutant changes, as written: ``...x_confirm__mutmut_3`` → ``confirm``."""
    mangled = mutant.partition("__mutmut_")[0].rpartition(".")[2]
    return mangled.removeprefix("x_") if mangled.startswith("x_") else mangled.rpartition("ǁ")[2]


def load_equivalents() -> list[dict]:
    entries = tomllib.loads((HERE / "equivalent.toml").read_text()).get("equivalent", [])
    for entry in entries:
        missing = {"function", "before", "after", "why"} - set(entry)
        if missing:
            raise SystemExit(f"equivalent.toml: an entry for {entry.get('function')} lacks {', '.join(sorted(missing))}")
    return entries


def matches(entry: dict, survivor: Survivor) -> bool:
    """Whether ``entry`` judges ``survivor`` equivalent: only a mutant that ran and survived can be."""
    return (survivor.status == "survived" and entry["function"] == survivor.function and entry["before"] in survivor.before
            and entry["after"] in survivor.after)


def report(results: list[GroupResult], equivalents: list[dict], target: float, *, every_group: bool) -> int:
    """Print each group's score and survivors, then the whole score; 1 under ``target``, or when a
    run of every group finds an entry of ``equivalent.toml`` that matches nothing."""
    used: set[int] = set()
    total = detected = judged = 0
    for result in results:
        kept = []
        for survivor in result.survivors:
            hits = [i for i, entry in enumerate(equivalents) if matches(entry, survivor)]
            used.update(hits)
            if not hits:
                kept.append(survivor)
        equivalent = len(result.survivors) - len(kept)
        counted = sum(result.counts.values()) - equivalent
        caught = sum(n for status, n in result.counts.items() if status in DETECTED)
        total, detected, judged = total + counted, detected + caught, judged + equivalent
        score = 100 * caught / counted if counted else 100.0
        print(f"\n== {result.name}: {score:.1f} % killed ({caught} of {counted}; {equivalent} judged equivalent; "
              f"{dict(result.counts)}) in {result.seconds:.0f} s")
        for survivor in kept:
            print(f"\n-- {survivor.name}: {survivor.status}\n{survivor.diff}")
    stale = [entry for i, entry in enumerate(equivalents) if i not in used]
    for entry in stale:
        print(f"\nstale entry in equivalent.toml (it matches no surviving mutant): {entry['function']}: "
              f"{entry['before']!r} -> {entry['after']!r}")
    score = 100 * detected / total if total else 100.0
    print(f"\n== mutation score: {score:.1f} % ({detected} of {total} killed; {judged} judged equivalent); "
          f"target {target:.0f} %")
    return 0 if score >= target and not (every_group and stale) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("groups", nargs="*", help="groups of groups.toml to run (default: all)")
    parser.add_argument("--target", type=float, default=95.0, help="the score below which the run fails (%%)")
    parser.add_argument("--verbose", action="store_true", help="show mutmut's own output")
    parser.add_argument("--report", action="store_true", help="report the last run's verdicts again, running nothing")
    parser.add_argument("--rows", help="with --compliance: the rows at these lines of the map (e.g. 91,96), or "
                        "'all' without running the groups")
    parser.add_argument("--compliance", action="store_true",
                        help="then check that every row of docs/compliance.md names a test a mutant fails")
    args = parser.parse_args(argv)
    if args.rows not in (None, "all") and not re.fullmatch(r"\d+(,\d+)*", args.rows):
        parser.error(f"--rows: '{args.rows}' is neither 'all' nor line numbers separated by commas (e.g. 91,96)")
    if args.rows is not None and not args.compliance:
        parser.error("--rows picks rows of the compliance map: add --compliance")
    groups, not_mutated = read_groups()
    unknown = set(args.groups) - set(groups)
    if unknown:
        parser.error(f"unknown group(s) {', '.join(sorted(unknown))}; groups.toml has {', '.join(groups)}")
    chosen = args.groups or ([] if args.rows else list(groups))
    equivalents = load_equivalents()
    results = [run_group(name, groups[name], not_mutated, args.verbose, not args.report) for name in chosen]
    code = 0
    if results:
        judged = [e for e in equivalents if any(e["function"].startswith(_prefix(groups[g])) for g in chosen)]
        code = report(results, judged, args.target, every_group=not args.groups)
    if args.compliance:
        from compliance import check

        lines = None if args.rows in (None, "all") else {int(n) for n in args.rows.split(",")}
        code |= check(ROOT, STAGE / "compliance", lines)
    return code


def read_groups() -> tuple[dict[str, dict], list[str]]:
    """The groups of ``groups.toml``, and the patterns of statements no group mutates."""
    read = tomllib.loads((HERE / "groups.toml").read_text())
    return {k: v for k, v in read.items() if isinstance(v, dict)}, read.get("not_mutated", [])


def _prefix(group: dict) -> tuple[str, ...]:
    return tuple(f"{module_of(path)}." for path in group["mutate"])


if __name__ == "__main__":
    sys.exit(main())
