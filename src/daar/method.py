"""The DaaR method as stages (METHOD.md steps 1-8), each cached and skipped on rerun.

    domains -> synthesis -> centroids -> probe set -> pseudo-labels -> psi_dom -> entropy -> psi_div -> pool scores

`DomainModel.build(ctx)` runs whatever is missing and exposes what selectors and reports need:
domain names, centroids, probe metrics, and for every pool record the domain probabilities, the
argmax pseudo-domain and the predicted entropy.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from daar.config import Config
from daar.data.readers import load_records
from daar.errors import ConfigError
from daar.probes.heads import (
    ProbeSettings,
    entropy,
    head_from_arrays,
    head_to_arrays,
    train_classifier,
    train_regressor,
)
from daar.stages import StageRunner, fingerprint
from daar.synth.domains import Domain, load_domains
from daar.synth.prompts import PROMPT_VERSION
from daar.synth.sampler import Synthesizer, SynthSettings

if TYPE_CHECKING:
    from daar.selectors.context import SelectionContext

log = logging.getLogger(__name__)


def synth_settings(cfg: Config) -> SynthSettings:
    return SynthSettings(seeds_per_domain=cfg.seeds_per_domain, samples_per_domain=cfg.samples_per_domain,
                         counter_examples=cfg.counter_examples, tau=cfg.tau, seed_temperature=cfg.seed_temperature,
                         augment_temperature=cfg.augment_temperature, top_p=cfg.top_p,
                         max_new_tokens=cfg.max_new_tokens, max_attempts=cfg.max_attempts, batch=cfg.synth_batch,
                         seed=cfg.seed, center=cfg.dedup_center)


def probe_settings(cfg: Config) -> ProbeSettings:
    return ProbeSettings(lr=cfg.probe_lr, batch_size=cfg.probe_batch_size, epochs=cfg.probe_epochs,
                         val_fraction=cfg.val_fraction, seed=cfg.seed)


@dataclass
class DomainModel:
    domain_names: list[str]
    centroids: np.ndarray  # [K, d] in the centroid space (cfg.centroid_space)
    samples: dict[str, list[dict[str, str]]]
    synthesis: list[dict]  # per-domain summary (attempts, capped, ...)
    probe_ids: list[str]
    probe_labels: np.ndarray
    probe_metrics: dict[str, Any]
    div_metrics: dict[str, Any]
    pool_probs: np.ndarray  # [n, K]
    pool_entropy: np.ndarray  # [n] predicted by psi_div
    pool_domain: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.pool_domain = self.pool_probs.argmax(axis=1)

    @classmethod
    def build(cls, ctx: SelectionContext) -> DomainModel:
        return _Builder(ctx).build()


class _Builder:
    def __init__(self, ctx: SelectionContext):
        self.ctx, self.cfg = ctx, ctx.cfg
        self.stages = StageRunner(ctx.run_dir, on_start=lambda n: log.info("stage %s ...", n), until=ctx.cfg.until)
        ctx.stage_runner = self.stages

    def _extractor(self, layer: str | int, model: str | None = None):
        from dataclasses import replace

        from daar.features.job import extractor_for

        cfg = self.cfg if model is None else replace(self.cfg, model=model)
        return extractor_for(cfg, layer=layer)

    # -- synthesis -------------------------------------------------------------------------------
    def synthesize(self, domains: list[Domain]) -> tuple[dict[str, list[dict]], dict[str, list[dict]], list[dict], str]:
        cfg, s = self.cfg, synth_settings(self.cfg)
        needs_generation = any(not d.examples for d in domains)
        gen_identity = ""
        if needs_generation:
            gen_identity = cfg.generator_url or ""
            from daar.models.loading import model_identity

            gen_identity += model_identity(cfg.generator_model or cfg.model) if not cfg.generator_url else \
                f"|{cfg.generator_model or cfg.model}"
        fp = fingerprint("synthesis", [asdict(d) for d in domains], asdict(s), PROMPT_VERSION, gen_identity,
                         self.cfg.template)
        out_dir = self.ctx.run_dir / "domains"
        marker = out_dir / ".fingerprint"
        if out_dir.exists() and (not marker.exists() or marker.read_text() != fp):
            shutil.rmtree(out_dir)  # settings changed: an old attempt log must not be replayed
        out_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(fp)

        def compute():
            renderer = self.ctx.renderer
            dedup = None
            if needs_generation:
                from daar.models.loading import num_layers

                dedup_model = cfg.model if cfg.generator_url else (cfg.generator_model or cfg.model)
                dedup = self._extractor(num_layers(dedup_model), model=dedup_model)
                dedup.show_progress = False

            def embed(samples):
                return dedup([renderer.render_fields(**x) for x in samples])

            backend = self.ctx.generator if needs_generation else None
            states = Synthesizer(domains, backend, embed, s, out_dir / "attempts.jsonl").run(
                progress=lambda msg: log.info("synthesis: %s", msg))
            summary = [st.summary() for st in states.values()]
            for st in states.values():
                (out_dir / f"{st.domain.name}.jsonl").write_text(
                    "".join(json.dumps({"phase": 1 if i < len(st.seeds) else 2, **x}, ensure_ascii=False) + "\n"
                            for i, x in enumerate(st.samples)), encoding="utf-8")
            (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
            return {}, {"samples": {n: st.samples for n, st in states.items()},
                        "augmented": {n: st.augmented for n, st in states.items()}, "summary": summary}

        _, meta = self.stages.run("synthesis", fp, compute)
        return meta["samples"], meta["augmented"], meta["summary"], fp

    # -- the rest --------------------------------------------------------------------------------
    def build(self) -> DomainModel:
        cfg, ctx = self.cfg, self.ctx
        domains = load_domains(cfg.domains)
        names = [d.name for d in domains]
        samples, augmented, summary, fp_syn = self.synthesize(domains)
        for st, d in zip(summary, domains, strict=True):
            st["fallback"] = None
            if not samples[d.name]:
                # Better a centroid from the description than no domain at all; said loudly.
                log.warning("domain '%s' has no usable sample after %d attempts; its centroid comes from its "
                            "description alone. Give examples in domains.yaml or raise --max-attempts",
                            d.name, st["attempts"])
                samples[d.name] = [{"instruction": d.description, "input": "", "output": ""}]
                st["fallback"] = "description"

        cent_ex = self._extractor(cfg.centroid_space)
        fp_cent = fingerprint("centroids", fp_syn, cent_ex.spec.fingerprint, cfg.centroid_source)

        def centroids():
            rows = []
            for n in names:
                chosen = augmented[n] if cfg.centroid_source == "augmented" and augmented[n] else samples[n]
                feats = cent_ex([ctx.renderer.render_fields(**x) for x in chosen])
                rows.append(feats.mean(0))
            return {"centroids": np.stack(rows)}, {}

        arr, _ = self.stages.run("centroids", fp_cent, centroids)
        cents = arr["centroids"]

        probe_records = self._probe_records()
        if len(probe_records) < 2 * len(names):
            raise ConfigError(f"the probe set has {len(probe_records)} records, too few to pseudo-label {len(names)} "
                              "domains and train the probes; give a bigger pool, --probe-size or --probe-data")
        probe_ids = [r.id for r in probe_records]
        fp_probe = fingerprint("probe-set", probe_ids, cfg.probe_data)
        fp_labels = fingerprint("pseudo-labels", fp_cent, fp_probe, cfg.assignment, cfg.seed)

        def labels():
            x = cent_ex(probe_records)
            if cfg.assignment == "nearest":
                d = ((x[:, None, :] - cents[None]) ** 2).sum(-1)
                lab = d.argmin(1)
            else:
                from sklearn.cluster import KMeans

                km = KMeans(n_clusters=len(names), init=cents.astype(np.float64), n_init=1, random_state=cfg.seed)
                lab = km.fit_predict(x.astype(np.float64))
            return {"labels": lab.astype(np.int64)}, {"counts": np.bincount(lab, minlength=len(names)).tolist()}

        arr, meta_lab = self.stages.run("pseudo-labels", fp_labels, labels)
        probe_labels = arr["labels"]

        layer_ex = self._extractor(cfg.layer)
        ps = probe_settings(cfg)
        fp_dom = fingerprint("psi_dom", fp_labels, layer_ex.spec.fingerprint, asdict(ps))

        def psi_dom():
            head = train_classifier(layer_ex(probe_records), probe_labels, len(names), ps)
            return head_to_arrays(head, "dom"), head.metrics

        arr_dom, dom_metrics = self.stages.run("psi_dom", fp_dom, psi_dom)
        dom = head_from_arrays(arr_dom, "dom", dom_metrics)
        fp_div = fingerprint("psi_div", fp_dom)

        def psi_div():
            x = layer_ex(probe_records)
            target = entropy(dom.predict_proba(x))
            head = train_regressor(x, target, ps)
            return {**head_to_arrays(head, "div"), "target": target}, head.metrics

        arr_div, div_metrics = self.stages.run("psi_div", fp_div, psi_div)
        div = head_from_arrays(arr_div, "div", div_metrics)
        fp_score = fingerprint("scores", fp_div, [r.id for r in ctx.records], layer_ex.spec.fingerprint)

        def score():
            x = ctx.features(cfg.layer)
            return {"probs": dom.predict_proba(x), "entropy": div.forward(x)[:, 0].astype(np.float64)}, {}

        arr_sc, _ = self.stages.run("scores", fp_score, score)
        dom_metrics = {**dom_metrics, "label_counts": meta_lab["counts"]}
        return DomainModel(domain_names=names, centroids=cents, samples=samples, synthesis=summary, probe_ids=probe_ids,
                           probe_labels=probe_labels, probe_metrics=dom_metrics, div_metrics=div_metrics,
                           pool_probs=arr_sc["probs"], pool_entropy=arr_sc["entropy"])

    def _probe_records(self):
        """--probe-data when given (disjoint, as in the method), else a seeded sample of the pool."""
        cfg, ctx = self.cfg, self.ctx
        if cfg.probe_data:
            loaded = load_records(cfg.probe_data, schema=cfg.schema, fmt=cfg.format, on_bad_record=cfg.on_bad_record)
            if loaded.rejected:
                loaded.write_rejects(Path(ctx.run_dir) / "probe_rejects.jsonl")
            records = loaded.records
            if cfg.probe_size and cfg.probe_size < len(records):
                rng = np.random.default_rng(cfg.seed)
                records = [records[i] for i in np.sort(rng.choice(len(records), cfg.probe_size, replace=False))]
            return records
        size = cfg.probe_size or min(5000, max(1, len(ctx.records) // 4))
        size = min(size, len(ctx.records))
        rng = np.random.default_rng(cfg.seed)
        return [ctx.records[i] for i in np.sort(rng.choice(len(ctx.records), size, replace=False))]
