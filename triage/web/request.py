"""This request's settings and store, for the app's guards and its views.

Apart from ``triage.web`` (which builds the app and imports the views) so that
the views can use them without importing the package that imports them.
"""

from __future__ import annotations

from flask import current_app, g

from triage.config import Settings
from triage.store import Store


def store() -> Store:
    """This request's store (opened on first use, closed at teardown)."""
    if "store" not in g:
        g.store = Store(settings().store_path)
    opened: Store = g.store
    return opened


def settings() -> Settings:
    """The settings the app was created with."""
    value: Settings = current_app.extensions["triage.settings"]
    return value
