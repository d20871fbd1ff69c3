"""The review page: a small Flask app over the store and ``triage.review``.

``create_app(settings, secret=..., host=..., port=...)`` builds the app;
``make_server`` wraps it in werkzeug's threaded server for ``triage serve``.
Guards run before every view, in this order: the Host header must be one of
``security.allowed_hosts(host, port)`` (400), a state-changing request must
carry the session's CSRF token (403), and every route but /login and
/static needs a logged-in, still-enabled agent with a live server-side
session (redirect to /login; see ``security``). ``clock`` (default: the real
UTC clock) is what sessions and the login backoff measure time by; tests pass
their own.
Each request opens its own ``Store`` (SQLite connections are not shared
between server threads) and closes it at teardown.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import flask
from flask import Flask, Response, g, render_template
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer
from werkzeug.serving import make_server as _werkzeug_server

from triage import agents
from triage.config import Settings
from triage.web import security
from triage.web.request import settings, store

__all__ = ["create_app", "make_server", "settings", "store"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8025


def create_app(
    settings: Settings,
    secret: str | None = None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    clock: Callable[[], datetime] | None = None,
) -> Flask:
    """The review app for ``settings``; ``secret`` defaults to ``security.load_secret``.

    ``host``/``port`` are where it is served: they decide which Host headers are accepted.
    """
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret or security.load_secret(settings.store_path),
        SESSION_COOKIE_NAME="triage_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.web.session_max_hours),
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    app.extensions["triage.settings"] = settings
    if clock is not None:
        app.extensions["triage.clock"] = clock
    allowed = security.allowed_hosts(host, port)
    app.jinja_env.globals["csrf_token"] = security.csrf_token
    app.jinja_env.globals["CSRF_FIELD"] = security.CSRF_FIELD

    @app.before_request
    def guard() -> Response | None:
        security.check_host(allowed)
        security.check_csrf(allowed)
        if flask.request.endpoint != "static":  # (triage.web.request is this package's module, not flask's)
            g.agent = security.current_agent(store(), settings.web, lambda name: agents.active(store(), name))
        return security.login_redirect()

    @app.after_request
    def headers(response: Response) -> Response:
        return security.add_headers(response)

    @app.teardown_appcontext
    def close_store(_exc: BaseException | None) -> None:
        opened = g.pop("store", None)
        if opened is not None:
            opened.close()

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[str, int]:
        return render_template("error.html", code=exc.code, description=exc.description), exc.code or 500

    from triage.web.views import bp

    app.register_blueprint(bp)
    return app


def make_server(settings: Settings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, **kwargs: Any) -> BaseWSGIServer:
    """A threaded werkzeug server for the app on ``host:port`` (call ``serve_forever``)."""
    app = create_app(settings, host=host, port=port, **kwargs)
    return _werkzeug_server(host, port, app, threaded=True)
