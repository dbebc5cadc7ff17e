"""The bundled model's one-time conversion parses its GGUF file once (daar.models.loading._gguf_parsed_once)."""

from __future__ import annotations

import gguf
import numpy as np
import pytest

from daar.models.loading import _gguf_parsed_once


def _tiny_gguf(path) -> None:
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(2)
    w.add_context_length(64)
    w.add_embedding_length(16)
    w.add_feed_forward_length(32)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_tensor("token_embd.weight", np.arange(8 * 16, dtype=np.float32).reshape(8, 16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_transformers_reads_each_file_once_inside_and_gets_the_same_config(tmp_path):
    from transformers import AutoConfig

    _tiny_gguf(tmp_path / "a.gguf")
    _tiny_gguf(tmp_path / "b.gguf")
    alone = AutoConfig.from_pretrained(tmp_path, gguf_file="a.gguf").to_dict()
    with _gguf_parsed_once() as readers:
        first = AutoConfig.from_pretrained(tmp_path, gguf_file="a.gguf").to_dict()
        again = AutoConfig.from_pretrained(tmp_path, gguf_file="a.gguf").to_dict()
        assert len(readers) == 1  # transformers went through the shared reader, and only one was built
        a = gguf.GGUFReader(tmp_path / "a.gguf")
        assert a is gguf.GGUFReader(str(tmp_path / "a.gguf"))  # one reader per real path, str or Path
        assert gguf.GGUFReader(tmp_path / "b.gguf") is not a and len(readers) == 2
    assert first == again == alone


def test_the_patch_is_undone_even_on_error(tmp_path):
    reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    with pytest.raises(RuntimeError), _gguf_parsed_once():
        assert gguf.GGUFReader is not reader
        raise RuntimeError("conversion failed")
    assert gguf.GGUFReader is reader and gguf.get_tensor_name_map is name_map
    _tiny_gguf(tmp_path / "a.gguf")
    assert gguf.GGUFReader(tmp_path / "a.gguf") is not gguf.GGUFReader(tmp_path / "a.gguf")


def test_name_maps_are_built_once_per_architecture_and_layers():
    with _gguf_parsed_once():
        a = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2)
        assert a is gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2)
        assert a is not gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 3)
        assert a.get_name("model.layers.1.self_attn.q_proj") == "blk.1.attn_q"


@pytest.mark.slow
def test_the_bundled_conversion_writes_the_same_bytes_with_and_without_sharing(tmp_path, monkeypatch):
    import contextlib

    from daar.errors import ConfigError
    from daar.models import loading

    try:
        loading._bundled_gguf()
    except ConfigError as exc:
        pytest.skip(str(exc))

    shared, apart = tmp_path / "shared" / "model", tmp_path / "apart" / "model"
    loading._convert_bundled(shared)
    # transformers' own path: a reader per load, a name map per submodule
    monkeypatch.setattr(loading, "_gguf_parsed_once", lambda: contextlib.nullcontext({}))
    loading._convert_bundled(apart)
    names = sorted(p.name for p in shared.iterdir())
    assert names == sorted(p.name for p in apart.iterdir()) and "model.safetensors" in names
    for name in names:
        assert (shared / name).read_bytes() == (apart / name).read_bytes(), name
