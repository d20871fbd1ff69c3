"""Realistic synthetic support mail for the benchmarks (deterministic for a seed).

The mix (issue 17): plain bodies of 1-3 KB; 12 % replies that quote the
message they answer (``Re:``, In-Reply-To, up to 7 KB of body); 20 %
multipart/alternative (the same text as plain and HTML); 10 % with non-ASCII
headers and bodies (encoded-word names and subjects, accented and
non-Latin text, some in ISO-8859-1 quoted-printable); 5 % automatic mail
(auto-replies, bounces, newsletters). Customers repeat, so history lookups,
threading and case joining do real work.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime

FIRST = ["Ann", "Ben", "Chloe", "Dmitri", "Eve", "Farah", "Gus", "Hana", "Ivan", "Jo", "Kemal", "Lena", "Mia", "Noor"]
LAST = ["Lee", "Okafor", "Miller", "Smith", "Garcia", "Nowak", "Khan", "Rossi", "Berg", "Silva"]
FIRST_INTL = ["Chloé", "Zoë", "Jürgen", "Søren", "Łukasz", "Ἀλέξανδρος", "Дмитрий", "明美", "José", "François"]
LAST_INTL = ["Müller", "García", "Ødegård", "Wołodźko", "Ångström", "Петров", "山田", "Núñez", "Çelik"]
PRODUCTS = ["blender", "kettle", "knife set", "coffee grinder", "toaster", "french press", "coffee bean box"]
OPENERS = ["Hi,", "Hello there,", "Dear support,", "Hi team,", "Good morning,", "Hey,"]
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
FILLER = [
    "I have been a customer for a few years and usually everything is fine.",
    "I use it every morning before work and my partner uses it in the evening.",
    "The packaging looked fine from the outside when it arrived on {d}.",
    "I already tried the steps from the troubleshooting page on your website, twice.",
    "My neighbour bought the same model last spring and has had no trouble with it.",
    "I called your hotline on {d} but the waiting time was over forty minutes.",
    "The receipt says it was shipped from your warehouse two days after I paid.",
    "It would help a lot if somebody could tell me what happens next and when.",
    "I attached nothing because your form would not let me upload the photo.",
    "We mostly use it on weekends when the whole family is home for breakfast.",
]
FILLER_INTL = [
    "Das Gerät ist leider schon nach einer Woche kaputt gegangen, sehr ärgerlich.",
    "J'ai déjà écrit deux fois à votre service client, sans aucune réponse.",
    "La entrega llegó tarde y la caja estaba dañada, qué decepción.",
    "Посылка пришла поздно, и коробка была повреждена.",
    "Przesyłka dotarła z opóźnieniem — pudełko było zgniecione.",
    "Ich möchte mein Geld zurück, bitte melden Sie sich bald.",
    "注文した商品がまだ届いていません。確認をお願いします。",
    "Grüße aus Köln — the café down the street uses the same grinder.",
]
SUBJECTS = ["Order problem", "Where is my order?", "Broken again", "Question", "Refund", "Help", "Delivery"]
SUBJECTS_INTL = ["Bestellung #{o} — Rückerstattung?", "Problème avec ma commande", "¿Dónde está mi pedido?",
                 "Заказ #{o} не пришёл", "Zamówienie — reklamacja", "注文 #{o} について"]

REPLIES = 0.12
ALTERNATIVE = 0.20
NON_ASCII = 0.10
AUTOMATIC = 0.05
MAX_REPLY_BODY = 7_000


def _body(rng: random.Random, intl: bool) -> str:
    """A plain body of 1-3 KB: greeting, the point, context, sign-off."""
    p, o, a = rng.choice(PRODUCTS), rng.randint(10000, 99999), f"{rng.randint(10, 400)}.{rng.randint(0, 99):02d}"
    d = f"{rng.randint(1, 28)} November"
    first = rng.choice(COMPLAINTS if rng.random() < 0.7 else QUESTIONS).format(p=p, o=o, a=a)
    target = rng.randint(1000, 3000)
    paras = [first]
    size = len(first)
    while size < target - 120:
        pool = FILLER_INTL if intl and rng.random() < 0.4 else FILLER
        para = " ".join(rng.choice(pool).format(d=d) for _ in range(rng.randint(2, 4)))
        para = _wrap(para[: max(40, target - size)])
        paras.append(para)
        size += len(para) + 2
    name = rng.choice(FIRST_INTL if intl else FIRST)
    return rng.choice(OPENERS) + "\n\n" + "\n\n".join(paras) + f"\n\nThanks,\n{name}\n"


def _wrap(text: str, width: int = 72) -> str:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "\n".join([*lines, line])


def _quoted(body: str, date: datetime, who: str) -> str:
    quoted = "\n".join(f"> {line}" if line else ">" for line in body.splitlines())
    return f"\nOn {format_datetime(date)}, {who} wrote:\n{quoted}\n"


def message(i: int, rng: random.Random, earlier: list[tuple[str, str, str, str, datetime]] | None = None) -> bytes:
    """Message number ``i`` of a benchmark mailbox.

    ``earlier`` holds (Message-ID, sender, subject, body, date) of the messages
    before it, so a reply can quote one of them; it is appended to.
    """
    intl = rng.random() < NON_ASCII
    first, last = rng.choice(FIRST_INTL if intl else FIRST), rng.choice(LAST_INTL if intl else LAST)
    customer = rng.randint(0, max(50, i // 4))
    msg = EmailMessage()
    when = datetime(2026, 11, 1, tzinfo=timezone.utc) + timedelta(minutes=i)
    mid = f"<bench{i}.{rng.randint(0, 1 << 30)}@customer.test>"
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = mid
    msg["To"] = "support@example.com"
    kind = rng.random()
    if kind < AUTOMATIC:
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
    sender = f"c{customer}@customer.test"
    msg["From"] = f"{first} {last} <{sender}>"
    body = _body(rng, intl)
    subject = rng.choice(SUBJECTS_INTL if intl else SUBJECTS).format(o=rng.randint(10000, 99999))
    if earlier and rng.random() < REPLIES:
        mid0, sender0, subject0, body0, date0 = rng.choice(earlier[-500:])
        subject = subject0 if subject0.startswith("Re: ") else f"Re: {subject0}"
        msg["In-Reply-To"] = mid0
        msg["References"] = mid0
        del msg["From"]
        msg["From"] = f"{first} {last} <{sender0}>"
        sender = sender0
        body = (body + _quoted(body0, date0, sender0))[:MAX_REPLY_BODY]
    msg["Subject"] = subject
    charset = "iso-8859-1" if intl and rng.random() < 0.3 and _latin1(body) else "utf-8"
    cte = "quoted-printable" if charset != "utf-8" or (intl and rng.random() < 0.5) else None
    if rng.random() < ALTERNATIVE:
        msg.set_content(body, charset=charset, cte=cte)
        html = "<html><body>" + "".join(f"<p>{_esc(p)}</p>" for p in body.split("\n\n") if p) + "</body></html>"
        msg.add_alternative(html, subtype="html", charset=charset, cte=cte)
    else:
        msg.set_content(body, charset=charset, cte=cte)
    if earlier is not None:
        earlier.append((mid, sender, subject, body, when))
    return msg.as_bytes()


def _latin1(text: str) -> bool:
    try:
        text.encode("iso-8859-1")
    except UnicodeEncodeError:
        return False
    return True


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br>\n")


def messages(n: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    earlier: list[tuple[str, str, str, str, datetime]] = []
    return [message(i, rng, earlier) for i in range(n)]
