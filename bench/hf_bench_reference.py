#!/usr/bin/python3
"""Plain PyTorch in Python, the third column of bench/hf_bench.cc.

Runs a zoo folder's Hugging Face safetensors in tools/zoo/hf_native.py's plain
torch modules (no transformers, no TorchScript) and times

  generate  greedy decoding with a KV cache written here in plain torch, in
            the style of transformers' past_key_values for GPT-2: the prompt
            is run once (prefill) and every layer's K and V [B, heads, T,
            head_dim] are kept; each later step runs only the new token at
            its position and concatenates its K/V to the cache (torch.cat per
            layer and step). hf_native.py itself has no cached decode (its
            `greedy` reruns the whole sequence). Argmax of the last position's
            logits (first index on ties), no stop at eos: exactly
            new_tokens tokens per row;
  embed     BertModel forward + mean pooling over the tokens (all real:
            attention_mask all ones), not normalized: what the native
            backend's `embed` and the TorchScript export's `encode` compute.

Everything under torch.inference_mode() in float32 with
torch.set_num_threads(threads), and OpenBLAS's own pool (when torch's BLAS is
OpenBLAS) set to the same count with openblas_set_num_threads.

Usage (hf_bench writes SPEC and runs this as a child process):
  /usr/bin/python3 bench/hf_bench_reference.py SPEC.json

SPEC (JSON):
  {"threads": 2, "runs": 5, "warmup": 1, "repeat": 50,
   "models": [{"name": "gpt2", "dir": "/.../gpt2", "task": "generate",
               "new_tokens": 112, "warmup_new_tokens": 112, "inputs": {"1": [[ids...]], "8": [[...], ...]}},
              {"name": "bert-base", "dir": "...", "task": "embed",
               "inputs": {"1": [[...]], "8": [...]}}]}

Prints one JSON object on stdout:
  {"torch": "1.13.1", "threads": 2, "python": "3.11.2", "blas": "OpenBLAS threads 2 -> 2 ...",
   "results": [
     {"model": "gpt2", "task": "generate", "batch": 1, "seconds": [...], "cpu_seconds": [...],
      "median_s": 0.12, "per_s": 930.0, "unit": "tokens/s",
      "generated": [[ids...]]},               # generate: this path's new tokens per row
     {"model": "bert-base", "task": "embed", "batch": 8, ..., "unit": "embeddings/s",
      "embedding": [[floats...]]}]}           # embed: the rows' vectors
per_s = batch * new_tokens / median_s (tokens) or batch / median_s (embeddings);
the seconds are wall time (time.perf_counter) of the whole call, prefill included;
an embed run is `repeat` calls back to back and its figure their mean.
Exit status 1 with a message on stderr on any error.
"""

import json
import math
import os
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools", "zoo"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import hf_native  # noqa: E402
from safetensors_io import read_index, read_safetensors  # noqa: E402


def load_folder(folder):
    """(config.json dict, hf_native module in eval mode holding the folder's weights)."""
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        _, shards = read_index(index)
    else:
        shards = [os.path.join(folder, "model.safetensors")]
    state = {}
    for shard in shards:
        tensors, _ = read_safetensors(shard, decode_bf16=True)
        for name, array in tensors.items():
            state[name] = torch.from_numpy(np.array(array, dtype=np.float32))
    module = hf_native.build(cfg, "bare").eval()
    module.load_state_dict(state, strict=True)
    return cfg, module


# ---------------------------------------------------------------------------
# GPT-2 with a KV cache (past_key_values style: one (K, V) pair per layer)


def gpt2_step(model, ids, past, start):
    """Runs `ids` [B, s] at positions start..start+s-1 over the cache `past`
    (a list of (K, V) per layer, or None); returns (logits of the last position
    [B, V], the new cache)."""
    s = ids.size(1)
    x = model.wte(ids) + model.wpe(torch.arange(start, start + s)).unsqueeze(0)
    new_past = []
    for i, block in enumerate(model.h):
        attn = block.attn
        q, k, v = attn.c_attn(block.ln_1(x)).split(attn.embd, dim=2)
        q = hf_native._split_heads(q, attn.heads, attn.head_dim)
        k = hf_native._split_heads(k, attn.heads, attn.head_dim)
        v = hf_native._split_heads(v, attn.heads, attn.head_dim)
        if past is not None:
            k = torch.cat([past[i][0], k], dim=2)
            v = torch.cat([past[i][1], v], dim=2)
        new_past.append((k, v))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(attn.head_dim)
        if s > 1:  # the prompt: query j sees keys up to start + j
            t = k.size(2)
            blocked = torch.ones(s, t, dtype=torch.bool).triu(t - s + 1)
            scores = scores.masked_fill(blocked, hf_native.NEG)
        y = hf_native._merge_heads(torch.matmul(torch.softmax(scores, dim=-1), v))
        x = x + attn.c_proj(y)
        x = x + block.mlp(block.ln_2(x))
    last = model.ln_f(x[:, -1])
    return model.head(last), new_past


