#!/usr/bin/python3
"""Verifies a model repository written by generate.py.

    /usr/bin/python3 tools/zoo/check_zoo.py DIR [--hf-reference RDIR]

DIR holds a zoo (zoo.json), Hugging Face-only folders (hf_zoo.json, written by
generate.py --hf-out), or both; its model folders must be exactly those the
manifests list.

Checks, for every model of DIR/zoo.json:
  - the listed files exist and are all the files of the model's folder;
  - config.yaml uses only the fields of include/modelgrid/repository.h, with
    KServe datatype names and the platform that fits the model's kind;
  - the TorchScript 1/model.pt loads, has the manifest's parameter count and
    buffer bytes, runs at batch 1 and gives outputs of the declared shapes and
    datatypes (and so do the tasks' methods);
  - Hugging Face folders: config.json gives the manifest's parameter count by
    formula; the safetensors are well formed (strict reader), consistent with the
    index (sharded), hold exactly Hugging Face's tensor names and the same values
    as the TorchScript module;
  - digits: the accuracy re-measured on test_set.json with the saved TorchScript
    equals the recorded one (and is at least 0.9);
  - echo_image: the output at batch 2 equals each channel's mean computed here
    in float64.
and for every model of DIR/hf_zoo.json (see check_hf_only):
  - the folder holds exactly the listed files (no config.yaml, no model.pt);
  - config.json has the manifest's architecture, model_type, torch_dtype and the
    fields that model_type needs; the special token ids agree with the folder's
    tokenizer files and every token id is below vocab_size;
  - the safetensors are well formed (strict reader, index both ways, total_size),
    stored in torch_dtype, hold exactly Hugging Face's tensor names and as many
    values as config.json's formula gives;
  - sentence-transformers files (modules.json, 1_Pooling, 2_Normalize);
  - the reference file (RDIR, default DIR/<hf_zoo.json reference_dir>) has the
    schema of README.md, and its outputs are recomputed from the folder with
    hf_native.py (float32) and cross-checked with hf_zoo.py's float64 loop
    implementation (greedy ids exactly equal).
Prints one line per model and exits 1 with the reasons on any mismatch.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

import hf_models  # noqa: E402
from safetensors_io import (SafetensorsError, read_header, read_index,  # noqa: E402
                            read_safetensors)

CONFIG_FIELDS = {"platform", "max_batch_size", "sequence_length", "inputs", "outputs",
                 "memory", "devices", "replicas", "priority", "resolver",
                 "latency_sensitive", "expected_load", "dynamic_batching", "tasks"}
TENSOR_FIELDS = {"name", "datatype", "dims"}
KSERVE_DTYPES = {"BOOL": torch.bool, "UINT8": torch.uint8, "INT8": torch.int8,
                 "INT16": torch.int16, "INT32": torch.int32, "INT64": torch.int64,
                 "FP16": torch.float16, "BF16": torch.bfloat16, "FP32": torch.float32,
                 "FP64": torch.float64, "UINT16": None, "UINT32": None, "UINT64": None,
                 "BYTES": None}
PLATFORMS = {"vision": "pytorch_torchscript", "classifier": "pytorch_torchscript",
             "gpt2": "huggingface", "bert": "huggingface", "echo": "pytorch_torchscript"}
TEST_TOKENS = 8      # the length of a -1 (variable) dimension in the batch-1 run


class Mismatch(Exception):
    pass


def expect(cond, message):
    if not cond:
        raise Mismatch(message)


def load_config_yaml(path):
    with open(path, encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    expect(isinstance(cfg, dict), f"{path}: not a mapping")
    unknown = set(cfg) - CONFIG_FIELDS
    expect(not unknown, f"{path}: unknown fields {sorted(unknown)}")
    for key in ("inputs", "outputs"):
        expect(isinstance(cfg.get(key), list) and cfg[key], f"{path}: no {key}")
        for spec in cfg[key]:
            expect(isinstance(spec, dict) and set(spec) == TENSOR_FIELDS,
                   f"{path}: {key} entry {spec!r} must have exactly {sorted(TENSOR_FIELDS)}")
            expect(spec["datatype"] in KSERVE_DTYPES,
                   f"{path}: {spec['name']}: datatype {spec['datatype']} is not a KServe name")
            expect(isinstance(spec["dims"], list) and all(
                isinstance(d, int) and (d > 0 or d == -1) for d in spec["dims"]),
                f"{path}: {spec['name']}: bad dims {spec['dims']!r}")
    expect(isinstance(cfg.get("max_batch_size"), int) and cfg["max_batch_size"] >= 0,
           f"{path}: bad max_batch_size")
    return cfg


def example_input(spec, vocab):
    shape = [1] + [TEST_TOKENS if d == -1 else d for d in spec["dims"]]
    gen = torch.Generator().manual_seed(0)
    dtype = KSERVE_DTYPES[spec["datatype"]]
    if dtype == torch.int64:
        expect(vocab is not None, f"{spec['name']}: INT64 input without a vocabulary")
        return torch.randint(0, vocab, shape, generator=gen)
    expect(dtype == torch.float32, f"{spec['name']}: unexpected input datatype")
    return torch.rand(shape, generator=gen)


def check_output(out, spec, what):
    expect(isinstance(out, torch.Tensor), f"{what}: returns {type(out).__name__}, not a tensor")
    want = [1] + [TEST_TOKENS if d == -1 else d for d in spec["dims"]]
    expect(list(out.shape) == want, f"{what}: output shape {list(out.shape)}, config.yaml "
                                    f"declares {want} (batch 1, {TEST_TOKENS} tokens)")
    expect(out.dtype == KSERVE_DTYPES[spec["datatype"]],
           f"{what}: output dtype {out.dtype}, config.yaml declares {spec['datatype']}")
    expect(bool(torch.isfinite(out).all()), f"{what}: output is not finite")


def check_hf(root, name, entry, module):
    folder = os.path.join(root, name)
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    expect(cfg.get("torch_dtype") == "float32", f"config.json: torch_dtype {cfg.get('torch_dtype')}")
    if entry["kind"] == "gpt2":
        expect(cfg.get("model_type") == "gpt2" and cfg.get("architectures") == ["GPT2LMHeadModel"],
               "config.json: not a GPT2LMHeadModel")
        count, names = hf_models.gpt2_parameter_count(cfg), hf_models.gpt2_tensor_names(cfg)
    else:
        expect(cfg.get("model_type") == "bert" and cfg.get("architectures") == ["BertModel"],
               "config.json: not a BertModel")
        count, names = hf_models.bert_parameter_count(cfg), hf_models.bert_tensor_names(cfg)
    expect(count == entry["parameters"], f"config.json formula gives {count} parameters, "
                                         f"manifest says {entry['parameters']}")
    index = os.path.join(folder, "model.safetensors.index.json")
    try:
        if os.path.exists(index):
            weight_map, shards = read_index(index)
        else:
            shards = [os.path.join(folder, "model.safetensors")]
            weight_map = None
        tensors = {}
        for shard in shards:
            read, metadata = read_safetensors(shard)
            expect(metadata == {"format": "pt"}, f"{shard}: __metadata__ {metadata}")
            for key, array in read.items():
                expect(key not in tensors, f"tensor {key} in two files")
                tensors[key] = array
    except SafetensorsError as e:
        raise Mismatch(str(e)) from e
    if entry["kind"] == "gpt2":
        expect(weight_map is not None and len(shards) == 2, "gpt2: expected 2 shards and an index")
    expect(sorted(tensors) == sorted(names), "safetensors tensor names differ from Hugging "
           f"Face's: extra {sorted(set(tensors) - set(names))[:3]}, "
           f"missing {sorted(set(names) - set(tensors))[:3]}")
    numel = sum(a.size for a in tensors.values())
    expect(numel == entry["parameters"], f"safetensors hold {numel} values, manifest says "
                                         f"{entry['parameters']}")
    state = module.state_dict()
    expect(sorted(state) == sorted(names), "TorchScript parameter names differ from the safetensors")
    for key in names:
        expect(tensors[key].dtype == np.float32 and np.array_equal(
            tensors[key], state[key].numpy()), f"tensor {key}: safetensors and TorchScript differ")
    return cfg


def check_digits(root, name, module):
    with open(os.path.join(root, name, "test_set.json"), encoding="utf-8") as f:
        test = json.load(f)
    count = test["count"]
    expect(len(test["inputs"]) == count == len(test["labels"]),
           f"test_set.json: count {count}, {len(test['inputs'])} inputs, "
           f"{len(test['labels'])} labels")
    with torch.no_grad():
        logits = module(torch.tensor(test["inputs"], dtype=torch.float32))
    correct = int((logits.argmax(dim=1) == torch.tensor(test["labels"])).sum())
    expect(correct == test["correct"], f"re-measured {correct} correct, recorded {test['correct']}")
    expect(test["test_accuracy"] == correct / count,
           f"recorded accuracy {test['test_accuracy']} != {correct}/{count}")
    expect(correct / count >= 0.9, f"accuracy {correct / count:.4f} < 0.9")
    return correct / count


def check_echo(module, spec):
    """The forward is the per-channel mean: compared at batch 2 with numpy's float64 mean."""
    gen = torch.Generator().manual_seed(1)
    x = torch.rand([2] + spec["dims"], generator=gen)
    with torch.no_grad():
        out = module(x).numpy()
    want = x.numpy().astype(np.float64).reshape(2, spec["dims"][0], -1).mean(axis=2)
    expect(out.shape == want.shape, f"echo: output shape {out.shape}, expected {want.shape}")
    diff = float(np.abs(out - want).max())
    expect(diff < 1e-5, f"echo: output differs from the channel means by {diff}")
    return diff


