"""The model builders of the zoo generator (see generate.py).

Each make_* function builds one model under its own fixed seed, writes its
folder (model files, config.yaml) and checks what it wrote; it returns the
model's zoo.json entry (without "files").
"""

import json
import os
import warnings
import zlib

import numpy as np
import torch
import torchvision
from torch import nn

import hf_models
from safetensors_io import read_index, read_safetensors, write_safetensors

SEED = 1234

FULL_PARAMETERS = {           # published counts, asserted in the full profile
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "mobilenet_v3_small": 2_542_856,
    "vit_b_16": 86_567_656,
    "gpt2": 124_439_808,
    "bert-base": 109_482_240,
}


class ZooError(RuntimeError):
    zoo_error = True   # generate.py prints these without a traceback


def check(cond, message):
    if not cond:
        raise ZooError(message)


def seed_for(name):
    """A fixed seed per model, independent of the profile's model list and order."""
    seed = (SEED + zlib.crc32(name.encode())) % (2 ** 31)
    torch.manual_seed(seed)
    np.random.seed(seed)
    return seed


def parameter_count(module):
    return sum(p.numel() for p in module.parameters())


def buffers_bytes(module):
    return sum(b.numel() * b.element_size() for b in module.buffers())


def write_json(path, obj, indent=2):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=indent, sort_keys=False)
        f.write("\n")


def write_config_yaml(path, profile, platform, max_batch_size, inputs, outputs,
                      sequence_length=None, tasks=None):
    """config.yaml with only fields of include/modelgrid/repository.h.

    inputs/outputs: lists of (name, datatype, dims without the batch dimension).
    """
    lines = [f"# ModelGrid model config, written by tools/zoo/generate.py (profile {profile})",
             f"platform: {platform}",
             f"max_batch_size: {max_batch_size}"]
    if sequence_length is not None:
        lines.append(f"sequence_length: {sequence_length}")
    for key, specs in (("inputs", inputs), ("outputs", outputs)):
        lines.append(f"{key}:")
        for name, datatype, dims in specs:
            lines += [f"  - name: {name}",
                      f"    datatype: {datatype}",
                      f"    dims: [{', '.join(str(int(d)) for d in dims)}]"]
    if tasks:
        lines.append("tasks:")
        lines += [f"  {task}: {method}" for task, method in tasks.items()]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def assert_close(got, want, what, rtol=1e-4, atol=1e-5):
    check(got.shape == want.shape, f"{what}: shape {tuple(got.shape)} != {tuple(want.shape)}")
    if not torch.allclose(got, want, rtol=rtol, atol=atol):
        diff = (got - want).abs().max().item()
        raise ZooError(f"{what}: outputs differ from the eager module (max abs diff {diff})")


# ---------------------------------------------------------------------------
# 1. torchvision models, traced


def vision_spec(name, profile):
    """(constructor, input shape without batch, number of classes)."""
    if profile == "full":
        return (lambda: getattr(torchvision.models, name)(weights=None)), (3, 224, 224), 1000
    if name == "vit_b_16":
        return (lambda: torchvision.models.VisionTransformer(
            image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=64,
            mlp_dim=128, num_classes=10)), (3, 32, 32), 10
    return (lambda: getattr(torchvision.models, name)(weights=None)), (3, 64, 64), 1000