def gpt2_generate(model, prompt, new_tokens):
    """Greedy, cached: prompt int64 [B, S] -> new ids int64 [B, new_tokens]."""
    logits, past = gpt2_step(model, prompt, None, 0)
    pos = prompt.size(1)
    out = []
    for step in range(new_tokens):
        nxt = torch.argmax(logits, dim=-1, keepdim=True)   # [B, 1], first index on ties
        out.append(nxt)
        if step + 1 == new_tokens:
            break
        logits, past = gpt2_step(model, nxt, past, pos)
        pos += 1
    return torch.cat(out, dim=1)


def bert_embed(model, ids):
    """Mean pooling of last_hidden_state over the (all real) tokens: [B, H]."""
    mask = torch.ones_like(ids)
    hidden = model(ids, mask)
    return hf_native.st_pool(hidden, mask, {"pooling_mode_mean_tokens": True})


def time_runs(fn, runs, warmup, repeat=1):
    """`warmup` untimed calls, then `runs` timed runs of `repeat` calls each;
    returns (wall seconds per call of each run, process CPU seconds per call
    of each run, the last output)."""
    out = None
    for _ in range(warmup):
        out = fn()
    seconds, cpu = [], []
    for _ in range(runs):
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(repeat):
            out = fn()
        t1, c1 = time.perf_counter(), time.process_time()
        seconds.append((t1 - t0) / repeat)
        cpu.append((c1 - c0) / repeat)
    return seconds, cpu, out


def set_blas_threads(threads):
    """OpenBLAS keeps its own thread pool (one thread per core by default) that
    torch.set_num_threads does not touch: sets it to `threads` when torch's
    BLAS (libblas.so.3, loaded with torch) is OpenBLAS. Returns what it did."""
    import ctypes
    try:
        lib = ctypes.CDLL("libblas.so.3", mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    except OSError:
        return "libblas.so.3 not loaded: BLAS threads left as they are"
    if not hasattr(lib, "openblas_set_num_threads"):
        return "BLAS is not OpenBLAS: left as it is"
    before = lib.openblas_get_num_threads()
    lib.openblas_set_num_threads(threads)
    return (f"OpenBLAS threads {before} -> {lib.openblas_get_num_threads()} "
            "(openblas_set_num_threads)")


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    threads = int(spec.get("threads", 2))
    runs = int(spec.get("runs", 5))
    warmup = int(spec.get("warmup", 1))
    repeat = int(spec.get("repeat", 1))   # embed: calls per timed run
    torch.set_num_threads(threads)
    blas = set_blas_threads(threads)
    results = []
    with torch.inference_mode():
        for m in spec["models"]:
            cfg, model = load_folder(m["dir"])
            for batch, rows in sorted(m["inputs"].items(), key=lambda kv: int(kv[0])):
                ids = torch.tensor(rows, dtype=torch.int64)
                if m["task"] == "generate":
                    if cfg.get("model_type") != "gpt2":
                        raise ValueError(f"{m['name']}: cached decode written for gpt2 only, "
                                         f"got model_type {cfg.get('model_type')!r}")
                    n = int(m["new_tokens"])
                    warm_n = int(m.get("warmup_new_tokens") or n)
                    for _ in range(warmup):
                        gpt2_generate(model, ids, warm_n)
                    seconds, cpu, out = time_runs(lambda: gpt2_generate(model, ids, n), runs, 0)
                    count, unit = ids.size(0) * n, "tokens/s"
                    extra = {"generated": out.tolist()}
                elif m["task"] == "embed":
                    seconds, cpu, out = time_runs(lambda: bert_embed(model, ids), runs, warmup,
                                                  repeat)
                    count, unit = ids.size(0), "embeddings/s"
                    extra = {"embedding": out.tolist()}
                else:
                    raise ValueError(f"{m['name']}: unknown task {m['task']!r}")
                median = statistics.median(seconds)
                results.append(dict(model=m["name"], task=m["task"], batch=int(batch),
                                    seconds=seconds, cpu_seconds=cpu, median_s=median, per_s=count / median,
                                    unit=unit, **extra))
    json.dump({"torch": torch.__version__, "python": platform.python_version(),
               "threads": torch.get_num_threads(), "blas": blas, "results": results},
              sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # noqa: BLE001 -- the bench reads the message
        print(f"hf_bench_reference.py: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
