"""Point 11: a static guard over src/gambarkan/ (AST, not grep, so comments and strings do not count).

- no ``pickle``/``dill``/``joblib``/``marshal``/``shelve`` loading anywhere;
- no ``torch.load`` without a literal ``weights_only=True``;
- no ``eval``/``exec`` builtins (``module.eval()`` is fine), no ``yaml.load`` without a safe loader;
- no ``subprocess``/``os.system``/``os.popen``/``os.exec*``/``os.spawn*``/``pty`` in any module a
  request handler can reach: the server and UI packages and everything they import, transitively.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "gambarkan"
REQUEST_ROOTS = ("gambarkan.server", "gambarkan.ui")
UNPICKLERS = {"pickle", "cPickle", "_pickle", "dill", "joblib", "marshal", "shelve", "cloudpickle"}
SHELL_CALLS = {("os", "system"), ("os", "popen"), ("os", "posix_spawn"), ("os", "posix_spawnp"), ("os", "fork"), ("os", "forkpty")}
SHELL_MODULES = {"subprocess", "pty", "commands", "popen2", "asyncio.subprocess"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    return ""


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def unsafe_calls(source: str, filename: str = "<src>") -> list[str]:
    """Problems in one module's source: unpickling, unguarded torch.load, eval/exec, yaml.load."""
    tree = ast.parse(source, filename)
    problems: list[str] = []
    aliases: dict[str, str] = {}  # local name -> module or module.attr it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                if node.module.split(".")[0] in UNPICKLERS and alias.name in ("load", "loads", "Unpickler", "open"):
                    problems.append(f"{filename}:{node.lineno}: imports {node.module}.{alias.name}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if not name:
            continue
        head, _, rest = name.partition(".")
        full = f"{aliases.get(head, head)}.{rest}" if rest else aliases.get(head, head)
        where = f"{filename}:{node.lineno}"
        root = full.split(".")[0]
        if root in UNPICKLERS and full.rsplit(".", 1)[-1] in ("load", "loads", "Unpickler", "open"):
            problems.append(f"{where}: {full}() can run code from data")
        if full in ("torch.load", "torch.serialization.load"):
            flag = next((k for k in node.keywords if k.arg == "weights_only"), None)
            if flag is None or not (isinstance(flag.value, ast.Constant) and flag.value.value is True):
                problems.append(f"{where}: torch.load without weights_only=True")
        if full in ("eval", "exec", "compile", "builtins.eval", "builtins.exec", "builtins.compile"):
            problems.append(f"{where}: {full}() runs code from a string")
        if full in ("yaml.load", "yaml.load_all", "yaml.unsafe_load"):
            loader = next((k for k in node.keywords if k.arg == "Loader"), None)
            if full == "yaml.unsafe_load" or loader is None or "Safe" not in _dotted(loader.value):
                problems.append(f"{where}: {full} without a SafeLoader")
    return problems


def shell_uses(source: str, filename: str = "<src>") -> list[str]:
    """Imports of subprocess-like modules and calls that start programs."""
    tree = ast.parse(source, filename)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"{filename}:{node.lineno}: import {a.name}" for a in node.names if a.name in SHELL_MODULES or a.name.split(".")[0] in SHELL_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in SHELL_MODULES or node.module in SHELL_MODULES:
                found.append(f"{filename}:{node.lineno}: from {node.module} import ...")
            if node.module == "os":
                found += [f"{filename}:{node.lineno}: from os import {a.name}" for a in node.names if ("os", a.name) in SHELL_CALLS or a.name.startswith(("exec", "spawn"))]
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            head, _, attr = name.partition(".")
            if head == "os" and ((head, attr) in SHELL_CALLS or attr.startswith(("exec", "spawn"))):
                found.append(f"{filename}:{node.lineno}: {name}()")
            if name in ("asyncio.create_subprocess_exec", "asyncio.create_subprocess_shell"):
                found.append(f"{filename}:{node.lineno}: {name}()")
    return found


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """gambarkan modules ``module`` imports anywhere (top level or inside functions)."""
    tree = ast.parse(source)
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("gambarkan")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, one level up per extra dot
                parts = module.split(".") if is_package else module.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, base]) if base else ".".join(parts)
            if base.startswith("gambarkan"):
                out.add(base)
                out |= {f"{base}.{a.name}" for a in node.names}  # `from gambarkan.x import module`
    return out


def _sources() -> dict[str, tuple[Path, str]]:
    return {_module_name(p, PACKAGE): (p, p.read_text(encoding="utf-8")) for p in sorted(PACKAGE.rglob("*.py"))}


