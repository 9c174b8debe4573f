"""Checkpoints: safetensors weights plus a JSON card, and nothing else.

A checkpoint named NAME is two files side by side:

    NAME.safetensors   tensors only (no pickle, so loading runs no code)
    NAME.json          the card: kind, config, data, seed, metrics, the command that made it

A model is named one of two ways, never both:
- a bare name ('vqagan-8bit') is looked up in the shipped models (package data in
  vqagan_lib/checkpoints/, `runtime.CHECKPOINT_DIR`), then in the folder VQAGAN_MODELS names; never in
  the current directory, so a stray file there cannot stand in for a shipped model;
- a path ('runs/x/codec', './m', 'm.safetensors': it holds a '/' or ends in .safetensors / .json)
  is that file and nothing else.

Nothing here writes inside an installed package: the shipped checkpoints are rewritten only in a clone.
"""
import datetime
import hashlib
import json
import os
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from vqagan_lib import runtime
from vqagan_lib.errors import VQAGanError
from vqagan_lib.fileio import atomic_write_bytes, atomic_write_text, json_text

CARD_VERSION = 1
SUFFIXES = (".safetensors", ".json")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")  # what a bare model name may look like
MAX_CARD_BYTES = 1 << 20  # a card is a few KB; anything near this is not a card


def _show(text: str) -> str:
    """A name or path as it may be echoed to a terminal: escape sequences and other controls quoted."""
    return text if text.isprintable() else ascii(text)


def is_path(name_or_path) -> bool:
    """True for a path (a Path object, or text holding a '/' or ending in .safetensors / .json); False for a name."""
    if isinstance(name_or_path, os.PathLike):
        return True
    text = str(name_or_path)
    return "/" in text or os.sep in text or text.endswith(SUFFIXES)


def _paths(path) -> tuple[Path, Path]:
    path = Path(path)
    if path.name in ("", ".", ".."):
        raise VQAGanError(f"{_show(str(path))}: a folder, not a checkpoint (expected FOLDER/NAME.safetensors)")
    if path.suffix in SUFFIXES:
        path = path.with_suffix("")
    return path.with_name(path.name + ".safetensors"), path.with_name(path.name + ".json")


def _refuse_inside_installed_package(path: Path) -> None:
    """Shipped checkpoints change only in a clone: an installed package is never written to."""
    if not runtime.IS_SOURCE_CHECKOUT and Path(path).resolve().is_relative_to(runtime.PACKAGE_DIR):
        raise VQAGanError(f"{path}: inside the installed vqagan package, which is never written to; "
                          f"save under a folder of your own (and point {runtime.MODELS_ENV} at it to use it by name)")


def save_checkpoint(path, tensors: dict[str, torch.Tensor], card: dict) -> Path:
    """Write NAME.safetensors and NAME.json atomically; returns the .safetensors path.

    The card gains `format`, `created`, `weights_sha256` and `size_bytes`.
    """
    weights_path, card_path = _paths(path)
    _refuse_inside_installed_package(weights_path)
    blob = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
    card = dict(card)
    card.update(
        format=CARD_VERSION,
        created=card.get("created") or datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        weights_sha256=hashlib.sha256(blob).hexdigest(),
        size_bytes=len(blob),
    )
    for key in ("name", "kind"):
        if key not in card:
            raise ValueError(f"a checkpoint card needs '{key}'")
    atomic_write_bytes(weights_path, blob)
    atomic_write_text(card_path, json_text(card) + "\n")
    return weights_path


def model_folders() -> list[Path]:
    """Where bare names are looked up: the shipped models, then VQAGAN_MODELS (which must be a folder)."""
    folders = runtime.models_dirs()
    for extra in folders[1:]:
        if not extra.is_dir():
            raise VQAGanError(f"{runtime.MODELS_ENV}={_show(str(extra))}: no such folder of models")
    return folders


def resolve_checkpoint(name_or_path) -> Path:
    """A model's name (e.g. 'critic-easyvqa') or a path to one -> its .safetensors path."""
    text = os.fspath(name_or_path) if isinstance(name_or_path, os.PathLike) else str(name_or_path)
    if is_path(name_or_path):
        if Path(text).name in ("", ".", ".."):
            raise VQAGanError(f"{_show(text)}: a folder, not a checkpoint (expected FOLDER/NAME.safetensors)")
        if Path(text).suffix not in SUFFIXES + ("",):
            raise VQAGanError(f"{_show(text)}: not a checkpoint (expected a .safetensors file with a .json card beside it)")
        weights_path, _ = _paths(text)
        if weights_path.is_file():
            return weights_path
        if weights_path.exists():
            raise VQAGanError(f"{_show(str(weights_path))}: not a regular file")
        hint = " (a folder: a checkpoint is FOLDER/NAME.safetensors)" if Path(text).is_dir() else ""
        raise VQAGanError(f"{_show(text)}: no such checkpoint file{hint}")
    if not NAME_PATTERN.fullmatch(text) or text.endswith("."):
        raise VQAGanError(f"{_show(text) or repr(text)}: not a model name or a checkpoint path "
                          "(a name such as vqagan-8bit, or a path such as ./my-model.safetensors)")
    folders = model_folders()
    for folder in folders:
        weights_path = folder / f"{text}.safetensors"
        if weights_path.is_file():
            return weights_path
    known = ", ".join(Path(c["path"]).stem for c in list_checkpoints()) or "none"
    local = f"; to use ./{text}.safetensors, pass it as a path" if Path(f"{text}.safetensors").exists() else ""
    where = " or ".join(str(f) for f in folders)
    raise VQAGanError(f"{_show(text)}: no such model in {where} (known: {known}){local}")


