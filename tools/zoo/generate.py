#!/usr/bin/python3
"""ModelGrid model zoo generator.

    /usr/bin/python3 tools/zoo/generate.py --profile small|full --out DIR [--force]
                     [--triton-out TDIR] [--hf-out HDIR --tokenizers TOK [--hf-reference-out R]]

Writes a model repository (docs/design.md, "Repository layout on disk";
include/modelgrid/repository.h) into DIR:

  resnet18/ resnet50/ mobilenet_v3_small/ vit_b_16/   TorchScript (traced torchvision)
  gpt2/ bert-base/                                    Hugging Face folders + TorchScript
  digits/                                             MLP trained on sklearn's digits
  echo_image/                                         per-channel mean of a 3x224x224 image
  zoo.json                                            manifest

Deterministic (every model is built under its own fixed seed) and cached: when
DIR/zoo.json records the same profile, generator version, source hash and torch
version, it prints "zoo up to date" and exits. The repository is assembled in a
temporary folder beside DIR and renamed into place at the end.

--triton-out TDIR also writes, from the zoo, a Triton-layout repository
(config.pbtxt only, no config.yaml; tools/zoo/triton_layout.py says which
models and fields), rewritten on every run (links or copies, cheap).

Run it with Debian's interpreter (/usr/bin/python3: torch, torchvision, numpy, sklearn from
Debian). Nothing is downloaded. --hf-out (Hugging Face-only folders): see tools/zoo/hf_zoo.py.
"""

import argparse
import hashlib
import importlib.metadata
import json
import os
import shutil
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

if __name__ == "__main__" and os.environ.get("PYTHONHASHSEED") != "0":
    # TorchScript writes a module's __constants__ (a Python set of strings) in
    # iteration order, which follows the per-process string hash seed: fix it
    # so that the same inputs give byte-identical model.pt files.
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:],
              dict(os.environ, PYTHONHASHSEED="0"))

import hf_zoo  # noqa: E402  (numpy only; torch comes with zoo_builders once there is work)

# Bump when the output changes in a way the source hash would not show
# (for instance a change of meaning of a manifest field).
GENERATOR_VERSION = 1
# The files whose contents define the output; hashed into zoo.json.
SOURCE_FILES = ("generate.py", "zoo_builders.py", "hf_models.py", "safetensors_io.py")
# (triton_layout.py is not among them: its output is rewritten on every run.)


def source_hash():
    h = hashlib.sha256()
    for name in SOURCE_FILES:
        with open(os.path.join(HERE, name), "rb") as f:
            data = f.read()
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def package_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def model_list(profile):
    """[(folder name, kind)] in generation order."""
    vision = ["resnet18", "resnet50", "mobilenet_v3_small", "vit_b_16"]
    if profile == "small":
        vision.remove("resnet50")
    return ([(n, "vision") for n in vision]
            + [("gpt2", "gpt2"), ("bert-base", "bert"), ("digits", "classifier"),
               ("echo_image", "echo")])


def relative_files(root, folder):
    out = []
    for dirpath, _, filenames in os.walk(folder):
        for f in filenames:
            out.append(os.path.relpath(os.path.join(dirpath, f), root))
    return sorted(out)


def is_up_to_date(out, expected):
    try:
        with open(os.path.join(out, "zoo.json"), encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return False
    keys = ("profile", "generator_version", "source_hash", "torch_version")
    if any(manifest.get(k) != expected[k] for k in keys):
        return False
    # every listed file must still be there
    return all(os.path.isfile(os.path.join(out, p))
               for m in manifest.get("models", {}).values() for p in m.get("files", []))


def remove_stale_temps(parent, base):
    """Removes temp folders of earlier runs that were killed (their pid is gone)."""
    prefix = f".{base}.tmp-"
    for entry in os.listdir(parent):
        if not entry.startswith(prefix):
            continue
        pid = entry[len(prefix):].split("-")[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
            continue                        # still running
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


class UsageError(Exception):
    pass


def generate(profile, out, force=False):
    out = os.path.abspath(out)
    manifest = {"profile": profile, "generator_version": GENERATOR_VERSION,
                "source_hash": source_hash(), "torch_version": package_version("torch"),
                "torchvision_version": package_version("torchvision")}
    if not force and is_up_to_date(out, manifest):
        print("zoo up to date")
        return 0
    if os.path.exists(out):
        if not os.path.isdir(out):
            raise UsageError(f"{out} exists and is not a directory")
        if os.listdir(out) and not os.path.isfile(os.path.join(out, "zoo.json")):
            raise UsageError(f"{out} exists, is not empty and holds no zoo.json; "
                             f"not replacing it (remove it or choose another --out)")

    import zoo_builders as zb   # torch, torchvision, sklearn: only now
    makers = {"vision": zb.make_vision, "gpt2": zb.make_hf, "bert": zb.make_hf,
              "classifier": zb.make_digits, "echo": zb.make_echo}
    manifest["seed"] = zb.SEED

    parent, base = os.path.split(out)
    os.makedirs(parent, exist_ok=True)
    remove_stale_temps(parent, base)
    tmp = tempfile.mkdtemp(prefix=f".{base}.tmp-{os.getpid()}-", dir=parent)
    print(f"generating the {profile} zoo into {out}", flush=True)
    started = time.monotonic()
    try:
        models = {}
        for name, kind in model_list(profile):
            t0 = time.monotonic()
            folder = os.path.join(tmp, name)
            os.makedirs(folder)
            entry = makers[kind](name, kind, profile, folder)
            entry["files"] = relative_files(tmp, folder)
            models[name] = entry
            extra = (f"  test accuracy {entry['test_accuracy']:.4f}"
                     if "test_accuracy" in entry else "")
            print(f"  {name:<20} {entry['parameters']:>13,} parameters "
                  f"{time.monotonic() - t0:7.1f} s{extra}", flush=True)
        manifest["models"] = models
        zb.write_json(os.path.join(tmp, "zoo.json"), manifest)
        os.chmod(tmp, 0o755)
        old = None
        if os.path.exists(out):
            old = tempfile.mkdtemp(prefix=f".{base}.old-{os.getpid()}-", dir=parent)
            os.rmdir(old)
            os.rename(out, old)
        os.rename(tmp, out)
        tmp = None
        if old:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"zoo written: {len(models)} models in {time.monotonic() - started:.1f} s", flush=True)
    return 0


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None):
    signal.signal(signal.SIGTERM, _terminate)   # so the temp folder is removed
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=("small", "full"), required=True)
    parser.add_argument("--out", help="the repository folder to write (optional with --hf-out)")
    parser.add_argument("--force", action="store_true", help="regenerate even if up to date")
    parser.add_argument("--triton-out", help="also write a Triton-layout repository here "
                                             "(tools/zoo/triton_layout.py)")
    args = hf_zoo.parse_arguments(parser, argv)   # adds --hf-out, --hf-reference-out, --tokenizers
    try:
        rc = generate(args.profile, args.out, args.force) if args.out else 0
        if rc == 0 and args.triton_out:
            import triton_layout
            triton_layout.write(args.out, args.triton_out)
        return hf_zoo.generate_from_arguments(args) if rc == 0 and args.hf_out else rc
    except KeyboardInterrupt:
        print("generate.py: interrupted; nothing was written", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001
        if isinstance(e, UsageError) or getattr(e, "zoo_error", False):
            print(f"generate.py: error: {e}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
