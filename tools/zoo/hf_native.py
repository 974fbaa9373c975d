"""Plain torch reference modules for Hugging Face model folders (no transformers).

These modules compute what transformers computes for a folder written exactly as
Hugging Face writes it (config.json + safetensors), so that ModelGrid's native
C++ backend can be tested against their outputs (tools/zoo/hf_zoo.py writes the
folders and the reference files). They are written from the architectures'
published definitions (facts: tensor names, config fields, formulas), not from
transformers' code, and only serve inference: no dropout, no KV cache, float32
unless the caller casts.

Architectures (state_dict keys are the checkpoint tensor names):
  BERT family encoder   BertModel (optionally under "bert."), RoBERTa / XLM-R
                        (position ids offset by padding_idx), DistilBertModel,
                        sequence / token classification heads.
  sentence-transformers pooling (cls, mean, max, mean_sqrt_len, lasttoken) + Normalize.
  GPT-2 LM              names as the hub's gpt2 checkpoint (no "transformer.").
  LLaMA family decoder  LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM:
                        RMSNorm, rotary embeddings (rope_theta, rope_scaling
                        "linear" / "llama3"), grouped-query attention, SwiGLU,
                        tied or untied lm_head, optional q/k/v(/o) biases.

Conventions (facts):
  - Linear weights are [out, in] (y = x W^T + b), except GPT-2's Conv1D [in, out].
  - BERT/DistilBERT/RoBERTa: post-LN, exact (erf) GELU, LayerNorm eps from config
    (DistilBERT: 1e-12, fixed). Attention mask: key positions with mask 0 get
    the float32 minimum added to their scores (queries at padded positions are
    computed too, as transformers does).
  - RoBERTa/XLM-R position ids: cumsum(input_ids != pad) * (input_ids != pad) + pad,
    i.e. real tokens count from pad+1, padded tokens get position pad.
  - LLaMA: RMSNorm in float32, x * rsqrt(mean(x^2) + eps), then times the weight;
    rotary on q and k with rotate_half (first half / second half, not interleaved),
    cos/sin of cat(freqs, freqs); key/value heads repeated so that query head h
    uses kv head h // (n_heads / n_kv_heads); MLP down(silu(gate(x)) * up(x)).
"""

import math
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NEG = torch.finfo(torch.float32).min


# ---------------------------------------------------------------------------
# shared pieces


def _linear(n_in: int, n_out: int, bias: bool = True) -> nn.Linear:
    return nn.Linear(n_in, n_out, bias=bias)


def _split_heads(x: Tensor, heads: int, head_dim: int) -> Tensor:
    """[B, S, heads*head_dim] -> [B, heads, S, head_dim]."""
    return x.reshape(x.size(0), x.size(1), heads, head_dim).transpose(1, 2)


def _merge_heads(x: Tensor) -> Tensor:
    """[B, heads, S, head_dim] -> [B, S, heads*head_dim]."""
    b, h, s, d = x.shape
    return x.transpose(1, 2).reshape(b, s, h * d)


def _key_mask(attention_mask: Optional[Tensor]) -> Optional[Tensor]:
    """[B, S] (1 = attend) -> boolean [B, 1, 1, S], True where the key is masked out."""
    if attention_mask is None:
        return None
    return (attention_mask == 0)[:, None, None, :]


def _attend(q: Tensor, k: Tensor, v: Tensor, blocked: Optional[Tensor]) -> Tensor:
    """softmax(q k^T / sqrt(d) + mask) v; `blocked` True entries get the float32 minimum."""
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.size(-1))
    if blocked is not None:
        scores = scores.masked_fill(blocked, NEG)
    return torch.matmul(torch.softmax(scores, dim=-1), v)


