"""Walk the dashboard as a new user would after `make run`, and save docs/screenshots/.

usage: python scripts/dashboard_screenshots.py BASE LOGIN PASSWORD
(with the demo loaded and an alarming text sent from `flask --app bot chat --as 13800001003`).
Logs in, opens the urgent flag from the queue, records the police report, resolves it, opens the
conversation and the child's record — on a desktop and on a phone-sized window — with Debian's
Chromium headless.
"""
from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
VIEWPORTS = {"desktop": {"width": 1280, "height": 860}, "phone": {"width": 390, "height": 844}}


def main(base: str, login: str, password: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for name, viewport in VIEWPORTS.items():
            page = browser.new_context(viewport=viewport, locale="zh-CN", timezone_id="Asia/Shanghai").new_page()
            shot = lambda what: page.screenshot(path=str(SHOTS / f"{what}-{name}.png"), full_page=True)  # noqa: E731
            page.goto(base + "/login")
            shot("login")
            page.fill("input[name=login]", login)
            page.fill("input[type=password]", password)
            with page.expect_navigation():
                page.click("form button[type=submit] >> nth=-1")
            shot("queue")
            # the first urgent flag on the clock that came from a text (not, say, an enrolment check)
            links = page.eval_on_selector_all(".card.urgent:has(.clock[data-due]) a.flag-row",
                                              "els => els.map(e => e.getAttribute('href'))")
            for href in links:
                page.goto(base + href)
                if page.locator(".msg.trigger").count():
                    break
            else:
                raise SystemExit("no urgent flag raised by a text: send one with `flask --app bot chat` first")
            shot("flag")
            page.fill("#station", "下营派出所")
            page.fill("#reference", "JZ-2026-1128")
            page.fill("#officer", "刘警官")
            with page.expect_navigation():
                page.click("form[action$='/police'] button[type=submit]")
            page.click("details:has(form[action$='/resolve']) summary")
            page.fill("#outcome", "已报警，派出所出警；孩子由姑姑临时照料，下周复访。")
            with page.expect_navigation():
                page.click("form[action$='/resolve'] button[type=submit]")
            shot("flag-resolved")
            child = page.locator("a[href^='/children/']").first
            conversation = page.locator("a[href^='/conversations/']").first.get_attribute("href")
            with page.expect_navigation():
                child.click()
            shot("child")
            page.goto(base + conversation)
            shot("conversation")
            print(f"{name}: flag reported and resolved; screenshots in {SHOTS}")
            page.context.close()
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
