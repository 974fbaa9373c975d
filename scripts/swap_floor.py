#!/usr/bin/env python3
"""swap_floor.py: the floor under swapping a model's weights between a GPU and
host memory (issue 10, sections 4 and 7), measured with PyTorch on one GPU.

    swap_floor.py --zoo DIR [--device cuda:0] [--repeats N] [--json OUT]

1. Copy bandwidth: host->device and device->host for pinned and pageable host
   buffers of 64 MiB, 256 MiB and 1 GiB (best of --repeats, CUDA-synchronized).
2. Per zoo model (every folder with 1/model.pt): torch.jit.load onto the GPU,
   run one input shaped from its config.yaml, then swap out (every parameter
   and buffer copied into pinned host memory, asynchronously, the device
   tensors released and the caching allocator emptied) and swap in (device
   tensors allocated again and copied back asynchronously); the output after
   the swap-in must be bit-identical to the one before it. Prints the weight
   bytes, swap-out and swap-in times and the time the pinned host->device
   bandwidth of step 1 allows for those bytes.

This measures the mechanism a worker's swap uses (tensor data moved under a
loaded TorchScript module); it does not start ModelGrid. Standard library,
torch and PyYAML only. Exit status 0 when every model came back bit-identical.
"""

import argparse
import json
import os
import sys
import time

import torch
import yaml


def best_seconds(fn, repeats):
    best = None
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    return best


def bandwidth(device, repeats):
    rows = []
    for size in (64 << 20, 256 << 20, 1 << 30):
        dev = torch.empty(size, dtype=torch.uint8, device=device)
        for pinned in (True, False):
            host = torch.empty(size, dtype=torch.uint8, pin_memory=pinned)
            h2d = best_seconds(lambda: dev.copy_(host, non_blocking=pinned), repeats)
            d2h = best_seconds(lambda: host.copy_(dev, non_blocking=pinned), repeats)
            rows.append({"bytes": size, "pinned": pinned,
                         "h2d_gb_s": size / h2d / 1e9, "d2h_gb_s": size / d2h / 1e9})
        del dev
        torch.cuda.empty_cache()
    return rows


def sample_input(spec, device):
    dims = [8 if d == -1 else int(d) for d in spec.get("dims", [])]
    shape = [1] + dims
    dtype = spec.get("data_type", spec.get("datatype", "FP32")).upper()
    if dtype in ("INT64", "TYPE_INT64"):
        return torch.ones(shape, dtype=torch.int64, device=device)
    gen = torch.Generator().manual_seed(7)
    return torch.randn(shape, generator=gen).to(device)


def first_tensor(out):
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)):
        return first_tensor(out[0])
    if isinstance(out, dict):
        return first_tensor(next(iter(out.values())))
    raise TypeError(f"no tensor in output of type {type(out).__name__}")


def swap_model(folder, device, repeats):
    config = yaml.safe_load(open(os.path.join(folder, "config.yaml"))) or {}
    inputs = config.get("inputs") or config.get("input") or []
    module = torch.jit.load(os.path.join(folder, "1", "model.pt"), map_location=device)
    module.eval()
    tensors = list(module.parameters()) + list(module.buffers())
    weight_bytes = sum(t.numel() * t.element_size() for t in tensors)
    with torch.no_grad():
        args = [sample_input(spec, device) for spec in inputs]
        before = first_tensor(module(*args)).cpu()
        deterministic = torch.equal(before, first_tensor(module(*args)).cpu())
        outs, ins = [], []
        host = [torch.empty(t.shape, dtype=t.dtype, pin_memory=True) for t in tensors]
        for _ in range(repeats):
            torch.cuda.synchronize()
            start = time.perf_counter()
            for t, h in zip(tensors, host):
                h.copy_(t, non_blocking=True)
            torch.cuda.synchronize()
            for t, h in zip(tensors, host):
                t.data = h  # the device storage is released here
            torch.cuda.empty_cache()
            outs.append(time.perf_counter() - start)
            start = time.perf_counter()
            for t, h in zip(tensors, host):
                t.data = h.to(device, non_blocking=True)
            torch.cuda.synchronize()
            ins.append(time.perf_counter() - start)
        after = first_tensor(module(*args)).cpu()
    identical = before.dtype == after.dtype and torch.equal(before, after)
    return {"model": os.path.basename(folder), "weight_bytes": weight_bytes,
            "tensors": len(tensors), "swap_out_ms": min(outs) * 1e3,
            "swap_in_ms": min(ins) * 1e3, "identical": identical,
            "deterministic": deterministic}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--zoo", required=True)
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("swap_floor: torch sees no CUDA device", file=sys.stderr)
        return 3
    # Bit-identical outputs need the same kernels before and after a swap.
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    print(f"GPU: {torch.cuda.get_device_name(args.device)}, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    bw = bandwidth(args.device, args.repeats)
    print()
    print("| host buffer | bytes | host->device GB/s | device->host GB/s |")
    print("|---|---:|---:|---:|")
    for r in bw:
        print(f"| {'pinned' if r['pinned'] else 'pageable'} | {r['bytes']:,} | "
              f"{r['h2d_gb_s']:.1f} | {r['d2h_gb_s']:.1f} |")
    floor = max(r["h2d_gb_s"] for r in bw if r["pinned"]) * 1e9
    rows, ok = [], True
    for name in sorted(os.listdir(args.zoo)):
        folder = os.path.join(args.zoo, name)
        if not os.path.isfile(os.path.join(folder, "1", "model.pt")):
            continue
        try:
            rows.append(swap_model(folder, args.device, args.repeats))
        except Exception as e:  # a model this script cannot drive: say so, go on
            rows.append({"model": name, "error": str(e).splitlines()[0][:200]})
            ok = False
    print()
    print(f"Swap per model (best of {args.repeats}; floor = weight bytes / best pinned "
          f"host->device {floor / 1e9:.1f} GB/s):")
    print()
    print("| model | weight bytes | tensors | swap-out ms | swap-in ms | floor ms | swap-in / floor | bit-identical |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['model']} | error: {r['error']} | | | | | | |")
            continue
        floor_ms = r["weight_bytes"] / floor * 1e3
        ok = ok and (r["identical"] or not r["deterministic"])
        print(f"| {r['model']} | {r['weight_bytes']:,} | {r['tensors']} | {r['swap_out_ms']:.3f} | "
              f"{r['swap_in_ms']:.3f} | {floor_ms:.3f} | {r['swap_in_ms'] / floor_ms:.1f} | "
              f"{'yes' if r['identical'] else 'NO'}"
              f"{'' if r['deterministic'] else ' (two runs before the swap already differ)'} |")
    if args.json:
        json.dump({"bandwidth": bw, "models": rows}, open(args.json, "w"), indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
