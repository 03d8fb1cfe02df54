"""pyproject.toml declares what the code imports, and nothing it does not use: every third-party import of the
packages (and of the tests) comes from a declared distribution, and every declared one is imported or named
below with the reason it is needed without an import."""
from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
import sys
import tomllib
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("agent", "retrieval", "finetune", "prompts", "benchmarks")
OURS = set(PRODUCT) | {"tests", "conftest"}
NEEDED_WITHOUT_IMPORT = {
    "gguf": "transformers reads the embedded SmolLM2 GGUF through it",
    "langchain-openai": "init_chat_model('openai:…') loads it in tool mode",
    "pytest-timeout": "a pytest plugin (timeout in [tool.pytest.ini_options])",
    "pytest-xdist": "a pytest plugin (make test and make test-fast run the suite with -n)",
    "import-linter": "the lint-imports command (tests/test_architecture.py)",
    "psycopg": "SQLAlchemy's postgresql+psycopg dialect loads it (agent/storage/database.py)",
}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> dict[str, set[str]]:
    """Distribution → the groups that declare it ("" = the base install, else the extra's name)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"": project["dependencies"], **project["optional-dependencies"]}
    out: dict[str, set[str]] = {}
    for group, requirements in groups.items():
        for requirement in requirements:
            name = normalise(re.match(r"[A-Za-z0-9_.-]+", requirement).group(0))
            if name != "marquee":  # an extra that includes another extra
                out.setdefault(name, set()).add(group)
    return out


def data_wheels() -> set[str]:
    line = next(line for line in (ROOT / "scripts" / "setup.sh").read_text().splitlines() if "--no-deps" in line)
    return {normalise(spec.split("==")[0]) for spec in re.findall(r"[A-Za-z0-9_.-]+==\S+", line)}


def imported_modules(folders) -> dict[str, set[str]]:
    """Absolute imported module → the files importing it (module-level and inside functions alike)."""
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                         else [])
                for name in names:
                    if name.split(".")[0] not in OURS and name.split(".")[0] not in sys.stdlib_module_names:
                        found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


@cache
def top_level_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


@cache
def distribution_of(module: str) -> str:
    """The installed distribution providing `module` (namespace packages such as langgraph span several). A module
    that is not installed here (an extra such as gpu's bitsandbytes) counts as the distribution of its name."""
    top = module.split(".")[0]
    candidates = top_level_distributions().get(top, [])
    if not candidates:
        return normalise(top)
    if len(set(candidates)) == 1:
        return normalise(candidates[0])
    origin = Path(importlib.util.find_spec(module).origin).resolve()
    for dist in map(importlib.metadata.distribution, set(candidates)):
        if any(Path(dist.locate_file(f)).resolve() == origin for f in dist.files or ()):
            return normalise(dist.metadata["Name"])
    raise AssertionError(f"no installed distribution provides {module}")


def test_every_import_is_declared():
    deps, extra_wheels = declared(), data_wheels()
    missing = {}
    for module, files in imported_modules([*PRODUCT, "tests"]).items():
        dist = distribution_of(module)
        product = any(not f.startswith("tests/") for f in files)
        groups = deps.get(dist, set())
        ok = dist in extra_wheels or (groups - {"dev"} if product else groups)
        if not ok:
            missing[module] = (dist, sorted(files)[:2])
    assert missing == {}, "imported but not declared (or only in dev while product code imports it)"


def test_every_declared_dependency_is_used():
    used = {distribution_of(m) for m in imported_modules([*PRODUCT, "tests"])}
    unused = sorted(set(declared()) - used - set(NEEDED_WITHOUT_IMPORT))
    assert unused == [], "declared but never imported: drop them, or say in NEEDED_WITHOUT_IMPORT why they stay"


def test_dropped_dependencies_stay_dropped():
    assert not {"implicit", "pandas", "langchain-chroma", "langchain-huggingface"} & set(declared())
    assert {"openai", "langgraph-checkpoint-sqlite"} <= set(declared())
    assert declared()["langgraph-checkpoint-sqlite"] == {"tools"} and "accelerate" in declared()
