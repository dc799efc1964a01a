"""Check ``docs/compliance.md`` by mutation: each row names a test that fails when its rule breaks.

A row's rule is what its "enforced in" column names in backticks: a file (``workflow/guards.py``)
and the functions after it (``confirm``, ``KeyRing.open``), a module's function (``service.update``),
or a function only one module defines. Its tests are the test column's ``file.py::name`` (``…::``
repeats the file before it; a name ending in ``…`` stands for every test it begins; browser tests
run a separate server process, so they cannot see a mutant and are left out).

The files named are staged and mutated with mutmut; then, per row, the row's tests run once to see
which of the named functions they call, and then against one mutant after another of those
functions until one mutant makes a cited test fail in its body (an error while setting a test up,
a collection error or a hang does not count: it shows that code ran, not that a rule was checked).
A row passes with that mutant and test; a row whose tests fail under no mutant of its rule, whose
named functions mutmut does not mutate (decorated functions, properties, module-level tables), or
that names no rule, is reported.
"""

from __future__ import annotations

import ast
import itertools
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest
from run import module_of, read_groups, stage

SOURCES = ("workflow", "api", "notifications")
TICK = re.compile(r"`([^`]+)`")
TEST_REF = re.compile(r"^(?:(?P<file>(?:[\w-]+/)*test_\w+\.py)|…)(?:::(?P<name>[^\s`]+))?$")
PARAMETER = re.compile(r"^…(?P<case>\[[^\]]+\])$")  # another case of the test cited before
CANDIDATES = 40  # mutants tried per row before it is reported
ROW_BUDGET = 90  # seconds of mutant runs per row (rows citing real processes take a minute a run)
TIMEOUT = 300  # seconds one run of a row's tests may take


@dataclass
class Row:
    line: int
    obligation: str
    functions: list[str] = field(default_factory=list)  # mangled: breachflow.workflow.guards.x_confirm
    modules: list[str] = field(default_factory=list)  # breachflow.workflow.guards
    tests: list[str] = field(default_factory=list)  # tests/test_guards.py::test_x
    problem: str = ""


def _index(root: Path) -> dict[str, dict[str, str]]:
    """module → simple name (``f``, ``C.m`` and ``C``) → mangled names mutmut gives it (``x_f``,
    ``xǁCǁm``), from the sources."""
    index: dict[str, dict[str, str]] = {}
    for folder in SOURCES:
        for path in sorted((root / folder).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            module = "breachflow." + ".".join(path.relative_to(root).with_suffix("").parts)
            names: dict[str, str] = {}
            for node in ast.parse(path.read_text()).body:
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    names[node.name] = f"x_{node.name}"
                elif isinstance(node, ast.ClassDef):
                    methods = [m.name for m in node.body if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)]
                    for method in methods:
                        names[f"{node.name}.{method}"] = f"xǁ{node.name}ǁ{method}"
                    names[node.name] = " ".join(f"xǁ{node.name}ǁ{m}" for m in methods)
            index[module.removesuffix(".__init__")] = names
    return index


def _tests_of(root: Path, file: str, name: str | None) -> list[str]:
    path = root / "tests" / file
    if not path.is_file():
        raise LookupError(f"{file} does not exist")
    if name is None:
        return [f"tests/{file}"]
    if name.endswith("…"):
        begun = [n for n in re.findall(r"^def (test_\w+)", path.read_text(), re.M) if n.startswith(name[:-1])]
        if not begun:
            raise LookupError(f"no test in {file} begins {name[:-1]}")
        return [f"tests/{file}::{n}" for n in begun]
    if not re.search(rf"^(?:async )?def {re.escape(name.partition('[')[0])}\(", path.read_text(), re.M):
        raise LookupError(f"{file} has no test {name}")
    return [f"tests/{file}::{name}"]


