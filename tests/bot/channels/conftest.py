"""Stoplight Prism serving Twilio's own OpenAPI description, for the real twilio client to talk to.

Prism (pinned in tools/prism/package-lock.json) is installed once with `npm ci` into a cache
folder keyed by the lock file's hash (XIANGBAN_PRISM_DIR overrides it), started on a free
loopback port for the test session with `--errors` (a request that breaks the description is
answered 422), and stopped at the end. Without npm the tests that need it are skipped, loudly.
"""
from __future__ import annotations

import copy
import fcntl
import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
PRISM_PACKAGE = ROOT / "tools" / "prism"
SPEC_DIR = Path(os.environ.get("TWILIO_OAI_DIR", ROOT / "tests" / "data" / "twilio-oai"))
API_SPEC = "twilio_api_v2010.json"  # api.twilio.com: Messages and Calls, all our sender uses
START_SECONDS = 90


def _prism_dir() -> Path:
    lock = (PRISM_PACKAGE / "package-lock.json").read_bytes()
    default = Path("/tmp") / f"xiangban-prism-{hashlib.sha256(lock).hexdigest()[:12]}"
    return Path(os.environ.get("XIANGBAN_PRISM_DIR", default))


def install_prism() -> Path:
    """The prism executable, installed from the committed lock file when missing."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("npm/node not found: the Twilio sender is NOT checked against Twilio's OpenAPI description")
    target = _prism_dir()
    target.mkdir(parents=True, exist_ok=True)
    binary = target / "node_modules" / ".bin" / "prism"
    with open(target / ".install.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # two test sessions at once install once
        if not binary.exists():
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(PRISM_PACKAGE / name, target / name)
            done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=target,
                                  capture_output=True, text=True, timeout=600)
            if done.returncode != 0 or not binary.exists():
                pytest.fail(f"npm ci of Prism failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return binary


def relax_form_arrays(spec: dict[str, Any]) -> dict[str, Any]:
    """Let form-encoded array parameters also be one string (Prism answers 422 otherwise; see the README)."""
    patched = copy.deepcopy(spec)
    for operations in patched.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            form = (operation.get("requestBody", {}).get("content", {})
                    .get("application/x-www-form-urlencoded", {}).get("schema", {}))
            for name, schema in list(form.get("properties", {}).items()):
                if schema.get("type") == "array":
                    form["properties"][name] = {"anyOf": [schema, schema.get("items", {"type": "string"})]}
    return patched


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Prism exited ({process.returncode}):\n{log.read_text(errors='replace')[-2000:]}")
        try:
            urllib.request.urlopen(url + "/2010-04-01/Accounts.json", timeout=2)
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer (401 without credentials) means it listens
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"Prism did not start within {START_SECONDS}s:\n{log.read_text(errors='replace')[-2000:]}")


@pytest.fixture(scope="session")
def prism_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a Prism mock of api.twilio.com on 127.0.0.1, validating every request."""
    binary = install_prism()
    work = tmp_path_factory.mktemp("prism")
    spec = work / API_SPEC
    spec.write_text(json.dumps(relax_form_arrays(json.loads((SPEC_DIR / API_SPEC).read_text()))))
    port = _free_port()
    log = work / "prism.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([str(binary), "mock", "-h", "127.0.0.1", "-p", str(port), "--errors", str(spec)],
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