def make_vision(name, kind, profile, folder):
    build, shape, classes = vision_spec(name, profile)
    seed = seed_for(name)
    model = build().eval()
    params = parameter_count(model)
    if profile == "full":
        check(params == FULL_PARAMETERS[name],
              f"{name}: {params} parameters, expected {FULL_PARAMETERS[name]}")
    gen = torch.Generator().manual_seed(seed)
    example = torch.randn(2, *shape, generator=gen)
    path = os.path.join(folder, "1", "model.pt")
    os.makedirs(os.path.dirname(path))
    # The checks run the loaded module at batch 1 and 8 and compare with the
    # eager module at batch 1 only: matmuls are slow on this CPU (reference BLAS).
    with torch.no_grad():
        with warnings.catch_warnings():
            # torchvision's ViT asserts on the image size with torch._assert;
            # the tracer warns that the check becomes a constant. The batch size
            # stays dynamic (checked below at batch 1 and 8).
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            traced = torch.jit.trace(model, example, check_trace=False)
        torch.jit.save(traced, path)
        loaded = torch.jit.load(path)
        x8 = torch.randn(8, *shape, generator=gen)
        want = model(x8[:1])
        for batch in (1, 8):
            out = loaded(x8[:batch])
            check(tuple(out.shape) == (batch, classes),
                  f"{name}: output shape {tuple(out.shape)} at batch {batch}")
            assert_close(out[:1], want, f"{name} (batch {batch})")
    write_config_yaml(os.path.join(folder, "config.yaml"), profile, "pytorch_torchscript", 32,
                      [("input", "FP32", shape)], [("logits", "FP32", [classes])])
    return {"kind": "vision", "parameters": params, "buffers_bytes": buffers_bytes(model),
            "input_shape": list(shape)}


# ---------------------------------------------------------------------------
# 2. Hugging Face style folders


