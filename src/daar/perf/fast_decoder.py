"""An inference-only forward of a Llama-family decoder stack (Llama, Qwen2, Mistral) for feature extraction.

Why: at the bundled model's size (hidden 576) a layer's matrix products are cheap enough that the
element-wise work around them (RMSNorm's float round trip, rotary's cat/neg/mul/add, mask handling) took
~45 % of the CPU time in transformers' forward. This forward runs the same arithmetic on the model's
own weights with fewer passes over memory: q/k/v and gate/up each as one matrix product, rotary as one
multiply and two fused multiply-adds, the fused `rms_norm` kernel, and causal attention with no mask
(callers right-pad, so a real token never sees a pad). It returns the final-normed hidden states, what
`AutoModel(...).last_hidden_state` returns; tests compare the two on tiny Llama and Qwen2 models.
Anything it does not know (other architectures, activations, sliding windows shorter than the input,
tensor-parallel slicing) is refused by `supports`, and the caller keeps transformers' forward.
"""

from __future__ import annotations

from typing import Any

SUPPORTED = ("llama", "qwen2", "mistral")


def supports(model: Any, max_length: int) -> bool:
    """Whether `FastDecoder` computes exactly what `model` (an AutoModel decoder stack) computes."""
    cfg = getattr(model, "config", None)
    if cfg is None or getattr(cfg, "model_type", None) not in SUPPORTED or not hasattr(model, "layers"):
        return False
    if getattr(cfg, "hidden_act", "silu") != "silu" or getattr(cfg, "pretraining_tp", 1) != 1:
        return False
    if getattr(cfg, "mlp_bias", False):
        return False
    window = getattr(cfg, "sliding_window", None)
    if window and (getattr(cfg, "use_sliding_window", True) and window < max_length):
        return False
    return all(hasattr(layer, "self_attn") and hasattr(layer, "mlp") for layer in model.layers)


def _rms(x, weight, eps: float):
    import torch

    return torch.nn.functional.rms_norm(x, (x.shape[-1],), weight, eps)


def _rope(x, cos, sin):
    """x * cos + rotate_half(x) * sin, as transformers' apply_rotary_pos_emb, without the cat and neg."""
    half = x.shape[-1] // 2
    out = x * cos
    out[..., :half].addcmul_(x[..., half:], sin[..., :half], value=-1)
    out[..., half:].addcmul_(x[..., :half], sin[..., half:])
    return out


class FastDecoder:
    """Holds fused views of one model's weights; call it with right-padded input ids [B, T]."""

    def __init__(self, model: Any):
        import torch

        self.model = model
        cfg = model.config
        self.layers = []
        with torch.no_grad():
            for layer in model.layers:
                att, mlp = layer.self_attn, layer.mlp
                biases = [p.bias for p in (att.q_proj, att.k_proj, att.v_proj)]
                self.layers.append({
                    "in_norm": (layer.input_layernorm.weight, layer.input_layernorm.variance_epsilon),
                    "post_norm": (layer.post_attention_layernorm.weight,
                                  layer.post_attention_layernorm.variance_epsilon),
                    "qkv": torch.cat([att.q_proj.weight, att.k_proj.weight, att.v_proj.weight]),
                    "qkv_bias": None if biases[0] is None else torch.cat(biases),
                    "split": (att.q_proj.out_features, att.k_proj.out_features, att.v_proj.out_features),
                    "o": (att.o_proj.weight, att.o_proj.bias), "scaling": att.scaling, "head_dim": att.head_dim,
                    "gate_up": torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]),
                    "inter": mlp.gate_proj.out_features, "down": mlp.down_proj.weight,
                })
        self.heads = int(cfg.num_attention_heads)
        self.kv_heads = int(getattr(cfg, "num_key_value_heads", None) or self.heads)

    def __call__(self, input_ids):
        import torch
        import torch.nn.functional as F

        model = self.model
        x = model.embed_tokens(input_ids)
        b, t = input_ids.shape
        positions = torch.arange(t, device=input_ids.device).unsqueeze(0)
        cos, sin = model.rotary_emb(x, position_ids=positions)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # [1, 1, T, D]: broadcast over batch and heads
        groups = self.heads // self.kv_heads
        for p in self.layers:
            h = _rms(x, *p["in_norm"])
            q, k, v = F.linear(h, p["qkv"], p["qkv_bias"]).split(p["split"], dim=-1)
            d = p["head_dim"]
            q = _rope(q.view(b, t, self.heads, d).transpose(1, 2), cos, sin)
            k = _rope(k.view(b, t, self.kv_heads, d).transpose(1, 2), cos, sin)
            v = v.view(b, t, self.kv_heads, d).transpose(1, 2)
            if groups > 1:
                k = k.repeat_interleave(groups, dim=1)
                v = v.repeat_interleave(groups, dim=1)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=p["scaling"])
            x = x.add_(F.linear(a.transpose(1, 2).reshape(b, t, self.heads * d), *p["o"]))
            gate, up = F.linear(_rms(x, *p["post_norm"]), p["gate_up"]).split(p["inter"], dim=-1)
            x = x.add_(F.linear(F.silu(gate).mul_(up), p["down"]))
        return _rms(x, model.norm.weight, model.norm.variance_epsilon)