def check_model(root, name, entry):
    folder = os.path.join(root, name)
    expect(entry.get("kind") in PLATFORMS, f"unknown kind {entry.get('kind')}")
    present = sorted(os.path.relpath(os.path.join(d, f), root)
                     for d, _, files in os.walk(folder) for f in files)
    expect(present == sorted(entry["files"]),
           f"files on disk {present} differ from the manifest's {sorted(entry['files'])}")
    cfg = load_config_yaml(os.path.join(folder, "config.yaml"))
    expect(cfg.get("platform") == PLATFORMS[entry["kind"]],
           f"config.yaml: platform {cfg.get('platform')}, expected {PLATFORMS[entry['kind']]}")
    in_dims = cfg["inputs"][0]["dims"]
    expect(in_dims == entry["input_shape"],
           f"config.yaml input dims {in_dims} != manifest input_shape {entry['input_shape']}")

    module = torch.jit.load(os.path.join(folder, "1", "model.pt"))
    params = sum(p.numel() for p in module.parameters())
    expect(params == entry["parameters"],
           f"TorchScript has {params} parameters, manifest says {entry['parameters']}")
    buf = sum(b.numel() * b.element_size() for b in module.buffers())
    expect(buf == entry["buffers_bytes"],
           f"TorchScript has {buf} buffer bytes, manifest says {entry['buffers_bytes']}")

    vocab = None
    note = ""
    if entry["kind"] in ("gpt2", "bert"):
        hf_cfg = check_hf(root, name, entry, module)
        vocab = hf_cfg["vocab_size"]
        expect(isinstance(cfg.get("sequence_length"), int), "config.yaml: no sequence_length")
    with torch.no_grad():
        x = example_input(cfg["inputs"][0], vocab)
        check_output(module(x), cfg["outputs"][0], "forward")
        for task, method in (cfg.get("tasks") or {}).items():
            expect(hasattr(module, method), f"task {task}: no method {method}")
            out = getattr(module, method)(x)
            expect(isinstance(out, torch.Tensor) and out.dim() >= 1 and out.shape[0] == 1
                   and out.dtype == torch.float32 and bool(torch.isfinite(out).all()),
                   f"task {task}: bad output")
            note += f", task {task} -> {list(out.shape)}"
    if entry["kind"] == "classifier":
        note += f", test accuracy {check_digits(root, name, module):.4f}"
    if entry["kind"] == "echo":
        note += f", channel means within {check_echo(module, cfg['inputs'][0]):.1e}"
    return f"{params:,} parameters{note}"


