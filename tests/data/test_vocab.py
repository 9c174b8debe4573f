import torch

from vqagan_lib.data.vocab import Vocabulary, tokenize


def test_tokenize_drops_case_and_punctuation():
    assert tokenize("What color is the Shape?") == ["what", "color", "is", "the", "shape"]


def test_vocabulary_round_trip_keeps_ids():
    vocab = Vocabulary.build(["is there a red circle?", "what shape is it?"], ["yes", "no", "circle"])
    again = Vocabulary.from_json(vocab.to_json())
    q = "is there a red shape?"
    assert torch.equal(vocab.encode(q), again.encode(q))
    assert again.answers == ["yes", "no", "circle"]
    assert again.answer_index("circle") == 2


def test_unknown_words_and_padding():
    vocab = Vocabulary.build(["is there a circle"], ["yes"])
    ids = vocab.encode("is there a hexagon")
    assert ids.tolist() == [vocab.words.index("is"), vocab.words.index("there"), vocab.words.index("a"), 1]
    assert vocab.unknown_words("is there a hexagon") == ["hexagon"]
    assert vocab.decode(vocab.encode("a circle")) == "a circle"
    assert len(vocab.encode("is there a circle is there a circle")) == vocab.max_len
