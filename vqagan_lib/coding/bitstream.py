"""The .vqg container: a header small enough that one image at ~8 bits fits in <= 8 bytes.

    offset  size      field
    0       1         magic 0x9B (not ASCII, so no text file starts with it)
    1       1         version (high 4 bits, = 1) | flags (low 4 bits: 1 = has sizes, 2 = has names; 4, 8 reserved = 0)
    2       2         model fingerprint, big-endian (Codec.fingerprint(): which weights + tables decode this)
    4       varint    image count N >= 1
            [N x (varint w, varint h)]         original sizes, only if some image was not S x S
            [N x (varint len, utf-8 name)]     original file names, only with --keep-names
            payload   arithmetic-coded symbols of all N images' coded dims, one stream, split into
                      chunks of CHUNK_SYMBOLS symbols: every chunk but the last is preceded by its byte length
    -1      1         CRC-8 of everything before it

One image, ~8 bits: 1 + 1 + 2 + 1 + (1 or 2) + 1 = 7-8 bytes. CRC-8 rather than CRC-16: a second
check byte is 12% of such a file. CRC-8 still catches every error confined to 8 consecutive bits
(any single changed byte) and 255/256 of the rest, and the arithmetic decoder adds its own check:
it only accepts a payload that is exactly the encoding of the symbols it decodes to.

Chunking keeps decoding linear in the number of images (the exact coder is quadratic within a
string) and bounds the work a crafted header can ask for: N is capped by the payload's size.
Varints are LEB128 (7 bits per byte, high bit = more), and must be minimal.

Every problem reading a file is a BitstreamError (a VQAGanError) naming the file. Rates reported
anywhere are len(file) * 8 bits, header included.

Introduced in notebooks/02_codec.ipynb.
"""
import dataclasses

import numpy as np
import torch

from vqagan_lib.coding import arithmetic
from vqagan_lib.errors import VQAGanError

MAGIC = 0x9B
VERSION = 1
HAS_SIZES, HAS_NAMES, KNOWN_FLAGS = 1, 2, 3
CHUNK_SYMBOLS = 4096  # decode cost grows as the square of a string's length; chunks keep it linear
MAX_IMAGES = 100_000  # per file
MAX_SIDE, MAX_PIXELS = 65_535, 50_000_000  # the same limits images.py applies to inputs
MAX_NAME_BYTES = 255


class BitstreamError(VQAGanError):
    """A .vqg file that cannot be read: wrong magic, version, model, truncated or altered."""


def _crc8_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF  # polynomial x^8+x^2+x+1
        table.append(crc)
    return table


_CRC8 = _crc8_table()


def crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = _CRC8[crc ^ byte]
    return crc


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
    fingerprint: int  # 16-bit model fingerprint from the header
    count: int  # number of images
    sizes: list[tuple[int, int]] | None  # original (w, h) per image, None when all are the native size
    names: list[str] | None  # original file names, None unless stored
    payload: bytes  # the chunked arithmetic-coded symbols
    header_bytes: int  # bytes before the payload
    total_bytes: int  # len(file), CRC included


def pack(symbols: np.ndarray, freqs: np.ndarray, fingerprint: int, sizes=None, names=None) -> bytes:
    """Symbols (N, D) + the model's integer tables (D, K) -> the bytes of a .vqg file.

    `sizes` (list of (w, h)) is stored only when given; pass None when every image is native size.
    Deterministic dims (a single symbol with a count) are skipped: the decoder knows them.
    """
    symbols = np.asarray(symbols, dtype=np.int64)  # (N, D)
    count = len(symbols)
    if not 1 <= count <= MAX_IMAGES:
        raise VQAGanError(f"a .vqg file holds 1 to {MAX_IMAGES} images, got {count}")
    flags = (HAS_SIZES if sizes is not None else 0) | (HAS_NAMES if names is not None else 0)
    out = bytearray([MAGIC, VERSION << 4 | flags]) + (fingerprint & 0xFFFF).to_bytes(2, "big") + write_varint(count)
    for w, h in sizes or ():
        if not (1 <= w <= MAX_SIDE and 1 <= h <= MAX_SIDE and w * h <= MAX_PIXELS):
            raise VQAGanError(f"image size {w}x{h} outside what a .vqg file can hold")
        out += write_varint(w) + write_varint(h)
    for name in names or ():
        raw = name.encode("utf-8")
        _check_name(name, raw, VQAGanError)
        out += write_varint(len(raw)) + raw
    coded = np.flatnonzero((freqs > 0).sum(axis=1) > 1)  # (Dc,)
    flat = symbols[:, coded].reshape(-1)  # (N * Dc,) image-major
    tables = np.tile(freqs[coded], (count, 1))  # (N * Dc, K)
    for start in range(0, len(flat), CHUNK_SYMBOLS):
        chunk = arithmetic.encode(flat[start:start + CHUNK_SYMBOLS], tables[start:start + CHUNK_SYMBOLS])
        out += chunk if start + CHUNK_SYMBOLS >= len(flat) else write_varint(len(chunk)) + chunk
    out.append(crc8(out))
    return bytes(out)