def split_shards(tensors, count):
    """Splits an ordered name->array mapping into `count` runs of about equal bytes."""
    total = sum(a.nbytes for a in tensors.values())
    shards = [dict() for _ in range(count)]
    done = 0
    for name, array in tensors.items():
        index = min(count - 1, int(done * count // total))
        shards[index][name] = array
        done += array.nbytes
    check(all(shards), "a shard came out empty")
    return shards


def verify_safetensors(folder, tensors, files):
    """Re-reads the written safetensors and compares every tensor with the module's."""
    seen = {}
    for file in files:
        read, metadata = read_safetensors(os.path.join(folder, file))
        check(metadata == {"format": "pt"}, f"{file}: __metadata__ {metadata}")
        for name, array in read.items():
            check(name not in seen, f"{name} written twice")
            seen[name] = array
    check(sorted(seen) == sorted(tensors), f"{folder}: tensor names differ after re-reading")
    for name, want in tensors.items():
        got = seen[name]
        check(got.dtype == np.float32 and got.shape == want.shape and np.array_equal(got, want),
              f"{folder}: tensor {name} differs after re-reading")


def make_hf(name, kind, profile, folder):
    seed = seed_for(name)
    if kind == "gpt2":
        cfg = hf_models.gpt2_config(profile)
        model = hf_models.GPT2LMHead(cfg).eval()
        expected_names = hf_models.gpt2_tensor_names(cfg)
        expected_count = hf_models.gpt2_parameter_count(cfg)
        vocab, hidden, max_pos = cfg["vocab_size"], cfg["n_embd"], cfg["n_positions"]
    else:
        cfg = hf_models.bert_config(profile)
        model = hf_models.BertModel(cfg).eval()
        expected_names = hf_models.bert_tensor_names(cfg)
        expected_count = hf_models.bert_parameter_count(cfg)
        vocab, hidden, max_pos = cfg["vocab_size"], cfg["hidden_size"], cfg["max_position_embeddings"]
    params = parameter_count(model)
    check(params == expected_count, f"{name}: {params} parameters, config.json formula "
                                    f"gives {expected_count}")
    if profile == "full":
        check(params == FULL_PARAMETERS[name],
              f"{name}: {params} parameters, expected {FULL_PARAMETERS[name]}")
    state = model.state_dict()
    check(list(state) == expected_names, f"{name}: parameter names differ from Hugging Face's")
    check(all(v.dtype == torch.float32 and v.is_contiguous() for v in state.values()),
          f"{name}: a parameter is not contiguous float32")
    tensors = {k: v.detach().numpy() for k, v in state.items()}

    write_json(os.path.join(folder, "config.json"), cfg)
    if kind == "gpt2":
        shards = split_shards(tensors, 2)
        files = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
        total = 0
        weight_map = {}
        for file, shard in zip(files, shards):
            total += write_safetensors(os.path.join(folder, file), shard)
            weight_map.update({t: file for t in shard})
        index_path = os.path.join(folder, "model.safetensors.index.json")
        write_json(index_path, {"metadata": {"total_size": total},
                                "weight_map": dict(sorted(weight_map.items()))})
        check(read_index(index_path)[0] == weight_map, f"{name}: index re-read differs")
    else:
        files = ["model.safetensors"]
        write_safetensors(os.path.join(folder, files[0]), tensors)
    verify_safetensors(folder, tensors, files)

    path = os.path.join(folder, "1", "model.pt")
    os.makedirs(os.path.dirname(path))
    torch.jit.save(torch.jit.script(model), path)
    loaded = torch.jit.load(path)
    loaded_state = loaded.state_dict()
    check(list(loaded_state) == expected_names and all(
        torch.equal(loaded_state[k], state[k]) for k in expected_names),
        f"{name}: TorchScript parameters differ from the safetensors")
    gen = torch.Generator().manual_seed(seed)
    seq = 8
    with torch.no_grad():
        for batch in (1, 2):
            ids = torch.randint(0, vocab, (batch, seq), generator=gen)
            out = loaded(ids)
            want = (batch, seq, vocab) if kind == "gpt2" else (batch, seq, hidden)
            check(tuple(out.shape) == want and out.dtype == torch.float32,
                  f"{name}: forward gives {tuple(out.shape)} {out.dtype}, expected {want}")
            assert_close(out, model(ids), f"{name} forward (batch {batch})")
            if kind == "gpt2":
                # causal: changing the last token leaves earlier positions alone
                changed = ids.clone()
                changed[:, -1] = (changed[:, -1] + 1) % vocab
                out2 = loaded(changed)
                check(torch.allclose(out2[:, :-1], out[:, :-1], rtol=1e-5, atol=1e-6),
                      f"{name}: attention is not causal")
                check(not torch.allclose(out2[:, -1], out[:, -1], rtol=1e-3, atol=1e-3),
                      f"{name}: the last token is ignored")
            else:
                enc = loaded.encode(ids)
                check(tuple(enc.shape) == (batch, hidden), f"{name}: encode shape {enc.shape}")
                assert_close(enc, out.mean(dim=1), f"{name} encode (batch {batch})")
        if profile == "small":  # the longest sequence the position table allows
            out = loaded(torch.randint(0, vocab, (1, max_pos), generator=gen))
            check(out.shape[1] == max_pos, f"{name}: forward at {max_pos} tokens")

    seq_len = 128 if profile == "full" else 32
    if kind == "gpt2":
        outputs, tasks = [("logits", "FP32", [-1, vocab])], None
    else:
        outputs, tasks = [("last_hidden_state", "FP32", [-1, hidden])], {"encode": "encode"}
    write_config_yaml(os.path.join(folder, "config.yaml"), profile, "huggingface", 8,
                      [("input_ids", "INT64", [-1])], outputs, sequence_length=seq_len,
                      tasks=tasks)
    return {"kind": kind, "parameters": params, "buffers_bytes": buffers_bytes(model),
            "input_shape": [-1], "sequence_length": seq_len}


# ---------------------------------------------------------------------------
# 3. digits classifier, trained here

DIGITS_TEST = 360      # held out of sklearn's 1797 digits
DIGITS_SPLIT_SEED = 0  # numpy's legacy RandomState: its stream is fixed across versions
DIGITS_EPOCHS = 40


def digits_data():
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)     # pixel values 0..16 -> [0, 1]
    y = digits.target.astype(np.int64)
    check(x.shape == (1797, 64), f"sklearn digits: unexpected shape {x.shape}")
    # A fixed shuffled split. (The last 360 samples come from writers absent from
    # the rest, which caps an MLP at about 0.91; a shuffled split gives about 0.97.)
    order = np.random.RandomState(DIGITS_SPLIT_SEED).permutation(len(x))
    test, train = order[:DIGITS_TEST], order[DIGITS_TEST:]
    return (x[train], y[train]), (x[test], y[test])


def make_digits(name, kind, profile, folder):
    seed = seed_for(name)
    (x_train, y_train), (x_test, y_test) = digits_data()
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # same float reductions on any machine
    try:
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
        for _ in range(DIGITS_EPOCHS):
            order = torch.randperm(len(xt), generator=gen)
            for start in range(0, len(xt), 32):
                batch = order[start:start + 32]
                opt.zero_grad()
                loss = nn.functional.cross_entropy(model(xt[batch]), yt[batch])
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    path = os.path.join(folder, "1", "model.pt")
    os.makedirs(os.path.dirname(path))
    torch.jit.save(torch.jit.script(model), path)

    test_path = os.path.join(folder, "test_set.json")
    test = {"inputs": x_test.astype(np.float64).tolist(), "labels": y_test.tolist()}
    write_json(test_path, test, indent=None)
    # measure with the saved files, as check_zoo.py does
    with open(test_path, encoding="utf-8") as f:
        test = json.load(f)
    loaded = torch.jit.load(path)
    with torch.no_grad():
        logits = loaded(torch.tensor(test["inputs"], dtype=torch.float32))
    check(tuple(logits.shape) == (DIGITS_TEST, 10), f"digits: logits shape {logits.shape}")
    correct = int((logits.argmax(dim=1) == torch.tensor(test["labels"])).sum())
    accuracy = correct / DIGITS_TEST
    check(accuracy >= 0.9, f"digits: test accuracy {accuracy:.4f} < 0.9")
    test.update({"test_accuracy": accuracy, "correct": correct, "count": DIGITS_TEST})
    write_json(test_path, test, indent=None)

    write_config_yaml(os.path.join(folder, "config.yaml"), profile, "pytorch_torchscript", 64,
                      [("input", "FP32", [64])], [("logits", "FP32", [10])])
    return {"kind": "classifier", "parameters": parameter_count(model),
            "buffers_bytes": buffers_bytes(model), "input_shape": [64],
            "test_accuracy": accuracy}


# ---------------------------------------------------------------------------
# 4. echo_image: a nearly free forward on a full-size image input

ECHO_IMAGE_SHAPE = (3, 224, 224)   # 602,112 bytes of FP32 per image
ECHO_IMAGE_MAX_BATCH = 8


class EchoImage(nn.Module):
    """forward(input FP32 [B,3,224,224]) -> per-channel mean * scale, FP32 [B,3].

    The scale (3 ones) is there so that the module has a parameter, as every
    zoo model does; the forward costs one pass over the input. Used by
    bench/dispatch_bench.cc and bench/serving_bench.cc to measure what moving a
    large input costs (in-process vs through a worker, over HTTP).
    """

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(ECHO_IMAGE_SHAPE[0]))

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return input.mean(dim=[2, 3]) * self.scale


