"""Careful file input and output: bounded reads, atomic writes, staged folders, printable names.

- Reads open regular files only (a FIFO, a device or a folder is refused before any byte is read)
  and never read more than a stated limit, so `/dev/zero` or a huge file cannot exhaust memory.
- Writes go to a temporary file beside the target and are renamed over it: readers see the old
  file or the whole new one. A target that is a folder, a FIFO or a device is refused, as is any
  path under /proc, /sys or /dev.
- A set of files is written into a staging folder and published in one rename when the
  destination folder is new, or by renames with SIGINT/SIGTERM/SIGHUP held off when it exists,
  so an interrupted run leaves nothing or everything. A staging folder left by a killed run
  (its name holds the dead process's id) is removed by the next run that writes beside it.
- `shown(name)` escapes control characters and undecodable bytes before a name reaches a terminal.
"""
import contextlib
import json
import math
import os
import shutil
import signal
import stat
import tempfile
from pathlib import Path

from vqagan_lib.errors import VQAGanError

SYSTEM_TREES = ("/proc", "/sys", "/dev")  # kernel interfaces, never a place for our output
STAGING_PREFIX = ".vqagan-staging-"  # then the writer's process id, '-', a random tail
_HELD_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def shown(name) -> str:
    """A file name (or message) safe to print: control characters and undecodable bytes escaped."""
    out = []
    for char in str(name):
        if 0xDC80 <= ord(char) <= 0xDCFF:  # an undecodable byte, as os.fsdecode keeps it
            out.append(f"\\x{ord(char) - 0xDC00:02x}")
        elif char.isprintable():
            out.append(char)
        else:  # escape sequences, newlines, other surrogates
            out.append(char.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _os_error(path, e: OSError) -> VQAGanError:
    if isinstance(e, FileNotFoundError):
        return VQAGanError(f"{shown(path)}: no such file")
    return VQAGanError(f"{shown(path)}: cannot read ({e.strerror or e})")


def read_regular(path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; anything else is a VQAGanError."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)  # a FIFO does not block
    except OSError as e:
        raise _os_error(path, e) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise VQAGanError(f"{shown(path)}: is {_kind(mode)}, not a regular file")
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise _os_error(path, e) from None
    if len(data) > limit:
        raise VQAGanError(f"{shown(path)}: larger than the {limit:,}-byte limit for this kind of file")
    return data


def _resolved(path, what: str) -> Path:
    text = os.fspath(path)
    if text == "":
        raise VQAGanError(f"the {what} path is empty")
    try:
        resolved = Path(text).resolve()
    except RuntimeError:  # a symlink loop, before Python 3.13
        raise VQAGanError(f"{shown(text)}: cannot resolve the {what} path (Too many levels of symbolic links)") from None
    except OSError as e:
        raise VQAGanError(f"{shown(text)}: cannot resolve the {what} path ({e.strerror})") from None
    if any(resolved == Path(tree) or Path(tree) in resolved.parents for tree in SYSTEM_TREES):
        raise VQAGanError(f"{shown(text)}: refusing to write under /{resolved.parts[1]} (a kernel interface)")
    return resolved


def _mode(path) -> int | None:
    """The st_mode of what `path` names, None when nothing is there yet."""
    try:
        return Path(path).stat().st_mode
    except FileNotFoundError:
        return None
    except OSError as e:
        raise VQAGanError(f"{shown(path)}: cannot write ({e.strerror})") from None


def output_file(path) -> Path:
    """Check a path a file will be written to: a new or regular file, not under /proc, /sys or /dev."""
    _resolved(path, "output")
    mode = _mode(path)
    if mode is not None and not stat.S_ISREG(mode):
        raise VQAGanError(f"{shown(path)}: is {_kind(mode)}; the output must be a regular file")
    return Path(path)


def output_folder(path) -> Path:
    """Check a folder files will be written into: new or an existing folder, not under /proc, /sys or /dev."""
    _resolved(path, "output folder")
    mode = _mode(path)
    if mode is not None and not stat.S_ISDIR(mode):
        raise VQAGanError(f"{shown(path)}: exists and is {'a file' if stat.S_ISREG(mode) else _kind(mode)}, "
                          "not a folder")
    return Path(path)


def same_file(a, b) -> bool:
    """Whether two paths name one file (False when either does not exist)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync it, then rename over `path`.

    The rename is atomic on POSIX, so readers see either the old file or the whole
    new one, never a prefix. A folder, FIFO or device at `path` is refused, never replaced.
    """
    path = output_file(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise VQAGanError(f"{shown(path)}: cannot write ({e.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the permissions open() would
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise VQAGanError(f"{shown(path)}: cannot write ({e.strerror})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process
    return True


def clean_stale_staging(*folders) -> None:
    """Remove staging folders left in `folders` by runs that were killed (their process is gone)."""
    for folder in folders:
        try:
            entries = list(Path(folder).glob(STAGING_PREFIX + "*"))
        except OSError:
            continue
        for entry in entries:
            pid = entry.name[len(STAGING_PREFIX):].split("-", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)) and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)


@contextlib.contextmanager
def staged_folder(out_dir):
    """Yield an empty staging folder for the files of `out_dir`; removed again unless published.

    A new `out_dir` is staged beside it (published by renaming the folder), an existing one inside it.
    """
    out_dir = Path(out_dir)
    parent = out_dir if out_dir.is_dir() else out_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        clean_stale_staging(out_dir, out_dir.parent)  # where this run or an earlier one stages
        staging = Path(tempfile.mkdtemp(dir=parent, prefix=f"{STAGING_PREFIX}{os.getpid()}-"))
    except OSError as e:
        raise VQAGanError(f"{shown(out_dir)}: cannot write ({e.strerror})") from None
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish(staging, out_dir, files, replace: bool = False) -> None:
    """Move `files` from `staging` into `out_dir`: one rename when `out_dir` is new, else file by file
    with SIGINT, SIGTERM and SIGHUP held until the last one is in place."""
    staging, out_dir = Path(staging), Path(out_dir)
    if not out_dir.exists():
        try:
            os.rename(staging, out_dir)  # all or nothing
            return
        except OSError:
            out_dir.mkdir(parents=True, exist_ok=True)  # created meanwhile: fall back to file by file
    clash = [f for f in files if not replace and os.path.lexists(out_dir / f)]
    if clash:
        raise VQAGanError(f"{shown(out_dir / clash[0])}: appeared while decoding; nothing written")
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD_SIGNALS)
    try:
        for f in files:
            os.replace(staging / f, out_dir / f)
    except OSError as e:
        raise VQAGanError(f"{shown(out_dir)}: cannot write ({e.strerror})") from None
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def json_text(obj, indent: int | None = 2) -> str:
    """JSON text in which a number that is not one (NaN, infinity) is written as null: strict JSON, which
    jq and JavaScript read (Python's json module would write NaN)."""
    def strict(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: strict(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [strict(v) for v in value]
        return value
    return json.dumps(strict(obj), indent=indent, allow_nan=False)
