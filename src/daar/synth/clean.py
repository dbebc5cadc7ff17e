"""Cleaning and rejection of generated questions and answers (pure functions, no model).

Small generators wrap what they were asked for in framing ("Sure! Here is a question:", "The user
would ask: ...", quotes, "1."), echo the prompt or the format's placeholders back ("Your task or
question"), repeat an earlier question word for word, or answer by restating the question. Each
of these would enter a centroid as if it were a real sample of the domain, so the sampler strips
the framing and rejects the rest with a reason that goes into the attempt log.

A Verdict holds the cleaned text and, when it is rejected, the reason (None = accepted).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

MIN_QUESTION_WORDS = 3
MIN_ANSWER_WORDS = 1
ECHO_OVERLAP = 0.6  # share of a text's word trigrams found in the prompt's own sentences
REPEAT_OVERLAP = 0.8  # share of an answer's word trigrams found in its question
PLACEHOLDER_SHARE = 0.75  # share of content words that are format vocabulary

# Words of the format templates ("<the task or question>", "<the ideal answer>", ...) and of the
# echoes small models make of them ("Your current task or question"): a text made of little else
# is a template, not a sample.
_TEMPLATE_WORDS = frozenset(
    "task tasks question questions answer answers instruction instructions input inputs output outputs "
    "optional extra context empty ideal current request response sample samples example text object "
    "json field value placeholder".split())
_STOPWORDS = frozenset(
    "a an the or and of to is are be your my our this that these here there in on for with it its "
    "what which who any some one new".split())

_LABEL_WORDS = r"(?:question|q|a|task|instruction|prompt|query|request|exercise|problem|user)"
_ANNOUNCED = (r"(?:new\s+|possible\s+|sample\s+|good\s+|simple\s+|quiz\s+)?"
              r"(?:question|task|request|exercise|problem|example|one)s?\b")
_FRAMING = [
    re.compile(r"^\s*(?:\d{1,2}\s*[.)]|[-*\u2022])\s+"),  # list numbering or bullet
    re.compile(rf"^\s*(?:\*\*)?{_LABEL_WORDS}(?:\s*\d+)?(?:\*\*)?\s*[:\uff1a](?:\*\*)?\s*", re.I),
    re.compile(r"^\s*(?:sure|okay|ok|of course|certainly|absolutely|great)\s*[!.,]\s*", re.I),
    # "Here is a new question about maths:", "Python. Here is a Python task to solve:"
    re.compile(rf"^\s*(?:[^\n.:!?]{{1,30}}[.!]\s+)?here(?:'s| is| are)\s+(?:(?:a|an|one|my|the|your)\s+)?"
               rf"(?:[\w-]+\s+){{0,2}}{_ANNOUNCED}[^:\n]{{0,60}}[:\uff1a]\s*", re.I),
    re.compile(rf"^\s*(?:a|an|one|my|the)\s+{_ANNOUNCED}[^:\n]{{0,60}}[:\uff1a]\s*", re.I),
    re.compile(r"^\s*(?:write|make up|ask)\s+(?:the|a|one)\s+question[^:\n]{0,30}[:\uff1a]\s*", re.I),
    re.compile(r"^\s*(?:the |a |an )?(?:user|student|person|someone)\s+(?:would |might |could |may |will |can )?"
               r"(?:ask|type|say|write)s?(?: you| me| something like| this| the following)?\s*[:\uff1a]\s*", re.I),
]
# A "Question:" label after a few words of chatter ("The classic: Question: ...", "I'm ready.\n\nQuestion: ...").
_INNER_LABEL = re.compile(r"(?<=[\n:.!?])\s*(?:\*\*)?(?:question|q)(?:\*\*)?\s*[:\uff1a]\s*", re.I)
_MAX_CHATTER_WORDS = 8
_ANSWER_LABEL = re.compile(r"^\s*(?:\*\*)?(?:answer|a|response|reply|output)(?:\*\*)?\s*[:\uff1a](?:\*\*)?\s*",
                           re.I)
# Where a question runs on into something else: an answer, the assistant's voice, a second item.
_QUESTION_END = re.compile(r"\n\s*(?:\*\*)?(?:(?:answer|a|solution|output|response|reply|(?:your|my|the) answer|"
                           r"ai|assistant)\s*\**\s*[:\uff1a]|the (?:ai|assistant)\b|\d{1,2}[.)]\s)", re.I)
# Replies that speak as the assistant, answer, or ask for the question instead of asking one.
_NOT_A_QUESTION = re.compile(
    r"^(?:the answer is|i'?m ready|i am ready|i'?d be happy|i would be happy|i'?d love to|happy to help|"
    r"i'?m sorry|i am sorry|i'?m afraid|as an ai|i can'?t|i cannot|i'?m (?:not |un)able|i am (?:not |un)able|"
    r"(?:please )?(?:provide|write|give|send)(?: me)? (?:the|a|your) question)\b", re.I)
_REFUSAL = re.compile(r"^(?:i'?m sorry|i am sorry|i'?m afraid|as an ai\b|i can'?t|i cannot|"
                      r"i'?m (?:not |un)able|i am (?:not |un)able)", re.I)
# Placeholders of a template left unfilled: "[animal_name]", "<the task or question>".
_SLOT = re.compile(r"\[[a-z]+_[a-z_]+\]|<(?:the|your|an?|optional) [^<>\n]{1,40}>", re.I)
_QUOTES = {'"': '"', "\u201c": "\u201d", "'": "'", "\u00ab": "\u00bb"}


@dataclass(frozen=True)
class Verdict:
    text: str
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def words(text: str) -> list[str]:
    """Lower-case word tokens (letters and digits, "what's" as one); punctuation and markup are ignored."""
    return re.findall(r"[a-z0-9]+(?:['\u2019][a-z]+)?", text.lower())


def normalise(text: str) -> str:
    """The text as compared for duplicates: its words, lower-case, single-spaced, contractions spelt out."""
    return " ".join(_CONTRACTIONS.get(w, w) for w in words(text))


_CONTRACTIONS = {"what's": "what is", "it's": "it is", "that's": "that is", "there's": "there is",
                 "how's": "how is", "who's": "who is", "where's": "where is", "i'm": "i am", "you're": "you are",
                 "can't": "cannot", "don't": "do not", "doesn't": "does not", "isn't": "is not", "i'd": "i would",
                 "let's": "let us", "won't": "will not", "aren't": "are not"}


def _grams(tokens: list[str], n: int = 3) -> set[tuple[str, ...]]:
    if len(tokens) < n:
        return {tuple(tokens)} if tokens else set()
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def overlap(text: str, reference: str) -> float:
    """Share of `text`'s word trigrams (the whole text when shorter) that also occur in `reference`."""
    tokens, ref = words(text), words(reference)
    if not tokens:
        return 0.0
    if len(tokens) < 3:
        return 1.0 if f" {' '.join(tokens)} " in f" {' '.join(ref)} " else 0.0
    mine = _grams(tokens)
    return len(mine & _grams(ref)) / len(mine)


