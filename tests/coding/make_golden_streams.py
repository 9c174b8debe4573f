"""Write the golden streams that tests/coding/test_golden_streams.py checks speed work against.

    python tests/coding/make_golden_streams.py [NAME ...]     (no names: every shipped codec)

For every shipped codec: the .vqg stream of the first IMAGES easy-VQA (or its dataset's) test images,
and what it decodes to, as one PNG strip (8-bit, lossless). Run it only when a change is *meant* to
alter streams or pixels (a retrained model, a new format version), and say so in the commit: the test
exists to catch every other change that does.
"""
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vqagan_lib.checkpoint import list_checkpoints
from vqagan_lib.coding.bitstream import decode_images, encode_images
from vqagan_lib.data.registry import get_dataset
from vqagan_lib.models.codec import CODEC_KINDS, card_dataset, load_codec, training_stage

GOLDEN = Path(__file__).parent / "golden"
IMAGES = 8


def shipped_codecs() -> list[dict]:
    """Cards of every shipped codec (training stages write no files of their own)."""
    return [c for c in list_checkpoints() if c.get("kind") in CODEC_KINDS and not training_stage(c)]


def first_test_images(card: dict) -> torch.Tensor:
    return get_dataset(card_dataset(card)).load_split("test", limit_images=IMAGES).images.float() / 255.0


def strip(images: torch.Tensor) -> np.ndarray:
    """(N,3,S,S) in [0,1] -> one (S, N*S, 3) uint8 strip, images side by side."""
    pixels = (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)  # (N,S,S,3)
    return torch.cat(list(pixels), dim=1).numpy()


def main(names: list[str]) -> int:
    GOLDEN.mkdir(exist_ok=True)
    for card in [c for c in shipped_codecs() if not names or c["name"] in names]:
        codec = load_codec(card["name"])
        stream = encode_images(codec, first_test_images(card))
        decoded, _, _ = decode_images(codec, stream)
        (GOLDEN / f"{card['name']}.vqg").write_bytes(stream)
        Image.fromarray(strip(decoded)).save(GOLDEN / f"{card['name']}.png", optimize=True)
        print(f"{card['name']}: {len(stream)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
