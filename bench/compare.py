#!/usr/bin/env python3
"""Runs lenet.cpp and its peers (PyTorch, LibTorch, ONNX Runtime) alternately on
the same work and prints each ratio of issue 8's table; the portable build
beside a -march=native build of the same sources (training and inference
throughput, portable / native); and training and inference FLOP/s as a share
of the core's FP32 FMA peak (bench/peak_fma.cpp) and of an OpenBLAS sgemm
peak, all measured in the same run.

  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DLENET_BUILD_BENCH=ON && cmake --build build -j2
  bash bench/setup-peers.sh          # once: python3-torch, libtorch-dev, onnxruntime-node, OpenBLAS
  python3 bench/compare.py [--rounds 3] [--build build] [--data DIR] [--json out.json]
  python3 bench/compare.py --rounds 1 --no-peers     # quick: ours, portable vs native, peaks

The native build goes to --native-build (default build-native/, configured
with -DLENET_NATIVE=ON and built by this script; --no-native skips it).
Every measurement is repeated --rounds times, ours and the peer's back to back
in each round; the table shows medians and the spread (min–max) so the noise
of a shared machine is visible. Peers that are not installed are skipped.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist

# Issue 8's goals: (key, what, workload, goal text, test on the ratio)
GOALS = [
    ("train", "training throughput", "lenet-max, Fashion-MNIST, SGD lr 0.9, batch 256, 2 threads, one epoch",
     ">= 4x PyTorch", lambda r: r >= 4.0),
    ("job", "whole job", "`lenet train` one epoch (load, train, evaluate, save) vs the PyTorch script",
     ">= 4x faster wall time", lambda r: r >= 4.0),
    ("infer", "inference throughput", "batch 256 over the 10k test set, 2 threads", ">= 1.2x ONNX Runtime",
     lambda r: r >= 1.2),
    ("latency", "single-image latency", "batch 1, 1 thread", "<= 0.5x ONNX Runtime's", lambda r: r <= 0.5),
    ("scaling", "thread scaling", "training, 1 -> 2 threads", ">= 1.7x", lambda r: r >= 1.7),
    ("memory", "memory", "peak RSS of a Fashion-MNIST training run", "<= 250 MB", lambda r: r <= 250),
    # Issue 19: batch norm inside the engine.
    ("bn_lenet", "lenet-bn training", "lenet-bn vs lenet (ours), SGD, batch 256, 2 threads, one epoch",
     ">= 0.8x lenet's", lambda r: r >= 0.8),
    ("bn_pytorch", "lenet-bn vs PyTorch", "lenet-bn, ours vs PyTorch's (better thread count), one epoch",
     ">= 5x PyTorch", lambda r: r >= 5.0),
]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, env=None, timeout=1800):
    """Runs cmd; returns (stdout, wall seconds)."""
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.strip()[-500:]}")
    return r.stdout, time.perf_counter() - t0


def timed(cmd, env=None):
    """Wall time and peak RSS (MB) of one process, through os.wait4."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    out = proc.stdout.read().decode()
    err = proc.stderr.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {err.strip()[-500:]}")
    return out, wall, usage.ru_maxrss / 1024.0


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no JSON in output: {text[-300:]}")


def find_torch_python():
    """A Python that imports torch: this one, or Debian's (python3-torch installs there)."""
    for exe in [sys.executable, "/usr/bin/python3"]:
        if exe and os.path.exists(exe) and subprocess.run([exe, "-c", "import torch"], capture_output=True).returncode == 0:
            return exe
    return None


def openblas_env(bench_bin, env):
    """OpenBLAS picks its kernels by CPU model and falls back to generic SSE3
    ("Prescott") on CPUs newer than its release. Then it is told the newest core
    it knows that this CPU can run, for every process of the run (PyTorch's
    Linear layers use OpenBLAS too). Returns (env, note)."""
    probe = dict(env, OPENBLAS_VERBOSE="2")
    r = subprocess.run([bench_bin, "--benchmark_filter=SgemmPeak/threads:1", "--benchmark_min_time=0.01"],
                       capture_output=True, text=True, env=probe)
    m = re.search(r"Core: (\w+)", r.stdout + r.stderr)
    core = m.group(1) if m else "unknown"
    if core not in ("Prescott", "Core2", "Nehalem", "unknown", "Generic"):
        return env, f"OpenBLAS core: {core} (detected)"
    flags = open("/proc/cpuinfo").read()
    if " avx512_bf16" in flags:
        forced = "Cooperlake"
    elif " avx512f" in flags:
        forced = "SkylakeX"
    elif " avx2" in flags:
        forced = "Haswell"
    else:
        return env, f"OpenBLAS core: {core} (detected)"
    return dict(env, OPENBLAS_CORETYPE=forced), f"OpenBLAS core: detected {core}, set OPENBLAS_CORETYPE={forced}"


