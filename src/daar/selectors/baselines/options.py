"""Command-line flags of the baselines, shared by `daar select --method NAME` and `daar compare`."""

from __future__ import annotations

import argparse

from daar.cli_args import S


class KeyValue(argparse.Action):
    """`--extra key=value` (repeatable) -> a dict; values are read as YAML scalars (600 -> int)."""

    def __call__(self, parser, namespace, values, option_string=None):
        import yaml

        key, sep, value = str(values).partition("=")
        if not sep or not key.strip():
            parser.error(f"{option_string} expects KEY=VALUE, got '{values}'")
        current = dict(getattr(namespace, self.dest, None) or {})
        current[key.strip().replace("-", "_")] = yaml.safe_load(value) if value.strip() else None
        setattr(namespace, self.dest, current)


def baseline_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("baselines (see daar list-selectors)")
    g.add_argument("--scorer-model", default=S,
                   help="model scoring ifd / deita-* (HF id or folder; default: --model)")
    g.add_argument("--band", default=S, help="inter-/intra-diversity percentile band per group, e.g. 0-20 (default), "
                   "20-40; 0-20 = the most similar")
    g.add_argument("--similarity-threshold", type=float, default=S,
                   help="deita: skip a record whose cosine to one already chosen is at least this (0.9)")
    g.add_argument("--tag-min-count", type=int, default=S, help="instag: drop tags seen in fewer records (1)")
    g.add_argument("--knn", type=int, default=S,
                   help="facility-location: keep only each record's K most similar records (sparse, O(nK) memory)")
    g.add_argument("--extra", action=KeyValue, default=S, metavar="KEY=VALUE",
                   help="selector option (repeatable): judge_time_limit=SECONDS, judge_batch=16, "
                   "judge_max_new_tokens=N, judge_max_chars=3000, scorer_max_length=512, coverage_clusters=K, "
                   "selectors_use_labels=true (compare: let methods group by --label-field)")
