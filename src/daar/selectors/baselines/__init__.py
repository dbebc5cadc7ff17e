"""The paper's baselines behind the one selector interface (see daar.selectors.base).

Modules, each registering its selectors by name (imported lazily through base._MODULES):
    simple       random, random-balanced, instruction-length, output-length
    ifd          ifd (Superfiltering / Cherry instruction-following difficulty)
    deita        deita-complexity, deita-quality, deita (score-first + redundancy filter)
    alpagasus    alpagasus (LLM judge rates 0-5)
    instag       instag-complexity, instag-diversity (LLM intent tags)
    geometry     kcenter, facility-location (on model features)
    contrastive  inter-diversity, intra-diversity (the paper's contrastive pools)
Helpers: common (shared small utilities), lm_scoring (forward-pass scoring with a scorer model),
judging (prompting a judge through the generation backend, with the judgement cache).
"""