def sgemm_peak(bench_bin, env):
    out, _ = run([bench_bin, "--benchmark_filter=SgemmPeak", "--benchmark_format=json"], env=env)
    peaks = {}
    for b in json.loads(out)["benchmarks"]:
        threads = int(re.search(r"threads:(\d+)", b["name"]).group(1))
        peaks[threads] = b["FLOP/s"] / 1e9
    return peaks


def fma_peak(peak_bin, threads, env):
    """The widest path's FP32 FMA peak: (isa, GFLOP/s on 1 thread, on `threads`)."""
    out, _ = run([peak_bin, "--json", "--threads", str(threads), "--seconds", "0.1"], env=env)
    widest = json.loads(out)["paths"][-1]  # listed narrowest first, unsupported ones left out
    return widest["isa"], widest["gflops_1t"], widest["gflops_nt"]


def cmake_option(build, name):
    """An option's value in a build folder's CMakeCache.txt, or None."""
    try:
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith(name + ":"):
                    return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return None


def build_native(native_build):
    """Configures (once) and builds the -march=native side: only what the comparison runs."""
    if not os.path.exists(os.path.join(native_build, "CMakeCache.txt")):
        log(f"configuring the native build in {native_build}")
        run(["cmake", "-S", ROOT, "-B", native_build, "-DCMAKE_BUILD_TYPE=Release", "-DLENET_NATIVE=ON",
             "-DLENET_BUILD_BENCH=ON", "-DLENET_BUILD_TESTS=OFF"], timeout=600)
    log(f"building {native_build}/bench/lenet_bench_epoch")
    run(["cmake", "--build", native_build, "-j", str(os.cpu_count() or 2), "--target", "lenet_bench_epoch"],
        timeout=3600)
    return os.path.join(native_build, "bench", "lenet_bench_epoch")


def infer_flops_per_image(bench_bin, env):
    """FLOPs of one image's forward pass, as bench_model.cpp counts them."""
    out, _ = run([bench_bin, "--benchmark_filter=Inference/threads:1/batch:256", "--benchmark_format=json",
                  "--benchmark_min_time=0.05"], env=env)
    b = json.loads(out)["benchmarks"][0]
    return b["FLOP/s"] / b["images/s"]


