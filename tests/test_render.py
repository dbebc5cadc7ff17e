"""The one renderer: default template, reference templates, prompt/response split."""

from __future__ import annotations

import pytest

from daar.data import Record, Renderer
from daar.data.render import DEFAULT_TEMPLATE, REFERENCE_SCORE_TEMPLATE, REFERENCE_TRAIN_TEMPLATE


def rec(instruction: str, input: str = "", output: str = "") -> Record:
    return Record(id="r", index=0, line=1, instruction=instruction, input=input, output=output,
                  messages=(), raw={})


def test_default_template_with_all_fields():
    assert Renderer().template == DEFAULT_TEMPLATE
    assert Renderer().render(rec("Add the numbers.", "2 and 3", "5")) == "Add the numbers.\n2 and 3\n5"


def test_default_template_drops_the_line_of_an_empty_field():
    r = Renderer()
    assert r.render(rec("Name a colour.", "", "Blue.")) == "Name a colour.\nBlue."
    assert r.render(rec("Name a colour.", "   ", "Blue.")) == "Name a colour.\nBlue."  # whitespace-only too
    assert r.render(rec("Just a prompt.")) == "Just a prompt."


def test_labelled_template_drops_empty_labelled_lines():
    r = Renderer("Q: {instruction}\nContext: {input}\nA: {output}")
    assert r.render(rec("Why?", "", "Because.")) == "Q: Why?\nA: Because."
    assert r.render(rec("Why?", "ctx", "Because.")) == "Q: Why?\nContext: ctx\nA: Because."


def test_lines_without_placeholders_are_kept():
    r = Renderer("### Task\n{instruction}\n{input}\n### Answer\n{output}")
    assert r.render(rec("Do it.", "", "Done.")) == "### Task\nDo it.\n### Answer\nDone."


def test_reference_templates_format_literally():
    train, score = Renderer.named("reference-train"), Renderer.named("reference-score")
    assert train.template == REFERENCE_TRAIN_TEMPLATE and score.template == REFERENCE_SCORE_TEMPLATE
    assert train.render(rec("Add.", "2 3", "5")) == "Instruction: Add.\nInput: 2 3\nOutput: 5"
    assert score.render(rec("Add.", "2 3", "5")) == "Add. 2 3 5"
    # the authors' scripts keep "Input: " for an empty input; replication needs the very same text
    assert train.render(rec("Add.", "", "5")) == "Instruction: Add.\nInput: \nOutput: 5"
    assert score.render(rec("Add.", "", "5")) == "Add.  5"


def test_named_default_and_literal_templates():
    assert Renderer.named("default") == Renderer()
    literal = Renderer.named("{instruction}\\n=> {output}")  # "\n" as typed on a command line
    assert literal.render(rec("Hi", "", "Hello")) == "Hi\n=> Hello"


def test_prompt_field_joins_instruction_and_input():
    r = Renderer("{prompt}\n---\n{output}")
    assert r.render(rec("Translate.", "chat", "cat")) == "Translate.\nchat\n---\ncat"
    assert r.render(rec("Translate.", "", "cat")) == "Translate.\n---\ncat"


def test_unknown_placeholder_is_rejected():
    with pytest.raises(ValueError, match="unknown fields"):
        Renderer("{instruction} {answer}")


RECORDS = [rec("Add.", "2 3", "5"), rec("Add.", "", "5"), rec("Only a prompt."), rec("Q", "ctx", "multi\nline\nanswer")]


@pytest.mark.parametrize("renderer", [Renderer(), Renderer.named("reference-train"), Renderer.named("reference-score"),
                                      Renderer("{prompt}\n---\n{output}"), Renderer("Q: {instruction}\nA: {output}")],
                         ids=["default", "reference-train", "reference-score", "prompt", "labelled"])
@pytest.mark.parametrize("record", RECORDS, ids=["full", "no-input", "no-output", "multiline"])
def test_render_prompt_is_a_prefix_of_render(renderer, record):
    full, prompt = renderer.render(record), renderer.render_prompt(record)
    assert full.startswith(prompt)
    assert record.instruction in prompt
    if record.output:
        assert record.output not in prompt and full.endswith(record.output)


def test_fingerprint_names_template_and_empty_line_rule():
    prints = {Renderer().fingerprint, Renderer.named("reference-train").fingerprint,
              Renderer.named("reference-score").fingerprint, Renderer(DEFAULT_TEMPLATE, drop_empty_lines=False).fingerprint}
    assert len(prints) == 4
    assert Renderer().fingerprint == Renderer.named("default").fingerprint
