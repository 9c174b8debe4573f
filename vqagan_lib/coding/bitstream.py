"""The .vqg container: a header small enough that one image at ~8 bits fits in <= 8 bytes.

    offset  size      field
    0       1         magic 0x9B (not ASCII, so no text file starts with it)
    1       1         version (high 4 bits, = 2) | flags (low 4 bits: 1 = has sizes, 2 = has names,
                      4 = one image; 8 reserved = 0)
    2       varint    image count N >= 2, absent when flag 4 says N = 1
            [N x (varint w, varint h)]         original sizes, only if some image was not S x S
            [N x (varint len, utf-8 name)]     original file names, only with --keep-names
            payload   arithmetic-coded symbols of all N images' coded dims, one stream, split into
                      chunks of CHUNK_SYMBOLS symbols: every chunk but the last is preceded by its byte length
    -3/-4   3 or 4    keyed check: BLAKE2s of every byte before it, keyed with the decoding model's
                      key (`model_key`: its fingerprint, image size and integer tables); 3 bytes
                      for one image, 4 for a batch

Header cost (a design fact of the format, asserted by tests/coding/test_bitstream.py):
one image: magic + version/flags + 3-byte check = 5 bytes, so ~8 bits of payload make a 6-7 byte
file; a 1000-image stream: magic + version/flags + 2-byte count + 4-byte check = 8 bytes, plus one
length varint (2 bytes) per 4096-symbol chunk but the last, e.g. 3 x 2 bytes at 16 coded dims:
0.11 bits/image in all.

Why a keyed hash and no model fingerprint: one check now does both jobs. A file decoded with
another model, truncated, or edited anywhere is refused unless 24 (one image) or 32 (batch)
hash bits agree by chance, 1 in 16.8 million or 1 in 4.3 billion, where version 1's CRC-8 let
1 in 256 through and its 16-bit fingerprint named the model. The key covers the model's 16-bit
fingerprint, so two models share a key only if their tables match exactly and their
fingerprints collide. `info` and `decompress` without --model find the model by trying the
shipped codecs' keys. A batch buys 8 more bits because it holds more to lose; the arithmetic
decoder adds its own check besides: it accepts only a payload that is exactly the encoding of
the symbols it decodes to.

The decode budget bounds what a file may ask of a reader, checked from the header before any
decoding: at most DecodeBudget.max_images images (default 10,000) and max_pixels output pixels
(default 2**26, 67 megapixels: 16,384 images of 64x64 or one of 8192x8192); the CLI raises them
with --max-images / --max-pixels. The decoder network runs DECODE_BATCH images at a time, so
memory follows the batch and the largest single image, never the file. Reads stop at
MAX_FILE_BYTES. Chunking keeps decoding linear in the number of images (the exact coder is
quadratic within a string). Varints are LEB128 (7 bits per byte, high bit = more), and must be
minimal: a file has exactly one valid encoding.

Version 1 files (fingerprint + CRC-8) are refused with a message saying so: compress again.
Every problem reading a file is a BitstreamError (a VQAGanError) naming the file. Rates reported
anywhere are len(file) * 8 bits, header included.

Introduced in notebooks/02_codec.ipynb.
"""
import dataclasses
import hashlib
import itertools
import weakref

import numpy as np
import torch

from vqagan_lib.coding import arithmetic
from vqagan_lib.errors import VQAGanError

MAGIC = 0x9B
VERSION = 2
HAS_SIZES, HAS_NAMES, ONE_IMAGE, KNOWN_FLAGS = 1, 2, 4, 7
CHECK_ONE, CHECK_BATCH = 3, 4  # bytes of keyed check: one image, a batch
CHUNK_SYMBOLS = 4096  # decode cost grows as the square of a string's length; chunks keep it linear
MAX_IMAGES = 100_000  # per file, the format's limit (the decode budget is lower by default)
MAX_SIDE, MAX_PIXELS = 65_535, 50_000_000  # per image, the same limits images.py applies to inputs
MAX_NAME_BYTES = 255
MAX_FILE_BYTES = 64 * 2**20  # a reader reads no more; 100,000 images with names and sizes fit in 30 MB
DECODE_BATCH = 256  # images per run of the decoder network
# Images per run of the encoder networks: their first layers' activations then stay in the CPU's caches, where a
# whole test set's spill to memory and make every elementwise layer wait on it. Each image's code is its own.
ENCODE_BATCH = 128


