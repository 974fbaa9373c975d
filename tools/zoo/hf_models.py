"""GPT-2 and BERT written as plain torch modules with Hugging Face's parameter names.

The modules are scriptable (torch.jit.script) and are what ModelGrid executes
through `1/model.pt`. Their state_dict keys are exactly the tensor names of the
Hugging Face checkpoints (GPT2Model / BertModel, no "transformer."/"bert."
prefix), so the safetensors files written from them load into transformers.

Conventions kept from the originals (facts, not code):
  - GPT-2 projections are "Conv1D": weight [in, out], y = x @ W + b.
  - GPT-2 activation is gelu_new (tanh approximation); BERT's is exact (erf) gelu.
  - GPT-2 LayerNorms come before attention/MLP (pre-LN) plus a final ln_f;
    BERT's come after the residual add (post-LN).
  - GPT-2's lm_head is tied to wte and absent from the checkpoint.
  - Init: normal(0, 0.02) weights and embeddings, zero biases, LayerNorm 1/0;
    GPT-2 scales the residual projections (c_proj) by 1/sqrt(2 * n_layer).
No dropout anywhere (the modules only serve inference).
"""

import math
from typing import List

import torch
from torch import Tensor, nn

# ---------------------------------------------------------------------------
# configs (the config.json that is written beside the weights)


def gpt2_config(profile):
    if profile == "full":
        vocab, positions, embd, layers, heads = 50257, 1024, 768, 12, 12
    else:
        vocab, positions, embd, layers, heads = 1000, 128, 64, 2, 4
    return {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1,
        "bos_token_id": vocab - 1,
        "embd_pdrop": 0.1,
        "eos_token_id": vocab - 1,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2",
        "n_ctx": positions,
        "n_embd": embd,
        "n_head": heads,
        "n_inner": None,
        "n_layer": layers,
        "n_positions": positions,
        "reorder_and_upcast_attn": False,
        "resid_pdrop": 0.1,
        "scale_attn_by_inverse_layer_idx": False,
        "scale_attn_weights": True,
        "summary_activation": None,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "use_cache": True,
        "vocab_size": vocab,
    }


def bert_config(profile):
    if profile == "full":
        vocab, positions, hidden, layers, heads, inter = 30522, 512, 768, 12, 12, 3072
    else:
        vocab, positions, hidden, layers, heads, inter = 1000, 128, 64, 2, 4, 256
    return {
        "architectures": ["BertModel"],
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": inter,
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": positions,
        "model_type": "bert",
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "type_vocab_size": 2,
        "use_cache": True,
        "vocab_size": vocab,
    }


def gpt2_parameter_count(cfg):
    """formats.md: P = V*h + T*h + L*(4h^2 + 2*h*i + 9h + i) + 2h (lm_head tied)."""
    h, inner = cfg["n_embd"], cfg["n_inner"] or 4 * cfg["n_embd"]
    layer = 4 * h * h + 2 * h * inner + 9 * h + inner
    return cfg["vocab_size"] * h + cfg["n_positions"] * h + cfg["n_layer"] * layer + 2 * h


def bert_parameter_count(cfg):
    """formats.md: P = (V + Pm + t)*h + 2h + L*(4h^2 + 2*h*i + 9h + i) + (h^2 + h)."""
    h, inner = cfg["hidden_size"], cfg["intermediate_size"]
    layer = 4 * h * h + 2 * h * inner + 9 * h + inner
    emb = (cfg["vocab_size"] + cfg["max_position_embeddings"] + cfg["type_vocab_size"]) * h
    return emb + 2 * h + cfg["num_hidden_layers"] * layer + h * h + h


# ---------------------------------------------------------------------------
# GPT-2


class Conv1D(nn.Module):
    """GPT-2's linear layer with the weight stored transposed: [in, out]."""

    def __init__(self, n_in: int, n_out: int, std: float):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out).normal_(0.0, std))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: Tensor) -> Tensor:
        return torch.matmul(x, self.weight) + self.bias


def gelu_new(x: Tensor) -> Tensor:
    return 0.5 * x * (1.0 + torch.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))


