"""The documents: each is made from a seed, with known word counts, so a result can be checked
against what the document was built from rather than against a second count."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "so", "ta", "vi", "ze", "po", "da", "fe")
VOCABULARY = tuple(a + b + c for a in SYLLABLES for b in SYLLABLES for c in SYLLABLES[:4])  # 576 words
TOP = 5
SIZES = {"small": 200, "medium": 2_000, "large": 10_000}  # words per document
SHARDS = ("zone-a", "zone-b")  # where a document's data lives: the task's position


@dataclass(frozen=True)
class Document:
    """What a task is given: enough to build the document where it runs."""

    id: str
    seed: int
    words: int
    ready_at: float = 0.0  # seconds since the epoch when its data lands (0: it is there)

    @property
    def weight(self) -> float:
        """The size hint: thousands of words."""
        return self.words / 1000

    def as_arg(self) -> dict[str, Any]:
        arg: dict[str, Any] = {"id": self.id, "seed": self.seed, "words": self.words}
        if self.ready_at:
            arg["ready_at"] = self.ready_at
        return arg

    @classmethod
    def from_arg(cls, arg: dict[str, Any]) -> Document:
        return cls(str(arg["id"]), int(arg["seed"]), int(arg["words"]), float(arg.get("ready_at", 0.0)))


def design(doc: Document) -> Counter[str]:
    """The counts the document is built with: a Zipf-like spread over part of the vocabulary."""
    rng = random.Random(doc.seed)
    chosen = rng.sample(VOCABULARY, k=min(len(VOCABULARY), max(5, doc.words // 20)))
    counts: Counter[str] = Counter()
    weights = [1 / (rank + 1) for rank in range(len(chosen))]
    for word in rng.choices(chosen, weights=weights, k=doc.words):
        counts[word] += 1
    return counts


def text(doc: Document) -> str:
    """The document's text: its words shuffled, with capitals and punctuation a count must see through."""
    rng = random.Random(doc.seed + 1)
    words = list(design(doc).elements())
    rng.shuffle(words)
    marks = ("", "", "", ",", ".", "!", ";")
    return " ".join((w.capitalize() if rng.random() < 0.1 else w) + rng.choice(marks) for w in words)


def summary(counts: Counter[str]) -> dict[str, Any]:
    """What a count reports: total, distinct words and the TOP most frequent (ties by word)."""
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP]
    return {"words": sum(counts.values()), "distinct": len(counts), "top": [[w, n] for w, n in top]}


def documents(count: int, seed: int = 0) -> list[Document]:
    """`count` documents: mostly small, some medium, a few large."""
    rng = random.Random(seed)
    sizes = rng.choices(list(SIZES.values()), weights=[80, 17, 3], k=count)
    return [Document(f"doc-{i}", seed * 1_000_003 + i, words) for i, words in enumerate(sizes)]


def shard_of(doc: Document) -> str:
    return SHARDS[doc.seed % len(SHARDS)]
