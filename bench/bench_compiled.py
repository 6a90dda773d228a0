"""Would compiling the parser pay? ``reviews parse --jobs 1`` pure, with mypyc, and with
its body rules in C.

Issue 13 asks to compile the hot, strictly typed modules (mypyc, from the pinned mypy,
or Cython) if Python alone cannot reach the parse goal, and to measure both. This bench
does the measuring without changing how the package is built. In a temporary folder:

- ``mypyc``: a copy of ``scraper/`` with ``COMPILED`` compiled by ``mypyc`` (the time
  is printed: it is what a build would add);
- ``native body`` (when Cython is installed; it is not in the test extra): the pure
  package, with ``text.normalise_body``'s whitespace and line rules replaced by
  ``bench/body_native.pyx`` (one pass of C) through a ``sitecustomize`` on the path.

Each build runs ``reviews parse --jobs 1`` over ``bench/pages.py``'s first captures; their
records, messages and exit status are compared byte for byte, then they are timed in
turn (``--runs`` rounds, each in the other order from the last, so all see the same
load). CPU time (user +
system) is printed, not wall time: the machine may be shared. ``--callgrind`` also
counts instructions per page under ``valgrind --tool=callgrind`` (repeatable under
load): a run over ``--callgrind-pages`` pages minus a run over one page, so start-up
and imports are left out.

What it found (December 2026, this 2-core machine; see the report of the branch):
mypyc takes about 4 % off the instructions per page (37.1 M -> 35.6 M), the body rules
in C about 3 % (-> 36.2 M); most of the parse is C already (lexbor, selectolax, ``str``
methods, malloc), and the interpreter's own loop was 1.9 M of the 37.1 M. What would
pay more is outside our code: selectolax parses each selector string again, in a new
memory pool, on every ``css()`` call (about 200 a page: 4.1 M instructions), and has no
way to keep a parsed one.
By CPU time nothing could be pinned down on the loaded machine (load average 8-13):
mypyc came out at 0.87-1.06 of pure by the best of 5-9 runs and 0.89-0.94 by the median
of each round's ratio, but the C body rules, 3 % by instructions, came out at 0.76 and
0.83 in the same runs: at that load CPU time swings by more than these gains. All
records were the same, and the whole test suite passed with the compiled modules first
on the path.

What a compiled build would cost, found on the way (a trial ``setup.py`` calling
``mypyc.build.mypycify`` on ``COMPILED``, ``mypy==2.4.1`` in the build requirements):

- ``scraper/records.py`` cannot be compiled: mypyc takes its ``if not TYPE_CHECKING:``
  (the lazy module ``__getattr__``) for unreachable code, and importing it fails with
  "Reached allegedly unreachable code!".
- mypyc type-checks what it compiles, so the build needs the runtime dependencies'
  types: in a new venv, ``pip install -e .`` (what ``.ci/run`` does) stops at "Cannot
  find implementation or library stub for module named selectolax.lexbor", because
  pip builds before it installs the dependencies. The build requirements would have to
  list them, or a failed compile fall back to pure Python (then the first install of
  every new venv, CI's included, would run pure).
- With selectolax installed first, ``pip install -e .`` builds (70 s at load 7-10), but
  it puts the extension modules beside the sources, and an extension module is
  imported before a ``.py`` of the same name: an edited module goes on running its old
  compiled self until the next install (tried: an edit of ``text.py`` was not run).
- The build puts one more top-level module in site-packages (``<hash>__mypyc``), and
  takes longer: ``pip wheel --no-deps .`` 19-35 s pure, 61-76 s compiled (load 7-10).

``--wheels`` times that trial build, and only that: ``pip wheel --no-deps`` of a copy
of the project with ``TRIAL_SETUP`` as its ``setup.py``, pure (``REVIEWS_PURE_PYTHON=1``)
and compiled, twice each, alternating.

    .venv/bin/python bench/bench_compiled.py [--pages 300] [--runs 5] [--callgrind]
        [--wheels]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from bench_parse import ENV  # noqa: E402  (bench/ is not a package)
from pages import page_set, write  # noqa: E402

#: The modules a page's parse spends its Python time in (by cProfile), all strictly
#: typed. Not ``scraper/records.py``: see the module docstring.
COMPILED = (
    "scraper/jsontext.py",
    "scraper/sites/_decode.py",
    "scraper/sites/_limits.py",
    "scraper/sites/_pages.py",
    "scraper/sites/mal/current.py",
    "scraper/sites/mal/fields.py",
    "scraper/sites/mal/legacy.py",
    "scraper/sites/mal/page.py",
    "scraper/sites/mal/site.py",
    "scraper/sites/mal/text.py",
    "scraper/sites/mal/v1.py",
)
#: mypyc reads the project's mypy settings; the copy has no pyproject.toml (mypyc's
#: generated setup.py would read it with whatever setuptools the venv holds).
MYPY_INI = """[mypy]
python_version = 3.11
strict = True
[mypy-warcio.*,protego.*,croniter.*,pyarrow.*,pandas.*,webencodings.*,jikanpy.*]
ignore_missing_imports = True
"""


#: The native-body trial's hook: ``normalise_body`` as it is, its last steps in C.
SITECUSTOMIZE = """from body_native import collapse_lines
from scraper.sites.mal import text


