#!/usr/bin/python3
"""Verifies a model repository written by generate.py.

    /usr/bin/python3 tools/zoo/check_zoo.py DIR

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
from safetensors_io import SafetensorsError, read_index, read_safetensors  # noqa: E402

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


def main(argv):
    if len(argv) != 1:
        print("usage: check_zoo.py DIR", file=sys.stderr)
        return 2
    root = argv[0]
    try:
        with open(os.path.join(root, "zoo.json"), encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        print(f"check_zoo: FAIL: cannot read {root}/zoo.json: {e}", file=sys.stderr)
        return 1
    failures = 0
    for key in ("profile", "generator_version", "source_hash", "models"):
        if key not in manifest:
            print(f"check_zoo: FAIL: zoo.json has no {key}", file=sys.stderr)
            failures += 1
    models = manifest.get("models") or {}
    if not models:
        print("check_zoo: FAIL: zoo.json lists no models", file=sys.stderr)
        failures += 1
    on_disk = sorted(e for e in os.listdir(root) if os.path.isdir(os.path.join(root, e)))
    if on_disk != sorted(models):
        print(f"check_zoo: FAIL: model folders {on_disk} != manifest {sorted(models)}",
              file=sys.stderr)
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
    if failures:
        print(f"check_zoo: {failures} problem(s) in {root}", file=sys.stderr)
        return 1
    print(f"check_zoo: {root}: {len(models)} models ok ({manifest['profile']} profile)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
