"""Critic and judge commands: `train-critic`, `train-judge`, `evaluate-answerers`.

Each training command writes NAME.safetensors + NAME.json whose card records the exact
command line and test accuracies measured by vqa_eval on the original test images.
"""
import dataclasses
import os
import shlex
import sys
from pathlib import Path

import torch

from vqagan_lib.answerers.critic import CriticConfig, load_critic, save_critic, train_critic
from vqagan_lib.answerers.judge_vilt import JudgeConfig, load_judge, save_judge, train_judge
from vqagan_lib.answerers.judges import CRITIC_RECIPES, JUDGE_RECIPES, critic_name, judge_name, recipe, rule_judge
from vqagan_lib.answerers.vqa_eval import evaluate, format_results
from vqagan_lib.config import apply_overrides, as_flags
from vqagan_lib.data.registry import DEFAULT, dataset_names, get_dataset
from vqagan_lib.errors import VQAGanError
from vqagan_lib.runtime import CHECKPOINT_DIR, machine_description


def register(subparsers) -> None:
    for command, handler in (("train-critic", run_train_critic), ("train-judge", run_train_judge)):
        p = subparsers.add_parser(command)
        p.add_argument("--out", default=None, help="checkpoint path without suffix (default: the dataset's shipped one)")
        p.add_argument("--seed", type=int, default=None, help="random seed (default: the config's)")
        p.add_argument("--epochs", type=int, default=None, help="passes over the training images")
        p.add_argument("--threads", type=int, default=2, help="CPU threads for torch (small models: more mostly adds overhead)")
        p.set_defaults(handler=handler, accepts_overrides=True)

    p = subparsers.add_parser("evaluate-answerers")
    p.add_argument("--data.name", dest="data_name", default=DEFAULT, choices=dataset_names(), help="the dataset whose originals are asked")
    p.add_argument("--critic", default=None, help="critic: shipped name, checkpoint path or vilt:/local/dir (default: the dataset's)")
    p.add_argument("--judge", default=None, help="ViLT judge: shipped name or checkpoint path (default: the dataset's)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--limit-images", type=int, default=None, help="only the first N images of the split")
    p.set_defaults(handler=run_evaluate)


def command_line() -> str:
    """The command as the user typed it (`vqagan ...` or `python -m vqagan_lib ...`)."""
    prog = "vqagan" if os.path.basename(sys.argv[0]) == "vqagan" else "python -m vqagan_lib"
    return f"{prog} {shlex.join(sys.argv[1:])}"


def _config(cls, args, recipes: dict):
    """The config class's defaults, then the dataset's recipe (the dataset named by --data.name), then the overrides."""
    chosen = apply_overrides(cls(), args.overrides).data.name
    cfg = apply_overrides(cls(), as_flags(recipe(recipes, chosen)) + list(args.overrides))
    if args.seed is not None:
        cfg = dataclasses.replace(cfg, seed=args.seed)
    if args.epochs is not None:
        if args.epochs < 1:
            raise VQAGanError(f"--epochs must be at least 1, got {args.epochs}")
        cfg = dataclasses.replace(cfg, epochs=args.epochs)
    return cfg


def _test_metrics(name: str, model, dataset: str) -> dict:
    test = get_dataset(dataset).load_split("test")
    result = evaluate(test.images, test, {name: model})
    return {"test_accuracy": round(result[name], 5), "test_per_type": {k: round(v, 5) for k, v in result["per_type"][name].items()}}


def _finish(out, model_kind: str, metrics: dict) -> None:
    size = Path(f"{out}.safetensors").stat().st_size
    print(f"{model_kind}: test accuracy {metrics['test_accuracy']:.2%} -> {out}.safetensors ({size / 1e6:.2f} MB)")


def _train_and_save(args, cfg, train_fn, save_fn, answerer: str, label: str, log_every: int, shipped_name: str) -> int:
    """Train, measure on the test originals, save with a card: the same steps for critic and judge."""
    torch.set_num_threads(max(1, args.threads))
    out = args.out if args.out is not None else str(CHECKPOINT_DIR / shipped_name)
    model, metrics = train_fn(cfg, log_every=log_every)
    metrics.update(_test_metrics(answerer, model, cfg.data.name))
    card = {"name": os.path.basename(out), "data": get_dataset(cfg.data.name).SPLITS_NOTE, "seed": cfg.seed,
            "metrics": metrics, "command": command_line(), "machine": machine_description(),
            "n_parameters": sum(p.numel() for p in model.parameters())}
    save_fn(model, out, card)
    _finish(out, label, metrics)
    return 0


def run_train_critic(args) -> int:
    cfg = _config(CriticConfig, args, CRITIC_RECIPES)
    return _train_and_save(args, cfg, train_critic, save_critic, "critic", "critic", 100, critic_name(cfg.data.name))


def run_train_judge(args) -> int:
    cfg = _config(JudgeConfig, args, JUDGE_RECIPES)
    return _train_and_save(args, cfg, train_judge, lambda model, out, card: save_judge(model, out, card, cfg),
                           "judge_vilt", "ViLT judge", 25, judge_name(cfg.data.name))


def run_evaluate(args) -> int:
    split = get_dataset(args.data_name).load_split(args.split, limit_images=args.limit_images)
    answerers = {"critic": load_critic(args.critic or critic_name(args.data_name)),
                 "judge_vilt": load_judge(args.judge or judge_name(args.data_name)), "judge_rules": rule_judge(args.data_name)}
    print(f"{args.split}: {len(split.images)} original images, {len(split)} questions")
    print(format_results(evaluate(split.images, split, answerers)))
    return 0
