"""Codec commands: `compress`, `decompress`, `info`, `models`.

    vqagan compress a.png b.jpg --model codec-easyvqa -o out.vqg [--keep-names]
    vqagan decompress out.vqg -o decoded/     # finds the model by the header's fingerprint; writes 000000.png ...
    vqagan info out.vqg
    vqagan models [--json]

Rates printed here are the file's size in bytes x 8, header included.

Introduced in notebooks/02_codec.ipynb.
"""
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from vqagan_lib.checkpoint import list_checkpoints
from vqagan_lib.coding.bitstream import BitstreamError, decode_images, encode_images, parse
from vqagan_lib.coding.images import load_image, png_bytes, resize
from vqagan_lib.errors import VQAGanError
from vqagan_lib.fileio import atomic_write_bytes
from vqagan_lib.models.codec import load_codec


def register(subparsers) -> None:
    p = subparsers.add_parser("compress", help="compress images into one .vqg file")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG/JPEG files (any size or mode)")
    p.add_argument("--model", required=True, help="shipped codec name or path to a codec checkpoint")
    p.add_argument("-o", "--output", required=True, metavar="OUT.vqg")
    p.add_argument("--keep-names", action="store_true", help="store the file names (costs their bytes)")
    p.set_defaults(handler=run_compress)

    p = subparsers.add_parser("decompress", help="decode a .vqg file into PNGs")
    p.add_argument("input", metavar="IN.vqg")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR")
    p.add_argument("--model", default=None, help="codec to decode with (default: the shipped one whose fingerprint matches)")
    p.set_defaults(handler=run_decompress)

    p = subparsers.add_parser("info", help="describe a .vqg file: model, image count, bytes, bits per image")
    p.add_argument("input", metavar="IN.vqg")
    p.set_defaults(handler=run_info)

    p = subparsers.add_parser("models", help="list the shipped checkpoints with their measured rate and accuracy")
    p.add_argument("--json", action="store_true", help="machine-readable list")
    p.set_defaults(handler=run_models)


def _read(path) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise VQAGanError(f"{path}: no such file") from None
    except OSError as e:
        raise VQAGanError(f"{path}: cannot read ({e.strerror})") from None


def _codec_cards() -> list[dict]:
    return [c for c in list_checkpoints() if c.get("kind") == "codec"]


def find_model(fingerprint: int, source: str):
    """The shipped codec whose fingerprint matches a .vqg header."""
    for card in _codec_cards():
        if card.get("fingerprint") == f"{fingerprint:04x}":
            codec = load_codec(card["path"])
            if codec.fingerprint() == fingerprint:
                return codec
    known = ", ".join(c["name"] for c in _codec_cards()) or "none"
    raise BitstreamError(f"{source}: no shipped codec has fingerprint {fingerprint:04x} "
                         f"(shipped codecs: {known}); pass --model")


def run_compress(args) -> int:
    out = Path(args.output)
    if any(out.resolve() == Path(p).resolve() for p in args.images):
        raise VQAGanError(f"{out}: refusing to overwrite an input image")
    names = [Path(p).name for p in args.images] if args.keep_names else None
    if names is not None and len({Path(n).stem for n in names}) != len(names):
        raise VQAGanError(f"{out}: --keep-names needs distinct file names (two inputs would decode to the same NAME.png)")
    codec = load_codec(args.model)
    loaded = [load_image(p, codec.cfg.image_size) for p in args.images]
    x = torch.stack([img for img, _ in loaded])  # (N, 3, S, S)
    data = encode_images(codec, x, [size for _, size in loaded], names)
    atomic_write_bytes(out, data)
    print(f"{out}: {len(args.images)} images, {len(data)} bytes, {8 * len(data) / len(args.images):.1f} bits/image")
    return 0


def run_decompress(args) -> int:
    data = _read(args.input)
    vqg = parse(data, args.input)
    codec = load_codec(args.model) if args.model else find_model(vqg.fingerprint, args.input)
    images, sizes, names = decode_images(codec, data, args.input)
    # Stored names (compress --keep-names) give NAME.png; otherwise 000000.png, ... in input order.
    files = [Path(n).stem + ".png" for n in names] if names else [f"{i:06d}.png" for i in range(len(images))]
    if len(set(files)) != len(files):
        raise VQAGanError(f"{args.input}: two stored names decode to the same file name")
    out_dir = Path(args.output)
    source = Path(args.input).resolve()
    if any((out_dir / f).resolve() == source for f in files):
        raise VQAGanError(f"{out_dir}: refusing to overwrite the input {args.input}")
    blobs = []
    for i, x in enumerate(images):  # encode every PNG before writing any
        x = resize(x, (sizes[i][1], sizes[i][0])) if sizes else x
        blobs.append(png_bytes(x))
    # Write into a temporary folder beside the output, then move the files in: a failure
    # part-way leaves no decoded-looking PNGs behind.
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=".vqg-decode-"))
    try:
        for f, blob in zip(files, blobs):
            (staging / f).write_bytes(blob)
        for f in files:
            os.replace(staging / f, out_dir / f)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"{out_dir}: wrote {len(files)} images ({files[0]}{' ...' if len(files) > 1 else ''})")
    return 0


def run_info(args) -> int:
    data = _read(args.input)
    vqg = parse(data, args.input)
    model = next((c["name"] for c in _codec_cards() if c.get("fingerprint") == f"{vqg.fingerprint:04x}"), "not shipped")
    print(f"file:         {args.input}")
    print(f"model:        fingerprint {vqg.fingerprint:04x} ({model})")
    print(f"images:       {vqg.count}")
    print(f"bytes:        {vqg.total_bytes} (header {vqg.header_bytes}, payload {len(vqg.payload)}, CRC 1)")
    print(f"bits/image:   {8 * vqg.total_bytes / vqg.count:.1f}")
    print(f"sizes stored: {'yes' if vqg.sizes else 'no (all native size)'}; names stored: {'yes' if vqg.names else 'no'}")
    return 0


def _summary(card: dict) -> tuple[str, str]:
    """(rate, accuracy) as measured: a codec's benchmark numbers, a critic's or judge's test accuracy."""
    metrics = card.get("metrics") or {}
    bench = metrics.get("benchmark")
    if bench:
        return (f"{bench['stream_bits']:.1f} bits/image ({bench['file_bits'] / 8:.1f} B/file)",
                f"rule judge {bench['judge_rules']:.1%}, ViLT judge {bench['judge_vilt']:.1%}, critic {bench['critic']:.1%}")
    if "val/rate_bits" in metrics:
        return f"{metrics['val/rate_bits']:.1f} bits/image (held-out, from tables)", "not benchmarked"
    if "test_accuracy" in metrics:
        return "-", f"{metrics['test_accuracy']:.2%} on test originals"
    return "-", "-"


def run_models(args) -> int:
    rows = []
    for card in list_checkpoints():
        rate, accuracy = _summary(card)
        rows.append({"name": card["name"], "kind": card.get("kind"), "path": card["path"],
                     "fingerprint": card.get("fingerprint"), "rate": rate, "accuracy": accuracy,
                     "metrics": card.get("metrics") or {}})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no shipped checkpoints")
    for row in rows:
        print(f"{row['name']:22s} {row['kind'] or '?':11s} {row['rate']:38s} {row['accuracy']}")
    return 0
