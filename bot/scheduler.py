"""APScheduler wiring: one process calls `run_due` every minute (`flask --app bot worker`)."""
from __future__ import annotations

import logging

from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from bot.clock import utcnow
from bot.db import get_database
from bot.schedule import run_due

log = logging.getLogger("xiangban.worker")


def tick_once(app: Flask) -> None:
    """One scheduled tick at the real current time; errors are logged, the next minute retries."""
    with app.app_context():
        try:
            report = run_due(get_database(app), app.extensions["xiangban_sender"], now=utcnow(), config=app.config)
            log.info("tick: %s", report.as_dict())
        except Exception:
            log.exception("tick failed")


def run_worker(app: Flask) -> None:
    """Block, ticking every minute; one job, never overlapping (max_instances=1, coalesce)."""
    scheduler = BlockingScheduler(timezone=app.config["TIMEZONE"])
    scheduler.add_job(tick_once, "interval", minutes=1, args=[app], id="tick", max_instances=1, coalesce=True,
                      next_run_time=utcnow())
    log.info("worker started: ticking every minute")
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("worker stopped")
