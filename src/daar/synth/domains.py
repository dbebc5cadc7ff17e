"""Domain specifications: a name, a one-sentence description, optional examples and threshold.

domains.yaml is either a list of domains or a mapping {"domains": [...]}; each entry has `name`,
`description`, optional `examples` (list of {instruction, input, output}; when given, synthesis is
skipped for that domain) and optional `tau` (the phase-2 similarity threshold).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daar.errors import ConfigError

# The method's four domains, described in our own words. Mathematics gets the looser tau of 0.90.
DEFAULT_DOMAINS: list[dict[str, Any]] = [
    {"name": "common_sense", "description": "Everyday knowledge and open-ended questions about the world: "
     "facts, advice, definitions, brainstorming and explanations that need no formal logic, mathematics or code."},
    {"name": "reasoning", "description": "Logical and commonsense reasoning problems answered with a short "
     "chain of thought: deciding whether a claim is plausible, multiple-choice inference, cause and effect."},
    {"name": "mathematics", "description": "Mathematics problems such as arithmetic word problems, algebra, "
     "geometry, probability and number theory, solved step by step to a final numeric answer.", "tau": 0.90},
    {"name": "coding", "description": "Programming tasks: writing, explaining, completing or fixing code in "
     "languages such as Python, JavaScript, Java or SQL."},
]


@dataclass
class Domain:
    name: str
    description: str
    examples: list[dict[str, str]] = field(default_factory=list)
    tau: float | None = None

    def threshold(self, default: float) -> float:
        return self.tau if self.tau is not None else default


def _domain(entry: Any, where: str) -> Domain:
    if not isinstance(entry, dict) or "name" not in entry or "description" not in entry:
        raise ConfigError(f"{where}: each domain needs 'name' and 'description'")
    examples = entry.get("examples") or []
    for j, ex in enumerate(examples):
        if not isinstance(ex, dict) or not str(ex.get("instruction", "")).strip():
            raise ConfigError(f"{where}: example {j} of domain '{entry['name']}' needs an 'instruction'")
    tau = entry.get("tau")
    try:
        ok = tau is None or (not isinstance(tau, bool) and 0 < float(tau) <= 1)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(f"{where}: tau of domain '{entry['name']}' must be a number in (0, 1], got {tau!r}")
    return Domain(name=str(entry["name"]), description=str(entry["description"]),
                  examples=[{k: str(ex.get(k, "") or "") for k in ("instruction", "input", "output")} for ex in examples],
                  tau=float(tau) if tau is not None else None)


def load_domains(path: str | Path | None) -> list[Domain]:
    """The domains of a YAML file, or the method's default four when path is None."""
    if path is None:
        entries, where = DEFAULT_DOMAINS, "default domains"
    else:
        from daar.io import read_yaml

        p = Path(path)
        doc = read_yaml(p, "domains file")
        entries = doc.get("domains") if isinstance(doc, dict) else doc
        where = str(p)
        if not isinstance(entries, list):
            raise ConfigError(f"{p}: expected a list of domains (or a 'domains:' key holding one)")
    domains = [_domain(e, where) for e in entries]
    if len(domains) < 2:
        raise ConfigError(f"{where}: at least 2 domains are needed to measure cross-domain entropy, got {len(domains)}")
    names = [d.name for d in domains]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: domain names must be unique, got {names}")
    return domains
