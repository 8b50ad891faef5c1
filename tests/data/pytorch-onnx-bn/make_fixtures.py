#!/usr/bin/env python3
"""Makes the batch-norm ONNX fixtures with PyTorch (Debian's python3-torch 1.13):
the book's batch-norm LeNet (lenet-bn) with two Dropout layers added, trained
for 60 steps of SGD (lr 1.0, batch 256) on Fashion-MNIST so that the running
statistics are far from their start, then exported in evaluation mode twice:

  lenet-bn-folded.onnx    torch.onnx.export's default: Conv+BatchNorm2d folded
                          into the Conv, BatchNorm1d as BatchNormalization, Dropout gone
  lenet-bn-unfolded.onnx  do_constant_folding=False and no eval peephole:
                          every BatchNorm as BatchNormalization

with input.f32 (8 test images, [8,1,28,28]) and logits.f32 (PyTorch's
evaluation-mode logits for them, [8,10]), raw little-endian float32.

  /usr/bin/python3 make_fixtures.py /usr/share/datasets/fashion-mnist
"""
import gzip
import json
import os
import struct
import sys

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
    x = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    y = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz")).astype(np.int64)
    return torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5), nn.BatchNorm2d(6), nn.Sigmoid(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, kernel_size=5), nn.BatchNorm2d(16), nn.Sigmoid(), nn.AvgPool2d(2), nn.Flatten(),
        nn.Dropout(0.2), nn.Linear(256, 120), nn.BatchNorm1d(120), nn.Sigmoid(), nn.Dropout(0.1),
        nn.Linear(120, 84), nn.BatchNorm1d(84), nn.Sigmoid(), nn.Linear(84, 10))
    x, y = load(sys.argv[1], "train")
    xt, _ = load(sys.argv[1], "t10k")
    sgd = torch.optim.SGD(net.parameters(), lr=1.0)
    net.train()
    for step in range(60):
        sgd.zero_grad()
        nn.functional.cross_entropy(net(x[step * 256:(step + 1) * 256]), y[step * 256:(step + 1) * 256]).backward()
        sgd.step()
    net.eval()
    inp = xt[:8].contiguous()
    with torch.no_grad():
        logits = net(inp)
    inp.numpy().astype("<f4").tofile(os.path.join(here, "input.f32"))
    logits.numpy().astype("<f4").tofile(os.path.join(here, "logits.f32"))
    common = dict(opset_version=11, input_names=["input"], output_names=["logits"],
                  dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    torch.onnx.export(net, inp, os.path.join(here, "lenet-bn-folded.onnx"), **common)
    # PRESERVE keeps the module's (evaluation) mode but skips the eval-only Conv+BN fusion.
    torch.onnx.export(net, inp, os.path.join(here, "lenet-bn-unfolded.onnx"), do_constant_folding=False,
                      training=torch.onnx.TrainingMode.PRESERVE, **common)
    index = {"input_shape": [8, 1, 28, 28], "logits_shape": [8, 10], "producer": "torch " + torch.__version__,
             "trained": "60 steps of SGD (lr 1.0, batch 256) on Fashion-MNIST",
             "arch": "conv 6 k5, bn, sigmoid, avgpool 2, conv 16 k5, bn, sigmoid, avgpool 2, flatten, dropout 0.2, "
                     "linear 120, bn, sigmoid, dropout 0.1, linear 84, bn, sigmoid, linear"}
    with open(os.path.join(here, "index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
