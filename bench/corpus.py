"""Realistic synthetic support mail for the benchmarks (deterministic for a seed).

Mixed sizes (a few lines to several paragraphs, some with quoted history),
10 % HTML-only, 5 % with an attachment, 5 % automatic (auto-replies, bounces,
newsletters). Customers repeat, so history lookups and threading do real work.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime

FIRST = ["Ann", "Ben", "Chloé", "Dmitri", "Eve", "Farah", "Gus", "Hana", "Ivan", "Jo", "Kemal", "Lena", "Mia", "Noor"]
LAST = ["Lee", "Okafor", "Müller", "Smith", "García", "Nowak", "Khan", "Rossi", "Berg", "Silva"]
PRODUCTS = ["blender", "kettle", "knife set", "coffee grinder", "toaster", "french press", "coffee bean box"]
OPENERS = [
    "Hi,", "Hello there,", "Dear support,", "Hi team,", "Good morning,", "Hey,",
]
COMPLAINTS = [
    "My {p} (order #{o}) arrived broken and I am really not happy about it.",
    "I have waited three weeks for order #{o} and nobody answers my emails.",
    "This is the second time the {p} stopped working. Unacceptable.",
    "I was charged ${a} twice for order #{o}. Please fix this today.",
    "The {p} I received is the wrong model. I ordered the large one.",
    "STILL no refund for order #{o}!!! I want my money back or I will file a chargeback.",
    "Sorry to bother you, but maybe it's just me, the {p} seems a bit loud?",
    "I want to cancel my subscription, please close my account.",
    "Your delivery driver left the {p} in the rain and the box is ruined.",
]
QUESTIONS = [
    "Do you ship to Canada? I'd like to order a {p}.",
    "How do I descale the {p}? The manual doesn't say.",
    "Is there a warranty on the {p}? Order #{o}.",
    "Can I change the delivery address for order #{o}?",
]
FILLER = (
    "I have been a customer for a few years and usually everything is fine. "
    "I use it every morning before work and my partner uses it in the evening. "
    "The packaging looked fine from the outside when it arrived on {d}. "
)


def _body(rng: random.Random) -> str:
    p, o, a = rng.choice(PRODUCTS), rng.randint(10000, 99999), f"{rng.randint(10, 400)}.{rng.randint(0, 99):02d}"
    d = f"{rng.randint(1, 28)} November"
    first = rng.choice(COMPLAINTS if rng.random() < 0.7 else QUESTIONS).format(p=p, o=o, a=a)
    parts = [rng.choice(OPENERS), "", first]
    for _ in range(rng.choice([0, 0, 1, 2, 4, 8])):
        parts.append(FILLER.format(d=d))
    parts += ["", "Thanks,", rng.choice(FIRST)]
    if rng.random() < 0.3:
        parts += ["", "On Mon, 2 Nov 2026 at 10:00, Support <support@example.com> wrote:"]
        parts += ["> Thanks for your message, we are looking into it."] * rng.randint(2, 30)
    return "\n".join(parts) + "\n"


def message(i: int, rng: random.Random) -> bytes:
    """Message number ``i`` of a benchmark mailbox."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    customer = rng.randint(0, max(50, i // 4))
    msg = EmailMessage()
    when = datetime(2026, 11, 1, tzinfo=timezone.utc) + timedelta(minutes=i)
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = f"<bench{i}.{rng.randint(0, 1 << 30)}@customer.test>"
    msg["To"] = "support@example.com"
    kind = rng.random()
    if kind < 0.05:  # automatic mail
        auto = rng.choice(["auto", "bounce", "list"])
        msg["From"] = "MAILER-DAEMON@mx.test" if auto == "bounce" else f"{first} {last} <c{customer}@customer.test>"
        msg["Subject"] = {"auto": "Out of office", "bounce": "Undelivered Mail Returned to Sender", "list": "Our weekly deals"}[auto]
        if auto == "auto":
            msg["Auto-Submitted"] = "auto-replied"
        if auto == "list":
            msg["List-Id"] = "<deals.shop.test>"
            msg["Precedence"] = "bulk"
        msg.set_content("I am away until Monday with limited access to email.\n")
        return msg.as_bytes()
    msg["From"] = f"{first} {last} <c{customer}@customer.test>"
    msg["Subject"] = rng.choice(["Order problem", "Where is my order?", "Broken again", "Question", "Refund", "Help"])
    body = _body(rng)
    if kind < 0.15:  # HTML-only
        html = "<html><body>" + "".join(f"<p>{line}</p>" for line in body.splitlines() if line) + "</body></html>"
        msg.set_content(html, subtype="html")
    else:
        msg.set_content(body)
        if kind > 0.95:
            msg.add_attachment(rng.randbytes(rng.choice([2_000, 20_000, 200_000])), maintype="image", subtype="jpeg", filename="photo.jpg")
    return msg.as_bytes()


def messages(n: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    return [message(i, rng) for i in range(n)]