# ---------------------------------------------------------------------------
# Hugging Face-only folders (generate.py --hf-out; tools/zoo/hf_zoo.py)

HF_REQUIRED = {   # config.json fields a loader needs, per model_type
    "llama": ["hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers",
              "num_key_value_heads", "rms_norm_eps", "rope_theta", "max_position_embeddings",
              "tie_word_embeddings", "hidden_act", "bos_token_id", "eos_token_id"],
    "qwen2": ["hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers",
              "num_key_value_heads", "rms_norm_eps", "rope_theta", "max_position_embeddings",
              "tie_word_embeddings", "hidden_act", "bos_token_id", "eos_token_id",
              "use_sliding_window"],
    "mistral": ["hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers",
                "num_key_value_heads", "rms_norm_eps", "rope_theta", "max_position_embeddings",
                "tie_word_embeddings", "hidden_act", "bos_token_id", "eos_token_id",
                "sliding_window"],
    "gpt2": ["n_embd", "n_layer", "n_head", "n_positions", "layer_norm_epsilon",
             "activation_function", "bos_token_id", "eos_token_id"],
    "bert": ["hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers",
             "layer_norm_eps", "max_position_embeddings", "type_vocab_size", "hidden_act",
             "pad_token_id", "position_embedding_type"],
    "xlm-roberta": ["hidden_size", "intermediate_size", "num_attention_heads",
                    "num_hidden_layers", "layer_norm_eps", "max_position_embeddings",
                    "type_vocab_size", "hidden_act", "pad_token_id", "bos_token_id",
                    "eos_token_id"],
    "distilbert": ["dim", "hidden_dim", "n_heads", "n_layers", "max_position_embeddings",
                   "activation", "pad_token_id", "sinusoidal_pos_embds"],
}
HF_COMMON = ["architectures", "model_type", "torch_dtype", "vocab_size", "transformers_version"]
HF_OUTPUTS = {   # task -> reference tensors besides input_ids / attention_mask
    "generate": {"logits", "greedy_ids"},
    "classify": {"logits", "last_hidden_state"},
    "embed": {"embeddings", "last_hidden_state"},
    "infer": {"last_hidden_state"},
}


