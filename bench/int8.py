#!/usr/bin/env python3
"""int8 against float, side by side in one run (bench/RESULTS.md, "int8").

For each of lenet, lenet-max and lenet-relu: train 10 epochs (`lenet train`),
quantize the best checkpoint (`lenet quantize`, 1000 calibration images), and
evaluate both on the Fashion-MNIST test set (`lenet eval`): the accuracy drop.
For lenet-max also: throughput at batch 256 and batch-1 latency of the float
model and the int8 file in one process (build/bench/lenet_bench_int8), ONNX
Runtime on the same QDQ file (bench/peers/onnxruntime_lenet.js), and the file
sizes (int8 QDQ against the float ONNX export).

  python3 bench/int8.py [--build build] [--epochs 10] [--threads 2] [--json out.json]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = "/usr/share/datasets/fashion-mnist"


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"int8.py: {' '.join(cmd)} failed:\n{r.stderr}")
    return r.stdout


def accuracy(lenet, model, threads):
    out = run([lenet, "eval", "--model", model, "--threads", str(threads)])
    return float(re.search(r"accuracy ([0-9.]+)", out).group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--archs", default="lenet,lenet-max,lenet-relu")
    ap.add_argument("--json")
    a = ap.parse_args()
    lenet = os.path.join(a.build, "lenet")
    bench = os.path.join(a.build, "bench", "lenet_bench_int8")
    ort = os.path.join(ROOT, "bench", "peers", "onnxruntime_lenet.js")
    load = lambda: os.getloadavg()[0]
    result = {"load_before": load(), "epochs": a.epochs, "threads": a.threads, "accuracy": {}}
    with tempfile.TemporaryDirectory(prefix="lenet-int8-bench-") as tmp:
        for arch in a.archs.split(","):
            run_dir = os.path.join(tmp, arch)
            run([lenet, "train", "--arch", arch, "--epochs", str(a.epochs), "--threads", str(a.threads), "--out", run_dir])
            best = os.path.join(run_dir, "best.safetensors")
            int8 = os.path.join(tmp, arch + "-int8.onnx")
            fp_onnx = os.path.join(tmp, arch + ".onnx")
            run([lenet, "quantize", "--model", best, "--out", int8, "--threads", str(a.threads)])
            run([lenet, "export", "--model", best, "--onnx", fp_onnx, "--opset", "13"])
            f, q = accuracy(lenet, best, a.threads), accuracy(lenet, int8, a.threads)
            result["accuracy"][arch] = {"float": f, "int8": q, "drop_points": 100 * (f - q)}
            print(f"{arch}: float {100 * f:.2f}%  int8 {100 * q:.2f}%  drop {100 * (f - q):.2f} points", flush=True)
            if arch == "lenet-max":
                result["size"] = {"float_onnx": os.path.getsize(fp_onnx), "int8_onnx": os.path.getsize(int8)}
                ours = json.loads(run([bench, str(a.threads), DATA, best, int8]))
                ort_infer = json.loads(run(["node", ort, "infer", str(a.threads), DATA, int8]))
                ort_latency = json.loads(run(["node", ort, "latency", str(a.threads), DATA, int8]))
                result["speed"] = {"lenet.cpp": ours, "onnxruntime_int8": {"images_per_s": ort_infer["images_per_s"],
                                                                         "median_us": ort_latency["median_us"],
                                                                         "version": ort_infer["version"]}}
    result["load_after"] = load()
    s, z = result.get("speed"), result.get("size")
    if s:
        o = s["lenet.cpp"]
        print(f"batch 256, {a.threads} threads: float {o['float_images_per_s']:.0f} img/s, int8 "
              f"{o['int8_images_per_s']:.0f} img/s (best passes); int8/float {o['int8_vs_float_median']:.2f}x "
              f"(median of 7 interleaved rounds: {', '.join(f'{r:.2f}' for r in o['int8_vs_float_rounds'])}); "
              f"ONNX Runtime int8 QDQ {s['onnxruntime_int8']['images_per_s']:.0f} img/s "
              f"(ours {o['int8_images_per_s'] / s['onnxruntime_int8']['images_per_s']:.2f}x)")
        print(f"batch 1 latency: float {o['float_latency_us']:.1f} us, int8 {o['int8_latency_us']:.1f} us; "
              f"ONNX Runtime int8 {s['onnxruntime_int8']['median_us']:.1f} us")
    if z:
        print(f"file size: int8 {z['int8_onnx']} bytes, float ONNX {z['float_onnx']} bytes "
              f"({z['int8_onnx'] / z['float_onnx']:.3f}x)")
    print(f"load average {result['load_before']:.2f} before, {result['load_after']:.2f} after")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
