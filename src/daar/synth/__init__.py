"""Domain specs, synthesis prompts, generation backends, output parsing and rejection sampling."""
