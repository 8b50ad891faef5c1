#!/usr/bin/env python3
"""PyTorch peer for bench/compare.py: lenet-max (the chapter's LeNet with max
pooling) on Fashion-MNIST, the same work as bench_epoch.cpp and the LibTorch
peer. Prints one JSON object on stdout.

  pytorch_lenet.py train   THREADS DATA_DIR [ARCH] one epoch, SGD lr 0.9, batch 256 (ARCH: lenet-max,
                                                   lenet or lenet-bn)
  pytorch_lenet.py fit     ARCH LR EPOCHS THREADS DATA_DIR
                                                   the README's reference runs: SGD, batch 256, the
                                                   test accuracy and seconds of every epoch
  pytorch_lenet.py infer   THREADS DATA_DIR        the 10k test set at batch 256
  pytorch_lenet.py latency THREADS DATA_DIR        one image at a time
  pytorch_lenet.py job     THREADS DATA_DIR OUT    load, train one epoch, evaluate, save
  pytorch_lenet.py export  OUT.onnx                the model for ONNX Runtime (opset 11)
"""
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import torch
from torch import nn


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(data_dir, prefix):
    images = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)  # ToTensor: [0, 1]
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def lenet_max():
    net = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10))
    for m in net:  # the chapter's init_weights
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return net


def lenet():
    """The chapter's LeNet (average pooling), as lenet.cpp's `lenet`."""
    net = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10))
    return init_weights(net)


def lenet_bn():
    """The book's batch-norm LeNet (d2l 8.5), as lenet.cpp's `lenet-bn`: no padding, 16·4·4 = 256."""
    net = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5), nn.BatchNorm2d(6), nn.Sigmoid(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, kernel_size=5), nn.BatchNorm2d(16), nn.Sigmoid(), nn.AvgPool2d(2), nn.Flatten(),
        nn.Linear(256, 120), nn.BatchNorm1d(120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.BatchNorm1d(84), nn.Sigmoid(), nn.Linear(84, 10))
    return init_weights(net)


def init_weights(net):
    # lenet.cpp's initialisation: Xavier-uniform weights, zero biases; BatchNorm keeps PyTorch's (1, 0).
    for m in net:
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return net


ARCHS = {"lenet-max": lenet_max, "lenet": lenet, "lenet-bn": lenet_bn}


def train_epoch(net, x, y, batch=256, lr=0.9):
    sgd = torch.optim.SGD(net.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    net.train()
    order = torch.randperm(len(x))
    loss = None
    for b in range(0, len(x), batch):
        idx = order[b:b + batch]
        sgd.zero_grad()
        loss = loss_fn(net(x[idx]), y[idx])
        loss.backward()
        sgd.step()
    return float(loss)


def test_accuracy(net, xt, yt):
    net.eval()
    correct = 0
    with torch.no_grad():
        for b in range(0, len(xt), 256):
            correct += int((net(xt[b:b + 256]).argmax(1) == yt[b:b + 256]).sum())
    return correct / len(xt)


def fit(arch, lr, epochs, threads, data_dir):
    torch.set_num_threads(threads)
    net = ARCHS[arch]()
    x, y = load(data_dir, "train")
    xt, yt = load(data_dir, "t10k")
    sgd = torch.optim.SGD(net.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    out = {"peer": "pytorch", "mode": "fit", "arch": arch, "lr": lr, "threads": threads, "torch": torch.__version__,
           "epochs": []}
    for epoch in range(epochs):
        net.train()
        t0 = time.perf_counter()
        order = torch.randperm(len(x))
        loss_sum = 0.0
        for b in range(0, len(x), 256):
            idx = order[b:b + 256]
            sgd.zero_grad()
            loss = loss_fn(net(x[idx]), y[idx])
            loss.backward()
            sgd.step()
            loss_sum += float(loss) * len(idx)
        seconds = time.perf_counter() - t0
        out["epochs"].append({"epoch": epoch + 1, "train_loss": loss_sum / len(x), "seconds": seconds,
                              "test_acc": test_accuracy(net, xt, yt)})
        print(json.dumps(out["epochs"][-1]), file=sys.stderr, flush=True)
    print(json.dumps(out))


def main():
    mode = sys.argv[1]
    torch.manual_seed(0)
    if mode == "export":
        net = lenet_max().eval()
        torch.onnx.export(net, torch.zeros(1, 1, 28, 28), sys.argv[2], opset_version=11, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        return
    if mode == "fit":
        return fit(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
    threads, data_dir = int(sys.argv[2]), sys.argv[3]
    torch.set_num_threads(threads)
    net = ARCHS[sys.argv[4] if len(sys.argv) > 4 and mode == "train" else "lenet-max"]()
    out = {"peer": "pytorch", "mode": mode, "threads": threads, "torch": torch.__version__}
    if mode == "train":
        x, y = load(data_dir, "train")
        # Warm-up on three batches (oneDNN primitive creation), not timed.
        sgd = torch.optim.SGD(net.parameters(), lr=0.9)
        for b in range(3):
            sgd.zero_grad()
            nn.functional.cross_entropy(net(x[b * 256:(b + 1) * 256]), y[b * 256:(b + 1) * 256]).backward()
            sgd.step()
        t0 = time.perf_counter()
        out["last_loss"] = train_epoch(net, x, y)
        out["seconds"] = time.perf_counter() - t0
        out["images_per_s"] = len(x) / out["seconds"]
    elif mode == "infer":
        x, _ = load(data_dir, "t10k")
        net.eval()
        best = float("inf")
        with torch.no_grad():
            for rep in range(6):  # the first pass warms up
                t0 = time.perf_counter()
                for b in range(0, len(x), 256):
                    net(x[b:b + 256])
                if rep:
                    best = min(best, time.perf_counter() - t0)
        out["seconds"] = best
        out["images_per_s"] = len(x) / best
    elif mode == "latency":
        x, _ = load(data_dir, "t10k")
        net.eval()
        times = []
        with torch.no_grad():
            for i in range(3000):
                one = x[i:i + 1]
                t0 = time.perf_counter()
                net(one)
                times.append(time.perf_counter() - t0)
        times = sorted(times[500:])
        out["median_us"] = times[len(times) // 2] * 1e6
    elif mode == "job":
        # The same job as `lenet train` for one epoch: load, train, evaluate, save.
        out_dir = sys.argv[4]
        x, y = load(data_dir, "train")
        xt, yt = load(data_dir, "t10k")
        out["last_loss"] = train_epoch(net, x, y)
        net.eval()
        correct = 0
        with torch.no_grad():
            for b in range(0, len(xt), 256):
                correct += int((net(xt[b:b + 256]).argmax(1) == yt[b:b + 256]).sum())
        out["test_accuracy"] = correct / len(xt)
        os.makedirs(out_dir, exist_ok=True)
        torch.save(net.state_dict(), os.path.join(out_dir, "model.pt"))
    else:
        sys.exit(f"pytorch_lenet.py: unknown mode '{mode}'")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
