"""Score ``hnlab.content.extract`` on a labelled set of real pages, against trafilatura's
defaults in the same run.

The set is trafilatura's published evaluation corpus (``evaldata.json`` with
``eval/`` and ``cache/``): for each page, snippets a good extraction must contain
(``with``) and must not (``without``). A ``with`` found is a true positive, one
missing a false negative, a ``without`` found a false positive; precision, recall and
F1 are over all snippets. Time is per page, one process, extraction only.

    tar -xzf trafilatura-eval.tar.gz -C /tmp
    python scripts/eval_extraction.py /tmp/trafilatura-eval/tests

``--own DIR`` scores instead a set of ``NAME.html`` pages with their article body in
``NAME.txt`` (``tests/data/extraction``: pages written for hnlab) by the word-shingle
F1 of the whole body, page by page and on average.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def score(texts: list[str], items: list[dict[str, Any]]) -> tuple[float, float, float]:
    tp = fn = fp = 0
    for text, item in zip(texts, items, strict=True):
        found = sum(s in text for s in item["with"])
        tp, fn = tp + found, fn + len(item["with"]) - found
        fp += sum(s in text for s in item["without"])
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return precision, recall, 2 * precision * recall / (precision + recall)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, help="the directory holding evaldata.json")
    parser.add_argument("--limit", type=int, default=0, help="only the first N pages")
    parser.add_argument("--own", action="store_true", help="CORPUS is NAME.html + NAME.txt")
    args = parser.parse_args()
    if args.own:
        return own(args.corpus)
    index = args.corpus / "evaldata.json"
    if not index.is_file():
        print(f"Error: no evaldata.json in {args.corpus}; unpack the corpus there", file=sys.stderr)
        return 2
    import trafilatura

    from hnlab.content.extract import extract

    data = json.loads(index.read_text())
    entries = list(data.items())[: args.limit or None]
    items, ours, base, t_ours, t_base = [], [], [], [], []
    for url, item in entries:
        path = next(
            (p for d in ("eval", "cache") if (p := args.corpus / d / item["file"]).is_file()), None
        )
        if path is None:
            continue
        raw = path.read_bytes()
        items.append(item)
        t0 = time.perf_counter()
        ours.append(extract(raw, url=url).text)
        t1 = time.perf_counter()
        base.append(trafilatura.extract(raw, url=url) or "")
        t2 = time.perf_counter()
        t_ours.append(t1 - t0)
        t_base.append(t2 - t1)
    print(f"{len(items)} pages")
    print("| extractor | precision | recall | F1 | median ms/page | mean ms/page |")
    print("|---|---|---|---|---|---|")
    for name, texts, times in (
        ("trafilatura defaults", base, t_base),
        ("hnlab.content.extract", ours, t_ours),
    ):
        p, r, f = score(texts, items)
        print(
            f"| {name} | {p:.3f} | {r:.3f} | {f:.3f} | "
            f"{statistics.median(times) * 1000:.1f} | {statistics.mean(times) * 1000:.1f} |"
        )
    return 0


def own(folder: Path) -> int:
    """Shingle P/R/F1 of each hand-labelled page, both extractors."""
    import trafilatura

    from hnlab.content.evaluate import shingle_prf
    from hnlab.content.extract import extract

    pages = sorted(folder.glob("*.html"))
    if not pages:
        print(f"Error: no NAME.html pages in {folder}", file=sys.stderr)
        return 2
    print("| page | trafilatura defaults F1 | hnlab P | hnlab R | hnlab F1 |")
    print("|---|---|---|---|---|")
    ours, base = [], []
    for page in pages:
        raw, truth = page.read_bytes(), page.with_suffix(".txt").read_text()
        p, r, f = shingle_prf(extract(raw).text, truth)
        _, _, fb = shingle_prf(trafilatura.extract(raw) or "", truth)
        ours.append((p, r, f))
        base.append(fb)
        print(f"| {page.stem} | {fb:.3f} | {p:.3f} | {r:.3f} | {f:.3f} |")
    mean = [sum(x[i] for x in ours) / len(ours) for i in range(3)]
    print(f"| mean | {sum(base) / len(base):.3f} | {mean[0]:.3f} | {mean[1]:.3f} | {mean[2]:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
