#!/usr/bin/python3
# Writes small-cnn.safetensors: the state_dict of a PyTorch nn.Sequential,
# saved as safetensors.torch.save_file does (F32 tensors under their
# state_dict names, __metadata__ {"format": "pt"}), plus 4 inputs and the logits
# PyTorch computes for them, for tests/test_finetune.cpp (lenet train --init).
#   bash bench/setup-peers.sh   # installs python3-torch (Debian 12)
#   /usr/bin/python3 tests/data/torch-state-dict/make_state_dict.py
# Debian 12 packages no python3-safetensors; the format is a JSON header and
# raw little-endian bytes (https://github.com/huggingface/safetensors), written here.
import json
import os
import struct

import torch
from torch import nn


def save_file(tensors, path, metadata):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().to(torch.float32).numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    torch.manual_seed(5)
    # lenet.cpp's --arch "conv 4 k5 p2, relu, maxpool 2, flatten, linear 16, relu, linear" for 1x16x16, 3 classes.
    model = nn.Sequential(nn.Conv2d(1, 4, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(256, 16), nn.ReLU(), nn.Linear(16, 3))
    x = torch.rand(4, 1, 16, 16)
    with torch.no_grad():
        logits = model(x)
    here = os.path.dirname(os.path.abspath(__file__))
    save_file(model.state_dict(), os.path.join(here, "small-cnn.safetensors"), {"format": "pt"})
    x.numpy().astype("<f4").tofile(os.path.join(here, "small-cnn.input.f32"))
    logits.numpy().astype("<f4").tofile(os.path.join(here, "small-cnn.logits.f32"))


if __name__ == "__main__":
    main()
