"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright.

Log in, see an urgent flag appear after a signed webhook, record the police report, resolve it;
an injected script in an SMS stays inert; an out-of-scope caseworker and an anonymous visitor
cannot open it. Where Chromium is missing and cannot be installed these tests are SKIPPED
loudly (a warning and a skip reason). With XIANGBAN_SCREENSHOTS=1 they refresh
docs/screenshots/ (desktop and phone).
"""
from __future__ import annotations

import os
import shutil
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from bot.clock import utcnow
from tests.handlers.dashboard_helpers import (PASSWORDS, PROBES, World, build_world, fast_password_hashing,
                                              send_alarm)

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORTS = {"desktop": {"width": 1280, "height": 860}, "phone": {"width": 390, "height": 844}}
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

pytestmark = pytest.mark.xdist_group("browser")


def _skip(reason: str) -> None:
    message = f"BROWSER TESTS SKIPPED: {reason}"
    warnings.warn(message, stacklevel=2)
    print(f"\n!! {message}")
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM) and shutil.which("chromium") is None:
        _skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip("the playwright package is not installed")
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        except Exception as error:  # noqa: BLE001
            _skip(f"chromium would not start: {str(error)[:200]}")
        yield launched
        launched.close()


@pytest.fixture
def live(app: Flask, session: Session, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, World]]:
    from werkzeug.serving import make_server

    fast_password_hashing(monkeypatch)
    world = build_world(session, utcnow())
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", world
    server.shutdown()
    thread.join(5)


def new_page(browser, viewport: str):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport=VIEWPORTS[viewport], locale="zh-CN", timezone_id="Asia/Shanghai")
    page = context.new_page()
    page.dialogs = []  # type: ignore[attr-defined]
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))  # type: ignore[attr-defined]
    return page


def log_in(page, base: str, login: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(base + "/", wait_until="load")
    assert page.locator("input[type=password]").count() == 1, "anonymous visitors land on the login form"
    page.fill("input[name=login]", login)
    page.fill("input[type=password]", PASSWORDS[login])
    with page.expect_navigation(wait_until="load"):
        page.click("form button[type=submit] >> nth=-1")
    assert page.locator("input[type=password]").count() == 0, "logged in"


def shot(page, name: str, viewport: str) -> None:  # type: ignore[no-untyped-def]
    if os.environ.get("XIANGBAN_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}-{viewport}.png"), full_page=True)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_caseworker_reports_and_resolves_an_urgent_flag(browser, live, app: Flask, session: Session,  # type: ignore[no-untyped-def]
                                                        viewport: str) -> None:
    base, world = live
    page = new_page(browser, viewport)
    page.goto(base + "/login")
    shot(page, "login", viewport)
    log_in(page, base, "worker_a")
    assert page.locator(".card.urgent").count() == 0

    flag = send_alarm(app.test_client(), session)  # a signed webhook, as Twilio sends it
    page.reload(wait_until="load")
    card = page.locator(f"#flag-{flag.id}")
    assert card.is_visible()
    assert "王小明" in card.inner_text()
    clock = card.locator(".clock")
    assert "报告时限还剩" in clock.inner_text() and "late" not in (clock.get_attribute("class") or "")
    shot(page, "queue", viewport)

    with page.expect_navigation(wait_until="load"):
        card.locator("a.flag-row").click()
    assert page.locator("mark", has_text="被打").count() >= 1, "the triage evidence is highlighted"
    assert page.evaluate("window.__xss === undefined"), "the script inside the SMS never ran"
    assert page.dialogs == []
    assert "<script>window.__xss=2</script>" in page.locator(".msg.trigger").inner_text(), "shown as text"
    shot(page, "flag", viewport)

    page.fill("#station", "下营派出所")
    page.fill("#reference", "JJ-2026-0001")
    page.fill("#officer", "张警官")
    with page.expect_navigation(wait_until="load"):
        page.click("form[action$='/police'] button[type=submit]")
    assert "报案已登记" in page.content()
    assert "已按时报警" in page.locator(".clock").first.inner_text()

    page.click("details:has(form[action$='/resolve']) summary")
    page.fill("#outcome", "已报警，派出所已出警，孩子暂由姑姑照看")
    with page.expect_navigation(wait_until="load"):
        page.click("form[action$='/resolve'] button[type=submit]")
    assert "已结案" in page.locator(".badge.status-resolved").first.inner_text()
    history = page.locator("ol.events").inner_text()
    for step in ("登记报案", "结案"):
        assert step in history
    assert "甲" in history, "each step shows who did it"

    page.goto(f"{base}/conversations/{world.a.guardian.id}", wait_until="load")
    assert page.evaluate("window.__xss === undefined")
    page.fill("#text", "奶奶您好，督导员马上到。")
    with page.expect_navigation(wait_until="load"):
        page.click("form#bottom button[type=submit]")
    assert "已发出" in page.locator(".msg.outbound").last.inner_text()
    shot(page, "conversation", viewport)
    page.goto(f"{base}/children/{world.a.child.id}", wait_until="load")
    assert "委托监护确认" in page.content()
    shot(page, "child", viewport)
    page.context.close()


def test_out_of_scope_caseworker_and_anonymous_cannot_open_it(browser, live, app: Flask,  # type: ignore[no-untyped-def]
                                                              session: Session) -> None:
    base, world = live
    flag = send_alarm(app.test_client(), session)
    urls = [f"/flags/{flag.id}", f"/children/{world.a.child.id}", f"/conversations/{world.a.guardian.id}", "/",
            "/conversations", "/children"]
    page = new_page(browser, "phone")
    log_in(page, base, "worker_b")
    for url in urls:
        response = page.goto(base + url, wait_until="load")
        html = page.content()
        assert response.status == (200 if url in ("/", "/conversations", "/children") else 404), url
        for probe in PROBES:
            assert probe not in html, f"worker_b saw {probe} at {url}"
    page.context.close()
    anonymous = new_page(browser, "phone")
    for url in urls:
        anonymous.goto(base + url, wait_until="load")
        assert anonymous.locator("input[type=password]").count() == 1, url
        for probe in PROBES:
            assert probe not in anonymous.content()
    anonymous.context.close()


def silent_mp3(frames: int = 40) -> bytes:
    """About a second of silence as MPEG-1 Layer III frames (128 kbit/s, 44.1 kHz, mono): a real mp3."""
    header = bytes([0xFF, 0xFB, 0x90, 0xC4])
    return (header + bytes(417 - len(header))) * frames


def test_a_caseworker_plays_a_voicemail_in_the_browser(browser, live, app: Flask, session: Session,  # type: ignore[no-untyped-def]
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.handlers.dashboard_helpers import RecordingSender, leave_voicemail

    base, world = live
    recordings = RecordingSender(audio=silent_mp3())
    monkeypatch.setitem(app.extensions, "xiangban_sender", recordings)
    message = leave_voicemail(app.test_client(), session)
    page = new_page(browser, "phone")
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    log_in(page, base, "worker_a")
    page.goto(f"{base}/conversations/{world.a.guardian.id}", wait_until="load")
    audio = page.locator(f'audio[src="/messages/{message.id}/recording"]')
    assert audio.count() == 1 and audio.is_visible()
    with page.expect_response(lambda r: r.url.endswith(f"/messages/{message.id}/recording")) as answered:
        duration = page.evaluate("""() => new Promise((done) => {
            const a = document.querySelector('audio');
            a.addEventListener('loadedmetadata', () => done(a.duration), {once: true});
            a.addEventListener('error', () => done(-1), {once: true});
            a.load();
        })""")
    assert answered.value.status in (200, 206)
    assert duration > 0.5, f"the browser could not read the audio ({duration})"
    assert not [p for p in problems if "Content Security Policy" in p], problems
    assert recordings.fetched
    page.context.close()
