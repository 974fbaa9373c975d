"""Hugging Face-only model folders and their reference outputs (generate.py --hf-out).

    /usr/bin/python3 tools/zoo/generate.py --profile small --out build/zoo-small \\
        --hf-out build/zoo-small-hf --tokenizers build/tokenizers
        [--hf-reference-out DIR]   (default: <hf-out>-reference)

Writes, under --hf-out, model folders laid out exactly as Hugging Face writes them
(config.json, model.safetensors or shards + model.safetensors.index.json, the
real tokenizer files copied unchanged; sentence-transformers files for
minilm-embed; no config.yaml, no model.pt), and hf_zoo.json (the manifest).
mistral-spm-tiny is mistral-tiny (same seed, so the same weights and
references) with the Mistral tokenizer as a SentencePiece tokenizer.model and
no tokenizer.json (build/tokenizers/mistral-spm).
Under --hf-reference-out it writes <model>.safetensors with the inputs and the
outputs that the plain torch modules of hf_native.py compute from the written
files, in float32; README.md ("Hugging Face-only folders") documents the schema.

Weights are random under a fixed seed per model; the vocabularies are those of
the real tokenizers (build/tokenizers, tools/tokenizers/build_tokenizers.mjs).
Every reference is cross-checked with a second, loop-based float64
implementation written here from the raw tensors (naive_*), so that a mistake in
hf_native.py's modules or tensor names would show up as a generation error.

torch and hf_native are imported only once the cache check says there is work.
"""

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import time
import zlib

import numpy as np

from safetensors_io import read_header, read_index, read_safetensors, write_safetensors

HF_GENERATOR_VERSION = 1
SOURCE_FILES = ("hf_zoo.py", "hf_native.py", "safetensors_io.py")
SEED = 1234
MANIFEST = "hf_zoo.json"
REFERENCE_MANIFEST = "references.json"
# config.json is written with the fields transformers of this version writes
# (keys sorted, 2-space indent, as PretrainedConfig.to_json_file).
TRANSFORMERS_VERSION = "4.46.3"

PROMPT_LENGTH = 12          # S of the reference inputs
ENCODER_PADDING = 4         # right padding of row 1 for encoders
NEW_TOKENS = 32             # greedy tokens of the decoders' references
MIN_DISTINCT_GREEDY = 8     # per row, else the random model is too degenerate
MIN_GREEDY_MARGIN = 5e-3    # top-1 minus top-2 logit at every greedy step
INPUT_ATTEMPTS = 20         # prompts tried (in a fixed order) until the greedy run passes

# tokenizer folder (under --tokenizers) -> (real vocabulary size, special token ids)
TOKENIZERS = {
    "gpt2": (50257, {"bos": 50256, "eos": 50256}),
    "bert-base-uncased": (30522, {"pad": 0, "unk": 100, "cls": 101, "sep": 102, "mask": 103}),
    "roberta": (50265, {"bos": 0, "pad": 1, "eos": 2, "unk": 3, "mask": 50264}),
    "llama3": (128256, {"bos": 128000, "eos": 128001}),
    "mistral": (32000, {"unk": 0, "bos": 1, "eos": 2}),
    "mistral-spm": (32000, {"unk": 0, "bos": 1, "eos": 2}),
}
# special-token content strings, when tokenizer_config.json does not name them
DEFAULT_SPECIAL_CONTENT = {
    "gpt2": {"bos": "<|endoftext|>", "eos": "<|endoftext|>"},
    "bert-base-uncased": {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]",
                          "mask": "[MASK]"},
    "roberta": {"bos": "<s>", "pad": "<pad>", "eos": "</s>", "unk": "<unk>", "mask": "<mask>"},
    "llama3": {"bos": "<|begin_of_text|>", "eos": "<|end_of_text|>"},
    "mistral": {"unk": "<unk>", "bos": "<s>", "eos": "</s>"},
    "mistral-spm": {"unk": "<unk>", "bos": "<s>", "eos": "</s>"},
}

ID2LABEL = {0: "negative", 1: "neutral", 2: "positive"}


class HfZooError(RuntimeError):
    zoo_error = True   # generate.py prints these without a traceback


def check(cond, message):
    if not cond:
        raise HfZooError(message)


# ---------------------------------------------------------------------------
# the models of each profile


def _sorted(cfg):
    return dict(sorted(cfg.items()))


def llama_config(profile, sp):
    h, layers, heads, kv, inner = (256, 4, 8, 2, 512) if profile == "full" else (64, 2, 4, 2, 128)
    return _sorted({
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": sp["bos"], "eos_token_id": sp["eos"], "head_dim": h // heads,
        "hidden_act": "silu", "hidden_size": h, "initializer_range": 0.02,
        "intermediate_size": inner, "max_position_embeddings": 256, "mlp_bias": False,
        "model_type": "llama", "num_attention_heads": heads, "num_hidden_layers": layers,
        "num_key_value_heads": kv, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
        "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "float16",
        "transformers_version": TRANSFORMERS_VERSION, "use_cache": True, "vocab_size": 128256})


def qwen2_config(profile, sp):
    return _sorted({
        "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0,
        "bos_token_id": sp["bos"], "eos_token_id": sp["eos"], "hidden_act": "silu",
        "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 160,
        "max_position_embeddings": 256, "max_window_layers": 2, "model_type": "qwen2",
        "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2,
        "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 1000000.0,
        "sliding_window": 256, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
        "transformers_version": TRANSFORMERS_VERSION, "use_cache": True,
        "use_sliding_window": False, "vocab_size": 128256})


def mistral_config(profile, sp):
    return _sorted({
        "architectures": ["MistralForCausalLM"], "attention_dropout": 0.0,
        "bos_token_id": sp["bos"], "eos_token_id": sp["eos"], "head_dim": 8,
        "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02,
        "intermediate_size": 224, "max_position_embeddings": 256, "model_type": "mistral",
        "num_attention_heads": 8, "num_hidden_layers": 2, "num_key_value_heads": 2,
        "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": None,
        "tie_word_embeddings": False, "torch_dtype": "float32",
        "transformers_version": TRANSFORMERS_VERSION, "use_cache": True, "vocab_size": 32000})


def gpt2_config(profile, sp):
    return _sorted({
        "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1, "bos_token_id": sp["bos"], "embd_pdrop": 0.1,
        "eos_token_id": sp["eos"], "initializer_range": 0.02, "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2", "n_ctx": 128, "n_embd": 64, "n_head": 4, "n_inner": None,
        "n_layer": 2, "n_positions": 128, "reorder_and_upcast_attn": False, "resid_pdrop": 0.1,
        "scale_attn_by_inverse_layer_idx": False, "scale_attn_weights": True,
        "summary_activation": None, "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True, "summary_type": "cls_index", "summary_use_proj": True,
        "tie_word_embeddings": True, "torch_dtype": "float32",
        "transformers_version": TRANSFORMERS_VERSION, "use_cache": True, "vocab_size": 50257})


