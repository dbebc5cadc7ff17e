"""One bracket scanner for the parser and the generation stopper, with the parser's old results.

`_balanced_spans` used to carry its own copy of the scan that `JsonCloseScanner` does; it now runs
that scanner, so it must find exactly the spans the copy found.
"""

from __future__ import annotations

import random

from daar.synth.parse import JsonCloseScanner, _balanced_spans, json_complete, parse_samples


def _old_balanced_spans(text):
    """synth/parse.py `_balanced_spans` before it ran JsonCloseScanner."""
    spans, depth, start, in_str, esc = [], 0, None, False, False
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"' and depth > 0:
            in_str = True
        elif ch in "{[":
            if depth == 0:
                start = i
            depth += 1
        elif ch in "}]" and depth > 0:
            depth -= 1
            if depth == 0 and start is not None:
                spans.append(text[start : i + 1])
                start = None
    return spans


def test_same_spans_as_the_replaced_copy():
    rng = random.Random(0)
    alphabet = '{}[]"\\ ab:,\n'
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        assert _balanced_spans(text) == _old_balanced_spans(text), text


def test_spans_and_scanner_offsets():
    text = 'Sure! {"instruction": "a }", "output": "b"} and [1, [2]] then {"open": '
    assert _balanced_spans(text) == ['{"instruction": "a }", "output": "b"}', "[1, [2]]"]
    scanner = JsonCloseScanner()
    pieces = [text[i : i + 3] for i in range(0, len(text), 3)]  # fed token by token, as the stopper does
    done = [scanner.feed(p) for p in pieces]
    assert any(done) and done[-1]
    assert text[scanner.start : scanner.end] == '{"instruction": "a }", "output": "b"}'
    assert json_complete('{"a": [1, 2]}') and not json_complete('{"a": [1, 2]')
    assert parse_samples(text) == [{"instruction": "a }", "input": "", "output": "b"}]