@dataclasses.dataclass(frozen=True)
class DecodeBudget:
    """What one file may ask a reader to produce; anything above is refused from the header alone."""

    max_images: int = 10_000  # 10x the benchmark's 1000-image stream
    max_pixels: int = 2**26  # output pixels over all images, at their restored sizes


DEFAULT_BUDGET = DecodeBudget()


class BitstreamError(VQAGanError):
    """A .vqg file that cannot be read: wrong magic, version, model, truncated, altered or over budget."""


_KEYS = weakref.WeakKeyDictionary()  # model -> (the versions of its tensors, its key)
_MODULES = weakref.WeakKeyDictionary()  # model -> (its top-level parts, every module in it): walked once


def _tensor_versions(codec) -> tuple:
    """Changes whenever any tensor of the model does: an optimiser step, a refitted table and
    load_state_dict all bump a tensor's version, and a replaced tensor or part has a new id."""
    parts = tuple(map(id, codec.children()))
    cached = _MODULES.get(codec)
    if cached is None or cached[0] != parts:
        cached = _MODULES[codec] = (parts, tuple(codec.modules()))
    return parts + tuple((id(t), t._version) for m in cached[1]
                         for t in itertools.chain(m._parameters.values(), m._buffers.values()) if t is not None)


def model_key(codec) -> bytes:
    """The 32-byte key a model checks its files with: its fingerprint, image size and integer tables.

    Cached per model until one of its tensors changes: hashing the decoder's weights costs more than
    coding a one-image file (measured in the benchmark's latency table)."""
    versions = _tensor_versions(codec)
    cached = _KEYS.get(codec)
    if cached is not None and cached[0] == versions:
        return cached[1]
    freqs = np.ascontiguousarray(codec.entropy_model.check_tables(getattr(codec, "card", {}).get("name", "model")),
                                 dtype="<i8")  # (D, K)
    layout = f"{codec.cfg.image_size}/{freqs.shape[0]}/{freqs.shape[1]}/{codec.fingerprint():04x}".encode()
    key = hashlib.blake2s(layout + freqs.tobytes(), person=b"vqg-key2").digest()
    _KEYS[codec] = (versions, key)
    return key


def keyed_check(key: bytes, body: bytes, size: int) -> bytes:
    return hashlib.blake2s(body, key=key, digest_size=size).digest()


def write_varint(value: int) -> bytes:
    if value < 0:
        raise ValueError("varints are unsigned")
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


class _Reader:
    """Reads fields off the front of a byte string; every overrun is a BitstreamError."""

    def __init__(self, data: bytes, source: str):
        self.data, self.pos, self.source = data, 0, source

    def fail(self, what: str):
        raise BitstreamError(f"{self.source}: not a valid .vqg file ({what})")

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            self.fail("truncated")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def varint(self, limit: int) -> int:
        value, shift = 0, 0
        while True:
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
            if shift > 35:
                self.fail("varint too long")
        if byte == 0 and shift > 7:
            self.fail("varint not minimal")
        if value > limit:
            self.fail(f"field value {value} above its limit {limit}")
        return value


