"""Follow-up policy: when a case must be answered, chased, checked in on and escalated.

``rules/followup.toml`` (owner-editable) becomes a frozen :class:`Policy`:
first-response deadlines by anger level and archetype (docs/handling.md step 5:
angry customers are answered first), optional business hours with a time
zone and non-working days, the check-in delay after resolution (step 8: "a
week or two"), how often the same overdue item is reminded and when it
escalates to the owner. Who receives reminders is configuration
(``[reminders]`` in triage.toml), not rules.

Everything here is pure: times in, times out. Deadlines count business time
only when ``[business_hours]`` is configured; otherwise they run round the
clock. Business time is wall-clock time in the policy's time zone, so a
daylight-saving change inside opening hours does not stretch a deadline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from triage.rulefile import TomlFile, is_file

if TYPE_CHECKING:
    from triage.detect import Detection

FILE = "followup.toml"
LEVELS = ("calm", "annoyed", "angry", "furious")
ARCHETYPES = ("meek", "aggressive", "high_roller", "chronic", "barnacle", "cancelling")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
KINDS = ("first-response", "promise", "follow-up")  # deadlines.kind; "follow-up" is the check-in


@dataclass(frozen=True)
class BusinessHours:
    """Opening hours in the policy's zone: [start, end) on ``days``, except ``holidays``."""

    start: time
    end: time
    days: frozenset[int]  # 0 = Monday
    holidays: frozenset[date] = frozenset()

    def open_on(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.holidays


@dataclass(frozen=True)
class Policy:
    """rules/followup.toml, validated. ``source`` names the file it came from."""

    level_hours: dict[str, float] = field(default_factory=lambda: {
        "furious": 1.0, "angry": 4.0, "annoyed": 8.0, "calm": 24.0})
    archetype_hours: dict[str, float] = field(default_factory=lambda: {
        "high_roller": 2.0, "cancelling": 4.0})
    default_hours: float = 24.0
    zone: str = "UTC"
    business: BusinessHours | None = None
    check_in_days: float = 7.0
    remind_every_hours: float = 4.0
    escalate_first_response_hours: float = 4.0
    escalate_promise_hours: float = 24.0
    source: str = "(built-in defaults)"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    # -- first response ---------------------------------------------------

    def first_response_hours(self, level: str, archetypes: tuple[str, ...] | list[str]) -> float:
        """The shortest deadline the level or any archetype asks for."""
        hours = [self.level_hours.get(level, self.default_hours)]
        hours += [self.archetype_hours[a] for a in archetypes if a in self.archetype_hours]
        return min(hours)

    def first_response_due(self, level: str, archetypes: tuple[str, ...] | list[str],
                           received_at: datetime) -> datetime:
        return self.add(received_at, timedelta(hours=self.first_response_hours(level, archetypes)))

    # -- business-time arithmetic -----------------------------------------

    def add(self, start: datetime, span: timedelta) -> datetime:
        """``start`` plus ``span`` of business time (plain time without business hours); UTC."""
        start = _aware(start)
        span = max(span, timedelta(0))
        if self.business is None:
            return (start + span).astimezone(timezone.utc)
        b, tz = self.business, self.tz
        local = start.astimezone(tz).replace(tzinfo=None)  # wall clock
        left = span
        for _ in range(3700):  # ten years of days: a policy with no open day is refused at load
            day = local.date()
            opening, closing = datetime.combine(day, b.start), datetime.combine(day, b.end)
            if b.open_on(day) and local < closing:
                local = max(local, opening)
                if local + left <= closing:
                    return (local + left).replace(tzinfo=tz).astimezone(timezone.utc)
                left -= closing - local
            local = datetime.combine(day + timedelta(days=1), time(0))
        raise ValueError("no business hours found within ten years")

    def between(self, a: datetime, b: datetime) -> timedelta:
        """Business time from ``a`` to ``b`` (negative when ``b`` is earlier); plain time without hours."""
        a, b = _aware(a), _aware(b)
        if self.business is None:
            return b - a
        if b < a:
            return -self.between(b, a)
        hours, tz = self.business, self.tz
        lo = a.astimezone(tz).replace(tzinfo=None)
        hi = b.astimezone(tz).replace(tzinfo=None)
        total = timedelta(0)
        day = lo.date()
        while day <= hi.date():
            if hours.open_on(day):
                opening = max(lo, datetime.combine(day, hours.start))
                closing = min(hi, datetime.combine(day, hours.end))
                if closing > opening:
                    total += closing - opening
            day += timedelta(days=1)
        return total

    def next_open(self, when: datetime) -> datetime:
        """``when`` if it is inside business hours, else the next opening (UTC)."""
        return self.add(when, timedelta(0))

    # -- days and the check-in ---------------------------------------------

    def local(self, when: datetime) -> datetime:
        return _aware(when).astimezone(self.tz)

    def end_of_day(self, day: date) -> datetime:
        """When a promise "by DAY" falls due: closing time that day, else 23:59 (UTC)."""
        closing = self.business.end if self.business else time(23, 59)
        return datetime.combine(day, closing, self.tz).astimezone(timezone.utc)

    def check_in_due(self, resolved_at: datetime) -> datetime:
        """``check_in_days`` after resolution, moved to business hours when they are configured."""
        return self.next_open(_aware(resolved_at) + timedelta(days=self.check_in_days))

    def escalate_after(self, kind: str) -> timedelta | None:
        hours = {"first-response": self.escalate_first_response_hours,
                 "promise": self.escalate_promise_hours}.get(kind)
        return None if hours is None or hours < 0 else timedelta(hours=hours)


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


DEFAULT = Policy()


def first_response_due(detection: Detection, received_at: datetime, policy: Policy | None = None) -> datetime:
    """The first-response deadline for a detection (the earliest its level or archetypes ask for)."""
    return (policy or DEFAULT).first_response_due(detection.level, detection.archetype_names, received_at)


# --------------------------------------------------------------------------- "--by DATE"

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d|w)\s*$", re.IGNORECASE)
_WEEKDAYS = {name: i for i, name in enumerate(("monday", "tuesday", "wednesday", "thursday",
                                               "friday", "saturday", "sunday"))}


