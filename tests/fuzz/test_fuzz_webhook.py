"""Random forms against the signed SMS webhook: never a 500, and every accepted message is stored."""
from __future__ import annotations

import itertools
from urllib.parse import quote

from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Message
from tests.builders import PUBLIC_URL, sign

FIELDS = ["MessageSid", "SmsSid", "AccountSid", "From", "To", "Body", "NumMedia", "NumSegments", "MediaUrl0"]
SETTINGS = settings(max_examples=120, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])
_serial = itertools.count()

any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
long_text = st.one_of(any_text, st.builds(lambda seed, n: (seed * n)[:n],
                                         st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=20)
                                         | st.just("孩子发烧了不见打我1\x00 é\u202e😀"), st.integers(9000, 10000)))
phones = st.one_of(st.sampled_from(["+8613800000002", "+8613900000009", "13800000002", "", "+1", "not a phone"]),
                   any_text)


def _encode_pair(key: str, value: str, broken: int) -> str:
    pair = f"{quote(key, safe='')}={quote(value, safe='')}"
    if broken == 1:
        pair += "%zz%"  # not a percent escape at all
    elif broken == 2:
        pair += "%E4%B8"  # a cut-off UTF-8 sequence
    elif broken == 3:
        pair += "%FF%FE%00"  # bytes that are not UTF-8, and a NUL
    return pair


@st.composite
def raw_forms(draw: st.DrawFn) -> bytes:
    pairs: list[tuple[str, str]] = []
    if draw(st.booleans()):
        pairs.append(("MessageSid", draw(st.one_of(st.just(f"SMfuzz{next(_serial):026d}"), any_text))))
    pairs.append(("From", draw(phones))) if draw(st.integers(0, 9)) else None
    pairs.append(("Body", draw(long_text))) if draw(st.integers(0, 9)) else None
    for key in draw(st.lists(st.one_of(st.sampled_from(FIELDS), any_text), max_size=6)):  # repeated and odd keys
        pairs.append((key, draw(any_text)))
    pairs = draw(st.permutations(pairs))
    encoded = [_encode_pair(key, value, draw(st.integers(0, 12))) for key, value in pairs]
    return "&".join(encoded).encode("ascii")


def _inbound(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Message).where(Message.direction == "inbound")) or 0


@SETTINGS
@given(raw=raw_forms())
def test_random_signed_forms_never_500_and_accepted_ones_are_stored(app: Flask, session: Session,
                                                                     raw: bytes) -> None:
    content_type = "application/x-www-form-urlencoded"
    with app.test_request_context("/twilio/sms", method="POST", data=raw, content_type=content_type) as ctx:
        form = ctx.request.form  # exactly what the app will see; Twilio signs what it sends
        signature = sign(PUBLIC_URL + "/twilio/sms", form)
        sid = ((form.get("MessageSid") or form.get("SmsSid") or "").replace("\x00", "")[:64]) or None
    session.expire_all()
    before = _inbound(session)
    already = sid is not None and session.scalar(select(func.count()).select_from(Message)
                                                 .where(Message.provider_sid == sid)) > 0
    response = app.test_client().post("/twilio/sms", data=raw, content_type=content_type,
                                      headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200, (response.status_code, raw[:300])
    assert b"<Response" in response.data
    session.expire_all()
    assert _inbound(session) == before + (0 if already else 1), "an accepted message was not stored"


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(raw=st.binary(max_size=300), signature=st.one_of(st.none(), st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=40)))
def test_unsigned_or_garbage_posts_are_refused_without_storing(app: Flask, session: Session, raw: bytes,
                                                               signature: str | None) -> None:
    headers = {} if signature is None else {"X-Twilio-Signature": signature.encode("utf-8", "replace").decode("latin-1")}
    for content_type in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data"):
        response = app.test_client().post("/twilio/sms", data=raw, content_type=content_type, headers=headers)
        assert response.status_code in (400, 403), response.status_code
    session.expire_all()
    assert _inbound(session) == 0