def train_flops_per_image(bench_bin, env):
    """FLOPs of one training step per image, as bench_model.cpp counts them."""
    out, _ = run([bench_bin, "--benchmark_filter=TrainStep/threads:1", "--benchmark_format=json",
                  "--benchmark_min_time=0.05"], env=env)
    b = json.loads(out)["benchmarks"][0]
    return b["FLOP/s"] / b["images/s"]


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def spread(xs):
    return f"{min(xs):.4g}–{max(xs):.4g}" if xs else "n/a"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="CMake build folder (with -DLENET_BUILD_BENCH=ON)")
    ap.add_argument("--data", default=DEFAULT_DATA, help="Fashion-MNIST IDX folder")
    ap.add_argument("--rounds", type=int, default=3, help="repetitions of every measurement")
    ap.add_argument("--skip", default="", help="comma-separated measurements to skip: train,bn,job,infer,latency")
    ap.add_argument("--native-build", default=os.path.join(ROOT, "build-native"),
                    help="build folder of the -DLENET_NATIVE=ON side (configured and built here)")
    ap.add_argument("--no-native", action="store_true", help="skip the portable / native comparison")
    ap.add_argument("--no-peers", action="store_true", help="run only lenet.cpp (no PyTorch, LibTorch, ONNX Runtime)")
    ap.add_argument("--json", help="also write every raw figure to this file")
    ap.add_argument("--from-json", help="print the table of an earlier run's --json file, measuring nothing")
    args = ap.parse_args()
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        return report(saved["raw"], saved["machine"], saved["flops_per_image"], saved["rounds"],
                      saved.get("infer_flops_per_image"))
    skip = set(filter(None, args.skip.split(",")))

    bench_bin = os.path.join(args.build, "bench", "lenet_bench")
    epoch_bin = os.path.join(args.build, "bench", "lenet_bench_epoch")
    libtorch_bin = os.path.join(args.build, "bench", "libtorch_lenet")
    peak_bin = os.path.join(args.build, "bench", "lenet_peak")
    lenet_cli = os.path.join(args.build, "lenet")
    for b in (bench_bin, epoch_bin, peak_bin):
        if not os.path.exists(b):
            sys.exit(f"compare.py: {b} not found: build with -DLENET_BUILD_BENCH=ON")
    if not os.path.isdir(args.data):
        sys.exit(f"compare.py: no Fashion-MNIST at {args.data} (scripts/setup.sh installs dataset-fashion-mnist)")

    native_bin = None
    if not args.no_native:
        if cmake_option(args.build, "LENET_NATIVE") == "ON":
            log(f"note: {args.build} is itself a -march=native build (LENET_NATIVE=ON): the portable / native "
                "ratios then compare two native builds; configure it with -DLENET_NATIVE=OFF")
        native_bin = build_native(args.native_build)

    env = dict(os.environ)
    env, blas_note = openblas_env(bench_bin, env)
    torch_py = None if args.no_peers else find_torch_python()
    node = None if args.no_peers else shutil.which("node")
    ort_dir = os.path.join(HERE, "onnxruntime", "node_modules", "onnxruntime-node")
    have = {
        "pytorch": torch_py is not None,
        "libtorch": not args.no_peers and os.path.exists(libtorch_bin),
        "onnxruntime": node is not None and os.path.isdir(ort_dir) and torch_py is not None,
        "lenet train": os.path.exists(lenet_cli) and "train" in subprocess.run(
            [lenet_cli, "--help"], capture_output=True, text=True).stdout,
    }
    missing = [k for k, v in have.items() if not v]
    if missing:
        log(f"not available, skipped: {', '.join(missing)} (bash bench/setup-peers.sh installs the peers)")

    machine = {
        "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
        "cores": os.cpu_count(),
        "load_before": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "blas": blas_note,
        "build_native": cmake_option(args.build, "LENET_NATIVE"),
    }
    log(f"{machine['cpu']}, {machine['cores']} cores, load {machine['load_before'][0]:.2f}; {blas_note}")

    tmp = tempfile.mkdtemp(prefix="lenet-compare-")
    onnx_path = os.path.join(tmp, "lenet-max.onnx")
    if have["onnxruntime"]:
        run([torch_py, os.path.join(HERE, "peers", "pytorch_lenet.py"), "export", onnx_path], env=env)

    raw = {}  # name -> list of values

    def record(name, value):
        raw.setdefault(name, []).append(value)

    def ours(mode, threads, binary=epoch_bin, arch=None):
        out, wall, rss = timed([binary, mode, str(threads), args.data] + ([arch] if arch else []), env=env)
        return last_json(out), rss

    def peer(name, mode, threads, arch=None):
        if name == "pytorch":
            cmd = [torch_py, os.path.join(HERE, "peers", "pytorch_lenet.py"), mode, str(threads), args.data]
            cmd += [arch] if arch else []
        elif name == "libtorch":
            cmd = [libtorch_bin, mode, str(threads), args.data]
        else:
            cmd = [node, os.path.join(HERE, "peers", "onnxruntime_lenet.js"), mode, str(threads), args.data, onnx_path]
        out, wall, rss = timed(cmd, env=env)
        return last_json(out), rss

    flops_per_image = train_flops_per_image(bench_bin, env)
    infer_flops = infer_flops_per_image(bench_bin, env)

    for rnd in range(args.rounds):
        log(f"round {rnd + 1}/{args.rounds}")
        for t, v in sgemm_peak(bench_bin, env).items():
            record(f"sgemm_peak_gflops_{t}t", v)
        isa, one, two = fma_peak(peak_bin, 2, env)
        machine["fma_isa"] = isa
        record("fma_peak_gflops_1t", one)
        record("fma_peak_gflops_2t", two)
        if "train" not in skip:
            for threads in (2, 1):
                j, rss = ours("train", threads)
                record(f"lenet_train_{threads}t", j["images_per_s"])
                record("lenet_train_rss_mb", rss)
                if native_bin and threads == 2:
                    j, _ = ours("train", threads, native_bin)
                    record(f"native_train_{threads}t", j["images_per_s"])
                if have["pytorch"]:
                    j, rss = peer("pytorch", "train", threads)
                    record(f"pytorch_train_{threads}t", j["images_per_s"])
                    record("pytorch_train_rss_mb", rss)
                if have["libtorch"]:
                    j, _ = peer("libtorch", "train", threads)
                    record(f"libtorch_train_{threads}t", j["images_per_s"])
        if "bn" not in skip:  # lenet-bn beside lenet (ours) and beside PyTorch's lenet-bn, back to back
            j, _ = ours("train", 2, arch="lenet")
            record("lenet_plain_train_2t", j["images_per_s"])
            j, _ = ours("train", 2, arch="lenet-bn")
            record("lenet_bn_train_2t", j["images_per_s"])
            if have["pytorch"]:
                for threads in (2, 1):
                    j, _ = peer("pytorch", "train", threads, arch="lenet-bn")
                    record(f"pytorch_bn_train_{threads}t", j["images_per_s"])
        if "infer" not in skip:
            for threads in (2, 1):
                j, _ = ours("infer", threads)
                record(f"lenet_infer_{threads}t", j["images_per_s"])
                if native_bin and threads == 2:
                    j, _ = ours("infer", threads, native_bin)
                    record(f"native_infer_{threads}t", j["images_per_s"])
                if have["onnxruntime"]:
                    j, _ = peer("onnxruntime", "infer", threads)
                    record(f"onnxruntime_infer_{threads}t", j["images_per_s"])
                if have["pytorch"] and threads == 2:
                    j, _ = peer("pytorch", "infer", threads)
                    record(f"pytorch_infer_{threads}t", j["images_per_s"])
        if "latency" not in skip:
            j, _ = ours("latency", 1)
            record("lenet_latency_us", j["median_us"])
            if have["onnxruntime"]:
                j, _ = peer("onnxruntime", "latency", 1)
                record("onnxruntime_latency_us", j["median_us"])
            if have["pytorch"]:
                j, _ = peer("pytorch", "latency", 1)
                record("pytorch_latency_us", j["median_us"])
        if "job" not in skip and have["lenet train"] and have["pytorch"]:
            run_dir = os.path.join(tmp, f"lenet-run-{rnd}")
            out, wall, rss = timed([lenet_cli, "train", "--data", args.data, "--arch", "lenet-max", "--optimizer", "sgd",
                                    "--lr", "0.9", "--batch-size", "256", "--epochs", "1", "--threads", "2",
                                    "--out", run_dir], env=env)
            record("lenet_job_s", wall)
            record("lenet_job_rss_mb", rss)
            with open(os.path.join(run_dir, "metrics.csv")) as f:  # its own training-loop figure
                header, first = f.readline().strip().split(","), f.readline().strip().split(",")
                record("lenet_cli_train_images_per_s", float(first[header.index("images_per_s")]))
            out, wall, rss = timed([torch_py, os.path.join(HERE, "peers", "pytorch_lenet.py"), "job", "2", args.data,
                                    os.path.join(tmp, f"pytorch-run-{rnd}")], env=env)
            record("pytorch_job_s", wall)
            record("pytorch_job_rss_mb", rss)

    machine["load_after"] = os.getloadavg()
    shutil.rmtree(tmp, ignore_errors=True)

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "raw": raw, "flops_per_image": flops_per_image,
                       "infer_flops_per_image": infer_flops, "rounds": args.rounds}, f, indent=1)
    report(raw, machine, flops_per_image, args.rounds, infer_flops)