def parse_when(text: str, now: datetime, policy: Policy) -> datetime:
    """A promise's due time from what an agent typed; ValueError if it cannot be read.

    ``2026-11-24`` (a date: closing time that day, else 23:59, in the policy's
    zone), ``2026-11-24T15:00`` (local unless it has an offset), ``2d``,
    ``4h``, ``1w``, ``30m`` (from now), ``today``, ``tomorrow``, a weekday
    name or its first three letters (the next such day, never today).
    """
    value = text.strip().lower()
    now = _aware(now)
    if m := _RELATIVE.match(value):
        unit = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m.group(2)]
        return (now + timedelta(**{unit: float(m.group(1))})).astimezone(timezone.utc)
    today = policy.local(now).date()
    if value in ("today", "tomorrow"):
        return policy.end_of_day(today + timedelta(days=value == "tomorrow"))
    for name, index in _WEEKDAYS.items():
        if value in (name, name[:3]):
            ahead = (index - today.weekday()) % 7 or 7
            return policy.end_of_day(today + timedelta(days=ahead))
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return policy.end_of_day(date.fromisoformat(value))
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"cannot read {text!r} as a date: use 2026-11-24, 2026-11-24T15:00, 2d, 4h, "
            "today, tomorrow or a weekday like friday") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=policy.tz)).astimezone(timezone.utc)


# --------------------------------------------------------------------------- loading

_TOP = {"timezone", "first_response", "business_hours", "check_in", "reminders", "escalation"}


def load_policy(rules_dir: Path) -> Policy:
    """Read and validate ``rules_dir/followup.toml``; RulesError naming file, key and line.

    A missing file means the built-in defaults (the values shipped in the file).
    Not cached: ``triage.ruleset`` keeps the loaded policy while the file is unchanged.
    """
    path = rules_dir / FILE
    if not is_file(path):
        return DEFAULT
    return _load(path)


