"""Codec commands: `compress`, `decompress`, `info`, `models`.

    vqagan compress a.png b.jpg --model codec-easyvqa -o out.vqg [--keep-names]
    vqagan decompress out.vqg -o decoded/ [--force]  # finds the model by the file's keyed check; writes 000000.png ...
    vqagan info out.vqg                              # checks the whole file, as decompress would
    vqagan models [--json]

What these commands promise, whatever the input:
- every refusal is one line on stderr naming the file, exit status 2, and nothing half-written;
- a .vqg file is read only if regular and at most MAX_FILE_BYTES, and decoded only within the
  decode budget (--max-images, --max-pixels; see coding/bitstream.py), checked from its header;
- decompress writes the whole set into a staging folder and publishes it at once; it never
  replaces an existing file without --force, never the input file, and never decodes into a
  folder that holds the original images it names (a lossy copy must not replace an original).

Rates printed here are the file's size in bytes x 8, header included.

Introduced in notebooks/02_codec.ipynb.
"""
import os
from pathlib import Path

import torch

from vqagan_lib.checkpoint import list_checkpoints
from vqagan_lib.coding.bitstream import (DEFAULT_BUDGET, MAX_FILE_BYTES, MAX_NAME_BYTES, BitstreamError,
                                         DecodeBudget, check_budget, decode_batches, encode_images, model_key,
                                         parse, read_symbols)
from vqagan_lib.coding.images import load_image, png_at_size
from vqagan_lib.errors import VQAGanError
from vqagan_lib.fileio import (atomic_write_bytes, output_file, output_folder, publish, read_regular, same_file,
                               json_text, shown, staged_folder)
from vqagan_lib.models.codec import load_codec, training_stage


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _add_budget(p) -> None:
    p.add_argument("--max-images", type=_count, default=DEFAULT_BUDGET.max_images, metavar="N",
                   help=f"decode budget: refuse files of more images (default {DEFAULT_BUDGET.max_images:,})")
    p.add_argument("--max-pixels", type=_count, default=DEFAULT_BUDGET.max_pixels, metavar="N",
                   help=f"decode budget: refuse files that decode to more pixels in all (default {DEFAULT_BUDGET.max_pixels:,})")


def register(subparsers) -> None:
    p = subparsers.add_parser("compress")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG/JPEG files (any size or mode)")
    p.add_argument("--model", required=True, help="shipped codec name or path to a codec checkpoint")
    p.add_argument("-o", "--output", required=True, metavar="OUT.vqg")
    p.add_argument("--keep-names", action="store_true", help="store the file names (costs their bytes)")
    p.set_defaults(handler=run_compress)

    p = subparsers.add_parser("decompress")
    p.add_argument("input", metavar="IN.vqg")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR")
    p.add_argument("--model", default=None, help="codec to decode with (default: the shipped one whose key checks out)")
    p.add_argument("--force", action="store_true", help="replace existing files of the same names in OUT_DIR")
    _add_budget(p)
    p.set_defaults(handler=run_decompress)

    p = subparsers.add_parser("info")
    p.add_argument("input", metavar="IN.vqg")
    p.add_argument("--model", default=None, help="codec to check with (default: the shipped one whose key checks out)")
    _add_budget(p)
    p.set_defaults(handler=run_info)

    p = subparsers.add_parser("models")
    p.add_argument("--json", action="store_true", help="machine-readable list")
    p.set_defaults(handler=run_models)


def _codec_cards() -> list[dict]:
    """The models that write .vqg files: every checkpoint with a decoding fingerprint, less training stages."""
    return [c for c in list_checkpoints() if c.get("fingerprint") and not training_stage(c)]


def load_usable_codec(spec: str):
    """load_codec, refusing a training stage in one line: its files would decode to meaningless pictures."""
    codec = load_codec(spec)
    stage = training_stage(codec.card)
    if stage:
        raise VQAGanError(f"{shown(spec)}: a training stage (stage {stage!r}: the code without a trained decoder), "
                          "not a codec; pick a codec from `vqagan models`")
    return codec