def check_hf_only(root, name, entry, ref_dir):
    import hf_native
    import hf_zoo
    folder = os.path.join(root, name)
    present = sorted(os.path.relpath(os.path.join(d, f), root)
                     for d, _, files in os.walk(folder) for f in files)
    expect(present == sorted(entry["files"]),
           f"files on disk {present} differ from the manifest's {sorted(entry['files'])}")
    expect(not any(p.endswith(("config.yaml", "model.pt")) for p in present),
           "a Hugging Face-only folder holds config.yaml or model.pt")
    for d in entry.get("empty_dirs", []):
        expect(os.path.isdir(os.path.join(root, d)), f"folder {d} is missing")
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    missing = [k for k in HF_COMMON + HF_REQUIRED.get(cfg.get("model_type"), ["?"])
               if k not in cfg]
    expect(not missing, f"config.json lacks {missing}")
    expect(cfg["architectures"] == [entry["architecture"]] and cfg["model_type"] ==
           entry["model_type"] and cfg["torch_dtype"] == entry["torch_dtype"],
           f"config.json says {cfg['architectures']} {cfg['model_type']} {cfg['torch_dtype']}, "
           f"manifest {entry['architecture']} {entry['model_type']} {entry['torch_dtype']}")
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        text = f.read()
    expect(list(json.loads(text)) == sorted(cfg), "config.json keys are not sorted")

    # tokenizer files vs config.json
    tok = entry["tokenizer"]
    info = hf_zoo.TokenizerInfo(folder, tok)
    expect(info.size <= cfg["vocab_size"], f"tokenizer has {info.size} ids, vocab_size "
                                           f"{cfg['vocab_size']}")
    expect(cfg["vocab_size"] == hf_zoo.TOKENIZERS[tok][0],
           f"vocab_size {cfg['vocab_size']} != the real {tok} size {hf_zoo.TOKENIZERS[tok][0]}")
    for role in ("bos", "eos", "pad"):
        key = f"{role}_token_id"
        if cfg.get(key) is not None:
            expect(info.special.get(role) == cfg[key],
                   f"config.json {key} {cfg[key]} != tokenizer's {info.special.get(role)}")

    # weights
    count = hf_native.parameter_count(cfg)
    expect(count == entry["parameters"], f"config.json formula gives {count} parameters, "
                                         f"manifest says {entry['parameters']}")
    index = os.path.join(folder, "model.safetensors.index.json")
    try:
        if os.path.exists(index):
            weight_map, shards = read_index(index)
            n = len(shards)
            expect([os.path.basename(p) for p in shards] ==
                   [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)],
                   f"shard names {[os.path.basename(p) for p in shards]}")
        else:
            shards = [os.path.join(folder, "model.safetensors")]
        dtypes, numel = {}, 0
        for shard in shards:
            header, metadata, _ = read_header(shard)
            expect(metadata == {"format": "pt"}, f"{shard}: __metadata__ {metadata}")
            for key, info_t in header.items():
                expect(key not in dtypes, f"tensor {key} in two files")
                dtypes[key] = info_t["dtype"]
                numel += int(np.prod(info_t["shape"], dtype=np.int64))
    except SafetensorsError as e:
        raise Mismatch(str(e)) from e
    want_dtype = hf_zoo.STORAGE[cfg["torch_dtype"]]
    expect(set(dtypes.values()) == {want_dtype},
           f"tensor dtypes {sorted(set(dtypes.values()))}, torch_dtype says {want_dtype}")
    names = hf_native.tensor_names(cfg, entry["layout"])
    expect(sorted(dtypes) == sorted(names), "safetensors tensor names differ from Hugging "
           f"Face's: extra {sorted(set(dtypes) - set(names))[:3]}, "
           f"missing {sorted(set(names) - set(dtypes))[:3]}")
    expect(numel == count, f"safetensors hold {numel} values, formula gives {count}")

    # sentence-transformers
    st = None
    if os.path.exists(os.path.join(folder, "modules.json")):
        st = {}
        for rel in ("modules.json", "1_Pooling/config.json", "sentence_bert_config.json",
                    "config_sentence_transformers.json"):
            with open(os.path.join(folder, rel), encoding="utf-8") as f:
                st[rel] = json.load(f)
        types = [(m["path"], m["type"].rsplit(".", 1)[-1]) for m in st["modules.json"]]
        expect(types == [("", "Transformer"), ("1_Pooling", "Pooling"),
                         ("2_Normalize", "Normalize")], f"modules.json: {types}")
        pooling = st["1_Pooling/config.json"]
        expect(pooling["word_embedding_dimension"] == cfg["hidden_size"],
               "1_Pooling word_embedding_dimension != hidden_size")
        expect(os.path.isdir(os.path.join(folder, "2_Normalize")), "no 2_Normalize folder")

    # the reference
    ref_path = os.path.join(ref_dir, entry["reference"])
    try:
        ref, meta = read_safetensors(ref_path)
    except (OSError, SafetensorsError) as e:
        raise Mismatch(f"reference: {e}") from e
    task = entry["task"]
    expect(meta.get("model") == name and meta.get("architecture") == entry["architecture"]
           and meta.get("task") == task, f"reference metadata {meta}")
    expect({"input_ids", "attention_mask"} | HF_OUTPUTS[task] <= set(ref),
           f"reference tensors {sorted(ref)} lack some of {sorted(HF_OUTPUTS[task])}")
    s_len = hf_zoo.PROMPT_LENGTH
    expect(ref["input_ids"].dtype == np.int64 and ref["input_ids"].shape == (2, s_len) and
           ref["attention_mask"].dtype == np.int64 and ref["attention_mask"].shape == (2, s_len),
           "reference input_ids / attention_mask are not int64 [2, S]")
    expect(int(ref["input_ids"].max()) < cfg["vocab_size"], "reference ids past vocab_size")
    spec = {"task": task}
    ids = torch.from_numpy(ref["input_ids"].copy())
    mask = torch.from_numpy(ref["attention_mask"].copy())
    _, module, layout = hf_zoo.load_folder(folder)
    expect(layout == entry["layout"], f"layout {layout}, manifest says {entry['layout']}")
    torch.manual_seed(0)
    out, notes = hf_zoo.run_reference(cfg, module, layout, spec, ids, mask, st)
    worst = 0.0
    for key, value in out.items():
        expect(key in ref, f"reference lacks {key}")
        got = ref[key]
        want = value.numpy()
        expect(got.shape == want.shape and got.dtype == want.dtype,
               f"reference {key}: {got.dtype} {list(got.shape)}, recomputed {want.dtype} "
               f"{list(want.shape)}")
        if got.dtype == np.int64:
            expect(np.array_equal(got, want), f"reference {key} differs from the recomputed one")
        else:
            diff = float(np.abs(got - want).max())
            expect(diff <= 1e-4 * max(1.0, float(np.abs(want).max())),
                   f"reference {key} differs from the recomputed one by {diff:.2e}")
            worst = max(worst, diff)
    tensors, _ = hf_zoo.read_folder_tensors(folder)
    file_out = {k: torch.from_numpy(ref[k].copy()) for k in out}
    try:
        note = hf_zoo.verify_outputs(name, cfg, layout, dict(spec), tensors, ids, mask, file_out,
                                     notes, module, st)
    except hf_zoo.HfZooError as e:
        raise Mismatch(str(e)) from e
    return (f"{count:,} parameters, {cfg['torch_dtype']}, {task}; reference recomputed within "
            f"{worst:.1e}; {note}")


