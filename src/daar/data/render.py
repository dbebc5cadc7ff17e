"""The one renderer: record -> the text every stage sees (synthesis dedup, features, probes, training).

A template is a format string over {instruction}, {input}, {output} and {prompt} (instruction plus
input). Lines whose placeholders are all empty for a record are dropped, so an Alpaca row with an
empty `input` does not leave a blank "Input:" line or a stray double newline.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from daar.data.records import Record
from daar.io import text_hash

DEFAULT_TEMPLATE = "{instruction}\n{input}\n{output}"
# The two formats of the authors' scripts, kept for replication (`--preset reference`).
REFERENCE_TRAIN_TEMPLATE = "Instruction: {instruction}\nInput: {input}\nOutput: {output}"
REFERENCE_SCORE_TEMPLATE = "{instruction} {input} {output}"
NAMED_TEMPLATES = {"default": DEFAULT_TEMPLATE, "reference-train": REFERENCE_TRAIN_TEMPLATE,
                   "reference-score": REFERENCE_SCORE_TEMPLATE}
_FIELDS = {"instruction", "input", "output", "prompt"}
_OUTPUT_MARK = "\x00daar-output\x00"  # stands in for the output when cutting a rendering into prompt/response


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
        """A renderer from a template name (default, reference-train, reference-score) or a literal template.

        The reference templates keep lines of empty fields ("Input: " with no input), because the
        authors' scripts format them literally and replication needs the very same text.
        """
        if name_or_template in ("reference-train", "reference-score"):
            return cls(NAMED_TEMPLATES[name_or_template], drop_empty_lines=False)
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
        """The text before the response (for response-only losses); always a prefix of `render(record)`.

        Rendered with a marker in place of the output and cut there, so a label on the output's line
        ("A: {output}") stays in the prompt exactly as `render` writes it. A record without output is
        all prompt: its output line is dropped by `render`, so cutting the template would not be a prefix.
        """
        if not record.output.strip():
            return self.render(record)
        marked = self.render_fields(record.instruction, record.input, _OUTPUT_MARK)
        return marked.split(_OUTPUT_MARK)[0].rstrip()

    @property
    def fingerprint(self) -> str:
        """Part of every FeatureSpec, so it keeps its old form (12 hex of the sha1 of template|flag)."""
        return text_hash(f"{self.template}|{self.drop_empty_lines}")[:12]