def report(raw, machine, flops_per_image, rounds, infer_flops=None):
    # ---- the table ----
    # Two views of every ratio: medians over the rounds, and each side's best
    # round (the least disturbed run of each program on a shared machine).
    m = {k: median(v) for k, v in raw.items()}
    hi = {k: max(v) for k, v in raw.items()}
    lo = {k: min(v) for k, v in raw.items()}
    rows = []

    def row(key, detail, ratio, best_ratio):
        goal = next(g for g in GOALS if g[0] == key)
        rows.append((goal[1], goal[2], detail, ratio, best_ratio, goal[3], goal[4](ratio)))

    if "lenet_train_2t" in m and "pytorch_train_2t" in m:
        # PyTorch at its better thread count (its second thread often gains nothing).
        py_med = max(m["pytorch_train_2t"], m.get("pytorch_train_1t", 0))
        py_hi = max(hi["pytorch_train_2t"], hi.get("pytorch_train_1t", 0))
        lt = ""
        if "libtorch_train_2t" in m:
            lt = f"; LibTorch {m['libtorch_train_2t']:.0f} (2 threads), {m.get('libtorch_train_1t', float('nan')):.0f} (1)"
        row("train", f"{m['lenet_train_2t']:.0f} images/s vs PyTorch {m['pytorch_train_2t']:.0f} (2 threads), "
                     f"{m.get('pytorch_train_1t', float('nan')):.0f} (1 thread){lt}; ratio to PyTorch's better count",
            m["lenet_train_2t"] / py_med, hi["lenet_train_2t"] / py_hi)
    if "lenet_job_s" in m:
        row("job", f"{m['lenet_job_s']:.2f} s vs PyTorch {m['pytorch_job_s']:.2f} s",
            m["pytorch_job_s"] / m["lenet_job_s"], lo["pytorch_job_s"] / lo["lenet_job_s"])
    if "lenet_infer_2t" in m and "onnxruntime_infer_2t" in m:
        row("infer", f"{m['lenet_infer_2t']:.0f} vs ONNX Runtime {m['onnxruntime_infer_2t']:.0f} images/s "
                     f"(1 thread: {m['lenet_infer_1t']:.0f} vs {m['onnxruntime_infer_1t']:.0f})",
            m["lenet_infer_2t"] / m["onnxruntime_infer_2t"], hi["lenet_infer_2t"] / hi["onnxruntime_infer_2t"])
    if "lenet_latency_us" in m and "onnxruntime_latency_us" in m:
        row("latency", f"{m['lenet_latency_us']:.1f} µs vs ONNX Runtime {m['onnxruntime_latency_us']:.1f} µs "
                       f"(through node), PyTorch {m.get('pytorch_latency_us', float('nan')):.0f} µs",
            m["lenet_latency_us"] / m["onnxruntime_latency_us"], lo["lenet_latency_us"] / lo["onnxruntime_latency_us"])
    if "lenet_train_2t" in m and "lenet_train_1t" in m:
        row("scaling", f"{m['lenet_train_1t']:.0f} -> {m['lenet_train_2t']:.0f} images/s",
            m["lenet_train_2t"] / m["lenet_train_1t"], hi["lenet_train_2t"] / hi["lenet_train_1t"])
    if "lenet_bn_train_2t" in m and "lenet_plain_train_2t" in m:
        row("bn_lenet", f"{m['lenet_bn_train_2t']:.0f} vs {m['lenet_plain_train_2t']:.0f} images/s",
            m["lenet_bn_train_2t"] / m["lenet_plain_train_2t"], hi["lenet_bn_train_2t"] / hi["lenet_plain_train_2t"])
    if "lenet_bn_train_2t" in m and "pytorch_bn_train_2t" in m:
        py_med = max(m["pytorch_bn_train_2t"], m.get("pytorch_bn_train_1t", 0))
        py_hi = max(hi["pytorch_bn_train_2t"], hi.get("pytorch_bn_train_1t", 0))
        row("bn_pytorch", f"{m['lenet_bn_train_2t']:.0f} images/s vs PyTorch {m['pytorch_bn_train_2t']:.0f} (2 threads), "
                          f"{m.get('pytorch_bn_train_1t', float('nan')):.0f} (1 thread)",
            m["lenet_bn_train_2t"] / py_med, hi["lenet_bn_train_2t"] / py_hi)
    rss_key = "lenet_job_rss_mb" if "lenet_job_rss_mb" in m else "lenet_train_rss_mb"
    if rss_key in m:
        peer_rss = m.get("pytorch_job_rss_mb", m.get("pytorch_train_rss_mb", float("nan")))
        what = "lenet train" if rss_key == "lenet_job_rss_mb" else "training epoch"
        row("memory", f"{m[rss_key]:.0f} MB ({what}) vs PyTorch {peer_rss:.0f} MB", m[rss_key], hi[rss_key])

    print(f"\nlenet.cpp vs peers — {machine['cpu']}, {machine['cores']} cores, {machine['date']}")
    print(f"load average before {machine['load_before'][0]:.2f}, after {machine['load_after'][0]:.2f}; "
          f"{rounds} rounds; {machine['blas']}\n")
    print("| what | workload | measured (medians) | ratio (medians) | ratio (best rounds) | goal | met (medians) |")
    print("|---|---|---|---|---|---|---|")
    for what, workload, detail, ratio, best, goal, met in rows:
        unit = " MB" if what == "memory" else "x"
        print(f"| {what} | {workload} | {detail} | {ratio:.2f}{unit} | {best:.2f}{unit} | {goal} | {'yes' if met else 'no'} |")

    # The machine's practical peak: OpenBLAS sgemm, best round; two cores count
    # at least twice one core (a loaded second core makes the 2-thread figure low).
    peak1 = hi.get("sgemm_peak_gflops_1t", float("nan"))
    peak2 = max(hi.get("sgemm_peak_gflops_2t", 0.0), 2 * peak1)
    if "lenet_train_2t" in m:
        g_med = m["lenet_train_2t"] * flops_per_image / 1e9
        g_best = hi["lenet_train_2t"] * flops_per_image / 1e9
        print(f"\ntraining: {flops_per_image / 1e6:.2f} MFLOP per image -> {g_med:.1f} GFLOP/s with 2 threads (median), "
              f"{g_best:.1f} (best round) = {100 * g_med / peak2:.0f}% / {100 * g_best / peak2:.0f}% of the OpenBLAS "
              f"sgemm peak measured in this run ({peak1:.0f} GFLOP/s on 1 core, {peak2:.0f} on 2)")
    # The core's FP32 FMA peak (register-only loop of the widest ISA), best round;
    # as for sgemm, two cores count at least twice one.
    fma1 = hi.get("fma_peak_gflops_1t")
    if fma1:
        fma2 = max(hi.get("fma_peak_gflops_2t", 0.0), 2 * fma1)
        isa = machine.get("fma_isa", "?")
        print(f"\nFP32 FMA peak ({isa}, register-only loop): {fma1:.0f} GFLOP/s on 1 core, {fma2:.0f} on 2 (best round)")
        for key, what, per_image in (("lenet_train_2t", "training", flops_per_image),
                                     ("lenet_infer_2t", "inference", infer_flops)):
            if key in m and per_image:
                g_med, g_best = m[key] * per_image / 1e9, hi[key] * per_image / 1e9
                print(f"  {what}: {per_image / 1e6:.2f} MFLOP per image -> {g_med:.1f} GFLOP/s with 2 threads (median), "
                      f"{g_best:.1f} (best round) = {100 * g_med / fma2:.0f}% / {100 * g_best / fma2:.0f}% of the FMA peak")
    # The portable build (run-time ISA dispatch) beside the -march=native one, same run.
    if "native_train_2t" in m or "native_infer_2t" in m:
        print(f"\nportable / native (2 threads; the --build folder has LENET_NATIVE={machine.get('build_native')}):")
        for what, ours_key, native_key in (("training", "lenet_train_2t", "native_train_2t"),
                                           ("inference", "lenet_infer_2t", "native_infer_2t")):
            if ours_key in m and native_key in m:
                rounds_ratio = [a / b for a, b in zip(raw[ours_key], raw[native_key]) if a and b]
                print(f"  {what:9s} {m[ours_key]:.0f} vs {m[native_key]:.0f} images/s: "
                      f"{m[ours_key] / m[native_key]:.3f} (medians), {hi[ours_key] / hi[native_key]:.3f} (best rounds); "
                      "round by round " + "  ".join(f"{v:.3f}" for v in rounds_ratio) + " (goal >= 0.97)")
    # Per-round ratios: each round ran ours and the peer back to back.
    def per_round(num, den, invert=False):
        a, b = raw.get(num, []), raw.get(den, [])
        return [(y / x if invert else x / y) for x, y in zip(a, b) if x and y]
    train_peer = [max(a, b) for a, b in zip(raw.get("pytorch_train_2t", []), raw.get("pytorch_train_1t", []))]
    lines = {
        "training vs PyTorch (better count)": [x / y for x, y in zip(raw.get("lenet_train_2t", []), train_peer)],
        "whole job": per_round("lenet_job_s", "pytorch_job_s", invert=True),
        "inference vs ONNX Runtime": per_round("lenet_infer_2t", "onnxruntime_infer_2t"),
        "latency vs ONNX Runtime": per_round("lenet_latency_us", "onnxruntime_latency_us"),
        "thread scaling": per_round("lenet_train_2t", "lenet_train_1t"),
        "lenet-bn vs lenet": per_round("lenet_bn_train_2t", "lenet_plain_train_2t"),
        "lenet-bn vs PyTorch's (2 threads)": per_round("lenet_bn_train_2t", "pytorch_bn_train_2t"),
    }
    print("\nratios round by round:")
    for name, values in lines.items():
        if values:
            print(f"  {name:36s} " + "  ".join(f"{v:.2f}" for v in values))
    print("\nevery figure (median, min–max over rounds):")
    for k in sorted(raw):
        print(f"  {k:28s} {m[k]:10.4g}   {spread(raw[k])}")


if __name__ == "__main__":
    main()