def _unquote(text: str) -> str:
    """Drop quotes around the whole text (and a lone opening quote a length limit left unclosed)."""
    text = text.strip()
    close = _QUOTES.get(text[:1])
    if close is None:
        return text
    inner = text[1:]
    if inner.endswith(close) and close not in inner[:-1]:
        return inner[:-1].strip()
    if close not in inner:
        return inner.strip()
    return text


def _after_inner_label(text: str) -> str:
    """The text after a "Question:" label that follows only a few words of chatter."""
    for m in _INNER_LABEL.finditer(text):
        if m.start() > 0 and len(words(text[: m.start()])) <= _MAX_CHATTER_WORDS and text[m.end():].strip():
            return text[m.end():]
    return text


def strip_framing(text: str) -> str:
    """`text` without framing prefixes and lead-in lines, numbering and surrounding quotes.

    Each pattern removes one prefix (a lead-in line goes with the newline after it); repeated until
    nothing changes, so "1. Question: \"...\"" loses all three layers.
    """
    text = text.replace("\u2019", "'").strip()
    while True:
        before = text
        for pattern in _FRAMING:
            text = pattern.sub("", text, count=1).strip()
        text = _unquote(_after_inner_label(text))
        if text == before:
            return text


def cut_question(text: str, quoted: bool) -> str:
    """The question alone: up to the closing quote of a quoted lead, an answer label or a second item.

    With `quoted`, the reply began inside an opening quote, so the first quote that closes a
    sentence ('?"', '."', '!"') or ends a line is where the question ends.
    """
    if quoted:
        m = re.search(r'[?.!)]["\u201d]|["\u201d]\s*(?:\n|$)', text)
        if m:
            text = text[: m.start() + (1 if text[m.start()] not in '"\u201d' else 0)]
    m = _QUESTION_END.search(text)
    if m:
        text = text[: m.start()]
    head, sep, _ = text.strip().partition("\n\n")
    if sep and not head.rstrip().endswith((":", "\uff1a")):  # keep a code block a question introduces
        text = head
    return text.strip().rstrip('"\u201d').strip()