def activation(name: str):
    if name == "gelu":
        return lambda x: F.gelu(x)                      # exact, erf
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return lambda x: 0.5 * x * (1.0 + torch.tanh(
            math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
    if name == "relu":
        return F.relu
    if name == "silu":
        return F.silu
    raise ValueError(f"unsupported activation {name!r}")


# ---------------------------------------------------------------------------
# BERT / RoBERTa / XLM-R


def roberta_position_ids(input_ids: Tensor, padding_idx: int) -> Tensor:
    """What HF's create_position_ids_from_input_ids computes (no past)."""
    real = (input_ids != padding_idx).long()
    return torch.cumsum(real, dim=1) * real + padding_idx


class BertEmbeddings(nn.Module):
    def __init__(self, cfg: Dict, roberta: bool):
        super().__init__()
        h = cfg["hidden_size"]
        self.roberta = roberta
        self.pad = cfg.get("pad_token_id", 0)
        self.word_embeddings = nn.Embedding(cfg["vocab_size"], h)
        self.position_embeddings = nn.Embedding(cfg["max_position_embeddings"], h)
        self.token_type_embeddings = nn.Embedding(cfg["type_vocab_size"], h)
        self.LayerNorm = nn.LayerNorm(h, eps=cfg["layer_norm_eps"])

    def forward(self, input_ids: Tensor, token_type_ids: Optional[Tensor] = None) -> Tensor:
        if self.roberta:
            positions = roberta_position_ids(input_ids, self.pad)
        else:
            positions = torch.arange(input_ids.size(1)).unsqueeze(0).expand_as(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = (self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
             + self.position_embeddings(positions))
        return self.LayerNorm(x)


class BertSelfAttention(nn.Module):
    def __init__(self, h: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, h // heads
        self.query = _linear(h, h)
        self.key = _linear(h, h)
        self.value = _linear(h, h)

    def forward(self, x: Tensor, blocked: Optional[Tensor]) -> Tensor:
        q = _split_heads(self.query(x), self.heads, self.head_dim)
        k = _split_heads(self.key(x), self.heads, self.head_dim)
        v = _split_heads(self.value(x), self.heads, self.head_dim)
        return _merge_heads(_attend(q, k, v, blocked))


class _DenseLayerNorm(nn.Module):
    """dense, then LayerNorm(dense(y) + residual): BertSelfOutput and BertOutput."""

    def __init__(self, n_in: int, h: int, eps: float):
        super().__init__()
        self.dense = _linear(n_in, h)
        self.LayerNorm = nn.LayerNorm(h, eps=eps)

    def forward(self, y: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dense(y) + residual)


class BertAttention(nn.Module):
    def __init__(self, h: int, heads: int, eps: float):
        super().__init__()
        self.self = BertSelfAttention(h, heads)
        self.output = _DenseLayerNorm(h, h, eps)

    def forward(self, x: Tensor, blocked: Optional[Tensor]) -> Tensor:
        return self.output(self.self(x, blocked), x)


class BertIntermediate(nn.Module):
    def __init__(self, h: int, inner: int, act: str):
        super().__init__()
        self.dense = _linear(h, inner)
        self.act = activation(act)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.dense(x))


class BertLayer(nn.Module):
    def __init__(self, cfg: Dict):
        super().__init__()
        h, eps = cfg["hidden_size"], cfg["layer_norm_eps"]
        self.attention = BertAttention(h, cfg["num_attention_heads"], eps)
        self.intermediate = BertIntermediate(h, cfg["intermediate_size"], cfg["hidden_act"])
        self.output = _DenseLayerNorm(cfg["intermediate_size"], h, eps)

    def forward(self, x: Tensor, blocked: Optional[Tensor]) -> Tensor:
        x = self.attention(x, blocked)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    def __init__(self, cfg: Dict):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(cfg) for _ in range(cfg["num_hidden_layers"])])

    def forward(self, x: Tensor, blocked: Optional[Tensor]) -> Tensor:
        for layer in self.layer:
            x = layer(x, blocked)
        return x


class BertPooler(nn.Module):
    def __init__(self, h: int):
        super().__init__()
        self.dense = _linear(h, h)

    def forward(self, hidden: Tensor) -> Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))


class BertModel(nn.Module):
    """BertModel / RobertaModel / XLMRobertaModel (roberta=True: position offset)."""

    def __init__(self, cfg: Dict, roberta: bool = False, add_pooling_layer: bool = True):
        super().__init__()
        self.embeddings = BertEmbeddings(cfg, roberta)
        self.encoder = BertEncoder(cfg)
        self.pooler = BertPooler(cfg["hidden_size"]) if add_pooling_layer else None

    def forward(self, input_ids: Tensor, attention_mask: Optional[Tensor] = None,
                token_type_ids: Optional[Tensor] = None) -> Tensor:
        """-> last_hidden_state [B, S, H]."""
        return self.encoder(self.embeddings(input_ids, token_type_ids), _key_mask(attention_mask))


class BertForSequenceClassification(nn.Module):
    """bert.* + classifier: logits = classifier(tanh(pooler.dense(h[:, 0])))."""

    def __init__(self, cfg: Dict):
        super().__init__()
        self.bert = BertModel(cfg)
        self.classifier = _linear(cfg["hidden_size"], len(cfg["id2label"]))

    def forward(self, input_ids: Tensor, attention_mask: Optional[Tensor] = None):
        hidden = self.bert(input_ids, attention_mask)
        pooled = self.bert.pooler(hidden)
        return {"logits": self.classifier(pooled), "last_hidden_state": hidden,
                "pooler_output": pooled}