def _load(path: Path) -> Policy:
    f = TomlFile(path)
    f.raise_if_problems()
    d = f.data
    f.unknown_keys(d, _TOP, "")
    out: dict[str, Any] = {"source": str(path)}

    def hours(table: dict[str, Any], key: str, prefix: str, never: bool = False) -> float | None:
        value: float | None = f.number(
            table, key, prefix, above=0, also=(-1,) if never else (),
            expected="a positive number of hours" + (" (or -1 for never)" if never else ""))
        return value

    zone = d.get("timezone", "UTC")
    try:
        if not isinstance(zone, str):
            raise ZoneInfoNotFoundError
        ZoneInfo(zone)
        out["zone"] = zone
    except (ZoneInfoNotFoundError, ValueError):
        f.problem("timezone", f"expected an IANA time zone like \"Europe/London\", got {zone!r}")

    fr = f.table(d, "first_response", allowed={"default_hours", "levels", "archetypes"})
    if (h := hours(fr, "default_hours", "first_response")) is not None:
        out["default_hours"] = h
    for sub, allowed, target in (("levels", LEVELS, "level_hours"), ("archetypes", ARCHETYPES, "archetype_hours")):
        if sub not in fr:
            continue
        raw = f.table(fr, sub, "first_response")
        f.unknown_keys(raw, allowed, f"first_response.{sub}", what=sub[:-1])
        values: dict[str, float] = {}
        for name in raw:
            if name in allowed and (h := hours(raw, name, f"first_response.{sub}")) is not None:
                values[name] = h
        out[target] = values

    bh = f.table(d, "business_hours", allowed={"start", "end", "days", "holidays"})
    if bh:
        out["business"] = _business(f, bh)

    ci = f.table(d, "check_in", allowed={"after_days"})
    days = f.number(ci, "after_days", "check_in", above=0, hi=60, expected="a number of days from 1 to 60")
    if days is not None:
        out["check_in_days"] = days

    rm = f.table(d, "reminders", allowed={"every_hours"})
    if (h := hours(rm, "every_hours", "reminders")) is not None:
        out["remind_every_hours"] = h
    es = f.table(d, "escalation", allowed={"first_response_after_hours", "promise_after_hours"})
    for key, target in (("first_response_after_hours", "escalate_first_response_hours"),
                        ("promise_after_hours", "escalate_promise_hours")):
        if (h := hours(es, key, "escalation", never=True)) is not None:
            out[target] = h
    f.raise_if_problems()
    return Policy(**out)


def _business(f: TomlFile, bh: dict[str, Any]) -> BusinessHours | None:
    times: list[time] = []
    for key in ("start", "end"):
        value = bh.get(key)
        if isinstance(value, time):
            times.append(value)
        elif isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value):
            hh, mm = map(int, value.split(":"))
            if hh < 24 and mm < 60:
                times.append(time(hh, mm))
                continue
            f.problem(f"business_hours.{key}", f"expected a time like \"09:00\", got {value!r}")
        elif value is None:
            f.problem(f"business_hours.{key}", "required: a time like \"09:00\"")
        else:
            f.problem(f"business_hours.{key}", f"expected a time like \"09:00\", got {value!r}")
    if len(times) == 2 and times[0] >= times[1]:
        f.problem("business_hours.end", "must be later than start (hours that cross midnight are not supported)")
    days = bh.get("days", list(DAYS[:5]))
    if not isinstance(days, list) or not days or not all(isinstance(x, str) and x.lower()[:3] in DAYS for x in days):
        f.problem("business_hours.days", f"expected a non-empty list of days like [\"mon\", \"tue\"], got {days!r}")
        days = list(DAYS[:5])
    holidays = bh.get("holidays", [])
    if not isinstance(holidays, list) or not all(isinstance(h, date) and not isinstance(h, datetime) for h in holidays):
        f.problem("business_hours.holidays", "expected a list of dates like 2026-12-25")
        holidays = []
    if len(times) != 2:
        return None
    return BusinessHours(times[0], times[1], frozenset(DAYS.index(x.lower()[:3]) for x in days), frozenset(holidays))