def rows(root: Path) -> list[Row]:
    """The rows of the compliance map's tables, with the rule each names and its tests."""
    index = _index(root)
    by_short: dict[str, list[str]] = {}
    for module in index:
        by_short.setdefault(module.rsplit(".", 1)[1], []).append(module)
    found = []
    for number, line in enumerate((root / "docs" / "compliance.md").read_text().splitlines(), 1):
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if not line.startswith("| ") or len(cells) < 3 or set(cells[0]) <= {"-", "|"} or cells[-1] == "test" \
                or cells[-1].startswith("test ("):
            continue
        row = Row(line=number, obligation=cells[0][:90])
        current: str | None = None
        for token in TICK.findall(" ".join(cells[1:-1])):
            token = token.strip()
            if token.endswith(".py"):
                module = module_of(token)
                current = module if module in index else None
                if current and current not in row.modules:
                    row.modules.append(current)
                continue
            word = re.sub(r"\(.*$", "", token)
            places = [current] if current and word in index[current] else []
            head, _, tail = word.rpartition(".")
            if not places and head and len(by_short.get(head, [])) == 1 and tail in index[by_short[head][0]]:
                places, word = by_short[head], tail
            if not places and re.fullmatch(r"[A-Za-z_]\w*(\.\w+)?", word):
                places = [m for m, names in index.items() if word in names]
                places = places if len(places) == 1 else []
            for module in places:
                for mangled in index[module][word].split():
                    if f"{module}.{mangled}" not in row.functions:
                        row.functions.append(f"{module}.{mangled}")
                if module not in row.modules:
                    row.modules.append(module)
        file = name = None
        try:
            for token in TICK.findall(cells[-1]):
                ref, case = TEST_REF.match(token.strip()), PARAMETER.match(token.strip())
                if case and file and name:
                    ref_name = name.partition("[")[0] + case["case"]
                elif ref:
                    file, ref_name = ref["file"] or file, ref["name"]
                    name = ref_name
                else:
                    continue
                if file is None:
                    raise LookupError(f"{token} repeats no file")
                if not file.startswith("browser/"):
                    row.tests += [t for t in _tests_of(root, file, ref_name) if t not in row.tests]
        except LookupError as exc:
            row.problem = f"cites a test that is not there: {exc}"
        if not row.problem and not row.tests:
            row.problem = "names no test that can run against a mutant (browser tests run a server process of their own)"
        if not row.problem and not row.modules:
            row.problem = "names no rule in breachflow's code (a file and its function in backticks)"
        found.append(row)
    return found