class BertForTokenClassification(nn.Module):
    """bert.* (no pooler) + classifier applied to every position."""

    def __init__(self, cfg: Dict):
        super().__init__()
        self.bert = BertModel(cfg, add_pooling_layer=False)
        self.classifier = _linear(cfg["hidden_size"], len(cfg["id2label"]))

    def forward(self, input_ids: Tensor, attention_mask: Optional[Tensor] = None):
        hidden = self.bert(input_ids, attention_mask)
        return {"logits": self.classifier(hidden), "last_hidden_state": hidden}


class RobertaClassificationHead(nn.Module):
    """classifier.dense + tanh + classifier.out_proj on the first token (<s>)."""

    def __init__(self, h: int, labels: int):
        super().__init__()
        self.dense = _linear(h, h)
        self.out_proj = _linear(h, labels)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.out_proj(torch.tanh(self.dense(hidden[:, 0])))


class RobertaForSequenceClassification(nn.Module):
    """roberta.* (no pooler) + classifier.dense / classifier.out_proj (also XLM-R)."""

    def __init__(self, cfg: Dict):
        super().__init__()
        self.roberta = BertModel(cfg, roberta=True, add_pooling_layer=False)
        self.classifier = RobertaClassificationHead(cfg["hidden_size"], len(cfg["id2label"]))

    def forward(self, input_ids: Tensor, attention_mask: Optional[Tensor] = None):
        hidden = self.roberta(input_ids, attention_mask)
        return {"logits": self.classifier(hidden), "last_hidden_state": hidden}


class RobertaForTokenClassification(nn.Module):
    def __init__(self, cfg: Dict):
        super().__init__()
        self.roberta = BertModel(cfg, roberta=True, add_pooling_layer=False)
        self.classifier = _linear(cfg["hidden_size"], len(cfg["id2label"]))

    def forward(self, input_ids: Tensor, attention_mask: Optional[Tensor] = None):
        hidden = self.roberta(input_ids, attention_mask)
        return {"logits": self.classifier(hidden), "last_hidden_state": hidden}


class Prefixed(nn.Module):
    """A base model stored under a prefix (e.g. "roberta." as the hub's XLM-R files)."""

    def __init__(self, prefix: str, model: nn.Module):
        super().__init__()
        self.prefix = prefix
        self.add_module(prefix, model)

    def forward(self, *args, **kwargs):
        return getattr(self, self.prefix)(*args, **kwargs)


# ---------------------------------------------------------------------------
# DistilBERT


class DistilBertEmbeddings(nn.Module):
    def __init__(self, cfg: Dict):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg["vocab_size"], cfg["dim"])
        self.position_embeddings = nn.Embedding(cfg["max_position_embeddings"], cfg["dim"])
        self.LayerNorm = nn.LayerNorm(cfg["dim"], eps=1e-12)

    def forward(self, input_ids: Tensor) -> Tensor:
        positions = torch.arange(input_ids.size(1)).unsqueeze(0).expand_as(input_ids)
        return self.LayerNorm(self.word_embeddings(input_ids) + self.position_embeddings(positions))


class DistilBertAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q_lin = _linear(dim, dim)
        self.k_lin = _linear(dim, dim)
        self.v_lin = _linear(dim, dim)
        self.out_lin = _linear(dim, dim)

    def forward(self, x: Tensor, blocked: Optional[Tensor]) -> Tensor:
        q = _split_heads(self.q_lin(x), self.heads, self.head_dim)
        k = _split_heads(self.k_lin(x), self.heads, self.head_dim)
        v = _split_heads(self.v_lin(x), self.heads, self.head_dim)
        return self.out_lin(_merge_heads(_attend(q, k, v, blocked)))


class DistilBertFFN(nn.Module):
    def __init__(self, dim: int, hidden_dim: int, act: str):
        super().__init__()
        self.lin1 = _linear(dim, hidden_dim)
        self.lin2 = _linear(hidden_dim, dim)
        self.act = activation(act)

    def forward(self, x: Tensor) -> Tensor:
        return self.lin2(self.act(self.lin1(x)))


class DistilBertBlock(nn.Module):
    def __init__(self, cfg: Dict):
        super().__init__()
        dim = cfg["dim"]
        self.attention = DistilBertAttention(dim, cfg["n_heads"])
        self.sa_layer_norm = nn.LayerNorm(dim, eps=1e-12)
        self.ffn = DistilBertFFN(dim, cfg["hidden_dim"], cfg["activation"])
        self.output_layer_norm = nn.LayerNorm(dim, eps=1e-12)

    def forward(self, x: Tensor, blocked: Optional[Tensor]) -> Tensor:
        x = self.sa_layer_norm(self.attention(x, blocked) + x)
        return self.output_layer_norm(self.ffn(x) + x)


