"""The data: easy-VQA, COCO with VQA v2, word vocabularies, and the zero-bit floor (notebook 00)."""
