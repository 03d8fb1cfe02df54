"""Dependencies point one way (pyproject.toml [tool.importlinter]): `lint-imports` must keep every contract,
and the contracts must be able to fail (checked on a small tree that breaks each one)."""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def lint_imports(cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(pythonpath or cwd), "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run([LINT_IMPORTS, "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_import_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert f"Contracts: {len(contracts)} kept, 0 broken." in result.stdout


def test_each_contract_catches_its_violation(tmp_path):
    """The same contracts over a skeleton of the packages in which every rule is broken once."""
    files = {
        "prompts/__init__.py": "",
        "retrieval/__init__.py": "",
        "retrieval/store.py": "import agent.core\n",  # a lower layer importing a higher one
        "agent/__init__.py": "",
        "agent/core.py": "import agent.tools\n",
        "agent/tools.py": "def f():\n    import agent.core\n",  # a cycle between agent's modules
        "agent/llm/__init__.py": "",
        "agent/llm/loading.py": "import agent.session\n",  # the LLM runtime reaching into the agent
        "agent/session.py": "import retrieval\n",
        "finetune/__init__.py": "import tests.helpers\n",  # product code importing test code
        "benchmarks/__init__.py": "import finetune\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    section = (ROOT / "pyproject.toml").read_text().split("[tool.importlinter]", 1)[1]
    (tmp_path / "pyproject.toml").write_text("[tool.importlinter]" + section)
    result = lint_imports(tmp_path)
    assert result.returncode == 1
    assert "Contracts: 0 kept, 4 broken." in result.stdout, result.stdout
    assert "retrieval.store -> agent.core" in result.stdout
    assert "agent.llm is not allowed to import agent.session" in result.stdout
    assert "finetune is not allowed to import tests" in result.stdout
    assert "No cycles are allowed in agent" in result.stdout