class DistilBertTransformer(nn.Module):
    def __init__(self, cfg: Dict):
        super().__init__()
        self.layer = nn.ModuleList([DistilBertBlock(cfg) for _ in range(cfg["n_layers"])])

    def forward(self, x: Tensor, blocked: Optional[Tensor]) -> Tensor:
        for layer in self.layer:
            x = layer(x, blocked)
        return x


class DistilBertModel(nn.Module):
    def __init__(self, cfg: Dict):
        super().__init__()
        self.embeddings = DistilBertEmbeddings(cfg)
        self.transformer = DistilBertTransformer(cfg)

    def forward(self, input_ids: Tensor, attention_mask: Optional[Tensor] = None) -> Tensor:
        return self.transformer(self.embeddings(input_ids), _key_mask(attention_mask))


class DistilBertForSequenceClassification(nn.Module):
    """distilbert.* + pre_classifier (ReLU) + classifier on the first token."""

    def __init__(self, cfg: Dict):
        super().__init__()
        self.distilbert = DistilBertModel(cfg)
        self.pre_classifier = _linear(cfg["dim"], cfg["dim"])
        self.classifier = _linear(cfg["dim"], len(cfg["id2label"]))

    def forward(self, input_ids: Tensor, attention_mask: Optional[Tensor] = None):
        hidden = self.distilbert(input_ids, attention_mask)
        logits = self.classifier(F.relu(self.pre_classifier(hidden[:, 0])))
        return {"logits": logits, "last_hidden_state": hidden}


class DistilBertForTokenClassification(nn.Module):
    def __init__(self, cfg: Dict):
        super().__init__()
        self.distilbert = DistilBertModel(cfg)
        self.classifier = _linear(cfg["dim"], len(cfg["id2label"]))

    def forward(self, input_ids: Tensor, attention_mask: Optional[Tensor] = None):
        hidden = self.distilbert(input_ids, attention_mask)
        return {"logits": self.classifier(hidden), "last_hidden_state": hidden}


# ---------------------------------------------------------------------------
# sentence-transformers pooling


