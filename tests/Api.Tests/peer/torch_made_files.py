#!/usr/bin/env python3
"""Writes state_dicts the ways PyTorch users make them, from a dfn diffusers export (used by TorchPeerTests).

usage: torch_made_files.py REPO EXPORT_DIR PYTORCH_FILE OUT_DIR
Loads EXPORT_DIR into the plain-PyTorch reference (bench/peer/unet_reference.py), checks that PYTORCH_FILE (dfn's
--format pytorch export) is a plain state_dict with the reference's keys and no requires_grad, then writes to OUT_DIR:
fp16.bin, bf16.pt, fp64.pt, views.pt (every tensor a view into one storage), channels_last.pt (strided tensors),
legacy.pt (the non-zip torch.save stream) and bin_folder/ (config.json, scheduler_config.json and a .bin).
"""
import json
import os
import shutil
import sys

import torch

repo, export, pytorch_file, out = sys.argv[1:5]
sys.path.insert(0, os.path.join(repo, "bench", "peer"))
import unet_reference as ref  # noqa: E402

torch.set_num_threads(1)
os.makedirs(out, exist_ok=True)
state = ref.load_weights(ref.build(export), export).state_dict()

ours = torch.load(pytorch_file)
report = {
    "pytorch_file_type": type(ours).__name__,
    "pytorch_file_same_keys": sorted(ours) == sorted(state),
    "pytorch_file_requires_grad": any(t.requires_grad for t in ours.values()),
}

torch.save({k: v.half() for k, v in state.items()}, os.path.join(out, "fp16.bin"))
torch.save({k: v.bfloat16() for k, v in state.items()}, os.path.join(out, "bf16.pt"))
torch.save({k: v.double() for k, v in state.items()}, os.path.join(out, "fp64.pt"))

flat = torch.cat([v.reshape(-1) for v in state.values()])
views, offset = {}, 0
for key, value in state.items():
    views[key] = flat[offset:offset + value.numel()].view(value.shape)
    offset += value.numel()
report["views_share_storage"] = len({v.storage().data_ptr() for v in views.values()}) == 1
torch.save(views, os.path.join(out, "views.pt"))

strided = ref.load_weights(ref.build(export), export).to(memory_format=torch.channels_last).state_dict()
report["channels_last_non_contiguous"] = sum(not t.is_contiguous() for t in strided.values())
torch.save(strided, os.path.join(out, "channels_last.pt"))

torch.save(state, os.path.join(out, "legacy.pt"), _use_new_zipfile_serialization=False)

folder = os.path.join(out, "bin_folder")
os.makedirs(folder, exist_ok=True)
for name in ("config.json", "scheduler_config.json"):
    shutil.copy(os.path.join(export, name), folder)
torch.save(state, os.path.join(folder, "diffusion_pytorch_model.bin"))
print(json.dumps(report))