class GPT2Attention(nn.Module):
    def __init__(self, embd: int, heads: int, std: float, proj_std: float):
        super().__init__()
        self.heads = heads
        self.head_dim = embd // heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.c_attn = Conv1D(embd, 3 * embd, std)
        self.c_proj = Conv1D(embd, embd, proj_std)

    def _split(self, x: Tensor) -> Tensor:  # [B, S, E] -> [B, heads, S, head_dim]
        return x.reshape(x.size(0), x.size(1), self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        b, s, e = x.size(0), x.size(1), x.size(2)
        qkv = self.c_attn(x)
        q, k, v = qkv.split(e, dim=2)
        q, k, v = self._split(q), self._split(k), self._split(v)
        scores = torch.matmul(q, k.transpose(-1, -2)) * self.scale
        causal = torch.ones(s, s, dtype=torch.bool, device=x.device).tril()
        scores = scores.masked_fill(causal.logical_not(), float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        y = torch.matmul(probs, v).transpose(1, 2).reshape(b, s, e)
        return self.c_proj(y)


class GPT2MLP(nn.Module):
    def __init__(self, embd: int, inner: int, std: float, proj_std: float):
        super().__init__()
        self.c_fc = Conv1D(embd, inner, std)
        self.c_proj = Conv1D(inner, embd, proj_std)

    def forward(self, x: Tensor) -> Tensor:
        return self.c_proj(gelu_new(self.c_fc(x)))


class GPT2Block(nn.Module):
    def __init__(self, embd: int, heads: int, inner: int, eps: float, std: float,
                 proj_std: float):
        super().__init__()
        self.ln_1 = nn.LayerNorm(embd, eps=eps)
        self.attn = GPT2Attention(embd, heads, std, proj_std)
        self.ln_2 = nn.LayerNorm(embd, eps=eps)
        self.mlp = GPT2MLP(embd, inner, std, proj_std)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2LMHead(nn.Module):
    """GPT2LMHeadModel without the "transformer." prefix; forward returns logits."""

    def __init__(self, cfg):
        super().__init__()
        embd, layers = cfg["n_embd"], cfg["n_layer"]
        std = cfg["initializer_range"]
        proj_std = std / math.sqrt(2 * layers)
        inner = cfg["n_inner"] or 4 * embd
        self.wte = nn.Embedding(cfg["vocab_size"], embd)
        self.wpe = nn.Embedding(cfg["n_positions"], embd)
        nn.init.normal_(self.wte.weight, 0.0, std)
        nn.init.normal_(self.wpe.weight, 0.0, std)
        self.h = nn.ModuleList([
            GPT2Block(embd, cfg["n_head"], inner, cfg["layer_norm_epsilon"], std, proj_std)
            for _ in range(layers)])
        self.ln_f = nn.LayerNorm(embd, eps=cfg["layer_norm_epsilon"])

    def forward(self, input_ids: Tensor) -> Tensor:
        """input_ids int64 [B, S] -> logits float32 [B, S, vocab_size]."""
        positions = torch.arange(input_ids.size(1), dtype=torch.long, device=input_ids.device)
        x = self.wte(input_ids) + self.wpe(positions).unsqueeze(0)
        for block in self.h:
            x = block(x)
        x = self.ln_f(x)
        return torch.matmul(x, self.wte.weight.t())   # lm_head tied to wte


# ---------------------------------------------------------------------------
# BERT


def _linear(n_in: int, n_out: int, std: float) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.normal_(layer.weight, 0.0, std)
    nn.init.zeros_(layer.bias)
    return layer


class BertEmbeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h, std = cfg["hidden_size"], cfg["initializer_range"]
        self.word_embeddings = nn.Embedding(cfg["vocab_size"], h)
        self.position_embeddings = nn.Embedding(cfg["max_position_embeddings"], h)
        self.token_type_embeddings = nn.Embedding(cfg["type_vocab_size"], h)
        for emb in (self.word_embeddings, self.position_embeddings, self.token_type_embeddings):
            nn.init.normal_(emb.weight, 0.0, std)
        self.LayerNorm = nn.LayerNorm(h, eps=cfg["layer_norm_eps"])

    def forward(self, input_ids: Tensor) -> Tensor:
        s = input_ids.size(1)
        positions = torch.arange(s, dtype=torch.long, device=input_ids.device)
        token_types = torch.zeros_like(input_ids)   # segment A everywhere
        x = (self.word_embeddings(input_ids) + self.position_embeddings(positions).unsqueeze(0)
             + self.token_type_embeddings(token_types))
        return self.LayerNorm(x)


class BertSelfAttention(nn.Module):
    def __init__(self, h: int, heads: int, std: float):
        super().__init__()
        self.heads = heads
        self.head_dim = h // heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.query = _linear(h, h, std)
        self.key = _linear(h, h, std)
        self.value = _linear(h, h, std)

    def _split(self, x: Tensor) -> Tensor:
        return x.reshape(x.size(0), x.size(1), self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        probs = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * self.scale, dim=-1)
        y = torch.matmul(probs, v).transpose(1, 2)
        return y.reshape(x.size(0), x.size(1), x.size(2))


class BertSelfOutput(nn.Module):
    def __init__(self, h: int, eps: float, std: float):
        super().__init__()
        self.dense = _linear(h, h, std)
        self.LayerNorm = nn.LayerNorm(h, eps=eps)

    def forward(self, y: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dense(y) + residual)


class BertAttention(nn.Module):
    def __init__(self, h: int, heads: int, eps: float, std: float):
        super().__init__()
        self.self = BertSelfAttention(h, heads, std)
        self.output = BertSelfOutput(h, eps, std)

    def forward(self, x: Tensor) -> Tensor:
        return self.output(self.self(x), x)


class BertIntermediate(nn.Module):
    def __init__(self, h: int, inner: int, std: float):
        super().__init__()
        self.dense = _linear(h, inner, std)

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.gelu(self.dense(x))


class BertOutput(nn.Module):
    def __init__(self, h: int, inner: int, eps: float, std: float):
        super().__init__()
        self.dense = _linear(inner, h, std)
        self.LayerNorm = nn.LayerNorm(h, eps=eps)

    def forward(self, y: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dense(y) + residual)


class BertLayer(nn.Module):
    def __init__(self, h: int, heads: int, inner: int, eps: float, std: float):
        super().__init__()
        self.attention = BertAttention(h, heads, eps, std)
        self.intermediate = BertIntermediate(h, inner, std)
        self.output = BertOutput(h, inner, eps, std)

    def forward(self, x: Tensor) -> Tensor:
        x = self.attention(x)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layer = nn.ModuleList([
            BertLayer(cfg["hidden_size"], cfg["num_attention_heads"], cfg["intermediate_size"],
                      cfg["layer_norm_eps"], cfg["initializer_range"])
            for _ in range(cfg["num_hidden_layers"])])

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layer:
            x = layer(x)
        return x


class BertPooler(nn.Module):
    def __init__(self, h: int, std: float):
        super().__init__()
        self.dense = _linear(h, h, std)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.dense(x[:, 0]))


class BertModel(nn.Module):
    """BertModel with pooler. forward -> last_hidden_state; encode -> mean pooled."""

    def __init__(self, cfg):
        super().__init__()
        self.embeddings = BertEmbeddings(cfg)
        self.encoder = BertEncoder(cfg)
        self.pooler = BertPooler(cfg["hidden_size"], cfg["initializer_range"])

    def forward(self, input_ids: Tensor) -> Tensor:
        """input_ids int64 [B, S] -> last_hidden_state float32 [B, S, hidden_size]."""
        return self.encoder(self.embeddings(input_ids))

    @torch.jit.export
    def encode(self, input_ids: Tensor) -> Tensor:
        """input_ids int64 [B, S] -> mean of last_hidden_state over S, float32 [B, hidden_size]."""
        return self.forward(input_ids).mean(dim=1)

    @torch.jit.export
    def pooled(self, input_ids: Tensor) -> Tensor:
        """input_ids int64 [B, S] -> pooler_output float32 [B, hidden_size]."""
        return self.pooler(self.forward(input_ids))


# ---------------------------------------------------------------------------
# the exact tensor names of the Hugging Face checkpoints


def gpt2_tensor_names(cfg) -> List[str]:
    names = ["wte.weight", "wpe.weight"]
    for i in range(cfg["n_layer"]):
        p = f"h.{i}."
        names += [p + "ln_1.weight", p + "ln_1.bias",
                  p + "attn.c_attn.weight", p + "attn.c_attn.bias",
                  p + "attn.c_proj.weight", p + "attn.c_proj.bias",
                  p + "ln_2.weight", p + "ln_2.bias",
                  p + "mlp.c_fc.weight", p + "mlp.c_fc.bias",
                  p + "mlp.c_proj.weight", p + "mlp.c_proj.bias"]
    return names + ["ln_f.weight", "ln_f.bias"]


def bert_tensor_names(cfg) -> List[str]:
    names = ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
             "embeddings.token_type_embeddings.weight",
             "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"]
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for sub in ("attention.self.query", "attention.self.key", "attention.self.value",
                    "attention.output.dense", "attention.output.LayerNorm",
                    "intermediate.dense", "output.dense", "output.LayerNorm"):
            names += [p + sub + ".weight", p + sub + ".bias"]
    return names + ["pooler.dense.weight", "pooler.dense.bias"]