def make_echo(name, kind, profile, folder):
    seed = seed_for(name)
    model = EchoImage().eval()
    path = os.path.join(folder, "1", "model.pt")
    os.makedirs(os.path.dirname(path))
    torch.jit.save(torch.jit.script(model), path)
    loaded = torch.jit.load(path)
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(ECHO_IMAGE_MAX_BATCH, *ECHO_IMAGE_SHAPE, generator=gen)
    with torch.no_grad():
        for batch in (1, ECHO_IMAGE_MAX_BATCH):
            out = loaded(x[:batch])
            check(tuple(out.shape) == (batch, ECHO_IMAGE_SHAPE[0]) and out.dtype == torch.float32,
                  f"{name}: forward gives {tuple(out.shape)} {out.dtype} at batch {batch}")
            # independently: the mean of each channel's H*W values, in float64
            want = x[:batch].double().reshape(batch, ECHO_IMAGE_SHAPE[0], -1).mean(dim=2).float()
            assert_close(out, want, f"{name} (batch {batch})")
    write_config_yaml(os.path.join(folder, "config.yaml"), profile, "pytorch_torchscript",
                      ECHO_IMAGE_MAX_BATCH, [("input", "FP32", ECHO_IMAGE_SHAPE)],
                      [("mean", "FP32", [ECHO_IMAGE_SHAPE[0]])])
    return {"kind": "echo", "parameters": parameter_count(model),
            "buffers_bytes": buffers_bytes(model), "input_shape": list(ECHO_IMAGE_SHAPE)}