def bert_config(profile, sp, arch="BertModel", dims=(64, 2, 4, 256, 128)):
    h, layers, heads, inner, positions = dims
    cfg = {
        "architectures": [arch], "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "hidden_size": h, "initializer_range": 0.02, "intermediate_size": inner,
        "layer_norm_eps": 1e-12, "max_position_embeddings": positions, "model_type": "bert",
        "num_attention_heads": heads, "num_hidden_layers": layers, "pad_token_id": sp["pad"],
        "position_embedding_type": "absolute", "torch_dtype": "float32",
        "transformers_version": TRANSFORMERS_VERSION, "type_vocab_size": 2, "use_cache": True,
        "vocab_size": 30522}
    if arch == "BertForSequenceClassification":
        cfg["id2label"] = {str(k): v for k, v in ID2LABEL.items()}
        cfg["label2id"] = {v: k for k, v in ID2LABEL.items()}
        cfg["problem_type"] = "single_label_classification"
    return _sorted(cfg)


def minilm_config(profile, sp):
    # full profile: the dimensions of all-MiniLM-L6-v2 (nreimers/MiniLM-L6-H384-uncased)
    dims = (384, 6, 12, 1536, 512) if profile == "full" else (64, 2, 4, 256, 128)
    return bert_config(profile, sp, "BertModel", dims)


def xlmr_config(profile, sp):
    return _sorted({
        "architectures": ["XLMRobertaModel"], "attention_probs_dropout_prob": 0.1,
        "bos_token_id": sp["bos"], "classifier_dropout": None, "eos_token_id": sp["eos"],
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 64,
        "initializer_range": 0.02, "intermediate_size": 256, "layer_norm_eps": 1e-05,
        "max_position_embeddings": 130, "model_type": "xlm-roberta", "num_attention_heads": 4,
        "num_hidden_layers": 2, "pad_token_id": sp["pad"], "position_embedding_type": "absolute",
        "torch_dtype": "float32", "transformers_version": TRANSFORMERS_VERSION,
        "type_vocab_size": 1, "use_cache": True, "vocab_size": 50265})


def distilbert_config(profile, sp):
    return _sorted({
        "activation": "gelu", "architectures": ["DistilBertModel"], "attention_dropout": 0.1,
        "dim": 64, "dropout": 0.1, "hidden_dim": 256, "initializer_range": 0.02,
        "max_position_embeddings": 128, "model_type": "distilbert", "n_heads": 4,
        "n_layers": 2, "pad_token_id": sp["pad"], "qa_dropout": 0.1,
        "seq_classif_dropout": 0.2, "sinusoidal_pos_embds": False, "tie_weights_": True,
        "torch_dtype": "float32", "transformers_version": TRANSFORMERS_VERSION,
        "vocab_size": 30522})


# Tied embeddings: with N(0, 1) embeddings the current token's own embedding
# dominates the logits and a tiny model repeats one token; smaller embeddings
# and larger layers fix that.
TIED_INIT = {"embedding": 0.5, "linear_gain": 2.0}

# name -> spec. layout: "bare" = a base model saved by itself (no prefix),
# "prefixed" = under base_model_prefix (heads always are). shards: 1 = model.safetensors.
# weights_of: build under that model's seed (same weights and reference inputs).
SPECS = {
    "llama-tiny": dict(config=llama_config, tokenizer="llama3", task="generate", shards=2),
    "qwen2-tiny": dict(config=qwen2_config, tokenizer="llama3", task="generate",
                       init=TIED_INIT),
    "mistral-tiny": dict(config=mistral_config, tokenizer="mistral", task="generate"),
    "mistral-spm-tiny": dict(config=mistral_config, tokenizer="mistral-spm", task="generate",
                             weights_of="mistral-tiny"),
    "gpt2-hf": dict(config=gpt2_config, tokenizer="gpt2", task="generate", init=TIED_INIT),
    "bert-hf": dict(config=bert_config, tokenizer="bert-base-uncased", task="infer"),
    "bert-classifier": dict(config=lambda p, sp: bert_config(
        p, sp, "BertForSequenceClassification"), tokenizer="bert-base-uncased",
        task="classify", layout="prefixed"),
    "minilm-embed": dict(config=minilm_config, tokenizer="bert-base-uncased", task="embed",
                         sentence_transformers=True),
    "xlmr-tiny": dict(config=xlmr_config, tokenizer="roberta", task="infer", layout="prefixed"),
    "distilbert-tiny": dict(config=distilbert_config, tokenizer="bert-base-uncased",
                            task="infer", layout="prefixed"),
}


def model_names(profile):
    if profile == "full":
        return ["llama-tiny", "minilm-embed"]
    return list(SPECS)


# sentence-transformers files of minilm-embed
def st_files(cfg):
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize",
         "type": "sentence_transformers.models.Normalize"}]
    pooling = {"word_embedding_dimension": cfg["hidden_size"], "pooling_mode_cls_token": False,
               "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
               "pooling_mode_mean_sqrt_len_tokens": False,
               "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": False,
               "include_prompt": True}
    st_config = {"max_seq_length": min(256, cfg["max_position_embeddings"]),
                 "do_lower_case": False}
    versions = {"__version__": {"sentence_transformers": "3.2.1",
                                "transformers": TRANSFORMERS_VERSION, "pytorch": "2.5.1"},
                "prompts": {}, "default_prompt_name": None, "similarity_fn_name": "cosine"}
    return {"modules.json": modules, "1_Pooling/config.json": pooling,
            "sentence_bert_config.json": st_config,
            "config_sentence_transformers.json": versions}


# ---------------------------------------------------------------------------
# tokenizers


def tokenizer_files(tokenizers, tok):
    folder = os.path.join(tokenizers, tok)
    if not any(os.path.isfile(os.path.join(folder, f))
               for f in ("tokenizer.json", "tokenizer.model")):
        raise HfZooError(f"tokenizer {tok}: {folder}/tokenizer.json (or tokenizer.model) not "
                         f"found (build them with "
                         f"`node tools/tokenizers/build_tokenizers.mjs --out build/tokenizers`)")
    return sorted(f for f in os.listdir(folder) if os.path.isfile(os.path.join(folder, f)))


