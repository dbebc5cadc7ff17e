"""Benchmark evaluation of a base model or base + LoRA adapter (`daar eval`).

    daar eval --model MODEL [--adapter DIR] --tasks gsm8k,humaneval,heldout-loss --out DIR
              [--limit N] [--data-dir DIR] [--eval-batch-size B] [--seed 42]

Tasks (the paper's settings are the defaults; `--limit N` evaluates the first N of the seed-42
permutation of each test set instead of the paper's subset):

| task | setting | metric |
|---|---|---|
| nq | 0-shot, all 3,610 dev questions | exact match, any answer |
| triviaqa | 0-shot, paper 5,000 sampled (the local file has 1,000) | exact match, any alias |
| hellaswag | 4 endings, all 10,042 | acc_ppl: lowest per-token perplexity of the ending |
| gsm8k | 4-shot CoT, the paper's 500 (seed 42) | exact match on the final number |
| math | 4-shot, 1,000 sampled (seed 42) | exact match on the normalised final answer |
| mbpp | 3-shot, task_ids 11-510 | pass@1, executed |
| humaneval | 0-shot, all 164 | pass@1, executed |
| mmlu | 0-shot cloze (answer texts), all 14,042 test questions; out-of-distribution, not in `paper` | acc_ppl: lowest per-token perplexity of the answer |
| heldout-loss | rows 6250..6400 of each pool/<domain>.jsonl | response-token loss per domain (lower is better) |

Aliases: `paper` = the seven benchmarks, `all` = those plus mmlu and heldout-loss.

The benchmarks (the seven and mmlu) run through lm-evaluation-harness (`HFLM` around the model loaded here, so
`--adapter` works offline) with local task configs (`daar/evaluate/tasks/*.yaml`) reading the JSONL
files in --data-dir (default ../shared/data/eval beside the project). Answer extraction and the
metrics are daar's own (`scoring`, `mathnorm`, `code`); code is executed by `sandbox`, never by
lm-eval's hub-loaded `code_eval`. `heldout-loss` is computed in-house (`heldout`).

Outputs in --out: `results.json` (per task: metric, value, n, settings, seconds; the average over
the benchmarks), `results.md` (one row, a column per task, the average, heldout-loss apart), and
`raw/<task>/` (lm-eval's results, one JSON line per sample with prompt, generation and what daar
extracted or the execution status, the task summary used to resume).

Options without a flag (set them under `extra:` in a --config YAML, or `extra={...}` in Python):
`max_gen_toks` (cap generation length of every generation task), `code_timeout` (seconds per
program, default 10), `heldout_rows` ("6250:6400"), `pool_dir` (default: pool/ beside --data-dir).

Python API:
- `evaluate(cfg_or_kwargs) -> dict`: the results dict written to results.json.
- `TASKS`, `BENCHMARKS`: task names and the benchmark registry.
- `run_program(code, timeout)`: the sandbox; `heldout_loss(model, tokenizer, pool_dir, ...)`.
- scorers: `daar.evaluate.scoring` (QA, GSM8K, MATH, HellaSwag, MMLU), `daar.evaluate.code` (HumanEval, MBPP).
"""

from daar.evaluate.harness import BENCHMARKS
from daar.evaluate.heldout import heldout_loss
from daar.evaluate.runner import TASKS, evaluate
from daar.evaluate.sandbox import ExecResult, run_program

__all__ = ["evaluate", "TASKS", "BENCHMARKS", "heldout_loss", "run_program", "ExecResult"]
