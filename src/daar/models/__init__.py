"""Model loading: hub ids, local folders, the bundled offline default, truncation to k layers."""

from daar.models.loading import DEFAULT_MODEL, LoadedModel, load_model, load_tokenizer, resolve_model

__all__ = ["DEFAULT_MODEL", "LoadedModel", "load_model", "load_tokenizer", "resolve_model"]
