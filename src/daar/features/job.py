"""`daar embed`: pooled features for every record of a file, written to an output folder."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from daar.data.readers import load_records
from daar.data.render import Renderer
from daar.features.extract import FeatureExtractor
from daar.features.store import FeatureStore
from daar.io import atomic_write
from daar.settings import Config

log = logging.getLogger(__name__)


def extractor_for(cfg: Config, layer: str | int | None = None, max_length: int | None = None,
                  show_progress: bool = True, model: str | None = None) -> FeatureExtractor:
    """The one place a Config becomes a FeatureExtractor (so every stage fingerprints alike).

    `layer`, `max_length` and `model` override the settings (e.g. the centroid layer, a scorer model).
    """
    f, lm = cfg.features, cfg.lm
    return FeatureExtractor(model=model or lm.model, layer=f.layer if layer is None else layer, pooling=f.pooling,
                            renderer=Renderer.named(cfg.input.template), max_length=max_length or f.max_length,
                            dtype=lm.dtype, max_tokens=f.feature_batch_tokens, device=lm.device,
                            store=FeatureStore(f.feature_cache), show_progress=show_progress)


def run_embed(cfg: Config) -> dict:
    """Features of every record of `cfg.input.data` into `cfg.run.out`; returns the summary (meta.json).

    The run holds the folder's lock (daar.io.folder_lock), as `daar select` does: a second embed into the
    same --out fails at once, naming the run that holds it, instead of doing the same work twice.
    """
    from daar.io import folder_lock

    cfg.require(data="the records to embed")
    with folder_lock(cfg.run.out or "embeddings"):
        return _run_embed(cfg)


def _run_embed(cfg: Config) -> dict:
    i = cfg.input
    out = Path(cfg.run.out or "embeddings")
    loaded = load_records(i.data, schema=i.schema, fmt=i.format, on_bad_record=i.on_bad_record)
    extractor = extractor_for(cfg)
    feats = extractor(loaded.records)
    out.mkdir(parents=True, exist_ok=True)
    # features.npy is written last and its presence means the run finished: drop an earlier run's
    # copy first, so a kill between the writes never pairs old features with new ids
    (out / "features.npy").unlink(missing_ok=True)
    # every file goes through atomic_write, so a killed run never leaves a half-written output
    atomic_write(out / "ids.txt", "".join(f"{r.id}\n" for r in loaded.records))
    if loaded.rejected:
        loaded.write_rejects(out / "rejects.jsonl")
    else:
        (out / "rejects.jsonl").unlink(missing_ok=True)  # stale from an earlier run on other data
    # np.save to a file object, so it does not append ".npy" to the temporary name
    atomic_write(out / "features.npy", lambda fh: np.save(fh, feats), binary=True)
    stats = extractor.stats
    summary = {
        "data": str(i.data), "schema": loaded.schema, "format": loaded.format,
        "read": loaded.n_read, "embedded": len(loaded.records), "rejected": len(loaded.rejected),
        "from_cache": stats.n_cached, "computed": stats.n_computed, "tokens": stats.n_tokens,
        "seconds": round(stats.seconds, 3), "shape": list(feats.shape),
        "spec": extractor.spec.__dict__, "fingerprint": extractor.spec.fingerprint,
        "store": str(extractor.features.dir),
    }
    atomic_write(out / "meta.json", json.dumps(summary, indent=2))
    return summary
