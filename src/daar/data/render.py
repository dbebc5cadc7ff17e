"""The one renderer: record -> the text every stage sees (synthesis dedup, features, probes, training).

A template is a format string over {instruction}, {input}, {output} and {prompt} (instruction plus
input). Lines whose placeholders are all empty for a record are dropped, so an Alpaca row with an
empty `input` does not leave a blank "Input:" line or a stray double newline.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass

from daar.data.records import Record

DEFAULT_TEMPLATE = "{instruction}\n{input}\n{output}"
# The two formats of the authors' scripts, kept for replication (`--preset reference`).
REFERENCE_TRAIN_TEMPLATE = "Instruction: {instruction}\nInput: {input}\nOutput: {output}"
REFERENCE_SCORE_TEMPLATE = "{instruction} {input} {output}"
NAMED_TEMPLATES = {"default": DEFAULT_TEMPLATE, "reference-train": REFERENCE_TRAIN_TEMPLATE,
                   "reference-score": REFERENCE_SCORE_TEMPLATE}
_FIELDS = {"instruction", "input", "output", "prompt"}


@dataclass(frozen=True)
class Renderer:
    """Turns records into text with a template; `fingerprint` names it in feature-store keys."""

    template: str = DEFAULT_TEMPLATE
    drop_empty_lines: bool = True

    def __post_init__(self) -> None:
        names = {f for _, f, _, _ in string.Formatter().parse(self.template) if f}
        unknown = names - _FIELDS
        if unknown:
            raise ValueError(f"template uses unknown fields {sorted(unknown)}; allowed: {sorted(_FIELDS)}")

    @classmethod
    def named(cls, name_or_template: str) -> Renderer:
        """A renderer from a template name (default, reference-train, reference-score) or a literal template."""
        return cls(NAMED_TEMPLATES.get(name_or_template, name_or_template.replace("\\n", "\n")))

    def _fields(self, instruction: str, input: str, output: str) -> dict[str, str]:
        prompt = instruction if not input.strip() else f"{instruction}\n{input}"
        return {"instruction": instruction, "input": input, "output": output, "prompt": prompt}

    def render_fields(self, instruction: str, input: str = "", output: str = "") -> str:
        values = self._fields(instruction, input, output)
        lines = []
        for line in self.template.split("\n"):
            names = [f for _, f, _, _ in string.Formatter().parse(line) if f]
            if self.drop_empty_lines and names and not any(values[n].strip() for n in names):
                continue
            lines.append(line.format(**values))
        return "\n".join(lines).strip()

    def render(self, record: Record) -> str:
        return self.render_fields(record.instruction, record.input, record.output)

    def render_prompt(self, record: Record) -> str:
        """The text before the response (for response-only losses): the template cut at {output}."""
        head = self.template.split("{output}")[0]
        return Renderer(head, self.drop_empty_lines).render_fields(record.instruction, record.input, "")

    @property
    def fingerprint(self) -> str:
        return hashlib.sha1(f"{self.template}|{self.drop_empty_lines}".encode()).hexdigest()[:12]
