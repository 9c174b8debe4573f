"""Speed against WebP: throughput ratios, one-image latency and the command line's start-up.

The benchmark (benchmark.py) times every codec on one CPU core in the same run; this module owns what
is said about those times. Targets, as ratios to WebP q0 (machines are noisy; ratios within one run are not):
  - every point of ours encodes and decodes at least as fast as WebP q0 (SPEED_RATIO);
  - a point decoded by table lookup (at most TABLE_LIMIT codes, so at most that many distinct images)
    decodes at least TABLE_RATIO times as fast as WebP q0.
What is inside a timed region is written in evaluation/measure.py; WebP is timed on the same footing:
8-bit pixels in memory to bytes in memory, and back.
Introduced in notebooks/06_evaluation.ipynb.
"""
import statistics
import subprocess
import sys
import time

SPEED_REFERENCE = "WebP q0"  # the classical codec our speed is measured against
SPEED_RATIO = 1.0  # every point of ours: encode and decode at least as fast as WebP q0
TABLE_RATIO = 5.0  # table-decoded points: decode at least this many times as fast as WebP q0
LATENCY_IMAGES = 200  # one image at a time, in process: enough for a stable 95th percentile
START_UP_RUNS = 5  # `vqagan --help` in a fresh process, the median of these


def latency(encode_one, decode_one, items) -> dict:
    """Milliseconds per image, one at a time: p50 and p95 of encode_one(item) and of decode_one(its bytes)."""
    encode_ms, decode_ms = [], []
    for item in items:
        start = time.perf_counter()
        blob = encode_one(item)
        middle = time.perf_counter()
        decode_one(blob)
        encode_ms.append(1e3 * (middle - start))
        decode_ms.append(1e3 * (time.perf_counter() - middle))
    return {f"{what}_{name}_ms": round(value, 4)
            for what, times in (("encode", encode_ms), ("decode", decode_ms))
            for name, value in (("p50", _percentile(times, 50)), ("p95", _percentile(times, 95)))}


def _percentile(values: list[float], q: float) -> float:
    """The q-th percentile, linear between the nearest ranks (as numpy's default)."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def start_up_seconds(args=("--help",), runs: int = START_UP_RUNS) -> float:
    """Median wall-clock seconds of `python -m vqagan_lib ARGS` in a fresh process (start-up is the cost)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "vqagan_lib", *args], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _ratio(value: float, reference: float) -> float:
    return value / reference if reference > 0 else float("nan")


def speed_table(results) -> str:
    """Our points and the ablations against WebP q0: throughput ratios and one-image latency."""
    webp = next((r for r in results if r.name == SPEED_REFERENCE), None)
    if webp is None:
        return ""
    head = ("| codec | decoded by | encode vs WebP q0 | decode vs WebP q0 | encode p50 / p95 ms "
            "| decode p50 / p95 ms |")
    rows = [head, "|" + "---|" * 6]
    for r in [r for r in results if r.kind in ("ours", "ablation")] + [webp]:
        lat = r.latency or {}
        cells = [f"{lat[k]:.3f}" if k in lat else "–" for k in
                 ("encode_p50_ms", "encode_p95_ms", "decode_p50_ms", "decode_p95_ms")]
        how = "libwebp" if r is webp else ("table" if r.table_decoded else "network")
        rows.append(f"| {r.name} | {how} | {_ratio(r.encode_per_s, webp.encode_per_s):.2f}x "
                    f"| {_ratio(r.decode_per_s, webp.decode_per_s):.2f}x "
                    f"| {cells[0]} / {cells[1]} | {cells[2]} / {cells[3]} |")
    return "\n".join(rows)


def speed_lines(results) -> list[str]:
    """The speed targets, met or missed, with the ratio that decides each (our points only)."""
    webp = next((r for r in results if r.name == SPEED_REFERENCE), None)
    ours = [r for r in results if r.kind == "ours"]
    if webp is None or not ours:
        return []
    lines = []
    for what, key in (("encodes", "encode_per_s"), ("decodes", "decode_per_s")):
        ratios = {r.name: _ratio(getattr(r, key), getattr(webp, key)) for r in ours}
        slowest = min(ratios, key=ratios.get)
        missed = [n for n, v in ratios.items() if not v >= SPEED_RATIO]
        verdict = "**met**" if not missed else f"**missed** at {len(missed)} of {len(ratios)} points"
        lines.append(f"- every point of ours {what} at least as fast as WebP q0 (one core): {verdict} "
                     f"(slowest: {slowest}, {ratios[slowest]:.2f}x WebP q0's {getattr(webp, key):,.0f} images/s).")
    tabled = [r for r in ours if r.table_decoded]
    if tabled:
        ratios = {r.name: _ratio(r.decode_per_s, webp.decode_per_s) for r in tabled}
        slowest = min(ratios, key=ratios.get)
        verdict = "**met**" if ratios[slowest] >= TABLE_RATIO else f"**missed** (needs {TABLE_RATIO:.0f}x)"
        lines.append(f"- every table-decoded point of ours decodes at least {TABLE_RATIO:.0f}x as fast as WebP q0: "
                     f"{verdict}; slowest {slowest}, {ratios[slowest]:.2f}x.")
    return lines


def _best_seconds(fn, repeats: int) -> float:
    """The fastest of `repeats` runs of fn(): the least disturbed by whatever else the machine was doing."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def coding_phases(codec, images, repeats: int = 3) -> dict:
    """Where the time of coding one stream of `images` (N,3,S,S, 8-bit) goes, in microseconds per image.

    Encode: the encoder networks (images to symbols), then the arithmetic coder and the container.
    Decode: the header and the keyed check, the arithmetic decoder, then drawing the symbols, both ways:
    in floats through the decoder network for every distinct code (`decode_images`, the reference) and in
    8 bits (`decode_pixels`: a table lookup at a few bits, the layered decoder's 8-bit path above).
    """
    import torch

    from vqagan_lib.coding import bitstream
    from vqagan_lib.data.pixels import as_float

    n = len(images)
    x = as_float(images)
    symbols = codec.compress(x).cpu().numpy()
    freqs = codec.entropy_model.check_tables()
    stream = bitstream.encode_images(codec, x)
    vqg = bitstream.parse(stream)
    batches = [torch.from_numpy(symbols[i:i + bitstream.DECODE_BATCH]) for i in range(0, n, bitstream.DECODE_BATCH)]
    with torch.inference_mode():
        for b in batches:  # the 8-bit table is built once per model, before any timing
            codec.decompress_pixels(b)
        phases = {
            "encode: networks": lambda: [codec.compress(c) for c in as_float(images).split(bitstream.ENCODE_BATCH)],
            "encode: arithmetic coder + container": lambda: bitstream.pack(symbols, freqs, bitstream.model_key(codec)),
            "decode: header + keyed check": lambda: bitstream.parse(stream).matches(bitstream.model_key(codec)),
            "decode: arithmetic decoder": lambda: bitstream.unpack_symbols(vqg, freqs),
            "decode: drawing, floats (reference)": lambda: [codec.decompress(b) for b in batches],
            "decode: drawing, 8 bits": lambda: [codec.decompress_pixels(b) for b in batches],
        }
        return {name: 1e6 * _best_seconds(fn, repeats) / n for name, fn in phases.items()}
