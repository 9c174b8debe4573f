"""The zero-bit floor: answer from the question alone, never looking at the image.

For each training question text, remember its most common answer; unseen texts get
the most common answer overall. A codec scoring below this has done worse than
sending nothing. Introduced in notebooks/00_data_tour.ipynb.
"""
from collections import Counter, defaultdict


class QuestionOnlyBaseline:
    def __init__(self, questions: list[str], answers: list[str]):
        by_text = defaultdict(Counter)
        for q, a in zip(questions, answers):
            by_text[q][a] += 1
        self.fallback = Counter(answers).most_common(1)[0][0]
        # Ties go to the alphabetically first answer, so the floor is deterministic.
        self.best = {q: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for q, c in by_text.items()}

    def predict(self, questions: list[str]) -> list[str]:
        return [self.best.get(q, self.fallback) for q in questions]

    def accuracy(self, questions: list[str], answers: list[str]) -> float:
        predicted = self.predict(questions)
        return sum(p == a for p, a in zip(predicted, answers)) / len(answers)