@dataclasses.dataclass
class VqgFile:
    count: int  # number of images
    sizes: list[tuple[int, int]] | None  # original (w, h) per image, None when all are the native size
    names: list[str] | None  # original file names, None unless stored
    payload: bytes  # the chunked arithmetic-coded symbols
    header_bytes: int  # bytes before the payload
    total_bytes: int  # len(file), check included
    body: bytes  # every byte the check covers
    check: bytes  # the keyed check, 3 or 4 bytes

    def matches(self, key: bytes) -> bool:
        """Whether the model with this key made this file, and the file is whole and unaltered."""
        return keyed_check(key, self.body, len(self.check)) == self.check

    def output_pixels(self, image_size: int) -> int:
        """Pixels a decoder writes for this file at the restored sizes (native S x S when none are stored)."""
        return sum(w * h for w, h in self.sizes) if self.sizes else self.count * image_size**2


def pack(symbols: np.ndarray, freqs: np.ndarray, key: bytes, sizes=None, names=None) -> bytes:
    """Symbols (N, D) + the model's integer tables (D, K) + its `model_key` -> the bytes of a .vqg file.

    `sizes` (list of (w, h)) is stored only when given; pass None when every image is native size.
    Deterministic dims (a single symbol with a count) are skipped: the decoder knows them.
    """
    symbols = np.asarray(symbols, dtype=np.int64)  # (N, D)
    count = len(symbols)
    if not 1 <= count <= MAX_IMAGES:
        raise VQAGanError(f"a .vqg file holds 1 to {MAX_IMAGES} images, got {count}")
    flags = (HAS_SIZES if sizes is not None else 0) | (HAS_NAMES if names is not None else 0)
    out = bytearray([MAGIC, VERSION << 4 | flags | (ONE_IMAGE if count == 1 else 0)])
    if count > 1:
        out += write_varint(count)
    for w, h in sizes or ():
        if not (1 <= w <= MAX_SIDE and 1 <= h <= MAX_SIDE and w * h <= MAX_PIXELS):
            raise VQAGanError(f"image size {w}x{h} outside what a .vqg file can hold")
        out += write_varint(w) + write_varint(h)
    for name in names or ():
        try:
            raw = name.encode("utf-8")
        except UnicodeEncodeError:
            raise VQAGanError(f"file name {name!r} cannot be stored (not UTF-8)") from None
        _check_name(name, raw, VQAGanError)
        out += write_varint(len(raw)) + raw
    coded = np.flatnonzero((freqs > 0).sum(axis=1) > 1)  # (Dc,)
    flat = symbols[:, coded].reshape(-1)  # (N * Dc,) image-major
    for start in range(0, len(flat), CHUNK_SYMBOLS):
        chunk = arithmetic.encode(flat[start:start + CHUNK_SYMBOLS], freqs, rows=_chunk_rows(coded, start, len(flat)))
        out += chunk if start + CHUNK_SYMBOLS >= len(flat) else write_varint(len(chunk)) + chunk
    out += keyed_check(key, bytes(out), CHECK_ONE if count == 1 else CHECK_BATCH)
    return bytes(out)


def _chunk_rows(coded, start: int, n: int) -> np.ndarray:
    """Which table (a row of freqs) codes each flat symbol start.. of one chunk (image-major, Dc coded dims
    per image) -> (chunk,)."""
    return coded[np.arange(start, min(start + CHUNK_SYMBOLS, n)) % len(coded)]


def _check_name(name: str, raw: bytes, error):
    if not 1 <= len(raw) <= MAX_NAME_BYTES or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise error(f"file name {name!r} cannot be stored (1-{MAX_NAME_BYTES} bytes, no path separators)")