def find_model(vqg, source: str):
    """The shipped codec whose key checks out against a parsed .vqg file."""
    for card in _codec_cards():
        codec = load_codec(card["path"])
        if vqg.matches(model_key(codec)):
            return codec
    known = ", ".join(c["name"] for c in _codec_cards()) or "none"
    raise BitstreamError(f"{source}: no shipped codec checks out ({known}): the file was made by another "
                         "model (pass --model) or it is truncated or altered")


def _load(args):
    """(source name, parsed header, budget) of the input .vqg, refused early if the header is over budget."""
    source = shown(args.input)
    vqg = parse(read_regular(args.input, MAX_FILE_BYTES), source)
    budget = DecodeBudget(args.max_images, args.max_pixels)
    check_budget(vqg, source, budget)
    return source, vqg, budget


def _stored_names(paths) -> list[str]:
    """The names --keep-names stores: UTF-8, and each decodes back to a distinct NAME.png that fits."""
    names = []
    for p in paths:
        name = Path(p).name
        try:
            png = (Path(name).stem + ".png").encode("utf-8")
        except UnicodeEncodeError:
            raise VQAGanError(f"{shown(p)}: --keep-names needs UTF-8 file names (rename it, or leave out --keep-names)") from None
        if len(png) > MAX_NAME_BYTES:
            raise VQAGanError(f"{shown(p)}: name too long for --keep-names: it would decode to a "
                              f"{len(png)}-byte NAME.png, over the {MAX_NAME_BYTES}-byte limit")
        names.append(name)
    if len({Path(n).stem for n in names}) != len(names):
        raise VQAGanError("--keep-names needs distinct file names (two inputs would decode to the same NAME.png)")
    return names


def run_compress(args) -> int:
    out = output_file(args.output)
    if any(same_file(out, p) for p in args.images):
        raise VQAGanError(f"{shown(out)}: refusing to overwrite an input image")
    names = _stored_names(args.images) if args.keep_names else None
    codec = load_usable_codec(args.model)
    loaded = [load_image(p, codec.cfg.image_size) for p in args.images]
    x = torch.stack([img for img, _ in loaded])  # (N, 3, S, S)
    data = encode_images(codec, x, [size for _, size in loaded], names)
    atomic_write_bytes(out, data)
    print(f"{shown(out)}: {len(args.images)} images, {len(data)} bytes, {8 * len(data) / len(args.images):.1f} bits/image")
    return 0


def _output_names(vqg, source: str) -> list[str]:
    """Stored names give NAME.png (compress --keep-names); otherwise 000000.png, ... in input order."""
    if not vqg.names:
        return [f"{i:06d}.png" for i in range(vqg.count)]
    files = [Path(n).stem + ".png" for n in vqg.names]
    if any(len(f.encode("utf-8")) > MAX_NAME_BYTES for f in files):
        raise BitstreamError(f"{source}: a stored name would decode to a NAME.png over {MAX_NAME_BYTES} bytes")
    if len(set(files)) != len(files):
        raise BitstreamError(f"{source}: two stored names decode to the same file name")
    return files


def _check_destination(out_dir: Path, files: list[str], vqg, args) -> None:
    """Refuse to replace the input, an original image, or (without --force) any existing file."""
    if not out_dir.exists():
        return
    originals = [n for n in vqg.names or () if os.path.lexists(out_dir / n)]
    if originals:
        raise VQAGanError(f"{shown(out_dir)}: holds {shown(originals[0])}, the name of an original image in "
                          f"{shown(args.input)}; decode elsewhere (a lossy copy must never replace an original, "
                          "even with --force)")
    for f in files:
        target = out_dir / f
        if same_file(target, args.input):
            raise VQAGanError(f"{shown(target)}: refusing to overwrite the input {shown(args.input)}")
        if os.path.lexists(target) and (not args.force or not target.is_file() or target.is_symlink()):
            raise VQAGanError(f"{shown(target)}: already exists (--force replaces existing files)"
                              if not args.force else f"{shown(target)}: exists and is not a regular file")


