"""`evaluate(cfg)`: load the model (+ adapter) once, run each task, write results as they finish.

Each finished task leaves `raw/<task>/summary.json` with a fingerprint of everything that decides
its score (model and adapter contents, data file, task config, limit, seed, options, the source of
daar.evaluate). Rerunning the same command reuses every matching summary, so an interrupted evaluation
resumes with the next task, and asking for one more task only runs that task.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from daar.errors import ConfigError
from daar.evaluate import report
from daar.evaluate.harness import BENCHMARKS, PAPER_BENCHMARKS, TASK_DIR, run_benchmark
from daar.evaluate.heldout import HELDOUT_ROWS, heldout_loss
from daar.evaluate.sandbox import DEFAULT_TIMEOUT
from daar.io import LOCK_NAME, atomic_write, chunks_hash, file_hash, folder_lock, json_hash
from daar.settings import Config

log = logging.getLogger(__name__)

HELDOUT = report.HELDOUT
HELDOUT_MAX_LENGTH = 2048  # heldout-loss truncation when --max-length is not set
TASKS = (*BENCHMARKS, HELDOUT)
ALIASES = {"paper": PAPER_BENCHMARKS, "all": TASKS}
DATA_HINT = "pass --data-dir with the benchmark files (gsm8k_test.jsonl, humaneval.jsonl, ...)"


def parse_tasks(spec: str | list[str] | tuple[str, ...] | None) -> list[str]:
    if not spec:
        raise ConfigError(f"--tasks is required: a comma-separated list of {', '.join(TASKS)} "
                          f"(or {' / '.join(ALIASES)})")
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names: list[str] = []
    for item in (s.strip().lower() for s in items if s.strip()):
        item = {"heldout": HELDOUT, "heldout_loss": HELDOUT}.get(item, item)
        expanded = ALIASES.get(item, (item,))
        for name in expanded:
            if name not in TASKS:
                raise ConfigError(f"--tasks: unknown task '{name}'; known: {', '.join(TASKS)}")
            if name not in names:
                names.append(name)
    return names


def project_root() -> Path:
    return Path(__file__).resolve().parents[3]


def resolve_data_dir(data_dir: str | None, required: bool = True) -> Path | None:
    """--data-dir, else ../shared/data/eval beside the project (or the working directory) when present.
    Not `required` (only heldout-loss, its pool folder given): None when neither exists."""
    if data_dir:
        path = Path(data_dir).expanduser()
        if not path.is_dir():
            raise ConfigError(f"--data-dir {path} is not a folder; {DATA_HINT}")
        return path
    for base in (project_root(), Path.cwd()):
        candidate = base.parent / "shared" / "data" / "eval"
        if candidate.is_dir():
            return candidate
    if not required:
        return None
    raise ConfigError(f"no benchmark data: ../shared/data/eval does not exist here; {DATA_HINT}")


def resolve_pool_dir(data_dir: Path | None, extra: dict[str, Any]) -> Path:
    if extra.get("pool_dir"):
        return Path(extra["pool_dir"]).expanduser()
    for candidate in (() if data_dir is None else (data_dir.parent / "pool", data_dir / "pool")):
        if candidate.is_dir():
            return candidate
    raise ConfigError(f"heldout-loss needs the pool files: no pool/ folder beside {data_dir}; "
                      "set extra: {pool_dir: DIR} in a --config YAML")


def parse_rows(spec: Any) -> tuple[int, int]:
    if spec is None:
        return HELDOUT_ROWS
    try:
        a, b = (int(x) for x in str(spec).replace("..", ":").split(":"))
    except ValueError:
        raise ConfigError(f"heldout_rows '{spec}' should be START:STOP, e.g. 6250:6400") from None
    if not 0 <= a < b:
        raise ConfigError(f"heldout_rows '{spec}': need 0 <= START < STOP")
    return a, b


# -- fingerprints ----------------------------------------------------------------------------------
# Built on daar.io's json_hash / chunks_hash, which keep the bytes these keys always had, so the
# summaries of earlier runs still match and are reused.
def _hash_dir(path: Path, contents: bool) -> str:
    def chunks():
        # the run-folder lock (daar.io.folder_lock) names who trained the adapter, not what it holds
        for f in sorted(p for p in path.rglob("*") if p.is_file() and p.name != LOCK_NAME):
            yield str(f.relative_to(path))
            yield f.read_bytes() if contents else str(f.stat().st_size)

    return chunks_hash(chunks())


def _file_id(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}:{st.st_size}:{int(st.st_mtime)}"


def _code_hash() -> str:
    """daar.evaluate's own sources: a changed prompt, scorer or sandbox invalidates earlier results."""
    here = Path(__file__).parent
    files = sorted([*here.glob("*.py"), *TASK_DIR.glob("*.yaml")])
    return chunks_hash(piece for f in files for piece in (f.name, f.read_bytes()))


