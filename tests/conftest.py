import json

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def coco_fixture(tmp_path):
    """A tiny COCO + VQA v2 tree in the layout coco.py expects: 3 images, 6 questions."""
    root = tmp_path / "coco"
    split = "val2014"
    (root / "images" / split).mkdir(parents=True)
    (root / "annotations").mkdir()
    (root / "vqa").mkdir()
    rng = np.random.default_rng(0)
    images, questions, annotations = [], [], []
    qa = [("what color is the cat?", "black"), ("is there a dog?", "no"),
          ("what color is the bus?", "red"), ("is there a bus?", "yes"),
          ("how many people are there?", "2"), ("is it sunny?", "yes")]
    for k, image_id in enumerate((42, 73, 139)):
        name = f"COCO_{split}_{image_id:012d}.jpg"
        w, h = (80, 60) if k % 2 else (50, 70)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / "images" / split / name)
        images.append({"id": image_id, "file_name": name, "width": w, "height": h})
        for j in range(2):
            qid = image_id * 10 + j
            text, answer = qa[2 * k + j]
            questions.append({"image_id": image_id, "question": text, "question_id": qid})
            annotations.append({"image_id": image_id, "question_id": qid, "multiple_choice_answer": answer,
                                "answers": [{"answer": answer, "answer_confidence": "yes", "answer_id": 1}],
                                "answer_type": "other", "question_type": "what"})
    index = {"images": images, "annotations": [], "categories": [{"id": 1, "name": "thing"}]}
    (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(index))
    (root / "vqa" / f"v2_OpenEnded_mscoco_{split}_questions.json").write_text(json.dumps({"questions": questions}))
    (root / "vqa" / f"v2_mscoco_{split}_annotations.json").write_text(json.dumps({"annotations": annotations}))
    return root


def make_tiny_vilt(folder, labels, words):
    """A tiny ViLT saved exactly like the public VQA checkpoint: model + processor (tokenizer, image processor)."""
    import torch
    from transformers import BertTokenizer, ViltConfig, ViltForQuestionAnswering, ViltImageProcessor, ViltProcessor

    folder.mkdir(parents=True, exist_ok=True)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(words)
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    processor = ViltProcessor(
        image_processor=ViltImageProcessor(size={"shortest_edge": 32}, size_divisor=16, image_mean=[0.5, 0.4, 0.3],
                                           image_std=[0.2, 0.3, 0.4]),
        tokenizer=BertTokenizer(str(folder / "vocab.txt")),
    )
    config = ViltConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, image_size=32, patch_size=16, max_position_embeddings=16,
                        id2label=dict(enumerate(labels)), label2id={a: i for i, a in enumerate(labels)})
    torch.manual_seed(0)
    ViltForQuestionAnswering(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