def st_pool(hidden: Tensor, attention_mask: Tensor, pooling: Dict) -> Tensor:
    """sentence-transformers Pooling from a 1_Pooling/config.json dict: the enabled
    modes' vectors concatenated in the order cls, max, mean, mean_sqrt_len, lasttoken."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)              # [B, S, 1]
    parts = []
    if pooling.get("pooling_mode_cls_token"):
        parts.append(hidden[:, 0])
    if pooling.get("pooling_mode_max_tokens"):
        parts.append(hidden.masked_fill(mask == 0, -1e9).max(dim=1).values)
    if pooling.get("pooling_mode_mean_tokens") or pooling.get("pooling_mode_mean_sqrt_len_tokens"):
        summed = (hidden * mask).sum(dim=1)
        count = mask.sum(dim=1).clamp(min=1e-9)
        if pooling.get("pooling_mode_mean_tokens"):
            parts.append(summed / count)
        if pooling.get("pooling_mode_mean_sqrt_len_tokens"):
            parts.append(summed / torch.sqrt(count))
    if pooling.get("pooling_mode_weightedmean_tokens"):
        raise ValueError("weightedmean pooling is not supported")
    if pooling.get("pooling_mode_lasttoken"):
        # the last position whose mask is 1 (works for left and right padding)
        index = torch.arange(hidden.size(1)).unsqueeze(0) * attention_mask.long()
        last = index.max(dim=1).values
        parts.append(hidden[torch.arange(hidden.size(0)), last])
    if not parts:
        raise ValueError("no pooling mode enabled")
    return torch.cat(parts, dim=1)


def st_normalize(x: Tensor) -> Tensor:
    """sentence-transformers Normalize: L2 over the last dimension (eps 1e-12)."""
    return F.normalize(x, p=2.0, dim=1)


# ---------------------------------------------------------------------------
# GPT-2


class Conv1D(nn.Module):
    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))   # [in, out]
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: Tensor) -> Tensor:
        return torch.matmul(x, self.weight) + self.bias


class GPT2Attention(nn.Module):
    def __init__(self, embd: int, heads: int):
        super().__init__()
        self.heads, self.head_dim, self.embd = heads, embd // heads, embd
        self.c_attn = Conv1D(embd, 3 * embd)
        self.c_proj = Conv1D(embd, embd)

    def forward(self, x: Tensor, blocked: Tensor) -> Tensor:
        q, k, v = self.c_attn(x).split(self.embd, dim=2)
        q, k, v = (_split_heads(t, self.heads, self.head_dim) for t in (q, k, v))
        return self.c_proj(_merge_heads(_attend(q, k, v, blocked)))


class GPT2MLP(nn.Module):
    def __init__(self, embd: int, inner: int, act: str):
        super().__init__()
        self.c_fc = Conv1D(embd, inner)
        self.c_proj = Conv1D(inner, embd)
        self.act = activation(act)

    def forward(self, x: Tensor) -> Tensor:
        return self.c_proj(self.act(self.c_fc(x)))


class GPT2Block(nn.Module):
    def __init__(self, cfg: Dict):
        super().__init__()
        e, eps = cfg["n_embd"], cfg["layer_norm_epsilon"]
        self.ln_1 = nn.LayerNorm(e, eps=eps)
        self.attn = GPT2Attention(e, cfg["n_head"])
        self.ln_2 = nn.LayerNorm(e, eps=eps)
        self.mlp = GPT2MLP(e, cfg.get("n_inner") or 4 * e, cfg["activation_function"])

    def forward(self, x: Tensor, blocked: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x), blocked)
        return x + self.mlp(self.ln_2(x))


def causal_blocked(s: int, attention_mask: Optional[Tensor]) -> Tensor:
    """True where query i may not see key j: j > i, or key j is padding."""
    blocked = torch.ones(s, s, dtype=torch.bool).triu(1)[None, None]
    if attention_mask is not None:
        blocked = blocked | _key_mask(attention_mask)
    return blocked


class GPT2LMHeadModel(nn.Module):
    """Names as the hub's gpt2 (wte, wpe, h.N, ln_f); lm_head tied to wte (not stored)."""

    def __init__(self, cfg: Dict):
        super().__init__()
        e = cfg["n_embd"]
        self.wte = nn.Embedding(cfg["vocab_size"], e)
        self.wpe = nn.Embedding(cfg["n_positions"], e)
        self.h = nn.ModuleList([GPT2Block(cfg) for _ in range(cfg["n_layer"])])
        self.ln_f = nn.LayerNorm(e, eps=cfg["layer_norm_epsilon"])

    def hidden(self, input_ids: Tensor, attention_mask: Optional[Tensor] = None) -> Tensor:
        positions = torch.arange(input_ids.size(1)).unsqueeze(0)
        x = self.wte(input_ids) + self.wpe(positions)
        blocked = causal_blocked(input_ids.size(1), attention_mask)
        for block in self.h:
            x = block(x, blocked)
        return self.ln_f(x)

    def head(self, hidden: Tensor) -> Tensor:
        return torch.matmul(hidden, self.wte.weight.t())

    def forward(self, input_ids: Tensor, attention_mask: Optional[Tensor] = None) -> Tensor:
        return self.head(self.hidden(input_ids, attention_mask))


# ---------------------------------------------------------------------------
# LLaMA family


def rope_inv_freq(cfg: Dict) -> Tensor:
    """float32 [head_dim/2]: the rotary inverse frequencies, as transformers computes
    them for rope_scaling None / "default", "linear" and "llama3"."""
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    base = float(cfg.get("rope_theta", 10000.0))
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim
    inv_freq = 1.0 / (base ** exponents)                            # float32
    scaling = cfg.get("rope_scaling")
    if not scaling:
        return inv_freq
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind == "default":
        return inv_freq
    if kind == "linear":
        return inv_freq / float(scaling["factor"])
    if kind == "llama3":
        factor = float(scaling["factor"])
        low = float(scaling["low_freq_factor"])
        high = float(scaling["high_freq_factor"])
        old_len = float(scaling["original_max_position_embeddings"])
        low_freq_wavelen = old_len / low
        high_freq_wavelen = old_len / high
        wavelen = 2 * math.pi / inv_freq
        # long wavelengths (low frequencies): divided by factor; short ones kept
        scaled = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        # in between: interpolate between inv_freq/factor and inv_freq
        smooth = (old_len / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= high_freq_wavelen) & (wavelen <= low_freq_wavelen)
        return torch.where(medium, smoothed, scaled)
    raise ValueError(f"unsupported rope_scaling {scaling!r}")


def rotate_half(x: Tensor) -> Tensor:
    half = x.size(-1) // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_cos_sin(inv_freq: Tensor, positions: Tensor):
    """positions int64 [S] -> cos, sin float32 [S, head_dim]."""
    freqs = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


class RMSNorm(nn.Module):
    def __init__(self, h: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(h))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * normed.to(x.dtype)


def decoder_biases(cfg: Dict):
    """(q/k/v bias, o_proj bias, MLP bias) for a LLaMA-family model_type."""
    kind = cfg["model_type"]
    if kind == "qwen2":
        return True, False, False
    if kind == "llama":
        return bool(cfg.get("attention_bias")), bool(cfg.get("attention_bias")), bool(
            cfg.get("mlp_bias"))
    if kind == "mistral":
        return False, False, False
    raise ValueError(f"not a LLaMA-family model_type: {kind}")