def reachable(roots: tuple[str, ...], sources: dict[str, tuple[Path, str]]) -> set[str]:
    """Every gambarkan module reachable by imports from any module under ``roots``."""
    todo = [m for m in sources if m.startswith(roots)]
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        if module in seen or module not in sources:
            continue
        seen.add(module)
        path, src = sources[module]
        for name in imported_modules(src, module, path.name == "__init__.py"):
            # `import gambarkan.a.b` also runs gambarkan/__init__ and gambarkan/a/__init__
            parts = name.split(".")
            todo += [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return seen


# --- the guard itself ---------------------------------------------------------------------------


def test_no_code_execution_from_data_anywhere() -> None:
    problems = [p for module, (path, src) in _sources().items() for p in unsafe_calls(src, str(path.relative_to(PACKAGE.parent)))]
    assert problems == []


def test_no_subprocess_reachable_from_request_handlers() -> None:
    sources = _sources()
    modules = reachable(REQUEST_ROOTS, sources)
    assert "gambarkan.server.app" in modules and "gambarkan.engine.generate" in modules  # the graph is real
    problems = [p for m in sorted(modules) for p in shell_uses(sources[m][1], str(sources[m][0].relative_to(PACKAGE.parent)))]
    assert problems == [], f"reachable from {REQUEST_ROOTS}: {problems}"


# --- the guard can fail -------------------------------------------------------------------------

BAD = {
    "import pickle\npickle.load(f)": "pickle.load",
    "import pickle as p\np.loads(b)": "pickle.loads",
    "from pickle import loads\nloads(b)": "imports pickle.loads",
    "import dill\ndill.load(f)": "dill.load",
    "import torch\ntorch.load(p)": "weights_only",
    "import torch\ntorch.load(p, weights_only=False)": "weights_only",
    "import torch as t\nt.load(p, weights_only=flag)": "weights_only",
    "from torch import load\nload(p)": "weights_only",
    "eval('1')": "eval",
    "exec(code)": "exec",
    "import builtins\nbuiltins.exec(code)": "exec",
    "import yaml\nyaml.load(s)": "SafeLoader",
}


@pytest.mark.parametrize("source", sorted(BAD))
def test_guard_catches(source: str) -> None:
    problems = unsafe_calls(source)
    assert problems and BAD[source] in " ".join(problems), problems


@pytest.mark.parametrize(
    "source",
    ["model.eval()", "import torch\ntorch.load(p, weights_only=True)", "import yaml\nyaml.load(s, Loader=yaml.SafeLoader)", "# pickle.load(f)\nx = 'eval(1)'"],
)
def test_guard_allows(source: str) -> None:
    assert unsafe_calls(source) == []


@pytest.mark.parametrize(
    "source",
    ["import subprocess", "from subprocess import run", "import os\nos.system('x')", "import os\nos.execv('a', [])", "from os import popen", "import asyncio\nasyncio.create_subprocess_exec('x')"],
)
def test_shell_guard_catches(source: str) -> None:
    assert shell_uses(source)


def test_reachability_follows_function_level_imports() -> None:
    sources = {
        "gambarkan.server.app": (Path("a"), "def f():\n    from gambarkan.helper import go\n"),
        "gambarkan.helper": (Path("b"), "from gambarkan import deep\n"),
        "gambarkan.deep": (Path("c"), "import subprocess\n"),
        "gambarkan.cli.other": (Path("d"), "import subprocess\n"),
        "gambarkan": (Path("e"), ""),
    }
    assert reachable(("gambarkan.server",), sources) == {"gambarkan.server.app", "gambarkan.helper", "gambarkan.deep", "gambarkan"}
    assert imported_modules("from .jobs import JobQueue\nfrom ..errors import X", "gambarkan.server.app") >= {"gambarkan.server.jobs", "gambarkan.errors"}
    assert "gambarkan.server.jobs" in imported_modules("from .jobs import JobQueue", "gambarkan.server", is_package=True)


# --- imports point down: the low layers never import the engine ------------------------------

LOW_ROOTS = ("gambarkan.request", "gambarkan.plan", "gambarkan.models", "gambarkan.outputs", "gambarkan.prompt", "gambarkan.families", "gambarkan.optimize_names")
#: Engine modules the low layers may still import (none: sampler names live in gambarkan/sampler_names.py).
PENDING: set[str] = set()


def engine_imports(roots: tuple[str, ...], sources: dict[str, tuple[Path, str]], allowed: set[str] = frozenset()) -> list[str]:
    """``module -> gambarkan.engine...`` for every engine import reachable from ``roots``.

    Follows imports between gambarkan modules (top level and inside functions), but not into the
    bare ``gambarkan`` package, whose lazy ``generate()`` is the public entry to the engine.
    """
    todo = [m for m in sources if m.startswith(roots)]
    seen: set[str] = set()
    found: list[str] = []
    while todo:
        module = todo.pop()
        if module in seen or module not in sources:
            continue
        seen.add(module)
        path, src = sources[module]
        for name in sorted(imported_modules(src, module, path.name == "__init__.py")):
            if name.startswith("gambarkan.engine"):
                if not any(name == a or name.startswith(a + ".") for a in allowed):
                    found.append(f"{module} -> {name}")
            elif name != "gambarkan":
                todo.append(name)
    return sorted(set(found))


def test_request_models_outputs_prompt_never_import_the_engine() -> None:
    sources = _sources()
    assert "gambarkan.families" in sources and "gambarkan.plan" in sources  # the layer under test exists
    assert engine_imports(LOW_ROOTS, sources, PENDING) == []


def test_engine_import_guard_can_fail() -> None:
    sources = {
        "gambarkan.models.catalog": (Path("a"), "def f():\n    from gambarkan.families import get_family\n"),
        "gambarkan.families": (Path("__init__.py"), "from .. import errors\nfrom gambarkan.engine.generate import Plan\n"),
        "gambarkan.errors": (Path("c"), ""),
        "gambarkan.outputs.reuse": (Path("d"), "def g():\n    from gambarkan.engine.samplers import SAMPLERS\n"),
    }
    assert engine_imports(("gambarkan.models", "gambarkan.outputs"), sources) == [
        "gambarkan.families -> gambarkan.engine.generate",
        "gambarkan.families -> gambarkan.engine.generate.Plan",
        "gambarkan.outputs.reuse -> gambarkan.engine.samplers",
        "gambarkan.outputs.reuse -> gambarkan.engine.samplers.SAMPLERS",
    ]
    assert engine_imports(("gambarkan.outputs",), sources, {"gambarkan.engine.samplers"}) == []
