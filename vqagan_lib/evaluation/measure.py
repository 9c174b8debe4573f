"""Measuring a codec: encode its images to real bytes, decode those bytes, judge what comes back.

    images --encode_images--> .vqg bytes (one stream; optionally one file per image)
           --decode_pixels--> 8-bit reconstructions --critic, ViLT judge, rule judge--> accuracy
                                                    --against the originals---------> PSNR

What is timed, and what is not (the benchmark times classical codecs on the same footing):
  encode: images in memory (N,3,S,S; the benchmark's are 8-bit) -> the stream's bytes in memory, the
          conversion to floats included;
  decode: the stream's bytes in memory -> 8-bit images (N,S,S,3) in memory at the model's size, the check,
          the arithmetic decoder and the lookup or the decoder network included.
Not timed: reading and writing files, the one-off building of a model's decode table (the first decode
of a model builds it; `measure_codec` decodes once before the timed run), the judges.

The one owner of that path: the benchmark (notebook 06, the whole test set), the playground (notebook 07,
a fixed slice) and the notebooks call `measure_codec`, so a rate or an accuracy means the same thing
wherever it is printed. Rates are read from the bytes (or from files on disk), never from the model's
own estimate. `judge` is the second half alone, for reconstructions made another way (classical codecs).
Introduced in notebooks/06_evaluation.ipynb.
"""
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from vqagan_lib.answerers.vqa_eval import evaluate
from vqagan_lib.coding.bitstream import decode_pixels, encode_images
from vqagan_lib.data.split import VQASplit
from vqagan_lib.data.pixels import as_float
from vqagan_lib.evaluation.metrics import psnr


@dataclass
class Scores:
    accuracy: dict  # answerer name -> share of the split's questions answered right
    per_type: dict  # answerer name -> {"all", then each question type and group of the dataset}
    psnr: float  # mean dB against the originals


@dataclass
class Measurement(Scores):
    images: torch.Tensor  # (N,3,S,S) float in [0,1], the 8-bit images decoded from the stream's bytes only
    stream_bits: float  # per image, all images in one .vqg (the header paid once)
    file_bits: float | None  # per image, one standalone .vqg each (header paid each time); None when not asked
    encode_per_s: float  # images per second, the stream
    decode_per_s: float


def wall_clock(fn):
    """(fn's result, seconds it took); the benchmark passes its own timer (one CPU core, the fastest of a few runs)."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def _bytes_of(blob: bytes, path: Path | None) -> int:
    """len(blob), or, with a path, the size the file system reports once the blob is written there."""
    if path is None:
        return len(blob)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    return path.stat().st_size


def judge(originals: torch.Tensor, decoded: torch.Tensor, split: VQASplit, answerers: dict) -> Scores:
    """Every answerer on the decoded images (one per image row of `split`), and PSNR against the originals."""
    acc = evaluate(decoded, split, answerers)
    return Scores({k: acc[k] for k in answerers}, acc["per_type"], float(psnr(originals, decoded).mean()))


@torch.no_grad()
def measure_codec(codec, images: torch.Tensor, split: VQASplit, answerers: dict, files: bool = True,
                  scratch: Path | None = None, timer=wall_clock) -> Measurement:
    """Encode `images` (N,3,S,S, uint8 or [0,1]; one per image row of `split`) with `codec`, decode, judge.

    `files`: also write one standalone file per image (N more encodes) for `file_bits`.
    `scratch`: a folder; the bytes are written there and their sizes read back from the file system,
    and the stream is decoded from the file it was written to.
    """
    x = as_float(images)
    n = len(x)
    stream, t_enc = timer(lambda: encode_images(codec, as_float(images)))  # as given: 8-bit, or floats
    stream_path = None if scratch is None else Path(scratch) / "stream.vqg"
    stream_bytes = _bytes_of(stream, stream_path)
    data = stream if stream_path is None else stream_path.read_bytes()
    source = str(stream_path or "<stream>")
    decode_pixels(codec, data, source)  # builds the model's decode table, once per model, before timing
    (decoded, _, _), t_dec = timer(lambda: decode_pixels(codec, data, source))
    decoded = as_float(decoded.cpu().permute(0, 3, 1, 2))  # (N,3,S,S) in [0,1]: what the judges read
    file_bits = None
    if files:
        singles = (encode_images(codec, x[i:i + 1]) for i in range(n))
        file_bits = 8 * sum(_bytes_of(b, None if scratch is None else Path(scratch) / "files" / f"{i:06d}.vqg")
                            for i, b in enumerate(singles)) / n
    scores = judge(x, decoded, split, answerers)
    return Measurement(scores.accuracy, scores.per_type, scores.psnr, decoded, 8 * stream_bytes / n, file_bits,
                       n / max(t_enc, 1e-9), n / max(t_dec, 1e-9))