def run_decompress(args) -> int:
    out_dir = output_folder(args.output)
    source, vqg, budget = _load(args)
    files = _output_names(vqg, source)
    _check_destination(out_dir, files, vqg, args)
    codec = load_usable_codec(args.model) if args.model else find_model(vqg, source)
    _, symbols = read_symbols(codec, vqg, source, budget)
    with staged_folder(out_dir) as staging:
        done = 0
        for images in decode_batches(codec, symbols, pixels=True):  # memory follows the batch, not the file
            for x in images:  # (S, S, 3) uint8
                size = vqg.sizes[done] if vqg.sizes else (x.shape[1], x.shape[0])
                (staging / files[done]).write_bytes(png_at_size(x, size))
                done += 1
        publish(staging, out_dir, files, replace=args.force)
    print(f"{shown(out_dir)}: wrote {len(files)} images ({shown(files[0])}{' ...' if len(files) > 1 else ''})")
    return 0


def run_info(args) -> int:
    source, vqg, budget = _load(args)
    codec = load_codec(args.model) if args.model else find_model(vqg, source)
    read_symbols(codec, vqg, source, budget)  # refuses what decompress refuses: check, budget, payload
    model = codec.card.get("name") or args.model
    print(f"file:         {source}")
    print(f"model:        {shown(model)} (key checks out)")
    print(f"images:       {vqg.count}")
    print(f"bytes:        {vqg.total_bytes} (header {vqg.header_bytes}, payload {len(vqg.payload)}, check {len(vqg.check)})")
    print(f"bits/image:   {8 * vqg.total_bytes / vqg.count:.1f}")
    print(f"sizes stored: {'yes' if vqg.sizes else 'no (all native size)'}; names stored: {'yes' if vqg.names else 'no'}")
    return 0


def _share(value) -> str:
    """An accuracy from a card: a measured share, or 'not measured' where the card holds null (no such judge)."""
    return "not measured" if value is None or value != value else f"{value:.1%}"


def _summary(card: dict) -> tuple[str, str]:
    """(rate, accuracy) as measured: a codec's benchmark numbers, a critic's or judge's test accuracy."""
    metrics = card.get("metrics") or {}
    bench = metrics.get("benchmark")
    if bench:
        return (f"{bench['stream_bits']:.1f} bits/image ({bench['file_bits'] / 8:.1f} B/file)",
                f"rule judge {_share(bench['judge_rules'])}, ViLT judge {_share(bench['judge_vilt'])}, critic {_share(bench['critic'])}")
    if "val/rate_bits" in metrics:
        return f"{metrics['val/rate_bits']:.1f} bits/image (held-out, from tables)", "not benchmarked"
    if "test_accuracy" in metrics:
        return "-", f"{metrics['test_accuracy']:.2%} on test originals"
    return "-", "-"


def run_models(args) -> int:
    rows = []
    for card in list_checkpoints():
        rate, accuracy = _summary(card)
        kind = "stage" if training_stage(card) else card.get("kind")  # a step towards a codec, not one
        rows.append({"name": card["name"], "kind": kind, "path": card["path"],
                     "fingerprint": card.get("fingerprint"), "rate": rate, "accuracy": accuracy,
                     "metrics": card.get("metrics") or {}})
    if args.json:
        print(json_text(rows))  # strict JSON: a number not measured is null, never NaN
        return 0
    if not rows:
        print("no shipped checkpoints")
    for row in rows:
        print(f"{row['name']:22s} {row['kind'] or '?':11s} {row['rate']:38s} {row['accuracy']}")
    return 0