def check(root: Path, where: Path, lines: set[int] | None = None) -> int:
    """Stage, mutate and run each row (or those at ``lines``); print each row's verdict; 1 if a row
    is not shown."""
    every = rows(root)
    table = [row for row in every if lines is None or row.line in lines]
    if lines is not None and (missing := sorted(lines - {row.line for row in table})):
        raise SystemExit(f"--rows: docs/compliance.md has no row at line {', '.join(map(str, missing))} "
                         f"(its rows are at lines {every[0].line}–{every[-1].line})")
    modules = sorted({m for row in table for m in row.modules})
    files = [m.removeprefix("breachflow.").replace(".", "/") + ".py" for m in modules]
    files = [f if (root / f).is_file() else f.removesuffix(".py") + "/__init__.py" for f in files]
    tests = sorted({t.partition("::")[0] for row in table for t in row.tests})
    stage(where.name, files, tests, read_groups()[1])
    (where / "rows.json").write_text(json.dumps([asdict(row) for row in table if not row.problem]))
    print(f"\n== compliance: {len(table)} rows; mutating {len(files)} files for them", flush=True)
    env = os.environ | {"PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("BREACHFLOW_TEST_DATABASE_URL", None)
    done = subprocess.run([sys.executable, str(Path(__file__)), str(where)], cwd=where, env=env)
    if done.returncode != 0:
        raise SystemExit(f"the compliance run failed (exit {done.returncode})")
    return report(table, where)


def report(table: list[Row], where: Path) -> int:
    """Print each row's verdict from the worker's ``verdicts.json`` (a row it did not reach is
    reported as not checked); 1 if a row is not shown."""
    verdict = {v["line"]: v for v in json.loads((where / "verdicts.json").read_text())}
    failed = 0
    for row in table:
        shown = verdict.get(row.line, {})
        if shown.get("mutant"):
            print(f"  ok   line {row.line}: {row.obligation}\n       {shown['mutant']} fails {shown['test']}")
        else:
            failed += 1
            print(f"  FAIL line {row.line}: {row.obligation}\n       "
                  f"{row.problem or shown.get('problem') or 'not checked (the run stopped before this row)'}")
    print(f"\n== compliance: {len(table) - failed} of {len(table)} rows name a test that a mutant of their rule fails")
    return 1 if failed else 0


# --- the worker: runs inside the staged copy --------------------------------------------------


class _Failures:
    """Which tests failed in their body (the call phase), as pytest reports them."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" and report.failed:
            self.failed.append(report.nodeid)


def _child(mutant: str, tests: list[str], out: Path) -> int | None:
    """Fork; run ``tests`` with ``mutant`` active. Write to ``out`` the tests that failed in their body
    (and, for ``stats``, the functions called); return pytest's exit code, ``None`` on a hang."""
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            from mutmut.mutation.trampoline import set_mutant_under_test
            from mutmut.state import state

            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            set_mutant_under_test(mutant)
            failures = _Failures()
            # the parent imported breachflow before forking: pytest may not rewrite what is already imported
            code = int(pytest.main(["--rootdir=.", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                                    "-W", "ignore::pytest.PytestAssertRewriteWarning", "-m", "not browser", *tests],
                                   plugins=[failures]))
            out.write_text(json.dumps({"failed": failures.failed, "hit": sorted(state()._stats)}))
        finally:
            os._exit(code)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            return os.waitstatus_to_exitcode(status)
        select.select([], [], [], 0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def _round_robin(mutants: list[str]) -> list[str]:
    """The first mutant of each function, then the second of each, ...: every function a row names
    is tried, not only the first one's many mutants."""
    by_function: dict[str, list[str]] = {}
    for mutant in mutants:
        by_function.setdefault(mutant.partition("__mutmut_")[0], []).append(mutant)
    return [m for turn in itertools.zip_longest(*by_function.values()) for m in turn if m is not None]


def work(where: Path) -> None:
    """Generate the mutants, then find, per row, a mutant of its rule that one of its tests fails."""
    from mutmut.__main__ import copy_also_copy_files, copy_src_dir, create_mutants, setup_source_paths
    from mutmut.mutation.trampoline import set_mutant_under_test

    os.chdir(where)
    set_mutant_under_test("mutant_generation")
    (where / "mutants").mkdir(exist_ok=True)
    copy_src_dir()
    copy_also_copy_files()
    setup_source_paths()
    create_mutants(os.cpu_count() or 2)
    mutants = [name for meta in sorted((where / "mutants").rglob("*.py.meta"))
               for name in json.loads(meta.read_text())["exit_code_by_key"]]
    table = json.loads((where / "rows.json").read_text())
    os.chdir(where / "mutants")
    import breachflow.api.main  # noqa: F401  (imported once here, so each fork starts warm)

    verdicts = []
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "child.json"
        for number, row in enumerate(table, 1):
            print(f"  [{number}/{len(table)}] line {row['line']}: {row['obligation']}", flush=True)
            out.unlink(missing_ok=True)
            code = _child("stats", row["tests"], out)
            if code != 0 or not out.exists():
                verdicts.append({"line": row["line"], "problem": f"its tests fail without a mutant (exit {code})"})
                (where / "verdicts.json").write_text(json.dumps(verdicts))
                continue
            hit = set(json.loads(out.read_text())["hit"])
            named = [m for m in mutants if m.partition("__mutmut_")[0] in row["functions"]]
            candidates = _round_robin([m for m in named if m.partition("__mutmut_")[0] in hit])[:CANDIDATES]
            if not named:
                problem = "mutmut makes no mutant of the functions it names (decorated, a property, or a table)"
            elif not candidates:
                problem = "its tests call none of the functions it names"
            else:
                problem = f"none of {len(candidates)} mutants of its rule makes a cited test fail"
            verdict = {"line": row["line"], "problem": problem}
            budget = time.monotonic() + ROW_BUDGET
            for tried, mutant in enumerate(candidates, 1):
                if time.monotonic() > budget:
                    verdict["problem"] = f"none of the {tried - 1} mutants tried in {ROW_BUDGET} s makes a cited test fail"
                    break
                out.unlink(missing_ok=True)
                if _child(mutant, row["tests"], out) and out.exists() and json.loads(out.read_text())["failed"]:
                    verdict = {"line": row["line"], "mutant": mutant, "test": json.loads(out.read_text())["failed"][0]}
                    break
            verdicts.append(verdict)
            (where / "verdicts.json").write_text(json.dumps(verdicts))  # after each row: a cut run keeps its rows


if __name__ == "__main__":
    work(Path(sys.argv[1]).resolve())
