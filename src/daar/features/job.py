"""`daar embed`: pooled features for every record of a file, written to an output folder."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from daar.config import Config
from daar.data.readers import load_records
from daar.data.render import Renderer
from daar.features.extract import FeatureExtractor
from daar.features.store import FeatureStore

log = logging.getLogger(__name__)


def extractor_for(cfg: Config, layer: str | int | None = None, max_length: int | None = None,
                  show_progress: bool = True) -> FeatureExtractor:
    """The one place a Config becomes a FeatureExtractor (so every stage fingerprints alike)."""
    return FeatureExtractor(model=cfg.model, layer=cfg.layer if layer is None else layer, pooling=cfg.pooling,
                            renderer=Renderer.named(cfg.template), max_length=max_length or cfg.max_length,
                            dtype=cfg.dtype, batch_size=cfg.batch_size, device=cfg.device,
                            store=FeatureStore(cfg.feature_cache), show_progress=show_progress)


def _write_atomic(path: Path, write) -> None:
    """Write via a temporary name and rename, so a killed run never leaves a half-written output."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as fh:  # a file object, so np.save does not append ".npy" to the temp name
        np.save(fh, array)


def run_embed(cfg: Config) -> dict:
    if not cfg.data:
        from daar.errors import ConfigError

        raise ConfigError("--data is required")
    out = Path(cfg.out or "embeddings")
    loaded = load_records(cfg.data, schema=cfg.schema, fmt=cfg.format, on_bad_record=cfg.on_bad_record)
    extractor = extractor_for(cfg)
    feats = extractor(loaded.records)
    out.mkdir(parents=True, exist_ok=True)
    # features.npy is written last and its presence means the run finished: drop an earlier run's
    # copy first, so a kill between the writes never pairs old features with new ids
    (out / "features.npy").unlink(missing_ok=True)
    _write_atomic(out / "ids.txt", lambda p: p.write_text("".join(f"{r.id}\n" for r in loaded.records),
                                                         encoding="utf-8"))
    if loaded.rejected:
        _write_atomic(out / "rejects.jsonl", loaded.write_rejects)
    else:
        (out / "rejects.jsonl").unlink(missing_ok=True)  # stale from an earlier run on other data
    _write_atomic(out / "features.npy", lambda p: _save_npy(p, feats))
    stats = extractor.stats
    summary = {
        "data": str(cfg.data), "schema": loaded.schema, "format": loaded.format,
        "read": loaded.n_read, "embedded": len(loaded.records), "rejected": len(loaded.rejected),
        "from_cache": stats.n_cached, "computed": stats.n_computed, "tokens": stats.n_tokens,
        "seconds": round(stats.seconds, 3), "shape": list(feats.shape),
        "spec": extractor.spec.__dict__, "fingerprint": extractor.spec.fingerprint,
        "store": str(extractor.features.dir),
    }
    _write_atomic(out / "meta.json", lambda p: p.write_text(json.dumps(summary, indent=2)))
    return summary