def _fingerprint(parts: dict[str, Any]) -> str:
    return json_hash(parts)


class _Model:
    """Loads the model, tokenizer and lm-eval wrapper on first use (a fully cached rerun loads nothing)."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self._loaded: Any = None
        self._hflm: Any = None

    @property
    def loaded(self) -> Any:
        if self._loaded is None:
            from daar.models.loading import load_model, load_tokenizer

            cfg = self.cfg
            t0 = time.perf_counter()
            lm = load_model(cfg.lm.model, dtype=cfg.lm.dtype, device=cfg.lm.device, causal_lm=True)
            if cfg.eval.adapter:
                from peft import PeftModel

                adapter = Path(cfg.eval.adapter)
                if not (adapter / "adapter_config.json").is_file():
                    raise ConfigError(f"--adapter {adapter}: no adapter_config.json there; give the folder "
                                      "`daar train` wrote the adapter to")
                lm.model = PeftModel.from_pretrained(lm.model, str(adapter)).merge_and_unload().eval()
                if (adapter / "tokenizer_config.json").is_file():
                    lm.tokenizer = load_tokenizer(str(adapter))
            log.info("loaded %s%s (%s, %s) in %.1f s", cfg.lm.model,
                     f" + {cfg.eval.adapter}" if cfg.eval.adapter else "",
                     lm.dtype, lm.device, time.perf_counter() - t0)
            self._loaded = lm
        return self._loaded

    @property
    def hflm(self) -> Any:
        if self._hflm is None:
            from lm_eval.models.huggingface import HFLM

            for name in ("lm_eval", "lm-eval"):
                logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
            self._hflm = HFLM(pretrained=self.loaded.model, tokenizer=self.loaded.tokenizer,
                              batch_size=int(self.cfg.eval.eval_batch_size),
                              max_length=self.cfg.features.max_length)
        return self._hflm


def evaluate(cfg: Config | dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    """Run `cfg.eval.tasks` on `cfg.lm.model` (+ `cfg.eval.adapter`) into `cfg.run.out`; returns the results.

    `cfg` is a Config or a mapping of settings; `kwargs` are settings too (`evaluate(model=..., tasks=...)`).
    """
    if not isinstance(cfg, Config):
        cfg = Config.from_mapping({**(cfg or {}), **kwargs}, source="evaluate()").apply_preset()
    elif kwargs:
        cfg = cfg.replace(**kwargs)
    cfg.require(out="the folder for results.json, results.md and raw/").validate()
    names = parse_tasks(cfg.eval.tasks)
    from daar.evaluate.score_code import CODE_TASKS  # the tasks that execute model-generated code

    if any(n in CODE_TASKS for n in names):  # refuse before the model loads, not at the first sample
        from daar.evaluate.sandbox import require_isolation

        require_isolation(cfg.eval.allow_unsandboxed_code)
    # the benchmark files are needed unless every task is heldout-loss with its pool folder given
    needs_benchmarks = any(n != HELDOUT for n in names) or not cfg.baselines.extra.get("pool_dir")
    data_dir = resolve_data_dir(cfg.eval.data_dir, required=needs_benchmarks)
    # the run folder's lock, as `daar select` takes it: a second eval into this --out fails at once
    with folder_lock(cfg.run.out):
        return _evaluate(cfg, names, data_dir)


def _evaluate(cfg: Config, names: list[str], data_dir: Path | None) -> dict[str, Any]:
    out = Path(cfg.run.out)
    if "torch" not in sys.modules:
        # Idle OpenMP threads spin by default; on a busy CPU that made greedy decoding ~20x slower here
        # (measured: 20 tokens x 2 sequences, 96 s spinning vs 4 s passive). Must be set before torch loads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    extra = dict(cfg.baselines.extra)
    from daar import __version__
    from daar.models.loading import model_identity

    e = cfg.eval
    adapter_id = _hash_dir(Path(e.adapter), contents=True) if e.adapter and Path(e.adapter).is_dir() else None
    base = {"model": model_identity(cfg.lm.model), "adapter": adapter_id, "dtype": cfg.lm.dtype, "seed": cfg.run.seed,
            "limit": e.limit, "max_length": cfg.features.max_length, "daar": __version__, "code": _code_hash(),
            "template": cfg.input.template, "eval_batch_size": e.eval_batch_size, "extra": extra}
    model = _Model(cfg)
    results: dict[str, Any] = {"model": cfg.lm.model, "adapter": cfg.eval.adapter,
                               "data_dir": None if data_dir is None else str(data_dir), "seed": cfg.run.seed,
                               "limit": cfg.eval.limit, "dtype": cfg.lm.dtype, "tasks": {}}
    t_start = time.perf_counter()
    for i, name in enumerate(names, start=1):
        raw = out / "raw" / name
        fp = _fingerprint({**base, **_task_parts(name, data_dir, extra)})
        cached = _cached(raw / "summary.json", fp)
        if cached is not None:
            log.info("[%d/%d] %s: unchanged since the last run, reusing %s", i, len(names), name, raw)
            results["tasks"][name] = cached
        else:
            log.info("[%d/%d] %s: running", i, len(names), name)
            summary = _run_task(name, model, cfg, data_dir, raw, extra)
            summary["fingerprint"] = fp
            atomic_write(raw / "summary.json", json.dumps(summary, indent=2, default=str))
            results["tasks"][name] = summary
        s = results["tasks"][name]
        log.info("[%d/%d] %s: %s %s over %d items in %.1f s", i, len(names), name, s["metric"],
                 f"{s['value']:.4f}" if name == HELDOUT else f"{s['value']:.2f}%", s["n"], s.get("seconds", 0.0))
        report.write(out, results)
    results["wall_seconds"] = round(time.perf_counter() - t_start, 2)
    if model._loaded is not None:
        results["dtype"] = str(model.loaded.dtype)
        results["device"] = model.loaded.device
    report.write(out, results)
    return results


def _task_parts(name: str, data_dir: Path | None, extra: dict[str, Any]) -> dict[str, Any]:
    if name == HELDOUT:
        pool = resolve_pool_dir(data_dir, extra)
        from daar.evaluate import heldout

        return {"task": name, "files": [_file_id(p) for p in heldout.pool_files(pool)],
                "rows": parse_rows(extra.get("heldout_rows"))}
    bench = BENCHMARKS[name]
    path = data_dir / bench.file
    subsets = data_dir / "paper_subsets.json"
    return {"task": name, "file": _file_id(path) if path.exists() else str(path),
            "subsets": _file_id(subsets) if subsets.exists() else None,
            "yaml": file_hash(TASK_DIR / f"{name}.yaml")}


def _cached(path: Path, fingerprint: str) -> dict[str, Any] | None:
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return summary if summary.get("fingerprint") == fingerprint else None


def _run_task(name: str, model: _Model, cfg: Config, data_dir: Path | None, raw: Path,
              extra: dict[str, Any]) -> dict:
    if name == HELDOUT:
        from daar.data import Renderer

        rows = parse_rows(extra.get("heldout_rows"))
        t0 = time.perf_counter()
        lm = model.loaded
        res = heldout_loss(lm.model, lm.tokenizer, resolve_pool_dir(data_dir, extra),
                           renderer=Renderer.named(cfg.input.template), rows=rows, limit=cfg.eval.limit,
                           batch_size=int(cfg.eval.eval_batch_size),
                           max_length=int(cfg.features.max_length or HELDOUT_MAX_LENGTH), raw_dir=raw)
        n = sum(d["samples"] for d in res["domains"].values())
        return {"metric": "loss", "value": res["mean"], "unit": "nats/token", "higher_is_better": False, "n": n,
                "of": n, "domains": res["domains"],
                "settings": {"rows": res["rows"], "template": res["template"], "limit": cfg.eval.limit,
                             "setting": "mean response-token loss per pool domain (unweighted mean)"},
                "seconds": round(time.perf_counter() - t0, 2)}
    tok = model.loaded.tokenizer
    options = {"timeout": float(extra.get("code_timeout", DEFAULT_TIMEOUT)),
               "allow_unsandboxed": bool(cfg.eval.allow_unsandboxed_code),
               "count_tokens": lambda text: len(tok(text, add_special_tokens=False)["input_ids"])}
    return run_benchmark(BENCHMARKS[name], model.hflm, data_dir, raw, limit=cfg.eval.limit, seed=int(cfg.run.seed),
                         options=options, max_gen_toks=extra.get("max_gen_toks"))