def _varint(data, pos):
    value, shift = 0, 0
    while True:
        check(pos < len(data) and shift < 64, "tokenizer.model: truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _proto_fields(data):
    """(field number, wire type, value) of a protocol-buffers message: the payload
    bytes for LEN fields, the integer for VARINT ones, raw bytes for fixed ones."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos:pos + size], pos + size
            check(len(value) == size, "tokenizer.model: truncated field")
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value, pos = data[pos:pos + width], pos + width
        else:
            raise HfZooError(f"tokenizer.model: wire type {wire} is not ModelProto's")
        yield field, wire, value


def sentencepiece_pieces(path):
    """[(piece, type)] of a SentencePiece tokenizer.model in id order (ModelProto
    field 1; each piece: 1 = the string, 3 = the type, 1 NORMAL (default),
    2 UNKNOWN, 3 CONTROL, 4 USER_DEFINED, 5 UNUSED, 6 BYTE)."""
    with open(path, "rb") as f:
        data = f.read()
    pieces = []
    for field, wire, value in _proto_fields(data):
        if field != 1 or wire != 2:
            continue
        piece, kind = None, 1
        for f2, w2, v2 in _proto_fields(value):
            if f2 == 1 and w2 == 2:
                piece = v2.decode("utf-8")
            elif f2 == 3 and w2 == 0:
                kind = v2
        check(piece, f"{path}: piece {len(pieces)} has no string")
        pieces.append((piece, kind))
    check(pieces, f"{path}: no pieces")
    return pieces


def tokenizers_hash(tokenizers, names):
    h = hashlib.sha256()
    for tok in sorted({SPECS[n]["tokenizer"] for n in names}):
        for f in tokenizer_files(tokenizers, tok):
            with open(os.path.join(tokenizers, tok, f), "rb") as fh:
                data = fh.read()
            h.update(f"{tok}/{f}\0{len(data)}\0".encode())
            h.update(data)
    return h.hexdigest()


def _content(value):
    if isinstance(value, dict):
        return value.get("content")
    return value


class TokenizerInfo:
    """What the model folders need from a tokenizer: its size, special ids, ordinary ids."""

    def __init__(self, folder, tok, files=None):
        """folder: where tokenizer.json (or only a SentencePiece tokenizer.model) is;
        tok: which tokenizer (a key of TOKENIZERS)."""
        self.name = tok
        self.folder = folder
        self.files = files
        if os.path.isfile(os.path.join(self.folder, "tokenizer.json")):
            with open(os.path.join(self.folder, "tokenizer.json"), encoding="utf-8") as f:
                tj = json.load(f)
            model = tj["model"]
            vocab = model["vocab"]
            if isinstance(vocab, dict):
                by_id = {int(i): t for t, i in vocab.items()}
            else:                                                   # Unigram: [[piece, score]]
                by_id = {i: entry[0] for i, entry in enumerate(vocab)}
            added = {int(a["id"]): a["content"] for a in tj.get("added_tokens", [])}
        else:   # tokenizer.model: UNKNOWN and CONTROL pieces are the special (added) ones
            pieces = sentencepiece_pieces(os.path.join(self.folder, "tokenizer.model"))
            by_id = {i: p for i, (p, _) in enumerate(pieces)}
            added = {i: p for i, (p, kind) in enumerate(pieces) if kind in (2, 3)}
        ids = dict(by_id)
        ids.update(added)
        self.size = max(ids) + 1
        self.content_to_id = {t: i for i, t in ids.items()}
        cfg = {}
        for extra in ("special_tokens_map.json", "tokenizer_config.json"):
            path = os.path.join(self.folder, extra)
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as f:
                    cfg.update({k: v for k, v in json.load(f).items() if v is not None})
        self.special = {}
        for role, default in DEFAULT_SPECIAL_CONTENT[tok].items():
            content = _content(cfg.get(f"{role}_token")) or default
            check(content in self.content_to_id,
                  f"tokenizer {tok}: {role} token {content!r} is not in its vocabulary")
            self.special[role] = self.content_to_id[content]
        # ordinary tokens: in the model's vocabulary, not added/special, not bracketed
        # specials ([unused0], <unk>, <0x0A> byte tokens)
        bracketed = re.compile(r"^(\[.*\]|<.*>)$")
        self.ordinary = sorted(i for i, t in by_id.items()
                               if i not in added and not bracketed.match(t))

    def check_against(self, expected_size, expected_special, manifest):
        check(self.size == expected_size,
              f"tokenizer {self.name}: {self.size} ids, expected {expected_size}")
        if manifest is not None:
            check(manifest == self.size, f"tokenizer {self.name}: manifest.json says {manifest} "
                                         f"tokens, the tokenizer has {self.size}")
        for role, want in expected_special.items():
            check(self.special.get(role) == want, f"tokenizer {self.name}: {role} id "
                                                  f"{self.special.get(role)}, expected {want}")


def manifest_sizes(tokenizers):
    """{tokenizer name: vocabulary size} from tokenizers/manifest.json, where it says."""
    path = os.path.join(tokenizers, "manifest.json")
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return {}
    entries = manifest.get("tokenizers", manifest) if isinstance(manifest, dict) else {}
    if isinstance(entries, list):
        entries = {e.get("name"): e for e in entries if isinstance(e, dict)}
    out = {}
    for name, entry in entries.items():
        if isinstance(entry, dict):
            for key in ("vocab_size", "vocabSize", "size"):
                if isinstance(entry.get(key), int):
                    out[name] = entry[key]
                    break
        elif isinstance(entry, int):
            out[name] = entry
    return out


# ---------------------------------------------------------------------------
# cache and manifest


def source_hash():
    here = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.sha256()
    for name in SOURCE_FILES:
        with open(os.path.join(here, name), "rb") as f:
            data = f.read()
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def _load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def is_up_to_date(hf_out, ref_out, expected):
    manifest = _load_json(os.path.join(hf_out, MANIFEST))
    if not isinstance(manifest, dict):
        return False
    keys = ("profile", "generator_version", "source_hash", "tokenizers_hash", "torch_version",
            "reference_dir")
    if any(manifest.get(k) != expected[k] for k in keys):
        return False
    if sorted(manifest.get("models", {})) != sorted(expected["model_names"]):
        return False
    refs = _load_json(os.path.join(ref_out, REFERENCE_MANIFEST))
    if not isinstance(refs, dict) or refs.get("source_hash") != expected["source_hash"]:
        return False
    for name, m in manifest["models"].items():
        if not all(os.path.isfile(os.path.join(hf_out, p)) for p in m.get("files", [])):
            return False
        if not all(os.path.isdir(os.path.join(hf_out, p)) for p in m.get("empty_dirs", [])):
            return False
        if not os.path.isfile(os.path.join(ref_out, m["reference"])):
            return False
    return True


def write_json(path, obj, indent=2, sort_keys=False):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=indent, sort_keys=sort_keys)
        f.write("\n")


def relative_files(root, folder):
    out = []
    for dirpath, _, filenames in os.walk(folder):
        out += [os.path.relpath(os.path.join(dirpath, f), root) for f in filenames]
    return sorted(out)


def _remove_stale_temps(parent, base):
    prefix = f".{base}.tmp-"
    for entry in os.listdir(parent):
        if not entry.startswith(prefix):
            continue
        pid = entry[len(prefix):].split("-")[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
            continue
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def seed_for(name):
    return (SEED + zlib.crc32(name.encode())) % (2 ** 31)


# ---------------------------------------------------------------------------
# generation


def parse_arguments(parser, argv=None):
    """generate.py's command line: adds --hf-out, --hf-reference-out and --tokenizers to
    its parser, parses argv and checks the combination."""
    parser.add_argument("--hf-out", help="also write the Hugging Face-only folders here "
                                          "(tools/zoo/hf_zoo.py); may equal --out")
    parser.add_argument("--hf-reference-out", help="their reference inputs and outputs "
                                                   "(default: <hf-out>-reference)")
    parser.add_argument("--tokenizers", help="the built tokenizers, one folder per tokenizer "
                                             "(needed with --hf-out)")
    args = parser.parse_args(argv)
    if not args.out and not args.hf_out:
        parser.error("--out is required (or --hf-out)")
    if args.triton_out and not args.out:
        parser.error("--triton-out needs --out")
    if args.hf_out and not args.tokenizers:
        parser.error("--hf-out needs --tokenizers DIR (node tools/tokenizers/build_tokenizers.mjs "
                     "--out build/tokenizers)")
    if (args.hf_reference_out or args.tokenizers) and not args.hf_out:
        parser.error("--hf-reference-out and --tokenizers go with --hf-out")
    return args


def generate_from_arguments(args):
    reference = args.hf_reference_out or (os.path.normpath(os.path.abspath(args.hf_out))
                                          + "-reference")
    return generate(args.profile, args.hf_out, reference, args.tokenizers, args.force)


def generate(profile, hf_out, ref_out, tokenizers, force=False):
    hf_out, ref_out = os.path.abspath(hf_out), os.path.abspath(ref_out)
    tokenizers = os.path.abspath(tokenizers)
    check(ref_out != hf_out and not ref_out.startswith(hf_out + os.sep)
          and not hf_out.startswith(ref_out + os.sep),
          f"--hf-reference-out {ref_out} must be outside --hf-out {hf_out}")
    names = model_names(profile)
    expected = {"profile": profile, "generator_version": HF_GENERATOR_VERSION,
                "source_hash": source_hash(), "tokenizers_hash": tokenizers_hash(tokenizers, names),
                "torch_version": _package_version("torch"),
                "reference_dir": os.path.relpath(ref_out, hf_out), "model_names": names}
    if not force and is_up_to_date(hf_out, ref_out, expected):
        print("hf zoo up to date", flush=True)
        return 0

    # where the folders go: hf_out may be shared with the zoo (--out == --hf-out)
    old = _load_json(os.path.join(hf_out, MANIFEST)) if os.path.isdir(hf_out) else None
    old_models = set((old or {}).get("models", {}))
    if os.path.exists(hf_out):
        check(os.path.isdir(hf_out), f"{hf_out} exists and is not a directory")
        entries = set(os.listdir(hf_out))
        zoo = _load_json(os.path.join(hf_out, "zoo.json"))
        check(not entries or old is not None or zoo is not None,
              f"{hf_out} exists, is not empty and holds neither {MANIFEST} nor zoo.json; "
              f"not writing into it (remove it or choose another --hf-out)")
        zoo_models = set((zoo or {}).get("models", {}))
        for name in names:
            check(name not in zoo_models, f"{hf_out}: {name} is a zoo model of zoo.json")
            check(name not in entries or name in old_models,
                  f"{hf_out}/{name} exists and is not listed in {MANIFEST}; not replacing it")
    if os.path.exists(ref_out):
        check(os.path.isdir(ref_out) and (not os.listdir(ref_out) or os.path.isfile(
            os.path.join(ref_out, REFERENCE_MANIFEST))),
            f"{ref_out} exists, is not empty and holds no {REFERENCE_MANIFEST}; not replacing it")

    infos = {}
    sizes = manifest_sizes(tokenizers)
    for tok in sorted({SPECS[n]["tokenizer"] for n in names}):
        info = TokenizerInfo(os.path.join(tokenizers, tok), tok, tokenizer_files(tokenizers, tok))
        info.check_against(TOKENIZERS[tok][0], TOKENIZERS[tok][1], sizes.get(tok))
        infos[tok] = info

    dirs = []
    for target in (hf_out, ref_out):
        parent, base = os.path.split(target)
        os.makedirs(parent, exist_ok=True)
        _remove_stale_temps(parent, base)
        dirs.append(tempfile.mkdtemp(prefix=f".{base}.tmp-{os.getpid()}-", dir=parent))
    tmp, tmp_ref = dirs
    print(f"generating the {profile} Hugging Face folders into {hf_out} "
          f"(references: {ref_out})", flush=True)
    started = time.monotonic()
    try:
        manifest = {k: expected[k] for k in ("profile", "generator_version", "source_hash",
                                             "tokenizers_hash", "torch_version",
                                             "reference_dir")}
        manifest.update({"seed": SEED, "config_transformers_version": TRANSFORMERS_VERSION,
                         "models": {}})
        refs = {"profile": profile, "source_hash": expected["source_hash"],
                "hf_zoo": os.path.relpath(hf_out, ref_out), "prompt_length": PROMPT_LENGTH,
                "new_tokens": NEW_TOKENS, "models": {}}
        for name in names:
            t0 = time.monotonic()
            spec = SPECS[name]
            info = infos[spec["tokenizer"]]
            entry, ref_entry = build_model(name, spec, profile, info, tmp, tmp_ref)
            manifest["models"][name] = entry
            refs["models"][name] = ref_entry
            size = sum(os.path.getsize(os.path.join(tmp, p)) for p in entry["files"])
            print(f"  {name:<16} {entry['parameters']:>12,} parameters {entry['torch_dtype']:>8} "
                  f"{size / 1e6:7.1f} MB {time.monotonic() - t0:6.1f} s  {ref_entry['note']}",
                  flush=True)
        write_json(os.path.join(tmp_ref, REFERENCE_MANIFEST), refs)
        _install(tmp, tmp_ref, hf_out, ref_out, manifest, old_models)
        tmp = tmp_ref = None
    finally:
        for d in (tmp, tmp_ref):
            if d is not None:
                shutil.rmtree(d, ignore_errors=True)
    print(f"hf zoo written: {len(names)} models in {time.monotonic() - started:.1f} s", flush=True)
    return 0


def _install(tmp, tmp_ref, hf_out, ref_out, manifest, old_models):
    """Moves the new folders into hf_out (which may hold the zoo too) and replaces ref_out."""
    os.makedirs(hf_out, exist_ok=True)
    manifest_path = os.path.join(hf_out, MANIFEST)
    if os.path.exists(manifest_path):
        os.remove(manifest_path)            # not up to date until the end
    trash = tempfile.mkdtemp(prefix=f".{os.path.basename(hf_out)}.tmp-{os.getpid()}-old-",
                             dir=os.path.dirname(hf_out))
    try:
        for name in sorted(old_models | set(manifest["models"])):
            if os.path.exists(os.path.join(hf_out, name)):
                os.rename(os.path.join(hf_out, name), os.path.join(trash, name))
        for name in manifest["models"]:
            os.rename(os.path.join(tmp, name), os.path.join(hf_out, name))
        write_json(manifest_path + ".tmp", manifest)
        os.rename(manifest_path + ".tmp", manifest_path)
        os.chmod(tmp_ref, 0o755)
        if os.path.exists(ref_out):
            os.rename(ref_out, os.path.join(trash, "reference"))
        os.rename(tmp_ref, ref_out)
    finally:
        shutil.rmtree(trash, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


def _package_version(name):
    import importlib.metadata
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# ---------------------------------------------------------------------------
# one model


INIT = {"linear_gain": 1.0, "lm_head_gain": 4.0, "embedding": 1.0, "bias": 0.1,
        "norm_weight": 0.1, "norm_bias": 0.1}


def init_weights(module, seed, init=None):
    """Random values that keep the outputs lively (not HF's N(0, 0.02), under which
    attention is nearly uniform and a tiny decoder repeats one token): matrices
    N(0, gain/sqrt(fan_in)) so that activations and attention scores stay O(1),
    the untied lm_head 4x that (logits with clear top-1 gaps), embeddings N(0, 1),
    biases N(0, 0.1), LayerNorm/RMSNorm weights 1 + N(0, 0.1), LayerNorm biases N(0, 0.1)."""
    import torch
    from torch import nn

    import hf_native
    init = dict(INIT, **(init or {}))
    gen = torch.Generator().manual_seed(seed)

    def fill(p, mean, std):
        with torch.no_grad():
            p.copy_(torch.randn(p.shape, generator=gen) * std + mean)

    for name, m in module.named_modules():
        if isinstance(m, nn.Linear):
            gain = init["lm_head_gain"] if name == "lm_head" else init["linear_gain"]
            fill(m.weight, 0.0, gain / math.sqrt(m.weight.shape[1]))
            if m.bias is not None:
                fill(m.bias, 0.0, init["bias"])
        elif isinstance(m, hf_native.Conv1D):                 # [in, out]
            fill(m.weight, 0.0, init["linear_gain"] / math.sqrt(m.weight.shape[0]))
            fill(m.bias, 0.0, init["bias"])
        elif isinstance(m, nn.Embedding):
            fill(m.weight, 0.0, init["embedding"])
        elif isinstance(m, nn.LayerNorm):
            fill(m.weight, 1.0, init["norm_weight"])
            fill(m.bias, 0.0, init["norm_bias"])
        elif isinstance(m, hf_native.RMSNorm):
            fill(m.weight, 1.0, init["norm_weight"])


STORAGE = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}


def round_to_dtype(module, torch_dtype):
    """Rounds every parameter to the stored dtype (kept as float32 for computing)."""
    import torch
    dtype = {"float32": torch.float32, "float16": torch.float16,
             "bfloat16": torch.bfloat16}[torch_dtype]
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.to(dtype).float())


def split_shards(names, sizes, count):
    total = sum(sizes.values())
    shards = [[] for _ in range(count)]
    done = 0
    for n in names:
        shards[min(count - 1, done * count // total)].append(n)
        done += sizes[n]
    check(all(shards), "a shard came out empty")
    return shards


def write_weights(folder, state, names, torch_dtype, shards):
    """Writes model.safetensors (or shards + index) in torch_dtype; returns the file names."""
    dtype = STORAGE[torch_dtype]
    arrays = {n: state[n].detach().contiguous().numpy() for n in names}
    dtypes = {n: dtype for n in names}
    if shards == 1:
        write_safetensors(os.path.join(folder, "model.safetensors"), arrays, dtypes=dtypes)
        return ["model.safetensors"]
    width = {"F32": 4, "F16": 2, "BF16": 2}[dtype]
    groups = split_shards(names, {n: arrays[n].size * width for n in names}, shards)
    files = [f"model-{i + 1:05d}-of-{shards:05d}.safetensors" for i in range(shards)]
    weight_map, total = {}, 0
    for file, group in zip(files, groups):
        total += write_safetensors(os.path.join(folder, file), {n: arrays[n] for n in group},
                                   dtypes=dtypes)
        weight_map.update({n: file for n in group})
    write_json(os.path.join(folder, "model.safetensors.index.json"),
               {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))})
    return files + ["model.safetensors.index.json"]


def read_folder_tensors(folder):
    """{name: float32 numpy array} from a folder's safetensors (index or single file),
    plus {name: safetensors dtype}."""
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        _, shards = read_index(index)
    else:
        shards = [os.path.join(folder, "model.safetensors")]
    tensors, dtypes = {}, {}
    for shard in shards:
        header, _, _ = read_header(shard)
        read, _ = read_safetensors(shard, decode_bf16=True)
        for name, array in read.items():
            check(name not in tensors, f"{folder}: tensor {name} in two files")
            tensors[name] = array.astype(np.float32)
            dtypes[name] = header[name]["dtype"]
    return tensors, dtypes


def detect_layout(cfg, names):
    """"bare" or "prefixed" (see hf_native.tensor_names); decoders are "bare", encoders
    with a head "prefixed" (their names do not depend on the layout)."""
    import hf_native
    bare, prefixed = hf_native.tensor_names(cfg, "bare"), hf_native.tensor_names(cfg, "prefixed")
    if bare == prefixed and sorted(names) == sorted(bare):
        return "bare" if cfg["model_type"] in ("llama", "qwen2", "mistral", "gpt2") else "prefixed"
    for layout, expected in (("bare", bare), ("prefixed", prefixed)):
        if sorted(expected) == sorted(names):
            return layout
    raise HfZooError(f"tensor names fit no layout of {cfg['architectures'][0]}")


def load_folder(folder):
    """(config, reference module in float32 holding the folder's weights, layout)."""
    import torch

    import hf_native
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    tensors, _ = read_folder_tensors(folder)
    layout = detect_layout(cfg, list(tensors))
    module = hf_native.build(cfg, layout).eval()
    state = {k: torch.from_numpy(v.copy()) for k, v in tensors.items()}
    module.load_state_dict(state, strict=True)
    return cfg, module, layout


def reference_inputs(cfg, info, task, seed):
    """input_ids, attention_mask int64 [2, S] (see README)."""
    import torch
    gen = torch.Generator().manual_seed(seed)
    pool = torch.tensor(info.ordinary, dtype=torch.int64)
    draw = pool[torch.randint(0, len(pool), (2, PROMPT_LENGTH), generator=gen)]
    mask = torch.ones(2, PROMPT_LENGTH, dtype=torch.int64)
    if task == "generate":
        return draw, mask
    first = info.special["cls" if "cls" in info.special else "bos"]
    last = info.special["sep" if "sep" in info.special else "eos"]
    pad = cfg["pad_token_id"]
    ids = draw.clone()
    ids[:, 0] = first
    ids[0, -1] = last
    real = PROMPT_LENGTH - ENCODER_PADDING
    ids[1, real - 1] = last
    ids[1, real:] = pad
    mask[1, real:] = 0
    return ids, mask


def run_reference(cfg, module, layout, spec, ids, mask, st=None):
    """{output name: tensor} computed in float32 (see README), plus notes."""
    import torch

    import hf_native
    out, notes = {}, {}
    with torch.no_grad():
        if spec["task"] == "generate":
            out["logits"] = module(ids)
            greedy_ids, margin = hf_native.greedy(module, ids, NEW_TOKENS)
            out["greedy_ids"] = greedy_ids
            notes["greedy_min_margin"] = margin
            if cfg["model_type"] != "gpt2":
                out["rope_inv_freq"] = module.model.inv_freq.clone()
        elif spec["task"] == "classify":
            result = module(ids, mask)
            out.update({k: result[k] for k in ("logits", "last_hidden_state", "pooler_output")})
        else:
            hidden = module(ids, mask)
            out["last_hidden_state"] = hidden
            if spec["task"] == "embed":
                pooled = hf_native.st_pool(hidden, mask, st["1_Pooling/config.json"])
                normalize = any(m["type"].endswith(".Normalize") for m in st["modules.json"])
                out["embeddings"] = hf_native.st_normalize(pooled) if normalize else pooled
    return out, notes


def build_model(name, spec, profile, info, tmp, tmp_ref):
    import torch

    import hf_native
    seed = seed_for(spec.get("weights_of", name))
    torch.manual_seed(seed)
    cfg = spec["config"](profile, info.special)
    layout = spec.get("layout", "bare")
    task = spec["task"]
    arch = cfg["architectures"][0]
    check(cfg["vocab_size"] >= info.size, f"{name}: vocab_size {cfg['vocab_size']} < "
                                          f"tokenizer's {info.size}")
    module = hf_native.build(cfg, layout).eval()
    init_weights(module, seed, spec.get("init"))
    round_to_dtype(module, cfg["torch_dtype"])

    state = module.state_dict()
    names = hf_native.tensor_names(cfg, layout)
    check(list(state) == names, f"{name}: module names {list(state)[:4]}... differ from "
                                f"the checkpoint names")
    count = hf_native.parameter_count(cfg)
    numel = sum(v.numel() for v in state.values())
    check(count == numel, f"{name}: {numel} values, config.json formula gives {count}")
    if cfg.get("tie_word_embeddings") and "model_type" in cfg and cfg["model_type"] != "gpt2":
        check("lm_head.weight" not in state and not hasattr(module, "lm_head"),
              f"{name}: tied but has an lm_head")

    folder = os.path.join(tmp, name)
    os.makedirs(folder)
    write_json(os.path.join(folder, "config.json"), cfg, sort_keys=True)
    weight_files = write_weights(folder, state, names, cfg["torch_dtype"], spec.get("shards", 1))
    for f in info.files:
        shutil.copyfile(os.path.join(info.folder, f), os.path.join(folder, f))
    st, empty_dirs = None, []
    if spec.get("sentence_transformers"):
        st = st_files(cfg)
        for rel, obj in st.items():
            os.makedirs(os.path.dirname(os.path.join(folder, rel)), exist_ok=True)
            write_json(os.path.join(folder, rel), obj)
        os.makedirs(os.path.join(folder, "2_Normalize"))
        empty_dirs.append(f"{name}/2_Normalize")

    # everything below works from the written files
    tensors, dtypes = read_folder_tensors(folder)
    check(set(dtypes.values()) == {STORAGE[cfg["torch_dtype"]]}, f"{name}: dtypes {dtypes}")
    for n in names:
        check(np.array_equal(tensors[n], state[n].numpy()),
              f"{name}: tensor {n} differs after re-reading")
    cfg_read, loaded, got_layout = load_folder(folder)
    check(cfg_read == cfg and got_layout == layout, f"{name}: config/layout re-read differ")
    for attempt in range(INPUT_ATTEMPTS):
        ids, mask = reference_inputs(cfg, info, task, seed + 1 + attempt)
        out, notes = run_reference(cfg, loaded, layout, spec, ids, mask, st)
        if task != "generate" or greedy_is_clear(out, notes):
            break
    else:
        raise HfZooError(f"{name}: no prompt of {INPUT_ATTEMPTS} gives a clear greedy run "
                         f"(distinct tokens >= {MIN_DISTINCT_GREEDY}, margins >= "
                         f"{MIN_GREEDY_MARGIN})")
    if task == "generate":
        notes["prompt_attempt"] = attempt
    for key, value in out.items():
        check(bool(torch.isfinite(value.float()).all()), f"{name}: {key} is not finite")

    # independent checks
    note = verify_outputs(name, cfg, layout, spec, tensors, ids, mask, out, notes, loaded, st)

    ref = {"input_ids": ids, "attention_mask": mask}
    ref.update(out)
    arrays = {k: v.contiguous().numpy() for k, v in ref.items()}
    dtypes_out = {k: ("I64" if a.dtype == np.int64 else "F32") for k, a in arrays.items()}
    metadata = {"model": name, "architecture": arch, "task": task,
                "model_type": cfg["model_type"], "torch_dtype": cfg["torch_dtype"],
                "compute_dtype": "float32", "tokenizer": info.name, "layout": layout}
    for role in ("bos", "eos", "pad"):
        if f"{role}_token_id" in cfg and cfg[f"{role}_token_id"] is not None:
            metadata[f"{role}_token_id"] = cfg[f"{role}_token_id"]
    metadata.update({k: f"{v:.6g}" for k, v in notes.items()})
    ref_file = f"{name}.safetensors"
    write_safetensors(os.path.join(tmp_ref, ref_file), arrays, metadata=metadata,
                      dtypes=dtypes_out)
    read_back, meta_back = read_safetensors(os.path.join(tmp_ref, ref_file))
    check(all(np.array_equal(read_back[k], arrays[k]) for k in arrays) and
          meta_back["model"] == name, f"{name}: reference re-read differs")

    entry = {"architecture": arch, "model_type": cfg["model_type"], "task": task,
             "torch_dtype": cfg["torch_dtype"], "tokenizer": info.name, "layout": layout,
             "parameters": count, "weight_files": weight_files,
             "files": relative_files(tmp, folder), "reference": ref_file}
    if empty_dirs:
        entry["empty_dirs"] = empty_dirs
    ref_entry = {"file": ref_file, "architecture": arch, "task": task,
                 "tensors": {k: [dtypes_out[k], list(a.shape)] for k, a in arrays.items()},
                 "metadata": metadata, "note": note}
    return entry, ref_entry


# ---------------------------------------------------------------------------
# checks of the reference outputs


def greedy_is_clear(out, notes):
    import torch
    rows = out["greedy_ids"].tolist()
    return (notes["greedy_min_margin"] >= MIN_GREEDY_MARGIN
            and all(len(set(r)) >= MIN_DISTINCT_GREEDY for r in rows)
            and not torch.equal(out["greedy_ids"][0], out["greedy_ids"][1]))


def verify_outputs(name, cfg, layout, spec, tensors, ids, mask, out, notes, module, st):
    """Cross-checks with the loop-based float64 implementations below; returns a note."""
    import torch
    task = spec["task"]
    prefix = {"prefixed": {"bert": "bert.", "xlm-roberta": "roberta.", "roberta": "roberta.",
                           "distilbert": "distilbert."}.get(cfg["model_type"], ""),
              "bare": ""}[layout]
    w = {k: v.astype(np.float64) for k, v in tensors.items()}
    if task == "generate":
        # greedy consistency: step 0 is the argmax of the prompt's last logits
        first = out["logits"][:, -1].argmax(dim=-1)
        check(torch.equal(first, out["greedy_ids"][:, 0]), f"{name}: greedy step 0 != argmax")
        for row in range(2):
            distinct = len(set(out["greedy_ids"][row].tolist()))
            check(distinct >= MIN_DISTINCT_GREEDY,
                  f"{name}: greedy row {row} has only {distinct} distinct tokens")
        check(not torch.equal(out["greedy_ids"][0], out["greedy_ids"][1]),
              f"{name}: both greedy rows are equal")
        check(notes["greedy_min_margin"] >= MIN_GREEDY_MARGIN,
              f"{name}: a greedy step is nearly tied ({notes['greedy_min_margin']:.2e})")
        # causal: changing the last prompt token leaves the earlier logits alone
        changed = ids.clone()
        changed[:, -1] = ids[:, 0]
        with torch.no_grad():
            other = module(changed)
        check(torch.allclose(other[:, :-1], out["logits"][:, :-1], rtol=1e-5, atol=1e-5),
              f"{name}: not causal")
        # the naive float64 forward over prompt + greedy ids gives every greedy token
        full = torch.cat([ids, out["greedy_ids"]], dim=1)
        naive = (naive_gpt2 if cfg["model_type"] == "gpt2" else naive_decoder)(cfg, w, full)
        diff = float(np.abs(naive[:, :PROMPT_LENGTH] - out["logits"].numpy()).max())
        scale = float(np.abs(naive).max())
        check(diff <= 2e-4 * max(1.0, scale), f"{name}: logits differ from the float64 loop "
                                              f"implementation by {diff:.2e}")
        steps = naive[:, PROMPT_LENGTH - 1:-1].argmax(axis=-1)
        check(np.array_equal(steps, out["greedy_ids"].numpy()),
              f"{name}: the float64 implementation's greedy tokens differ")
        notes["fp64_max_abs_diff"] = diff
        if "rope_inv_freq" in out:
            want = naive_inv_freq(cfg)
            got = out["rope_inv_freq"].numpy().astype(np.float64)
            check(np.allclose(got, want, rtol=1e-6, atol=0), f"{name}: inv_freq {got} != {want}")
        return (f"greedy: {min(len(set(r)) for r in out['greedy_ids'].tolist())}+ distinct, "
                f"margin {notes['greedy_min_margin']:.3f}; float64 diff {diff:.1e}")
    # encoders
    if cfg["model_type"] == "distilbert":
        hidden = naive_distilbert(cfg, w, prefix, ids, mask)
    else:
        hidden = naive_bert(cfg, w, prefix, ids, mask, roberta=cfg["model_type"] != "bert")
    diff = float(np.abs(hidden - out["last_hidden_state"].numpy()).max())
    check(diff <= 1e-4, f"{name}: last_hidden_state differs from the float64 loop "
                        f"implementation by {diff:.2e}")
    notes["fp64_max_abs_diff"] = diff
    # padding: the real positions of row 1 equal a run on those tokens alone
    real = int(mask[1].sum())
    with torch.no_grad():
        alone = module(ids[1:, :real], mask[1:, :real])
        alone = alone["last_hidden_state"] if isinstance(alone, dict) else alone
    pad_diff = float((alone[0] - out["last_hidden_state"][1, :real]).abs().max())
    check(pad_diff < 1e-4, f"{name}: padding changes the real positions by {pad_diff:.2e}")
    note = f"float64 diff {diff:.1e}, padding-invariant within {pad_diff:.1e}"
    if task == "classify":
        pooled = np.tanh(hidden[:, 0] @ w[prefix + "pooler.dense.weight"].T
                         + w[prefix + "pooler.dense.bias"])
        logits = pooled @ w["classifier.weight"].T + w["classifier.bias"]
        d = float(np.abs(logits - out["logits"].numpy()).max())
        check(d < 1e-4, f"{name}: logits differ from the float64 head by {d:.2e}")
        rows = ["[" + ", ".join(f"{v:.3f}" for v in r) + "]" for r in out["logits"].tolist()]
        note += f"; logits {', '.join(rows)}"
    if task == "embed":
        m = mask.numpy().astype(np.float64)[:, :, None]
        mean = (hidden * m).sum(axis=1) / m.sum(axis=1)
        emb = mean / np.linalg.norm(mean, axis=1, keepdims=True)
        d = float(np.abs(emb - out["embeddings"].numpy()).max())
        check(d < 1e-5, f"{name}: embeddings differ from the float64 pooling by {d:.2e}")
        cos = float((out["embeddings"][0] * out["embeddings"][1]).sum())
        note += f"; cosine(row 0, row 1) {cos:.3f}"
    return note


# Loop-based float64 implementations, from the raw checkpoint tensors (numpy).
# Written separately from hf_native.py: per head, per position, explicit formulas.


def _erf_gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def _tanh_gelu(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def _layer_norm(x, weight, bias, eps):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * weight + bias


def _softmax(scores):
    e = np.exp(scores - scores.max())
    return e / e.sum()


def _self_attention(q, k, v, heads, allowed):
    """q [S, H*d], k/v [S, KV*d]; query head i uses kv head i // (H / KV);
    allowed(i, j) says whether query i sees key j."""
    s = q.shape[0]
    d = q.shape[1] // heads
    kv_heads = k.shape[1] // d
    out = np.zeros_like(q)
    for head in range(heads):
        kvh = head // (heads // kv_heads)
        qh, kh, vh = (q[:, head * d:(head + 1) * d], k[:, kvh * d:(kvh + 1) * d],
                      v[:, kvh * d:(kvh + 1) * d])
        for i in range(s):
            keys = [j for j in range(s) if allowed(i, j)]
            p = _softmax(np.array([qh[i] @ kh[j] for j in keys]) / math.sqrt(d))
            out[i, head * d:(head + 1) * d] = sum(pj * vh[j] for pj, j in zip(p, keys))
    return out


def naive_bert(cfg, w, p, ids, mask, roberta):
    eps, heads = cfg["layer_norm_eps"], cfg["num_attention_heads"]
    outs = []
    for row, mrow in zip(ids.tolist(), mask.tolist()):
        if roberta:                      # real tokens count from pad+1, padding gets pad
            pad, count, positions = cfg["pad_token_id"], 0, []
            for t in row:
                count += t != pad
                positions.append(pad + count if t != pad else pad)
        else:
            positions = list(range(len(row)))
        x = (w[p + "embeddings.word_embeddings.weight"][row]
             + w[p + "embeddings.position_embeddings.weight"][positions]
             + w[p + "embeddings.token_type_embeddings.weight"][0])
        x = _layer_norm(x, w[p + "embeddings.LayerNorm.weight"], w[p + "embeddings.LayerNorm.bias"],
                        eps)

        def lin(name, v):
            return v @ w[name + ".weight"].T + w[name + ".bias"]
        for i in range(cfg["num_hidden_layers"]):
            lp = f"{p}encoder.layer.{i}."
            a = _self_attention(lin(lp + "attention.self.query", x),
                                lin(lp + "attention.self.key", x),
                                lin(lp + "attention.self.value", x), heads,
                                lambda qi, kj: mrow[kj] == 1)
            x = _layer_norm(lin(lp + "attention.output.dense", a) + x,
                            w[lp + "attention.output.LayerNorm.weight"],
                            w[lp + "attention.output.LayerNorm.bias"], eps)
            f = lin(lp + "output.dense", _erf_gelu(lin(lp + "intermediate.dense", x)))
            x = _layer_norm(f + x, w[lp + "output.LayerNorm.weight"],
                            w[lp + "output.LayerNorm.bias"], eps)
        outs.append(x)
    return np.stack(outs)


def naive_distilbert(cfg, w, p, ids, mask):
    heads, outs = cfg["n_heads"], []
    for row, mrow in zip(ids.tolist(), mask.tolist()):
        x = (w[p + "embeddings.word_embeddings.weight"][row]
             + w[p + "embeddings.position_embeddings.weight"][list(range(len(row)))])
        x = _layer_norm(x, w[p + "embeddings.LayerNorm.weight"], w[p + "embeddings.LayerNorm.bias"],
                        1e-12)

        def lin(name, v):
            return v @ w[name + ".weight"].T + w[name + ".bias"]
        for i in range(cfg["n_layers"]):
            lp = f"{p}transformer.layer.{i}."
            a = _self_attention(lin(lp + "attention.q_lin", x), lin(lp + "attention.k_lin", x),
                                lin(lp + "attention.v_lin", x), heads,
                                lambda qi, kj: mrow[kj] == 1)
            x = _layer_norm(lin(lp + "attention.out_lin", a) + x, w[lp + "sa_layer_norm.weight"],
                            w[lp + "sa_layer_norm.bias"], 1e-12)
            f = lin(lp + "ffn.lin2", _erf_gelu(lin(lp + "ffn.lin1", x)))
            x = _layer_norm(f + x, w[lp + "output_layer_norm.weight"],
                            w[lp + "output_layer_norm.bias"], 1e-12)
        outs.append(x)
    return np.stack(outs)


def naive_gpt2(cfg, w, ids):
    e, eps, heads, outs = cfg["n_embd"], cfg["layer_norm_epsilon"], cfg["n_head"], []
    for row in ids.tolist():
        x = w["wte.weight"][row] + w["wpe.weight"][list(range(len(row)))]

        def conv(name, v):                  # Conv1D: weight [in, out]
            return v @ w[name + ".weight"] + w[name + ".bias"]
        for i in range(cfg["n_layer"]):
            lp = f"h.{i}."
            hdn = _layer_norm(x, w[lp + "ln_1.weight"], w[lp + "ln_1.bias"], eps)
            qkv = conv(lp + "attn.c_attn", hdn)
            a = _self_attention(qkv[:, :e], qkv[:, e:2 * e], qkv[:, 2 * e:], heads,
                                lambda qi, kj: kj <= qi)
            x = x + conv(lp + "attn.c_proj", a)
            hdn = _layer_norm(x, w[lp + "ln_2.weight"], w[lp + "ln_2.bias"], eps)
            x = x + conv(lp + "mlp.c_proj", _tanh_gelu(conv(lp + "mlp.c_fc", hdn)))
        x = _layer_norm(x, w["ln_f.weight"], w["ln_f.bias"], eps)
        outs.append(x @ w["wte.weight"].T)
    return np.stack(outs)


def naive_inv_freq(cfg):
    """float64 inverse frequencies, written from the formulas (one value at a time)."""
    hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    theta = cfg.get("rope_theta", 10000.0)
    sc = cfg.get("rope_scaling") or {}
    kind = sc.get("rope_type", sc.get("type", "default"))
    out = []
    for i in range(hd // 2):
        f = 1.0 / theta ** (2 * i / hd)
        if kind == "linear":
            f /= sc["factor"]
        elif kind == "llama3":
            wavelen = 2 * math.pi / f
            low_wl = sc["original_max_position_embeddings"] / sc["low_freq_factor"]
            high_wl = sc["original_max_position_embeddings"] / sc["high_freq_factor"]
            if wavelen < high_wl:
                pass                                         # high frequency: unchanged
            elif wavelen > low_wl:
                f /= sc["factor"]                            # low frequency: / factor
            else:
                smooth = ((sc["original_max_position_embeddings"] / wavelen - sc["low_freq_factor"])
                          / (sc["high_freq_factor"] - sc["low_freq_factor"]))
                f = (1 - smooth) * f / sc["factor"] + smooth * f
        out.append(f)
    return np.array(out)


def naive_decoder(cfg, w, ids):
    heads = cfg["num_attention_heads"]
    hd = cfg.get("head_dim") or cfg["hidden_size"] // heads
    eps, half = cfg["rms_norm_eps"], hd // 2
    inv = naive_inv_freq(cfg)
    tied = cfg.get("tie_word_embeddings")
    lm_head = w["model.embed_tokens.weight"] if tied else w["lm_head.weight"]

    def rms(v, weight):
        return v / np.sqrt((v ** 2).mean(axis=-1, keepdims=True) + eps) * weight

    def lin(name, v):
        y = v @ w[name + ".weight"].T
        return y + w[name + ".bias"] if name + ".bias" in w else y

    def rotate(m):
        """Each head's pair (j, j + hd/2) rotated by position * inv[j] (rotate_half)."""
        out = m.copy()
        for pos in range(m.shape[0]):
            for h0 in range(0, m.shape[1], hd):
                for j in range(half):
                    a, b = m[pos, h0 + j], m[pos, h0 + j + half]
                    c, s = math.cos(pos * inv[j]), math.sin(pos * inv[j])
                    out[pos, h0 + j] = a * c - b * s
                    out[pos, h0 + j + half] = b * c + a * s
        return out

    outs = []
    for row in ids.tolist():
        x = w["model.embed_tokens.weight"][row]
        for i in range(cfg["num_hidden_layers"]):
            lp = f"model.layers.{i}."
            hdn = rms(x, w[lp + "input_layernorm.weight"])
            q = rotate(lin(lp + "self_attn.q_proj", hdn))
            k = rotate(lin(lp + "self_attn.k_proj", hdn))
            v = lin(lp + "self_attn.v_proj", hdn)
            x = x + lin(lp + "self_attn.o_proj",
                        _self_attention(q, k, v, heads, lambda qi, kj: kj <= qi))
            hdn = rms(x, w[lp + "post_attention_layernorm.weight"])
            gate = lin(lp + "mlp.gate_proj", hdn)
            silu = gate / (1 + np.exp(-gate))
            x = x + lin(lp + "mlp.down_proj", silu * lin(lp + "mlp.up_proj", hdn))
        outs.append(rms(x, w["model.norm.weight"]) @ lm_head.T)
    return np.stack(outs)