def parse(data: bytes, source: str = "<bytes>") -> VqgFile:
    """Read the header of a .vqg file; the check (`VqgFile.matches`) and the payload wait for a model."""
    r = _Reader(bytes(data), source)
    if len(data) > MAX_FILE_BYTES:
        r.fail(f"{len(data):,} bytes, more than the {MAX_FILE_BYTES:,}-byte limit")
    if len(data) < 2 + CHECK_ONE:
        r.fail(f"only {len(data)} bytes")
    if data[0] != MAGIC:
        r.fail("wrong magic byte")
    version, flags = data[1] >> 4, data[1] & 0x0F
    if version == 1:
        raise BitstreamError(f"{source}: .vqg version 1 (fingerprint + CRC-8) is no longer read; "
                             f"this reader knows version {VERSION}: compress the images again")
    if version != VERSION:
        raise BitstreamError(f"{source}: .vqg version {version} is not supported (this reader knows version {VERSION})")
    if flags & ~KNOWN_FLAGS:
        r.fail("unknown flags")
    check_size = CHECK_ONE if flags & ONE_IMAGE else CHECK_BATCH
    if len(data) < 2 + check_size:
        r.fail("truncated")
    r.data, check = r.data[:-check_size], r.data[-check_size:]  # the check is not part of any field
    r.pos = 2
    count = 1 if flags & ONE_IMAGE else r.varint(MAX_IMAGES)
    if count < 1 or (count == 1 and not flags & ONE_IMAGE):
        r.fail("zero images" if count == 0 else "one image without the one-image flag")
    sizes = names = None
    if flags & HAS_SIZES:
        sizes = [(r.varint(MAX_SIDE), r.varint(MAX_SIDE)) for _ in range(count)]
        if any(w == 0 or h == 0 or w * h > MAX_PIXELS for w, h in sizes):
            r.fail("an image size is out of range")
    if flags & HAS_NAMES:
        names = []
        for _ in range(count):
            raw = r.take(r.varint(MAX_NAME_BYTES))
            try:
                name = raw.decode("utf-8")
            except UnicodeDecodeError:
                r.fail("a file name is not UTF-8")
            _check_name(name, raw, lambda msg: r.fail(msg))
            names.append(name)
        if len(set(names)) != len(names):
            r.fail("duplicate file names")
    return VqgFile(count, sizes, names, r.data[r.pos:], r.pos, len(data), r.data, check)


def check_budget(vqg: VqgFile, source: str, budget: DecodeBudget = DEFAULT_BUDGET, image_size: int | None = None):
    """Refuse a file that asks for more images, or (once the model's image size is known) more output
    pixels, than `budget` allows. Costs nothing: it reads the header's count and sizes only."""
    if vqg.count > budget.max_images:
        raise BitstreamError(f"{source}: holds {vqg.count:,} images, more than the decode budget of "
                             f"{budget.max_images:,} (raise it with --max-images if you trust this file)")
    if vqg.sizes or image_size is not None:
        pixels = vqg.output_pixels(image_size or 0)
        if pixels > budget.max_pixels:
            raise BitstreamError(f"{source}: decodes to {pixels:,} pixels, more than the decode budget of "
                                 f"{budget.max_pixels:,} (raise it with --max-pixels if you trust this file)")


