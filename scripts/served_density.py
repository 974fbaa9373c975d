#!/usr/bin/env python3
"""served_density.py: how many models `modelgrid serve` really loads and
serves on one device, and whether a load run across all of them stays free of
out-of-memory errors (issue 4, section 5: density as served).

    served_density.py --modelgrid BIN --repository DIR --device SPEC
                      [--strategy S] [--isolation I] [--port P]
                      [--seconds N] [--startup-timeout N] [--json OUT]

Starts `modelgrid serve` on 127.0.0.1, waits for "serving on", reads
/v2/modelgrid/models and /v2/modelgrid/devices, then sends infer requests
round-robin to every ready model for --seconds (inputs: zeros shaped from
each model's metadata, variable dims = 8, batch 1), counts the HTTP status
codes, stops the server with SIGTERM and prints one markdown table row:

| device | strategy | isolation | models | ready | requests | 2xx | 507 | 5xx other | held bytes | device bytes | utilization | contexts |

utilization = bytes held by the loaded models (measured current bytes) /
the device's total bytes; contexts lists the per-worker context charges and
whether they were measured (NVML) or defaults. Standard library only.
Exit status: 0 when the run completed with no 507 and no other 5xx answer,
1 otherwise (the row is printed either way), 2 when the server did not start.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

DTYPES = {"FP32": "<f4", "FP16": "<f2", "FP64": "<f8", "INT64": "<i8", "INT32": "<i4",
          "INT16": "<i2", "INT8": "i1", "UINT8": "u1", "BOOL": "u1", "BF16": "<u2"}
SIZES = {"FP32": 4, "FP16": 2, "FP64": 8, "INT64": 8, "INT32": 4, "INT16": 2, "INT8": 1,
         "UINT8": 1, "BOOL": 1, "BF16": 2}


def get_json(base, path, timeout=10):
    with urllib.request.urlopen(base + path, timeout=timeout) as r:
        return json.loads(r.read())


def binary_request(inputs):
    """A KServe v2 infer body with the binary data extension, all zeros."""
    header = {"inputs": []}
    blobs = []
    for spec in inputs:
        shape = [8 if d < 0 else d for d in spec["shape"]]
        count = 1
        for d in shape:
            count *= d
        size = count * SIZES.get(spec["datatype"], 4)
        header["inputs"].append({"name": spec["name"], "datatype": spec["datatype"],
                                 "shape": shape, "parameters": {"binary_data_size": size}})
        blobs.append(bytes(size))
    head = json.dumps(header).encode()
    return head + b"".join(blobs), len(head)


def request_for(base, model):
    meta = get_json(base, "/v2/models/" + model)
    inputs = []
    batched = meta.get("parameters", {}).get("max_batch_size", 0)
    for spec in meta["inputs"]:
        shape = list(spec["shape"])
        if not shape or (batched and shape[0] == -1):
            shape = shape or []
        if shape and shape[0] == -1:
            shape[0] = 1  # the batch (or a variable first dim): one row
        inputs.append({"name": spec["name"], "datatype": spec["datatype"], "shape": shape})
    return binary_request(inputs)


def load_run(base, models, seconds, counts, lock):
    bodies = {}
    for m in models:
        try:
            bodies[m] = request_for(base, m)
        except (urllib.error.URLError, KeyError, ValueError) as e:
            with lock:
                counts["setup_errors"] = counts.get("setup_errors", 0) + 1
            print(f"served_density: no request for {m}: {e}", file=sys.stderr)
    end = time.monotonic() + seconds
    i = 0
    names = list(bodies)
    while names and time.monotonic() < end:
        m = names[i % len(names)]
        i += 1
        body, head_len = bodies[m]
        req = urllib.request.Request(
            base + f"/v2/models/{m}/infer", data=body, method="POST",
            headers={"Content-Type": "application/octet-stream",
                     "Inference-Header-Content-Length": str(head_len)})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                code = r.status
                r.read()
        except urllib.error.HTTPError as e:
            code = e.code
            if code >= 500:
                print(f"served_density: {m}: HTTP {code}: {e.read()[:300]!r}", file=sys.stderr)
        except urllib.error.URLError as e:
            code = 0
            print(f"served_density: {m}: {e}", file=sys.stderr)
        with lock:
            counts[code] = counts.get(code, 0) + 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modelgrid", required=True)
    ap.add_argument("--repository", required=True)
    ap.add_argument("--device", action="append", required=True)
    ap.add_argument("--strategy", default="memory-optimized")
    ap.add_argument("--isolation", default="model")
    ap.add_argument("--port", type=int, default=18600)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--startup-timeout", type=float, default=540.0)
    ap.add_argument("--json", help="write the figures as JSON here too")
    args = ap.parse_args()

    base = f"http://127.0.0.1:{args.port}"
    cmd = [args.modelgrid, "serve", "--repository", args.repository, "--strategy", args.strategy,
           "--isolation", args.isolation, "--host", "127.0.0.1", "--http-port", str(args.port),
           "--grpc-port", "0"]
    for d in args.device:
        cmd += ["--device", d]
    log = open(os.path.join(os.environ.get("TMPDIR", "/tmp"),
                            f"served_density_{args.port}.log"), "w+")
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    started = False
    deadline = time.monotonic() + args.startup_timeout
    lines = []
    # Read stdout on a thread so the deadline holds even when nothing is printed.
    def pump():
        for line in server.stdout:
            lines.append(line)
    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    while time.monotonic() < deadline and server.poll() is None:
        if any(l.startswith("serving on") for l in lines):
            started = True
            break
        time.sleep(0.2)
    if not started:
        server.kill()
        server.wait()
        print(f"served_density: the server did not start ({' '.join(cmd)}); last output:\n"
              + "".join(lines[-20:]), file=sys.stderr)
        return 2
    try:
        models = get_json(base, "/v2/modelgrid/models")
        devices = get_json(base, "/v2/modelgrid/devices")
        models = models.get("models", models) if isinstance(models, dict) else models
        devices = devices.get("devices", devices) if isinstance(devices, dict) else devices
        ready = [m["name"] for m in models if m["state"] == "ready"]
        counts, lock = {}, threading.Lock()
        threads = [threading.Thread(target=load_run, args=(base, ready[k::args.clients],
                                                           args.seconds, counts, lock))
                   for k in range(min(args.clients, max(1, len(ready))))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        models = get_json(base, "/v2/modelgrid/models")
        models = models.get("models", models) if isinstance(models, dict) else models
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    ids = set(args.device)
    held = sum(m["current_bytes"] for m in models if m["state"] == "ready")
    device_bytes = sum(d["total_bytes"] for d in devices
                       if d["id"] in ids or any(d["id"] == i.split("=")[0] for i in ids))
    contexts = sorted({(m.get("context_bytes", 0), m.get("context_measured", False))
                       for m in models if m["state"] == "ready"})
    ok2xx = sum(v for k, v in counts.items() if isinstance(k, int) and 200 <= k < 300)
    oom = counts.get(507, 0)
    other5 = sum(v for k, v in counts.items() if isinstance(k, int) and (k >= 500 and k != 507))
    failed = sum(v for k, v in counts.items() if k == 0 or k == "setup_errors")
    total = sum(v for k, v in counts.items() if isinstance(k, int))
    util = held / device_bytes if device_bytes else 0.0
    ctx_text = ", ".join(f"{c} B {'measured' if m else 'default'}" for c, m in contexts) or "-"
    print(f"| {','.join(args.device)} | {args.strategy} | {args.isolation} | {len(models)} | "
          f"{len(ready)} | {total} | {ok2xx} | {oom} | {other5 + failed} | {held} | "
          f"{device_bytes} | {util:.4f} | {ctx_text} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"devices": args.device, "strategy": args.strategy,
                       "isolation": args.isolation, "models": len(models), "ready": len(ready),
                       "requests": total, "ok": ok2xx, "oom_507": oom,
                       "other_errors": other5 + failed, "held_bytes": held,
                       "device_bytes": device_bytes, "utilization": util,
                       "contexts": [{"bytes": c, "measured": m} for c, m in contexts]}, f)
    return 0 if oom == 0 and other5 + failed == 0 and ready else 1


if __name__ == "__main__":
    sys.exit(main())