def decoder_head_dim(cfg: Dict) -> int:
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


class LlamaAttention(nn.Module):
    def __init__(self, cfg: Dict):
        super().__init__()
        h = cfg["hidden_size"]
        self.heads = cfg["num_attention_heads"]
        self.kv_heads = cfg.get("num_key_value_heads") or self.heads
        self.head_dim = decoder_head_dim(cfg)
        qkv_bias, o_bias, _ = decoder_biases(cfg)
        self.q_proj = _linear(h, self.heads * self.head_dim, qkv_bias)
        self.k_proj = _linear(h, self.kv_heads * self.head_dim, qkv_bias)
        self.v_proj = _linear(h, self.kv_heads * self.head_dim, qkv_bias)
        self.o_proj = _linear(self.heads * self.head_dim, h, o_bias)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, blocked: Tensor) -> Tensor:
        q = _split_heads(self.q_proj(x), self.heads, self.head_dim)
        k = _split_heads(self.k_proj(x), self.kv_heads, self.head_dim)
        v = _split_heads(self.v_proj(x), self.kv_heads, self.head_dim)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        group = self.heads // self.kv_heads          # query head i uses kv head i // group
        k = k.repeat_interleave(group, dim=1)
        v = v.repeat_interleave(group, dim=1)
        return self.o_proj(_merge_heads(_attend(q, k, v, blocked)))


class LlamaMLP(nn.Module):
    def __init__(self, cfg: Dict):
        super().__init__()
        h, inner = cfg["hidden_size"], cfg["intermediate_size"]
        bias = decoder_biases(cfg)[2]
        self.gate_proj = _linear(h, inner, bias)
        self.up_proj = _linear(h, inner, bias)
        self.down_proj = _linear(inner, h, bias)
        self.act = activation(cfg.get("hidden_act", "silu"))

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, cfg: Dict):
        super().__init__()
        h, eps = cfg["hidden_size"], cfg["rms_norm_eps"]
        self.self_attn = LlamaAttention(cfg)
        self.mlp = LlamaMLP(cfg)
        self.input_layernorm = RMSNorm(h, eps)
        self.post_attention_layernorm = RMSNorm(h, eps)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, blocked: Tensor) -> Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, blocked)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, cfg: Dict):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList([LlamaDecoderLayer(cfg)
                                     for _ in range(cfg["num_hidden_layers"])])
        self.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.register_buffer("inv_freq", rope_inv_freq(cfg), persistent=False)

    def forward(self, input_ids: Tensor, attention_mask: Optional[Tensor] = None) -> Tensor:
        s = input_ids.size(1)
        cos, sin = rope_cos_sin(self.inv_freq, torch.arange(s))
        blocked = causal_blocked(s, attention_mask)
        x = self.embed_tokens(input_ids)
        for layer in self.layers:
            x = layer(x, cos, sin, blocked)
        return self.norm(x)


class LlamaForCausalLM(nn.Module):
    """LlamaForCausalLM / Qwen2ForCausalLM / MistralForCausalLM (by model_type).

    tie_word_embeddings: no lm_head parameter (the logits use embed_tokens).
    """

    def __init__(self, cfg: Dict):
        super().__init__()
        self.model = LlamaModel(cfg)
        self.tied = bool(cfg.get("tie_word_embeddings"))
        if not self.tied:
            self.lm_head = _linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)

    def hidden(self, input_ids: Tensor, attention_mask: Optional[Tensor] = None) -> Tensor:
        return self.model(input_ids, attention_mask)

    def head(self, hidden: Tensor) -> Tensor:
        weight = self.model.embed_tokens.weight if self.tied else self.lm_head.weight
        return torch.matmul(hidden, weight.t())

    def forward(self, input_ids: Tensor, attention_mask: Optional[Tensor] = None) -> Tensor:
        return self.head(self.hidden(input_ids, attention_mask))


def greedy(model: nn.Module, input_ids: Tensor, steps: int):
    """Greedy decoding without a cache: each step reruns the whole sequence and takes
    the argmax of the last position's logits (no stop at eos). Returns (new ids
    int64 [B, steps], the smallest top-1 minus top-2 logit gap seen)."""
    ids = input_ids
    new = []
    margin = float("inf")
    for _ in range(steps):
        last = model.head(model.hidden(ids)[:, -1])                    # [B, V]
        top = torch.topk(last, 2, dim=-1)
        margin = min(margin, float((top.values[:, 0] - top.values[:, 1]).min()))
        nxt = top.indices[:, :1]
        new.append(nxt)
        ids = torch.cat([ids, nxt], dim=1)
    return torch.cat(new, dim=1), margin


