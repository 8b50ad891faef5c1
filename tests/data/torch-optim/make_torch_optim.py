#!/usr/bin/python3
# Writes lr-schedules.json: the learning rate of every batch under
# torch.optim.lr_scheduler's StepLR, MultiStepLR, CosineAnnealingLR (each with
# and without a linear warm-up through SequentialLR) and OneCycleLR, three
# configurations each, for tests/test_lr_schedule.cpp; and optim.json: weights
# after torch.optim.AdamW steps and gradients after clip_grad_norm_.
#   bash bench/setup-peers.sh   # installs python3-torch (Debian 12)
#   /usr/bin/python3 tests/data/torch-optim/make_torch_optim.py
import json
import os

import torch
from torch.optim import SGD
from torch.optim.lr_scheduler import (CosineAnnealingLR, LinearLR, MultiStepLR,
                                      OneCycleLR, SequentialLR, StepLR)

# (our --lr-schedule text, --warmup-epochs, base lr, epochs, batches per epoch)
CONFIGS = [
    ("step:3:0.5", 0, 0.1, 10, 3),
    ("step:2:0.1", 2, 1.0, 7, 2),
    ("step:1:0.9", 0, 0.01, 5, 3),
    ("multistep:2,5:0.1", 0, 0.1, 8, 2),
    ("multistep:3,4,6:0.5", 1, 1.0, 9, 2),
    ("multistep:1:0.3", 0, 0.05, 4, 3),
    ("cosine", 0, 0.1, 10, 2),
    ("cosine:0.001", 2, 1.0, 8, 3),
    ("cosine:0.01", 0, 0.5, 5, 2),
    ("onecycle:0.1", 0, 0.001, 3, 7),
    ("onecycle:1", 0, 0.9, 5, 4),
    ("onecycle:0.01", 0, 0.001, 2, 13),
]


def main_scheduler(opt, text, epochs):
    kind, *args = text.split(":")
    if kind == "step":
        return StepLR(opt, step_size=int(args[0]), gamma=float(args[1]))
    if kind == "multistep":
        return MultiStepLR(opt, milestones=[int(m) for m in args[0].split(",")], gamma=float(args[1]))
    if kind == "cosine":
        return CosineAnnealingLR(opt, T_max=epochs, eta_min=float(args[0]) if args else 0.0)
    raise ValueError(text)


def lrs(text, warmup, base, epochs, batches):
    opt = SGD([torch.zeros(1, requires_grad=True)], lr=base)
    if text.startswith("onecycle"):
        sched = OneCycleLR(opt, max_lr=float(text.split(":")[1]), epochs=epochs, steps_per_epoch=batches,
                           cycle_momentum=False)
        per_batch = True
    else:
        main = main_scheduler(opt, text, epochs - warmup)
        if warmup:
            warm = LinearLR(opt, start_factor=1.0 / (warmup + 1), end_factor=1.0, total_iters=warmup)
            sched = SequentialLR(opt, schedulers=[warm, main], milestones=[warmup])
        else:
            sched = main
        per_batch = False
    out = []
    for _ in range(epochs):
        for _ in range(batches):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            if per_batch:
                sched.step()
        if not per_batch:
            sched.step()
    return out


def optim_cases():
    gen = torch.Generator().manual_seed(7)
    w0 = torch.randn(6, generator=gen)
    grads = [torch.randn(6, generator=gen) for _ in range(4)]
    adamw = []
    for lr, wd in [(0.01, 0.1), (0.001, 0.01), (0.1, 0.0)]:
        w = w0.clone().requires_grad_(True)
        opt = torch.optim.AdamW([w], lr=lr, weight_decay=wd)
        steps = []
        for g in grads:
            w.grad = g.clone()
            opt.step()
            steps.append(w.detach().tolist())
        adamw.append({"lr": lr, "weight_decay": wd, "steps": steps})
    clip = []
    for max_norm in [0.5, 2.0, 100.0]:
        a = grads[0].clone().requires_grad_(False)
        b = grads[1][:3].clone()
        pa, pb = torch.zeros_like(a, requires_grad=True), torch.zeros_like(b, requires_grad=True)
        pa.grad, pb.grad = a.clone(), b.clone()
        norm = torch.nn.utils.clip_grad_norm_([pa, pb], max_norm)
        clip.append({"max_norm": max_norm, "grads": a.tolist() + b.tolist(), "norm": float(norm),
                     "clipped": pa.grad.tolist() + pb.grad.tolist()})
    return {"w0": w0.tolist(), "grads": [g.tolist() for g in grads], "adamw": adamw, "clip_grad_norm": clip}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "optim.json"), "w") as f:
        json.dump(dict(producer="torch " + torch.__version__, **optim_cases()), f, indent=1)
        f.write("\n")
    cases = []
    for text, warmup, base, epochs, batches in CONFIGS:
        cases.append({"schedule": text, "warmup_epochs": warmup, "lr": base, "epochs": epochs,
                      "batches": batches, "lrs": lrs(text, warmup, base, epochs, batches)})
    doc = {"producer": "torch " + torch.__version__ + " torch.optim.lr_scheduler", "cases": cases}
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lr-schedules.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