def placeholder_echo(text: str) -> bool:
    """True when the text's content words are (nearly) all format vocabulary ("Your ideal answer")."""
    content = [w for w in words(text) if w not in _STOPWORDS]
    if not content:
        return False
    return sum(w in _TEMPLATE_WORDS for w in content) / len(content) >= PLACEHOLDER_SHARE


def _common_rejects(text: str, min_words: int, what: str, prompt: str) -> str | None:
    n = len(words(text))
    if n == 0:
        return f"empty {what}"
    if n < min_words:
        return f"near-empty {what}: {n} word{'s' if n > 1 else ''} (< {min_words})"
    if placeholder_echo(text) or _SLOT.search(text):
        return f"{what} echoes the format placeholders"
    if prompt:
        share = overlap(text, prompt)
        if share >= ECHO_OVERLAP:
            return f"{what} echoes the prompt (trigram overlap {share:.2f})"
    return None


def clean_question(raw: str, *, lead: str = "", prompt: str = "", existing: Iterable[str] = ()) -> Verdict:
    """The generated question cleaned, or rejected: empty, template or prompt echo, duplicate.

    `lead` is the prefilled start of the reply (removed when the reply begins with it; when it ends in
    an opening quote, the question ends at the closing one); `prompt` is the prompt's own wording
    (not its counter-examples); `existing` are instructions the question must not duplicate, whole or
    as its first sentence (phase-2 prompts list them, and small models copy one and add to it).
    """
    text = raw.strip()
    quoted = False
    if lead.strip() and text.startswith(lead.strip()):
        text, quoted = text[len(lead.strip()):], lead.rstrip().endswith(('"', "\u201c"))
    if not quoted:  # without the quoted lead, framing comes first ("I'm ready.\n\nQuestion: ...")
        text = strip_framing(text)
    text = strip_framing(cut_question(text, quoted))
    text = strip_framing(cut_question(text, False))  # framing that only appeared after the lead
    reason = _common_rejects(text, MIN_QUESTION_WORDS, "question", prompt)
    if reason is None and _NOT_A_QUESTION.match(text):
        reason = "not a question: the reply speaks as the assistant"
    seen = {normalise(e) for e in existing}
    first = re.split(r"(?<=[?.!])\s+", text, maxsplit=1)[0]  # a copied question with chatter appended
    if reason is None and (normalise(text) in seen or normalise(first) in seen):
        reason = "duplicate of an existing sample"
    return Verdict(text, reason)


def clean_answer(raw: str, *, question: str, prompt: str = "") -> Verdict:
    """The generated answer cleaned (an 'Answer:' label removed), or rejected: empty, template or
    prompt echo, or a mere repeat of the question."""
    text = _ANSWER_LABEL.sub("", raw.replace("\u2019", "'").strip(), count=1).strip()
    reason = _common_rejects(text, MIN_ANSWER_WORDS, "answer", prompt)
    repeats = normalise(text) == normalise(question) or (
        len(words(text)) >= 3 and overlap(text, question) >= REPEAT_OVERLAP)
    if reason is None and question and repeats:
        reason = "answer repeats the question"
    if reason is None and _REFUSAL.match(text):
        reason = "answer is a refusal"
    return Verdict(text, reason)


def check_sample(sample: dict[str, str], *, prompt: str = "",
                 existing: Iterable[str] = ()) -> tuple[dict[str, str], str | None]:
    """A parsed instruction/input/output sample (json mode) cleaned, and the first rejection reason or None."""
    q = clean_question(sample.get("instruction", ""), prompt=prompt, existing=existing)
    if not q.ok:
        return sample, q.reason
    a = clean_answer(sample.get("output", ""), question=q.text, prompt=prompt)
    cleaned = {"instruction": q.text, "input": sample.get("input", "").strip(), "output": a.text}
    return cleaned, a.reason