# ---------------------------------------------------------------------------
# checkpoint tensor names and parameter counts (from config.json alone)


def _bert_names(cfg: Dict, prefix: str, pooler: bool) -> List[str]:
    p = prefix
    names = [p + "embeddings.word_embeddings.weight", p + "embeddings.position_embeddings.weight",
             p + "embeddings.token_type_embeddings.weight",
             p + "embeddings.LayerNorm.weight", p + "embeddings.LayerNorm.bias"]
    for i in range(cfg["num_hidden_layers"]):
        lp = f"{p}encoder.layer.{i}."
        for sub in ("attention.self.query", "attention.self.key", "attention.self.value",
                    "attention.output.dense", "attention.output.LayerNorm",
                    "intermediate.dense", "output.dense", "output.LayerNorm"):
            names += [lp + sub + ".weight", lp + sub + ".bias"]
    if pooler:
        names += [p + "pooler.dense.weight", p + "pooler.dense.bias"]
    return names


def _distilbert_names(cfg: Dict, prefix: str) -> List[str]:
    p = prefix
    names = [p + "embeddings.word_embeddings.weight", p + "embeddings.position_embeddings.weight",
             p + "embeddings.LayerNorm.weight", p + "embeddings.LayerNorm.bias"]
    for i in range(cfg["n_layers"]):
        lp = f"{p}transformer.layer.{i}."
        for sub in ("attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin",
                    "sa_layer_norm", "ffn.lin1", "ffn.lin2", "output_layer_norm"):
            names += [lp + sub + ".weight", lp + sub + ".bias"]
    return names


def _gpt2_names(cfg: Dict) -> List[str]:
    names = ["wte.weight", "wpe.weight"]
    for i in range(cfg["n_layer"]):
        p = f"h.{i}."
        for sub in ("ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.c_proj"):
            names += [p + sub + ".weight", p + sub + ".bias"]
    return names + ["ln_f.weight", "ln_f.bias"]


def _decoder_names(cfg: Dict) -> List[str]:
    qkv_bias, o_bias, mlp_bias = decoder_biases(cfg)
    names = ["model.embed_tokens.weight"]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        for proj, bias in (("q_proj", qkv_bias), ("k_proj", qkv_bias), ("v_proj", qkv_bias),
                           ("o_proj", o_bias)):
            names.append(p + f"self_attn.{proj}.weight")
            if bias:
                names.append(p + f"self_attn.{proj}.bias")
        for proj in ("gate_proj", "up_proj", "down_proj"):
            names.append(p + f"mlp.{proj}.weight")
            if mlp_bias:
                names.append(p + f"mlp.{proj}.bias")
        names += [p + "input_layernorm.weight", p + "post_attention_layernorm.weight"]
    names.append("model.norm.weight")
    if not cfg.get("tie_word_embeddings"):
        names.append("lm_head.weight")
    return names


def tensor_names(cfg: Dict, layout: str) -> List[str]:
    """The checkpoint's tensor names, in state_dict order.

    layout: "bare" (base model saved by itself: no prefix) or "prefixed" (base
    model under its base_model_prefix: bert. / roberta. / distilbert.). Models
    with a head are always prefixed.
    """
    arch = cfg["architectures"][0]
    kind = cfg["model_type"]
    if kind in ("llama", "qwen2", "mistral"):
        return _decoder_names(cfg)
    if kind == "gpt2":
        return _gpt2_names(cfg)
    if kind == "distilbert":
        if arch == "DistilBertModel":
            return _distilbert_names(cfg, "distilbert." if layout == "prefixed" else "")
        base = _distilbert_names(cfg, "distilbert.")
        if arch == "DistilBertForSequenceClassification":
            return base + ["pre_classifier.weight", "pre_classifier.bias",
                           "classifier.weight", "classifier.bias"]
        if arch == "DistilBertForTokenClassification":
            return base + ["classifier.weight", "classifier.bias"]
    if kind in ("bert", "roberta", "xlm-roberta"):
        prefix = "bert." if kind == "bert" else "roberta."
        if arch in ("BertModel", "RobertaModel", "XLMRobertaModel"):
            return _bert_names(cfg, prefix if layout == "prefixed" else "", pooler=True)
        if arch == "BertForSequenceClassification":
            return _bert_names(cfg, prefix, True) + ["classifier.weight", "classifier.bias"]
        if arch.endswith("ForSequenceClassification"):           # RoBERTa / XLM-R head
            return _bert_names(cfg, prefix, False) + [
                "classifier.dense.weight", "classifier.dense.bias",
                "classifier.out_proj.weight", "classifier.out_proj.bias"]
        if arch.endswith("ForTokenClassification"):
            return _bert_names(cfg, prefix, False) + ["classifier.weight", "classifier.bias"]
    raise ValueError(f"no tensor names for {arch} ({kind})")


