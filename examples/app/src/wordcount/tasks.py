"""The task functions PIDS workers run: name this module in the cluster's allowedModules."""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

from .corpus import Document, summary, text

WORD = re.compile(r"[a-z]+")


class DocumentNotReady(Exception):
    """The document's data has not landed yet: a retry after ready_at succeeds."""


def count_words(doc: dict[str, Any]) -> dict[str, Any]:
    """Count the words of one document: {"doc", "words", "distinct", "top": [[word, n], ...]}."""
    document = Document.from_arg(doc)
    if document.ready_at > time.time():
        raise DocumentNotReady(f"{document.id} lands in {document.ready_at - time.time():.1f} s")
    counts = Counter(WORD.findall(text(document).lower()))
    return {"doc": document.id, **summary(counts)}
