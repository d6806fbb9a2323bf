"""Xiangban (相伴): SMS and voice outreach for the care and protection of left-behind children."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The application factory: configuration from the environment, overrides from `config`."""
    from bot import db
    from bot.channels.factory import make_sender
    from bot.config import load_config

    app = Flask(__name__, instance_path=str(Path(__file__).resolve().parent.parent / "instance"))
    app.config.update(load_config(config))
    if not app.config.get("DATABASE_URL"):
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        app.config["DATABASE_URL"] = f"sqlite:///{Path(app.instance_path) / 'xiangban.db'}"
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    db.init_app(app)
    app.extensions["xiangban_sender"] = make_sender(app.config)

    if app.config.get("PROXY_COUNT"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = int(app.config["PROXY_COUNT"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    from handlers import dashboard, health, twilio, voice

    app.register_blueprint(health.bp)
    app.register_blueprint(twilio.bp)
    voice.init_app(app)
    dashboard.init_app(app)

    from bot import cli

    cli.register(app)
    if not app.testing and app.config.get("TRIAGE_WARM_UP", True):
        _warm_triage_on_first_request(app)
    return app


def _warm_triage_on_first_request(app: Flask) -> None:
    """On the first request this process serves (often a health check), build the triage rules and
    net in a background thread, so the first text message is not the one that waits for them."""
    import threading

    started = threading.Event()

    @app.before_request
    def _start_triage_warm_up() -> None:
        if started.is_set():
            return
        started.set()
        from bot.triage import warm_up

        threading.Thread(target=warm_up, name="triage-warm-up", daemon=True).start()