def main(argv):
    args = list(argv)
    ref_override = None
    if "--hf-reference" in args:
        i = args.index("--hf-reference")
        if i + 1 >= len(args):
            print("usage: check_zoo.py DIR [--hf-reference RDIR]", file=sys.stderr)
            return 2
        ref_override = args[i + 1]
        del args[i:i + 2]
    if len(args) != 1:
        print("usage: check_zoo.py DIR [--hf-reference RDIR]", file=sys.stderr)
        return 2
    root = args[0]
    failures = 0
    manifest, hf_manifest = None, None
    if os.path.exists(os.path.join(root, "hf_zoo.json")):
        try:
            with open(os.path.join(root, "hf_zoo.json"), encoding="utf-8") as f:
                hf_manifest = json.load(f)
        except (OSError, ValueError) as e:
            print(f"check_zoo: FAIL: cannot read {root}/hf_zoo.json: {e}", file=sys.stderr)
            return 1
    if hf_manifest is None or os.path.exists(os.path.join(root, "zoo.json")):
        try:
            with open(os.path.join(root, "zoo.json"), encoding="utf-8") as f:
                manifest = json.load(f)
        except (OSError, ValueError) as e:
            print(f"check_zoo: FAIL: cannot read {root}/zoo.json: {e}", file=sys.stderr)
            return 1
    models = {}
    if manifest is not None:
        for key in ("profile", "generator_version", "source_hash", "models"):
            if key not in manifest:
                print(f"check_zoo: FAIL: zoo.json has no {key}", file=sys.stderr)
                failures += 1
        models = manifest.get("models") or {}
        if not models:
            print("check_zoo: FAIL: zoo.json lists no models", file=sys.stderr)
            failures += 1
    hf_models_ = {}
    if hf_manifest is not None:
        hf_models_ = hf_manifest.get("models") or {}
        if not hf_models_:
            print("check_zoo: FAIL: hf_zoo.json lists no models", file=sys.stderr)
            failures += 1
    on_disk = sorted(e for e in os.listdir(root) if os.path.isdir(os.path.join(root, e)))
    if on_disk != sorted(set(models) | set(hf_models_)):
        print(f"check_zoo: FAIL: model folders {on_disk} != manifest "
              f"{sorted(set(models) | set(hf_models_))}", file=sys.stderr)
        failures += 1
    for name, entry in models.items():
        try:
            print(f"ok    {name}: {check_model(root, name, entry)}", flush=True)
        except Mismatch as e:
            print(f"FAIL  {name}: {e}", file=sys.stderr, flush=True)
            failures += 1
        except Exception as e:  # a crash in torch.jit.load and the like
            print(f"FAIL  {name}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            failures += 1
    if hf_models_:
        ref_dir = ref_override or os.path.normpath(
            os.path.join(root, hf_manifest.get("reference_dir", "")))
        for name, entry in hf_models_.items():
            try:
                print(f"ok    {name}: {check_hf_only(root, name, entry, ref_dir)}", flush=True)
            except Mismatch as e:
                print(f"FAIL  {name}: {e}", file=sys.stderr, flush=True)
                failures += 1
            except Exception as e:  # noqa: BLE001
                print(f"FAIL  {name}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
                failures += 1
    if failures:
        print(f"check_zoo: {failures} problem(s) in {root}", file=sys.stderr)
        return 1
    profile = (manifest or hf_manifest)["profile"]
    parts = []
    if models:
        parts.append(f"{len(models)} models")
    if hf_models_:
        parts.append(f"{len(hf_models_)} Hugging Face-only folders")
    print(f"check_zoo: {root}: {' and '.join(parts)} ok ({profile} profile)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
