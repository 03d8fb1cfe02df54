"""The one Settings object: strict sections, errors that name origin and closest key, env overrides, precedence."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from retrieval.config import CandidateConfig, ConfigError, Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No MARQUEE_* variable of the calling shell and no stray ./marquee.toml leaks into these tests."""
    for name in list(os.environ):
        if name.upper().startswith("MARQUEE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def toml(tmp_path: Path, text: str, name: str = "marquee.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- unknown keys and sections ------------------------------------------------------------------------
@pytest.mark.parametrize("text, message", [
    ("[candidates]\ncont = 30\n", "unknown key 'cont' in [candidates]; did you mean 'count'?"),
    ("[agnet]\nrerank = false\n", "unknown section [agnet]; did you mean [agent]?"),
    ("[llm]\nscorrer = 'segments'\n", "unknown key 'scorrer' in [llm]; did you mean 'scorer'?"),
    ("[eval]\nuser = 5\n", "unknown key 'user' in [eval]; did you mean 'users'?"),
    ("[finetune]\nlora_rnak = 4\n", "unknown key 'lora_rnak' in [finetune]; did you mean 'lora_rank'?"),
    ("[eval.checks]\ntolerence = 0.01\n", "unknown key 'tolerence' in [eval.checks]; did you mean 'tolerance'?"),
    ("hom = '/tmp/x'\n", "unknown top-level key 'hom'; did you mean 'home'?"),
    ("[candidates]\nzzz = 1\n", "unknown key 'zzz' in [candidates]; valid: 'count', 'fusion', 'semantic_k'"),
])
def test_unknown_toml_keys_and_sections_are_errors_with_the_closest_valid_name(tmp_path, text, message):
    path = toml(tmp_path, text, "typo.toml")
    with pytest.raises(ConfigError) as err:
        Settings.load(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_every_unknown_key_is_reported_at_once(tmp_path):
    path = toml(tmp_path, "[candidates]\ncont = 30\n[agnet]\nrerank = false\n")
    with pytest.raises(ConfigError) as err:
        Settings.load(path)
    assert "'cont'" in str(err.value) and "[agnet]" in str(err.value)


@pytest.mark.parametrize("name, message", [
    ("MARQUEE_CANDIDATES__CONT", "environment variable MARQUEE_CANDIDATES__CONT: unknown key 'cont' in "
                                 "[candidates]; did you mean MARQUEE_CANDIDATES__COUNT?"),
    ("MARQUEE_AGNET__RERANK", "environment variable MARQUEE_AGNET__RERANK: unknown section [agnet]; "
                              "did you mean MARQUEE_AGENT__RERANK?"),
    ("MARQUEE_EVAL__CHECKS__TOLERENCE", "unknown key 'tolerence' in [eval.checks]; did you mean "
                                        "MARQUEE_EVAL__CHECKS__TOLERANCE?"),
])
def test_unknown_env_overrides_are_errors_with_the_variable_to_use(monkeypatch, name, message):
    monkeypatch.setenv(name, "1")
    with pytest.raises(ConfigError, match="environment variable") as err:
        Settings.load()
    assert message in str(err.value)


def test_json_valued_section_variable_with_an_unknown_key_is_an_error(monkeypatch):
    monkeypatch.setenv("MARQUEE_CANDIDATES", '{"cont": 3}')
    with pytest.raises(ConfigError, match="MARQUEE_CANDIDATES: unknown key 'cont' in \\[candidates\\]; "
                                          "did you mean 'count'"):
        Settings.load()


def test_unrelated_marquee_variables_are_left_alone(monkeypatch, tmp_path):
    # the MARQUEE_ namespace is shared: the config path, test and benchmark switches are not settings
    monkeypatch.setenv("MARQUEE_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("MARQUEE_TEST_HOME", str(tmp_path / "test-home"))
    monkeypatch.setenv("MARQUEE_SOME_TOOL_FLAG", "1")
    monkeypatch.setenv("MARQUEE_HOME", str(tmp_path / "home"))
    assert Settings.load().home == tmp_path / "home"


def test_unknown_override_arguments_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="command line: unknown key 'cont' in \\[candidates\\]; did you mean"):
        Settings.load(source="command line", candidates={"cont": 3})


# --- env overrides for every section ------------------------------------------------------------------
@pytest.mark.parametrize("name, value, read, expected", [
    ("MARQUEE_CATALOG__SKIP_BAD_ROWS", "true", lambda s: s.catalog.skip_bad_rows, True),
    ("MARQUEE_EMBEDDING__BATCH_SIZE", "16", lambda s: s.embedding.batch_size, 16),
    ("MARQUEE_STORE__COLLECTION", "other", lambda s: s.store.collection, "other"),
    ("MARQUEE_CANDIDATES__COUNT", "30", lambda s: s.candidates.count, 30),
    ("MARQUEE_LLM__MODEL", "/models/qwen", lambda s: s.llm.model, "/models/qwen"),
    ("MARQUEE_LLM__SCORER", "listwise", lambda s: s.llm.scorer, "listwise"),
    ("MARQUEE_AGENT__EXPLAIN", "llm", lambda s: s.agent.explain, "llm"),
    ("MARQUEE_SERVER__PORT", "8080", lambda s: s.server.port, 8080),
    ("MARQUEE_EVAL__USERS", "7", lambda s: s.eval.users, 7),
    ("MARQUEE_EVAL__RANKERS", '["mostpop", "ease"]', lambda s: s.eval.rankers, ["mostpop", "ease"]),
    ("MARQUEE_EVAL__CHECKS__TOLERANCE", "0.01", lambda s: s.eval.checks.tolerance, 0.01),
    ("MARQUEE_FINETUNE__LORA_RANK", "4", lambda s: s.finetune.lora_rank, 4),
    ("MARQUEE_FINETUNE__TARGET_MODULES", '["q_proj"]', lambda s: s.finetune.target_modules, ["q_proj"]),
    # nested dicts: one key of a table, and a free-form per-ranker table whose values are read as JSON
    ("MARQUEE_CANDIDATES__WEIGHTS__POPULARITY", "0.5", lambda s: s.candidates.weights["popularity"], 0.5),
    ("MARQUEE_EVAL__PARAMS__EASE__L2", "300", lambda s: s.eval.params, {"ease": {"l2": 300}}),
    ("MARQUEE_EVAL__PARAMS__SASREC__DROPOUT", "0.5", lambda s: s.eval.params_for("sasrec"), {"dropout": 0.5}),
    ("MARQUEE_FINETUNE__RETRIEVER_PARAMS__L2", "50.0", lambda s: s.finetune.retriever_params, {"l2": 50.0}),
    ("MARQUEE_HOME", "/tmp/marquee-home", lambda s: s.home, Path("/tmp/marquee-home")),
    ("MARQUEE_CHROMA_URL", "http://127.0.0.1:8000", lambda s: s.store.chroma_url, "http://127.0.0.1:8000"),
])
def test_env_overrides_every_section(monkeypatch, name, value, read, expected):
    assert read(Settings.load()) != expected  # the default differs: the variable is what changed it
    monkeypatch.setenv(name, value)
    assert read(Settings.load()) == expected


def test_a_list_variable_that_is_not_json_is_named(monkeypatch):
    monkeypatch.setenv("MARQUEE_EVAL__RANKERS", "[mostpop")
    with pytest.raises(ConfigError, match="environment variable MARQUEE_EVAL__RANKERS: a list or table value must "
                                          "be JSON"):
        Settings.load()


def test_free_form_env_text_that_is_not_json_stays_text(monkeypatch):
    monkeypatch.setenv("MARQUEE_EVAL__PARAMS__LLM_LORA__RETRIEVER", "ease")
    assert Settings.load().eval.params == {"llm_lora": {"retriever": "ease"}}


# --- precedence: defaults → marquee.toml → MARQUEE_* → overrides (flags) -------------------------------
def test_precedence_defaults_file_env_flags(monkeypatch, tmp_path):
    assert Settings.load().candidates.count == 20  # defaults
    path = toml(tmp_path, "[candidates]\ncount = 25\nmmr_lambda = 0.8\n", "cfg.toml")
    assert Settings.load(path).candidates.count == 25  # file over defaults
    monkeypatch.setenv("MARQUEE_CANDIDATES__COUNT", "30")
    settings = Settings.load(path)
    assert (settings.candidates.count, settings.candidates.mmr_lambda) == (30, 0.8)  # env over file, merged
    settings = Settings.load(path, candidates={"count": 35, "long_tail": None})
    assert (settings.candidates.count, settings.candidates.mmr_lambda, settings.candidates.long_tail) == (35, 0.8, 0.0)


def test_config_file_comes_from_the_argument_then_marquee_config_then_cwd(monkeypatch, tmp_path):
    toml(tmp_path, "[server]\nport = 1001\n")  # ./marquee.toml
    assert Settings.load().server.port == 1001
    chosen = toml(tmp_path, "[server]\nport = 1002\n", "env.toml")
    monkeypatch.setenv("MARQUEE_CONFIG", str(chosen))
    assert Settings.load().server.port == 1002
    given = toml(tmp_path, "[server]\nport = 1003\n", "given.toml")
    assert Settings.load(given).server.port == 1003
    monkeypatch.setenv("MARQUEE_CONFIG", str(tmp_path / "absent.toml"))  # tests use this to read no file
    assert Settings.load().server.port == 7860
    with pytest.raises(FileNotFoundError, match="config file not found"):
        Settings.load(tmp_path / "missing.toml")


# --- bad values: the origin, section and key are named -------------------------------------------------
def test_bad_values_name_their_origin(monkeypatch, tmp_path):
    path = toml(tmp_path, "[candidates]\ncount = 0\n[eval]\nstage = 'train'\n", "bad.toml")
    with pytest.raises(ConfigError) as err:
        Settings.load(path)
    assert f"{path}: [candidates] count: Input should be greater than or equal to 1 (got 0)" in str(err.value)
    assert f"{path}: [eval] stage: stage must be 'test' or 'validation', got 'train'" in str(err.value)
    monkeypatch.setenv("MARQUEE_EVAL__USERS", "-7")
    with pytest.raises(ConfigError, match=r"environment variable MARQUEE_EVAL__USERS: \[eval\] users: users must "
                                          r"be >= 0"):
        Settings.load()
    with pytest.raises(ConfigError, match=r"^command line: \[eval\] users: users must be >= 0"):
        Settings.load(source="command line", eval={"users": -1})
    toml(tmp_path, "[candidates\n", "broken.toml")
    with pytest.raises(ConfigError, match="broken.toml is not valid TOML"):
        Settings.load(tmp_path / "broken.toml")


def test_llm_scorer_is_a_plain_name_checked_where_it_is_used():
    # retrieval cannot know agent.llm's scorers: any name loads; the reranker's registry rejects a bad one
    assert Settings.load(llm={"scorer": "segments"}).llm.scorer == "segments"
    assert Settings.load(llm={"scorer": "pointwise"}).llm.scorer == "pointwise"


def test_sections_forbid_unknown_keys_when_built_directly():
    with pytest.raises(ValueError, match="cont"):
        CandidateConfig(cont=3)


# --- values that once passed and broke later -----------------------------------------------------------
@pytest.mark.parametrize("text, message", [
    ("[server]\nport = 70000\n", "[server] port: Input should be less than or equal to 65535 (got 70000)"),
    ("[server]\nport = 0\n", "[server] port: Input should be greater than or equal to 1"),
    ("[server]\nconcurrency = 0\n", "[server] concurrency"),
    ("[candidates]\nlong_tail = inf\n", "[candidates] long_tail: Input should be a finite number (got inf)"),
    ("[candidates]\nweights = { semantic = nan }\n", "weights.semantic: Input should be a finite number"),
    ("[llm]\nfusion_weight = -inf\n", "[llm] fusion_weight: Input should be a finite number"),
])
def test_numbers_must_be_finite_and_in_range(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        Settings.load(toml(tmp_path, text))


def test_an_infinite_environment_override_is_refused(monkeypatch):
    monkeypatch.setenv("MARQUEE_CANDIDATES__LONG_TAIL", "inf")
    with pytest.raises(ConfigError, match="MARQUEE_CANDIDATES__LONG_TAIL.*finite number"):
        Settings.load()
