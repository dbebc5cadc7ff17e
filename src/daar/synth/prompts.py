"""Prompt wording for the two synthesis phases (our own wording of the method's instructions).

Two forms: json mode asks for one instruction/input/output object per reply (the method's form,
for strong generators); two-step mode asks for one plain-text question, then sends that question
as an ordinary user turn and takes the reply as the output (what small generators manage).

PROMPT_VERSION goes into fingerprints: change it whenever the wording changes, so cached synthesis
results made with older prompts are not reused.
"""

from __future__ import annotations

import json

from daar.synth.domains import Domain

PROMPT_VERSION = "v3"  # v3: two-step question prompts; frames for echo checks

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


def json_frame(domain: Domain, all_domains: list[Domain]) -> str:
    """The fixed wording of both json-mode prompts (no counter-examples): what an echo is compared to."""
    prompts = (seed_prompt(domain, all_domains), augment_prompt(domain, all_domains, []))
    return "\n".join(p[-1]["content"] for p in prompts)


# The start of the assistant's reply in two-step mode: the model continues it with the question
# at once, and the opening quote tells where the question ends (its closing quote).
QUESTION_LEAD = 'A user might ask: "'


def _name(domain: Domain) -> str:
    return domain.name.replace("_", " ")


def _question_task(domain: Domain, all_domains: list[Domain], new: bool) -> str:
    name = _name(domain)
    what = (f"one new {name} question or task that is clearly different from all of them in topic and form"
            if new else f"one {name} question or task for a quiz")
    return (f"Make up {what}. Topic: {domain.description}\n"
            f"Keep it about {_name(domain)}, not {_others(domain, all_domains)}. "
            f"Write the question only, do not answer it.")


def question_prompt(domain: Domain, all_domains: list[Domain], shown: list[str]) -> list[dict[str, str]]:
    """Two-step mode, step 1: ask for one question of the domain in plain text.

    Phase 1 (`shown` empty) asks for any question of the domain; phase 2 lists existing instructions
    of the domain (instructions only: small models copy whole samples back) and asks for a clearly
    different one. Short and concrete: the bundled 135M model drifts into chatter under longer prompts.
    """
    if not shown:
        return [{"role": "user", "content": _question_task(domain, all_domains, new=False)}]
    listed = "\n".join(f"- {q}" for q in shown)
    task = _question_task(domain, all_domains, new=True)
    text = f"Here are {_name(domain)} questions we already have:\n{listed}\n{task}"
    return [{"role": "user", "content": text}]


def question_frame(domain: Domain, all_domains: list[Domain]) -> str:
    """The fixed wording of both question prompts (no listed questions): what an echo is compared to."""
    return "\n".join([f"Here are {_name(domain)} questions we already have:"]
                     + [_question_task(domain, all_domains, new) for new in (False, True)])


def answer_prompt(question: str) -> list[dict[str, str]]:
    """Two-step mode, step 2: the question as an ordinary user turn; the reply is the sample's output."""
    return [{"role": "user", "content": question}]
