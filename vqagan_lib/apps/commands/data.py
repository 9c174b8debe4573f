"""Data commands: `data-tour` (the facts of notebooks 00 and 08 as a script)."""
from collections import Counter

from vqagan_lib.data.floor import QuestionOnlyBaseline
from vqagan_lib.data.registry import DEFAULT, dataset_names, get_dataset


def register(subparsers) -> None:
    p = subparsers.add_parser("data-tour")
    p.add_argument("--data.name", dest="data_name", default=DEFAULT, choices=dataset_names(), help=f"the dataset (default {DEFAULT})")
    p.set_defaults(handler=run_data_tour)


def run_data_tour(args) -> int:
    data = get_dataset(args.data_name)
    train, val, test = (data.load_split(s) for s in ("train", "val", "test"))
    for name, split in (("train", train), ("val", val), ("test", test)):
        print(f"{name:5s}: {len(split.images):5d} images, {len(split):6d} questions")
    floor = QuestionOnlyBaseline(train.questions, train.answers)
    print(f"zero-bit floor (answer from the question alone), test accuracy: {floor.accuracy(test.questions, test.answers):.1%}")
    print(f"answer-relevant information: about {data.information_bits():.2f} bits/image")
    print("most common test answers:", ", ".join(f"{a} {n}" for a, n in Counter(test.answers).most_common(5)))
    return 0