def normalise_body(raw, line_break="\\n"):
    body = raw.replace(line_break, text.BREAK) if line_break != text.BREAK else raw
    if "&" in body:
        body = text.decode_entities(body)
    return collapse_lines(body, text.BREAK)


text.normalise_body = normalise_body
"""


def native_body(root: Path) -> bool:
    """Build ``bench/body_native.pyx`` and its hook under *root*; False without Cython."""
    try:
        import Cython  # noqa: F401  (only to know it is there)
    except ImportError:
        return False
    root.mkdir()
    shutil.copy(REPO / "bench" / "body_native.pyx", root)
    (root / "sitecustomize.py").write_text(SITECUSTOMIZE)
    setup = "from setuptools import setup\nfrom Cython.Build import cythonize\n"
    setup += 'setup(ext_modules=cythonize("body_native.pyx"))\n'
    (root / "setup.py").write_text(setup)
    subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace"],
        cwd=root,
        check=True,
        stdout=subprocess.DEVNULL,
        env=ENV,
    )
    return True


#: The trial build: ``COMPILED`` by mypyc unless ``REVIEWS_PURE_PYTHON=1``.
TRIAL_SETUP = f"""import os

from setuptools import setup

modules = []
if os.environ.get("REVIEWS_PURE_PYTHON") != "1":
    from mypyc.build import mypycify

    modules = mypycify({list(COMPILED)!r})
setup(ext_modules=modules)
"""


def time_wheels(root: Path) -> None:
    """Print how long ``pip wheel`` takes on the trial build, pure and compiled."""
    project = root / "project"
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, (item.decode() for item in tracked)):
        target = project / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / name).is_symlink():
            target.symlink_to(os.readlink(REPO / name))
        else:
            shutil.copy(REPO / name, target)
    (project / "setup.py").write_text(TRIAL_SETUP)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'requires = ["setuptools>=68"]', 'requires = ["setuptools>=68", "mypy==2.4.1"]'
        )
    )
    for pure in ("1", "0", "1", "0"):
        shutil.rmtree(project / "build", ignore_errors=True)
        out = root / f"wheel-{pure}"
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", ".", "-w", str(out)],
            cwd=project,
            env={**ENV, "REVIEWS_PURE_PYTHON": pure},
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
        wheels = ", ".join(path.name for path in out.glob("*.whl")) or done.stderr[-300:]
        label = "pure" if pure == "1" else "mypyc"
        print(f"  pip wheel, {label:5s}: {seconds:5.1f} s  {wheels}")
        shutil.rmtree(out, ignore_errors=True)


def compile_copy(root: Path) -> float:
    """Copy ``scraper/`` under *root* and compile ``COMPILED`` there; return the seconds."""
    shutil.copytree(REPO / "scraper", root / "scraper", ignore=shutil.ignore_patterns("*.pyc"))
    (root / "mypy.ini").write_text(MYPY_INI)
    mypyc = Path(sys.executable).with_name("mypyc")
    started = time.perf_counter()
    subprocess.run(
        [str(mypyc), *COMPILED], cwd=root, check=True, stdout=subprocess.DEVNULL, env=ENV
    )
    return time.perf_counter() - started


def parse_command(folder: Path) -> list[str]:
    return [sys.executable, "-m", "scraper", "parse", "--jobs", "1", str(folder)]


def environment(path: Path | None) -> dict[str, str]:
    """The timed programs' environment: the compiled copy first on the path, or not."""
    env = dict(ENV)
    env.pop("PYTHONPATH", None)
    if path is not None:
        env["PYTHONPATH"] = str(path)
    return env


