"""Data commands: `data-tour` (the facts of notebook 00 as a script)."""
import math
from collections import Counter

from vqagan_lib.data.easyvqa import COLORS, SHAPES, load_split
from vqagan_lib.data.floor import QuestionOnlyBaseline



def register(subparsers) -> None:
    p = subparsers.add_parser("data-tour", help="print the easy-VQA facts notebook 00 shows: sizes, answers, the zero-bit floor")
    p.set_defaults(handler=run_data_tour)


def run_data_tour(args) -> int:
    train, val, test = (load_split(s) for s in ("train", "val", "test"))
    for name, split in (("train", train), ("val", val), ("test", test)):
        print(f"{name:5s}: {len(split.images):5d} images, {len(split):6d} questions")
    floor = QuestionOnlyBaseline(train.questions, train.answers)
    print(f"zero-bit floor (answer from the question alone), test accuracy: {floor.accuracy(test.questions, test.answers):.1%}")
    print(f"answer-relevant information: log2({len(SHAPES)} shapes x {len(COLORS)} colours) = {math.log2(len(SHAPES) * len(COLORS)):.2f} bits/image")
    print("most common test answers:", ", ".join(f"{a} {n}" for a, n in Counter(test.answers).most_common(5)))
    return 0
