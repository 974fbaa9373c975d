#!/usr/bin/python3
"""A Triton-layout repository from a generated zoo.

    /usr/bin/python3 tools/zoo/triton_layout.py --zoo ZOO --out DIR
    (or tools/zoo/generate.py ... --triton-out DIR, which calls it)

Writes DIR as a Triton Inference Server user would lay it out: each model
folder holds <version>/model.pt and a config.pbtxt (Triton's model
configuration, protobuf text format) and no config.yaml. The TorchScript files
are the zoo's (hard links where the file system allows, else copies); the
specs (input/output names, data types, dims, max_batch_size) are the zoo's
config.yaml ones, which the generator checked against the models:

  digits/      versions 1 and 2, version_policy specific [1], label_filename
               (labels.txt: zero..nine), dynamic_batching, parameters, and an
               optimization block ModelGrid ignores (one warning)
  vit_b_16/    instance_group count 2, dynamic_batching with a queue policy
  echo_image/  backend "pytorch" instead of platform, version_policy latest

DIR is replaced as a whole (written beside it, then renamed).
"""

import argparse
import os
import shutil
import sys
import tempfile

import yaml

TRITON_TYPES = {"BOOL": "TYPE_BOOL", "UINT8": "TYPE_UINT8", "UINT16": "TYPE_UINT16",
                "UINT32": "TYPE_UINT32", "UINT64": "TYPE_UINT64", "INT8": "TYPE_INT8",
                "INT16": "TYPE_INT16", "INT32": "TYPE_INT32", "INT64": "TYPE_INT64",
                "FP16": "TYPE_FP16", "FP32": "TYPE_FP32", "FP64": "TYPE_FP64",
                "BYTES": "TYPE_STRING", "BF16": "TYPE_BF16"}

DIGIT_LABELS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

# Per model: versions to write, and the config.pbtxt lines after the tensors.
MODELS = {
    "digits": {
        "versions": ["1", "2"],
        "label_filename": {"logits": "labels.txt"},
        "extra": [
            "version_policy: { specific: { versions: [ 1 ] } }",
            "instance_group [ { count: 1 kind: KIND_CPU } ]",
            "dynamic_batching {",
            "  preferred_batch_size: [ 16, 64 ]",
            "  max_queue_delay_microseconds: 200",
            "}",
            'parameters: { key: "INFERENCE_MODE" value: { string_value: "true" } }',
            "optimization { execution_accelerators { cpu_execution_accelerator : "
            '[ { name : "openvino" } ] } }',
        ],
    },
    "vit_b_16": {
        "versions": ["1"],
        "extra": [
            "instance_group [",
            "  {",
            "    count: 2",
            "    kind: KIND_AUTO",
            "  }",
            "]",
            "dynamic_batching {",
            "  max_queue_delay_microseconds: 0",
            "  default_queue_policy { default_timeout_microseconds: 10000000 max_queue_size: 128 }",
            "}",
        ],
    },
    "echo_image": {
        "versions": ["1"],
        "backend": True,
        "extra": ["version_policy: { latest: { num_versions: 1 } }"],
    },
}


def link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def tensor_block(key, specs, label_files):
    lines = [f"{key} ["]
    for i, t in enumerate(specs):
        dims = ", ".join(str(int(d)) for d in t["dims"])
        lines += ["  {",
                  f'    name: "{t["name"]}"',
                  f"    data_type: {TRITON_TYPES[t.get('datatype', 'FP32')]}",
                  f"    dims: [ {dims} ]"]
        if t["name"] in label_files:
            lines.append(f'    label_filename: "{label_files[t["name"]]}"')
        lines.append("  }," if i + 1 < len(specs) else "  }")
    lines.append("]")
    return lines


def config_pbtxt(name, cfg, spec):
    lines = [f"# Triton model configuration, written by tools/zoo/triton_layout.py",
             f'name: "{name}"']
    lines.append('backend: "pytorch"' if spec.get("backend") else 'platform: "pytorch_libtorch"')
    lines.append(f"max_batch_size: {int(cfg.get('max_batch_size', 0))}")
    labels = spec.get("label_filename", {})
    lines += tensor_block("input", cfg["inputs"], {})
    lines += tensor_block("output", cfg["outputs"], labels)
    lines += spec["extra"]
    return "\n".join(lines) + "\n"


def write(zoo, out):
    zoo, out = os.path.abspath(zoo), os.path.abspath(out)
    parent, base = os.path.split(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{base}.tmp-{os.getpid()}-", dir=parent)
    try:
        for name, spec in MODELS.items():
            src = os.path.join(zoo, name)
            with open(os.path.join(src, "config.yaml"), encoding="utf-8") as f:
                cfg = yaml.safe_load(f)
            folder = os.path.join(tmp, name)
            for v in spec["versions"]:
                os.makedirs(os.path.join(folder, v))
                link_or_copy(os.path.join(src, "1", "model.pt"), os.path.join(folder, v, "model.pt"))
            with open(os.path.join(folder, "config.pbtxt"), "w", encoding="utf-8") as f:
                f.write(config_pbtxt(name, cfg, spec))
            for output, label_file in spec.get("label_filename", {}).items():
                with open(os.path.join(folder, label_file), "w", encoding="utf-8") as f:
                    f.write("\n".join(DIGIT_LABELS) + "\n")
        os.chmod(tmp, 0o755)
        if os.path.exists(out):
            shutil.rmtree(out)
        os.rename(tmp, out)
        tmp = None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"Triton-layout repository written: {out} ({len(MODELS)} models)", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zoo", required=True, help="a zoo written by generate.py")
    parser.add_argument("--out", required=True, help="the Triton-layout repository to write")
    args = parser.parse_args(argv)
    write(args.zoo, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