def _read_card(card_path: Path) -> dict:
    """A card file -> its dict, or one VQAGanError line naming the file and what is wrong with it."""
    if not card_path.is_file():
        problem = "not a regular file" if card_path.exists() else "missing (every checkpoint needs NAME.json beside NAME.safetensors)"
        raise VQAGanError(f"{card_path}: checkpoint card {problem}")
    try:
        with open(card_path, "rb") as f:
            raw = f.read(MAX_CARD_BYTES + 1)
    except OSError as e:
        raise VQAGanError(f"{card_path}: cannot read the checkpoint card ({e.strerror})") from None
    if len(raw) > MAX_CARD_BYTES:
        raise VQAGanError(f"{card_path}: checkpoint card larger than {MAX_CARD_BYTES} bytes")
    try:
        card = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise VQAGanError(f"{card_path}: checkpoint card is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise VQAGanError(f"{card_path}: checkpoint card is not valid JSON ({e.msg} at line {e.lineno})") from None
    check_card(card, card_path)
    return card


def check_card(card, where) -> None:
    """A card is a JSON object with a `kind` string; its `name`, when present, is a string, its `config` an object."""
    if not isinstance(card, dict):
        raise VQAGanError(f"{where}: checkpoint card must be a JSON object, not a {type(card).__name__}")
    if not isinstance(card.get("kind"), str) or not card["kind"]:
        raise VQAGanError(f"{where}: checkpoint card needs a 'kind' string")
    if not isinstance(card.get("name", ""), str):
        raise VQAGanError(f"{where}: checkpoint card's 'name' must be a string")
    if "config" in card and not isinstance(card["config"], dict):
        raise VQAGanError(f"{where}: checkpoint card's 'config' must be a JSON object, not a {type(card['config']).__name__}")


def load_card(name_or_path) -> dict:
    _, card_path = _paths(resolve_checkpoint(name_or_path))
    return _read_card(card_path)


def load_checkpoint(name_or_path, expected_kind: str | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """Load (tensors, card). Refuses anything that is not safetensors + card, or the wrong kind."""
    weights_path = resolve_checkpoint(name_or_path)
    card = load_card(weights_path)
    if expected_kind is not None and card.get("kind") != expected_kind:
        raise VQAGanError(f"{weights_path}: checkpoint is a '{card.get('kind')}', expected a '{expected_kind}'")
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as e:
        raise VQAGanError(f"{weights_path}: not a readable safetensors file ({e})") from None
    return tensors, card


def update_card(name_or_path, update) -> dict:
    """Rewrite a checkpoint's card in place: `update(card)` edits the dict; the weights are not touched.

    The one place a card changes after `save_checkpoint` (ladder tags, where a fine-tune started,
    benchmark numbers). The write is atomic, so an interrupted update leaves the old card whole.
    """
    _, card_path = _paths(resolve_checkpoint(name_or_path))
    _refuse_inside_installed_package(card_path)
    card = _read_card(card_path)
    update(card)
    atomic_write_text(card_path, json_text(card) + "\n")
    return card


def copy_checkpoint(src, dst, update=None) -> Path:
    """Copy a checkpoint (weights and card) to `dst`, editing the copied card with `update(card)`."""
    src_weights, _ = _paths(resolve_checkpoint(src))
    dst_weights, dst_card = _paths(dst)
    _refuse_inside_installed_package(dst_weights)
    card = load_card(src_weights)
    if update is not None:
        update(card)
    # Weights first, card last: an interrupted copy never leaves a card that vouches for missing weights.
    atomic_write_bytes(dst_weights, src_weights.read_bytes())
    atomic_write_text(dst_card, json_text(card) + "\n")
    return dst_weights


def list_checkpoints(folder=None) -> list[dict]:
    """Cards of every checkpoint in `folder` (default: every models folder, a shipped name first), with `path` added.

    Sorted by file name within a folder; a name already found in an earlier folder is skipped, as a
    bare name never reaches it (its path does).
    """
    cards, seen = [], set()
    for each in ([Path(folder)] if folder is not None else model_folders()):
        for card_path in sorted(each.glob("*.json")):
            weights_path = card_path.with_suffix(".safetensors")
            if not weights_path.is_file():
                continue
            if weights_path.stem in seen:
                continue
            seen.add(weights_path.stem)
            card = _read_card(card_path)
            card["path"] = str(weights_path)
            cards.append(card)
    return cards