def _check_name(name: str, raw: bytes, error):
    if not 1 <= len(raw) <= MAX_NAME_BYTES or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise error(f"file name {name!r} cannot be stored (1-{MAX_NAME_BYTES} bytes, no path separators)")


def parse(data: bytes, source: str = "<bytes>") -> VqgFile:
    """Check magic, version and CRC, and read the header; the payload is not decoded yet."""
    r = _Reader(bytes(data), source)
    if len(data) < 6:
        r.fail(f"only {len(data)} bytes")
    if data[0] != MAGIC:
        r.fail("wrong magic byte")
    version, flags = data[1] >> 4, data[1] & 0x0F
    if version != VERSION:
        raise BitstreamError(f"{source}: .vqg version {version} is not supported (this reader knows version {VERSION})")
    if flags & ~KNOWN_FLAGS:
        r.fail("unknown flags")
    if crc8(data[:-1]) != data[-1]:
        r.fail("checksum mismatch: the file is truncated or altered")
    r.data = r.data[:-1]  # the CRC is not part of any field
    r.pos = 2
    fingerprint = int.from_bytes(r.take(2), "big")
    count = r.varint(MAX_IMAGES)
    if count == 0:
        r.fail("zero images")
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
    return VqgFile(fingerprint, count, sizes, names, r.data[r.pos:], r.pos, len(data))


def unpack_symbols(vqg: VqgFile, freqs: np.ndarray, dims: int, source: str = "<bytes>") -> np.ndarray:
    """Decode the payload of a parsed file with the model's integer tables (D, K) -> symbols (N, D)."""
    r = _Reader(vqg.payload, source)
    coded = np.flatnonzero((freqs > 0).sum(axis=1) > 1)  # (Dc,)
    n = vqg.count * len(coded)
    n_chunks = -(-n // CHUNK_SYMBOLS)
    if n_chunks > len(vqg.payload) + 1:  # every chunk but the last costs at least its length byte
        r.fail("payload too short for its image count")
    tables = np.tile(freqs[coded], (vqg.count, 1))  # (N * Dc, K)
    flat = np.zeros(n, dtype=np.int64)
    try:
        for k, start in enumerate(range(0, n, CHUNK_SYMBOLS)):
            length = r.varint(len(vqg.payload)) if k < n_chunks - 1 else len(vqg.payload) - r.pos
            end = min(start + CHUNK_SYMBOLS, n)
            flat[start:end] = arithmetic.decode(r.take(length), tables[start:end])
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
    symbols = codec.compress(x).cpu().numpy()  # (N, D)
    freqs = codec.entropy_model.check_tables()
    return pack(symbols, freqs, codec.fingerprint(), sizes, names)


def decode_images(codec, data: bytes, source: str = "<bytes>"):
    """.vqg bytes -> (images (N,3,S,S) float in [0,1], sizes or None, names or None)."""
    vqg = parse(data, source)
    expected = codec.fingerprint()
    if vqg.fingerprint != expected:
        model = codec.card.get("name", "the given model")
        raise BitstreamError(f"{source}: made by a model with fingerprint {vqg.fingerprint:04x}, "
                             f"but {model} has {expected:04x}")
    freqs = codec.entropy_model.check_tables(source)
    symbols = unpack_symbols(vqg, freqs, codec.cfg.latent_dim, source)  # (N, D)
    images = codec.decompress(torch.from_numpy(symbols).to(next(codec.parameters()).device))
    return images, vqg.sizes, vqg.names
