"""Scale-out settings: stream the pool in shards, in-process or on a Ray cluster (daar.scale)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from daar.settings.base import Section, bad, setting

BACKENDS = ("local", "ray")
# Measured by benchmarks/scale.py on the 2-core CPU machine (tiny model, ../shared/data records, max
# length 256): an in-memory run peaked at 741 MB for 5,000 records and 1,248 MB for 20,000, ~34 KB per
# record (records, raw rows, texts and, the largest part, every text's token ids held at once), so
# 100k records need ~3.4 GB beyond the model; a selector that needs the whole pool refuses a streamed
# pool above this. The streamed run stayed flat: 685 MB at 5,000 records, 734 MB at 20,000.
DEFAULT_MEMORY_LIMIT = 100_000


@dataclass(frozen=True)
class ScaleSettings(Section):
    """Scale: score the pool in shards with memory flat in pool size, in-process or on Ray."""

    NAME = "scale"
    backend: str = setting("local", choices=BACKENDS,
                           help="local: this process; ray: a Ray Data map over the pool's shards with one "
                           "scoring actor per GPU (CPU actors without GPUs); ray always streams")
    stream: bool = setting(False, help="local backend: read and score the pool shard by shard, keeping only "
                           "scores (memory grows with the budget, not the pool); daar, random, "
                           "instruction-length and output-length stream, other selectors need the pool in memory")
    ray_address: str | None = setting(help="Ray cluster to join (auto, or ray://HOST:10001); inside a Ray job "
                                      "the job's cluster", metavar="ADDR",
                                      default_text="a local Ray started for the run")
    workers: int | None = setting(minimum=1, metavar="N", help="scoring actors on Ray",
                                  default_text="one per GPU of the cluster, else 1")
    worker_cpus: int = setting(1, minimum=1, metavar="N",
                               help="CPUs per Ray actor (and torch threads of a CPU actor)")
    shard_size: int = setting(10000, minimum=1, metavar="N",
                              help="records per shard: the unit of parallel work, of resume (a kill loses at "
                              "most the shards in flight) and of a worker's memory")
    keep_features: bool = setting(False, help="streaming: also keep the pool's features in the feature store "
                                  "(a 7B layer-3 feature is 14 KB per record)")
    shard_dir: str | None = setting(help="score shards and their done markers; a rerun of the same command "
                                    "redoes only the shards not done", metavar="DIR",
                                    default_text="<out>/shards")
    memory_limit: int = setting(DEFAULT_MEMORY_LIMIT, minimum=1, metavar="N",
                                help="streamed pools up to this many records run an in-memory selector in memory; "
                                "above it such a selector stops with an error")

    def validate(self) -> Self:
        super().validate()
        if self.ray_address and self.backend != "ray":
            raise bad("ray_address", f"'{self.ray_address}' needs --backend ray")
        return self

    @property
    def streaming(self) -> bool:
        """True when pool scoring goes through daar.scale (ray always, local with --stream)."""
        return self.backend == "ray" or self.stream
