"""Prompt wording for the two synthesis phases (our own wording of the method's instructions).

PROMPT_VERSION goes into fingerprints: change it whenever the wording changes, so cached synthesis
results made with older prompts are not reused.
"""

from __future__ import annotations

import json

from daar.synth.domains import Domain

PROMPT_VERSION = "v2"

_FORMAT = ('Reply with one JSON object only, no commentary, exactly in this form: '
           '{"instruction": "<the task or question>", "input": "<optional extra context, or empty>", '
           '"output": "<the ideal answer>"}')


def _others(domain: Domain, all_domains: list[Domain]) -> str:
    return ", ".join(d.name.replace("_", " ") for d in all_domains if d.name != domain.name)


def seed_prompt(domain: Domain, all_domains: list[Domain]) -> list[dict[str, str]]:
    """Phase 1: ask for one sample of this domain only.

    The method asks for 5 samples in one reply; small models rarely keep a 5-item JSON list valid,
    so the sampler sends this prompt once per missing seed instead (same 5 seeds, sampled apart).
    """
    text = (f"You are writing training data for an assistant.\n"
            f"Domain: {domain.name.replace('_', ' ')}. {domain.description}\n"
            f"Write one instruction-following sample that belongs to this domain only and is clearly not "
            f"about {_others(domain, all_domains)}.\n{_FORMAT}")
    return [{"role": "user", "content": text}]


def augment_prompt(domain: Domain, all_domains: list[Domain], counter_examples: list[dict[str, str]]) -> list[dict[str, str]]:
    """Phase 2: show existing samples as counter-examples and ask for one clearly different sample."""
    shown = "\n".join(json.dumps(ex, ensure_ascii=False) for ex in counter_examples)
    text = (f"You are writing training data for an assistant.\n"
            f"Domain: {domain.name.replace('_', ' ')}. {domain.description}\n"
            f"Here are samples we already have:\n{shown}\n"
            f"Write ONE new sample of this domain that is clearly different from all of them in topic, form "
            f"and wording, and not about {_others(domain, all_domains)}.\n{_FORMAT}")
    return [{"role": "user", "content": text}]
