"""Checkpoints: safetensors weights plus a JSON card, and nothing else.

A checkpoint named NAME is two files side by side:

    NAME.safetensors   tensors only (no pickle, so loading runs no code)
    NAME.json          the card: kind, config, data, seed, metrics, the command that made it

Shipped checkpoints live in data/checkpoints/ and are found by name.
"""
import datetime
import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from vqagan_lib.errors import VQAGanError
from vqagan_lib.fileio import atomic_write_bytes, atomic_write_text
from vqagan_lib.runtime import CHECKPOINT_DIR

CARD_VERSION = 1


def _paths(path) -> tuple[Path, Path]:
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        path = path.with_suffix("")
    return path.with_suffix(".safetensors"), path.with_suffix(".json")


def save_checkpoint(path, tensors: dict[str, torch.Tensor], card: dict) -> Path:
    """Write NAME.safetensors and NAME.json atomically; returns the .safetensors path.

    The card gains `format`, `created`, `weights_sha256` and `size_bytes`.
    """
    weights_path, card_path = _paths(path)
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
    atomic_write_text(card_path, json.dumps(card, indent=2, sort_keys=False) + "\n")
    return weights_path


def resolve_checkpoint(name_or_path) -> Path:
    """A shipped checkpoint's name (e.g. 'critic-easyvqa') or a path to one -> its .safetensors path."""
    text = str(name_or_path)
    candidate = Path(text)
    if candidate.suffix not in (".safetensors", ".json", ""):
        raise VQAGanError(f"{text}: not a checkpoint (expected a .safetensors file with a .json card beside it)")
    weights_path, _ = _paths(candidate)
    if weights_path.exists():
        return weights_path
    shipped, _ = _paths(CHECKPOINT_DIR / candidate.name)
    if "/" not in text and shipped.exists():
        return shipped
    known = ", ".join(c["name"] for c in list_checkpoints()) or "none"
    raise VQAGanError(f"{text}: no such checkpoint (shipped checkpoints: {known})")


def load_card(name_or_path) -> dict:
    _, card_path = _paths(resolve_checkpoint(name_or_path))
    try:
        return json.loads(card_path.read_text())
    except FileNotFoundError:
        raise VQAGanError(f"{card_path}: checkpoint card missing (every checkpoint needs NAME.json beside NAME.safetensors)") from None
    except json.JSONDecodeError as e:
        raise VQAGanError(f"{card_path}: checkpoint card is not valid JSON ({e.msg} at line {e.lineno})") from None


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
    card = load_card(card_path)
    update(card)
    atomic_write_text(card_path, json.dumps(card, indent=2) + "\n")
    return card


def copy_checkpoint(src, dst, update=None) -> Path:
    """Copy a checkpoint (weights and card) to `dst`, editing the copied card with `update(card)`."""
    src_weights, _ = _paths(resolve_checkpoint(src))
    dst_weights, dst_card = _paths(dst)
    card = load_card(src_weights)
    if update is not None:
        update(card)
    # Weights first, card last: an interrupted copy never leaves a card that vouches for missing weights.
    atomic_write_bytes(dst_weights, src_weights.read_bytes())
    atomic_write_text(dst_card, json.dumps(card, indent=2) + "\n")
    return dst_weights


def list_checkpoints(folder=CHECKPOINT_DIR) -> list[dict]:
    """Cards of every checkpoint in `folder`, with `path` added, sorted by name."""
    cards = []
    for card_path in sorted(Path(folder).glob("*.json")):
        weights_path = card_path.with_suffix(".safetensors")
        if not weights_path.exists():
            continue
        card = json.loads(card_path.read_text())
        card["path"] = str(weights_path)
        cards.append(card)
    return cards
