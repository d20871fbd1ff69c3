"""Detection throughput versus bare spaCy tokenisation, on the same texts in the same run.

Usage: .venv/bin/python bench/classify.py [--n 10000] [--rules rules] [--json]

Builds ``--n`` typical 1-2 KB customer messages (seeded, from a pool of
sentences: questions, praise, complaints, a few angry ones, hard-wrapped like
mail), then times

* ``tokenizer``: ``nlp.pipe`` on ``spacy.blank("en")`` (no components), and
* ``detect``: ``Detector.detect`` with the shipped rules,

best of ``--repeat`` runs each. Prints a table, or with ``--json`` one object
with keys msgs_per_s, tokenizer_msgs_per_s, ratio (detect / tokenizer).
Target: >= 3,000 msgs/s and ratio >= 0.5 on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GREETINGS = ["Hi,", "Hello,", "Hi there,", "Dear support team,", "Good morning,", "Hey,"]
CLOSINGS = ["Thanks,\nAnna", "Best regards,\nTom Meyer", "Kind regards,\nJ. Okafor", "Cheers,\nSam", ""]
SENTENCES = [
    "I ordered a blender from your shop on 3 March and it arrived yesterday.",
    "The order number is 48213, in case you need it.",
    "Could you tell me when the coffee grinder will be back in stock?",
    "Do you ship to Norway, and how long does delivery usually take?",
    "The kettle works well and looks great in our kitchen.",
    "Thank you for the quick reply last week, it really helped.",
    "I was charged $34.50 twice for the same order.",
    "The toaster stopped working after two days and now it does not turn on at all.",
    "My parcel still hasn't arrived and the tracking has not updated in ten days.",
    "I have waited three weeks for a reply and nobody answers the phone.",
    "This is the second time the knife set arrived damaged.",
    "I'm not happy about this at all, to be honest.",
    "Please cancel my coffee subscription from next month.",
    "We are moving house, so please send the next bean box to our new address.",
    "The french press glass was cracked when I opened the box.",
    "Is the blender jar dishwasher safe?",
    "I'd like to exchange the kettle for the black one if that is possible.",
    "My husband says the coffee beans from last month were the best so far.",
    "Sorry to bother you, but I think a filter is missing from the package.",
    "This is absolutely ridiculous and completely unacceptable!!",
    "If this isn't sorted by Friday I will file a chargeback with my bank.",
    "Could you send me an invoice with our VAT number for order INV-7781?",
    "The courier left the package in the rain and the box was soaked.",
    "We have been customers for years and have always been happy with your service.",
    "I tried to log in to my account but the password reset link does not work.",
    "The grinder makes a loud rattling noise when it runs.",
    "Can I add a gift note to my order before it ships?",
    "I would like a refund for the broken toaster, please.",
    "WHY IS IT SO HARD TO GET A SIMPLE ANSWER FROM YOU PEOPLE?",
    "Your support has been very helpful in the past, so I hope you can help again.",
    "The delivery was promised for Tuesday but nothing came.",
    "It is a lovely product and my guests keep asking where I bought it.",
]


def make_texts(n: int, seed: int = 7) -> list[str]:
    """``n`` messages of about 1-2 KB each, hard-wrapped at 72 columns like mail."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        target = rng.randint(1000, 2000)
        paragraphs: list[str] = []
        size = 0
        while size < target:
            para = " ".join(rng.choice(SENTENCES) for _ in range(rng.randint(2, 4)))
            paragraphs.append(textwrap.fill(para, 72))
            size += len(para) + 2
        texts.append(f"{rng.choice(GREETINGS)}\n\n" + "\n\n".join(paragraphs) + "\n\n" + rng.choice(CLOSINGS))
    return texts


def best_of(repeat: int, run) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="number of messages (default 10000)")
    parser.add_argument("--rules", type=Path, default=ROOT / "rules", help="rules folder")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best counts")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    import spacy

    from triage.detect.engine import Detector

    texts = make_texts(args.n)
    detector = Detector.load(args.rules)
    blank = spacy.blank("en")
    detector.detect(texts[:200], [])  # warm caches (vocab, lexemes) for both sides
    list(blank.pipe(texts[:200]))

    tok_s = best_of(args.repeat, lambda: list(blank.pipe(texts, batch_size=64)))

    def detect() -> None:
        detector.forget()  # every run reads every text: no reading kept from the run before
        detector.detect(texts, [])

    det_s = best_of(args.repeat, detect)
    result = {
        "n": args.n,
        "avg_chars": round(sum(map(len, texts)) / len(texts)),
        "msgs_per_s": round(args.n / det_s),
        "tokenizer_msgs_per_s": round(args.n / tok_s),
        "ratio": round(tok_s / det_s, 3),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.n} messages, {result['avg_chars']} chars on average, best of {args.repeat}")
        print(f"{'':<24}{'seconds':>10}{'msgs/s':>10}")
        print(f"{'spaCy tokenisation':<24}{tok_s:>10.2f}{result['tokenizer_msgs_per_s']:>10}")
        print(f"{'detection':<24}{det_s:>10.2f}{result['msgs_per_s']:>10}")
        print(f"ratio detection / tokenisation: {result['ratio']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
