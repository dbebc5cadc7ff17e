"""`daar embed`: pooled features for every record of a file, written to an output folder."""

from __future__ import annotations

import json
import logging
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


def run_embed(cfg: Config) -> dict:
    if not cfg.data:
        from daar.errors import ConfigError

        raise ConfigError("--data is required")
    out = Path(cfg.out or "embeddings")
    loaded = load_records(cfg.data, schema=cfg.schema, fmt=cfg.format, on_bad_record=cfg.on_bad_record)
    extractor = extractor_for(cfg)
    feats = extractor(loaded.records)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "features.npy", feats)
    with open(out / "ids.txt", "w", encoding="utf-8") as fh:
        fh.writelines(f"{r.id}\n" for r in loaded.records)
    if loaded.rejected:
        loaded.write_rejects(out / "rejects.jsonl")
    stats = extractor.stats
    summary = {
        "data": str(cfg.data), "schema": loaded.schema, "format": loaded.format,
        "read": loaded.n_read, "embedded": len(loaded.records), "rejected": len(loaded.rejected),
        "from_cache": stats.n_cached, "computed": stats.n_computed, "tokens": stats.n_tokens,
        "seconds": round(stats.seconds, 3), "shape": list(feats.shape),
        "spec": extractor.spec.__dict__, "fingerprint": extractor.spec.fingerprint,
        "store": str(extractor.features.dir),
    }
    (out / "meta.json").write_text(json.dumps(summary, indent=2))
    return summary