def parameter_count(cfg: Dict) -> int:
    """The number of stored values, from config.json (formats.md formulas, extended
    with biases and classification heads)."""
    arch = cfg["architectures"][0]
    kind = cfg["model_type"]
    if kind in ("llama", "qwen2", "mistral"):
        h, v, layers = cfg["hidden_size"], cfg["vocab_size"], cfg["num_hidden_layers"]
        nh = cfg["num_attention_heads"]
        nkv = cfg.get("num_key_value_heads") or nh
        hd, inner = decoder_head_dim(cfg), cfg["intermediate_size"]
        layer = h * nh * hd + 2 * h * nkv * hd + nh * hd * h + 3 * h * inner + 2 * h
        qkv_bias, o_bias, mlp_bias = decoder_biases(cfg)
        layer += (nh * hd + 2 * nkv * hd if qkv_bias else 0) + (h if o_bias else 0)
        layer += (2 * inner + h if mlp_bias else 0)
        return v * h + layers * layer + h + (0 if cfg.get("tie_word_embeddings") else v * h)
    if kind == "gpt2":
        h = cfg["n_embd"]
        inner = cfg.get("n_inner") or 4 * h
        layer = 4 * h * h + 2 * h * inner + 9 * h + inner
        return cfg["vocab_size"] * h + cfg["n_positions"] * h + cfg["n_layer"] * layer + 2 * h
    labels = len(cfg.get("id2label") or {})
    if kind == "distilbert":
        h, inner = cfg["dim"], cfg["hidden_dim"]
        layer = 4 * h * h + 2 * h * inner + 9 * h + inner
        base = (cfg["vocab_size"] + cfg["max_position_embeddings"]) * h + 2 * h
        base += cfg["n_layers"] * layer
        if arch == "DistilBertForSequenceClassification":
            return base + h * h + h + h * labels + labels
        if arch == "DistilBertForTokenClassification":
            return base + h * labels + labels
        return base
    if kind in ("bert", "roberta", "xlm-roberta"):
        h, inner = cfg["hidden_size"], cfg["intermediate_size"]
        layer = 4 * h * h + 2 * h * inner + 9 * h + inner
        emb = (cfg["vocab_size"] + cfg["max_position_embeddings"] + cfg["type_vocab_size"]) * h
        base = emb + 2 * h + cfg["num_hidden_layers"] * layer
        pooler = h * h + h
        if arch in ("BertModel", "RobertaModel", "XLMRobertaModel"):
            return base + pooler
        if arch == "BertForSequenceClassification":
            return base + pooler + h * labels + labels
        if arch.endswith("ForSequenceClassification"):
            return base + h * h + h + h * labels + labels
        if arch.endswith("ForTokenClassification"):
            return base + h * labels + labels
    raise ValueError(f"no parameter count for {arch} ({kind})")


def build(cfg: Dict, layout: str = "bare") -> nn.Module:
    """The reference module for a config.json (random, uninitialised values)."""
    arch = cfg["architectures"][0]
    kind = cfg["model_type"]
    if kind in ("llama", "qwen2", "mistral"):
        return LlamaForCausalLM(cfg)
    if kind == "gpt2":
        return GPT2LMHeadModel(cfg)
    if kind == "distilbert":
        if arch == "DistilBertModel":
            base = DistilBertModel(cfg)
            return Prefixed("distilbert", base) if layout == "prefixed" else base
        return {"DistilBertForSequenceClassification": DistilBertForSequenceClassification,
                "DistilBertForTokenClassification": DistilBertForTokenClassification}[arch](cfg)
    if kind in ("bert", "roberta", "xlm-roberta"):
        roberta = kind != "bert"
        if arch in ("BertModel", "RobertaModel", "XLMRobertaModel"):
            base = BertModel(cfg, roberta=roberta)
            if layout == "prefixed":
                return Prefixed("roberta" if roberta else "bert", base)
            return base
        if kind == "bert":
            return {"BertForSequenceClassification": BertForSequenceClassification,
                    "BertForTokenClassification": BertForTokenClassification}[arch](cfg)
        if arch.endswith("ForSequenceClassification"):
            return RobertaForSequenceClassification(cfg)
        if arch.endswith("ForTokenClassification"):
            return RobertaForTokenClassification(cfg)
    raise ValueError(f"no reference module for {arch} ({kind})")