def cpu_of(command: list[str], env: dict[str, str], cwd: Path) -> float:
    """Run *command*; return its CPU seconds (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def instructions(command: list[str], env: dict[str, str], cwd: Path, out: Path) -> int:
    """Run *command* under callgrind; return its instruction count."""
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    )
    found = re.search(r"refs:\s+([\d,]+)", done.stderr)
    if found is None:
        raise SystemExit(f"no instruction count from callgrind: {done.stderr[-500:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    """Build the compiled copy, check it gives the same records, and print the figures."""
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--pages", type=int, default=300)
    options.add_argument("--runs", type=int, default=5)
    options.add_argument("--callgrind", action="store_true")
    options.add_argument("--callgrind-pages", type=int, default=30)
    options.add_argument("--wheels", action="store_true")
    args = options.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        ENV["PYTHONPYCACHEPREFIX"] = str(root / "bytecode")
        if args.wheels:  # only that
            time_wheels(root)
            return
        seconds = compile_copy(root / "compiled")
        print(f"mypyc compiled {len(COMPILED)} modules in {seconds:.1f} s")
        folder = root / "pages"
        folder.mkdir()
        write(folder, page_set(args.pages))
        builds = {"pure": environment(None), "mypyc": environment(root / "compiled")}
        if native_body(root / "native"):
            builds["native body"] = environment(root / "native")
        else:
            print("native body: skipped (Cython is not installed)")
        outputs = {
            name: subprocess.run(
                parse_command(folder), env=env, cwd=root, capture_output=True, check=False
            )
            for name, env in builds.items()
        }
        same = len({(run.stdout, run.stderr, run.returncode) for run in outputs.values()}) == 1
        print(f"records, messages and exit status the same: {same}")
        cpus: dict[str, list[float]] = {name: [] for name in builds}
        for round_ in range(args.runs):
            names = list(builds) if round_ % 2 == 0 else list(builds)[::-1]
            for name in names:
                cpus[name].append(cpu_of(parse_command(folder), builds[name], root))
        pure = cpus["pure"]
        for name, runs in cpus.items():
            # Each round's runs follow one another: their ratio sees one load.
            paired = statistics.median(run / base for run, base in zip(runs, pure, strict=True))
            print(
                f"  {name:11s} CPU ms/page: best {1000 * min(runs) / args.pages:6.2f}, "
                f"median {1000 * statistics.median(runs) / args.pages:6.2f}  "
                f"(of pure: {min(runs) / min(pure):.3f} by the best, {paired:.3f} by the "
                "median of each round's ratio)"
            )
        print(f"load average: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
        if args.callgrind:
            few, one = root / "few", root / "one"
            few.mkdir()
            one.mkdir()
            pages = sorted(folder.glob("*.html"))
            for page in pages[: args.callgrind_pages]:
                shutil.copy(page, few)
            shutil.copy(pages[0], one)
            for name, env in builds.items():
                out = root / f"{name}.callgrind"
                many = instructions(parse_command(few), env, root, out)
                single = instructions(parse_command(one), env, root, out)
                per_page = (many - single) / (args.callgrind_pages - 1)
                print(f"  {name:11s} {per_page / 1e6:6.2f} M instructions/page (callgrind)")


if __name__ == "__main__":
    main()