def unpack_symbols(vqg: VqgFile, freqs: np.ndarray, source: str = "<bytes>") -> np.ndarray:
    """Decode the payload of a parsed file with the model's integer tables (D, K) -> symbols (N, D)."""
    r = _Reader(vqg.payload, source)
    coded = np.flatnonzero((freqs > 0).sum(axis=1) > 1)  # (Dc,)
    n = vqg.count * len(coded)
    n_chunks = -(-n // CHUNK_SYMBOLS)
    if n_chunks > len(vqg.payload) + 1:  # every chunk but the last costs at least its length byte
        r.fail("payload too short for its image count")
    flat = np.zeros(n, dtype=np.int64)
    try:
        for k, start in enumerate(range(0, n, CHUNK_SYMBOLS)):
            length = r.varint(len(vqg.payload)) if k < n_chunks - 1 else len(vqg.payload) - r.pos
            end = min(start + CHUNK_SYMBOLS, n)
            flat[start:end] = arithmetic.decode(r.take(length), freqs, rows=_chunk_rows(coded, start, n))
    except BitstreamError:
        raise
    except VQAGanError as e:
        r.fail(f"corrupt payload: {e}")
    if r.pos != len(vqg.payload):
        r.fail("bytes left after the payload")
    symbols = np.argmax(freqs, axis=1)[None, :].repeat(vqg.count, axis=0)  # (N, D): deterministic dims' symbol
    symbols[:, coded] = flat.reshape(vqg.count, len(coded))
    return symbols


def encode_images(codec, x, sizes=None, names=None) -> bytes:
    """Images (N,3,S,S) -> .vqg bytes with `codec` (sizes: original (w, h) per image, or None)."""
    native = codec.cfg.image_size
    if sizes is not None and all(tuple(s) == (native, native) for s in sizes):
        sizes = None  # the common case costs no header bytes
    symbols = torch.cat([codec.compress(chunk) for chunk in x.split(ENCODE_BATCH)]).cpu().numpy()  # (N, D)
    freqs = codec.entropy_model.check_tables()
    return pack(symbols, freqs, model_key(codec), sizes, names)


def read_symbols(codec, data, source: str = "<bytes>", budget: DecodeBudget = DEFAULT_BUDGET):
    """.vqg bytes (or a parsed VqgFile) -> (VqgFile, symbols (N, D)), after the check and the budget."""
    vqg = data if isinstance(data, VqgFile) else parse(data, source)
    check_budget(vqg, source, budget, codec.cfg.image_size)
    if not vqg.matches(model_key(codec)):
        model = getattr(codec, "card", {}).get("name", "the given model")
        raise BitstreamError(f"{source}: does not check out with {model}: it was made by another model, "
                             "or it is truncated or altered")
    return vqg, unpack_symbols(vqg, codec.entropy_model.check_tables(source), source)


def _symbol_batches(codec, symbols: np.ndarray, batch: int | None = None):
    """Symbols (N, D) -> (rows, those rows' symbols on the codec's device), `batch` (default DECODE_BATCH) rows at a time."""
    device = next(codec.parameters()).device
    batch = batch or DECODE_BATCH
    for start in range(0, len(symbols), batch):
        rows = slice(start, start + batch)
        yield rows, torch.from_numpy(symbols[rows]).to(device)


def decode_batches(codec, symbols: np.ndarray, batch: int | None = None, pixels: bool = False):
    """Symbols (N, D) -> images (B, 3, S, S) float in [0, 1], `batch` at a time; with `pixels`, the same
    rounded to 8 bits, (B, S, S, 3) uint8, by the codec's fast path (`decompress_pixels`)."""
    draw = codec.decompress_pixels if pixels else codec.decompress
    for _, part in _symbol_batches(codec, symbols, batch):
        yield draw(part)


def decode_pixels(codec, data: bytes, source: str = "<bytes>", budget: DecodeBudget = DEFAULT_BUDGET):
    """.vqg bytes -> (8-bit images (N,S,S,3) at the model's size, sizes or None, names or None): what a
    viewer holds, the fast path (a table lookup at a few bits); `decode_images` rounded, exactly."""
    vqg, symbols = read_symbols(codec, data, source, budget)
    size = codec.cfg.image_size
    # One buffer for the whole file, each batch drawn into its rows: no per-batch images to join afterwards.
    out = torch.empty((len(symbols), size, size, 3), dtype=torch.uint8, device=next(codec.parameters()).device)
    for rows, part in _symbol_batches(codec, symbols):
        codec.decompress_pixels(part, out=out[rows])
    return out, vqg.sizes, vqg.names


def decode_images(codec, data: bytes, source: str = "<bytes>", budget: DecodeBudget = DEFAULT_BUDGET):
    """.vqg bytes -> (images (N,3,S,S) float in [0,1], sizes or None, names or None)."""
    vqg, symbols = read_symbols(codec, data, source, budget)
    return torch.cat(list(decode_batches(codec, symbols))), vqg.sizes, vqg.names
