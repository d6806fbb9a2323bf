"""The conversation engine, without Flask, Twilio or a database."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot import engine
from bot.engine import ChildInfo, ContactInfo, State

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc)
XIAOMING = ChildInfo(id=7, given_name="小明", role="guardian", relation="奶奶")


def guardian(**overrides: object) -> ContactInfo:
    """A grandmother guarding one child."""
    return ContactInfo(**{"id": 2, "language": "zh_Hans", "children": (XIAOMING,), "caseworker_phone": "13900000000",
                          **overrides})


def parent() -> ContactInfo:
    """A migrant father."""
    return ContactInfo(id=1, children=(ChildInfo(id=7, given_name="小明", role="father", relation="奶奶"),))


def asked(kind: str, contact: ContactInfo | None = None, child: ChildInfo = XIAOMING) -> State:
    """The state right after a question was asked."""
    return engine.ask(contact or guardian(), kind, child, NOW, reminder_id=11, arrangement_id=5).state


def templates(step: engine.Step) -> list[str]:
    return [reply.template for reply in step.replies]


def test_ask_names_the_child_by_given_name_only() -> None:
    result = engine.ask(guardian(), "checkin", XIAOMING, NOW)
    assert templates(result) == ["sms.checkin_ask"]
    assert result.replies[0].variables == {"child": "小明"}
    assert result.state.question is not None and result.state.expires_at == NOW + timedelta(days=7)


def test_ask_confirm_parent_names_the_guardian_by_relation() -> None:
    result = engine.ask(parent(), "confirm_parent", parent().children[0], NOW)
    assert result.replies[0].variables == {"child": "小明", "relation": "奶奶"}


@pytest.mark.parametrize("text", ["1", "１", "一", "1.", "1、", "选1", " 1 ", "是", "好的", "可以", "没问题", "嗯", "OK!!", "yes"])
def test_guardian_confirms_with_every_everyday_yes(text: str) -> None:
    result = engine.step(guardian(), asked("confirm_guardian"), text, NOW + timedelta(minutes=5))
    assert templates(result) == ["sms.confirm_thanks"]
    arrangement = [r for r in result.records if r.kind == "arrangement"]
    assert arrangement[0].value == "yes" and arrangement[0].data == {"side": "guardian", "arrangement_id": 5}
    assert result.state.question is None


def test_guardian_who_declines_raises_an_urgent_unattended_flag() -> None:
    result = engine.step(guardian(), asked("confirm_guardian"), "2", NOW)
    assert [(f.category, f.severity) for f in result.flags] == [("unattended", "urgent")]
    assert templates(result) == ["sms.confirm_guardian_declined"]


def test_parent_who_says_the_guardian_is_wrong_raises_a_guardianship_change_flag() -> None:
    result = engine.step(parent(), asked("confirm_parent", parent(), parent().children[0]), "不是", NOW)
    assert [(f.category, f.severity) for f in result.flags] == [("guardianship_change", "high")]


def test_unclear_answer_is_reprompted_once_then_goes_to_a_caseworker() -> None:
    state = asked("confirm_guardian")
    first = engine.step(guardian(), state, "啥意思", NOW)
    assert templates(first) == ["sms.reprompt_yesno"] and not first.flags
    # (a confused reply the triage net reads as a plea, "不知道你说啥", goes to a caseworker as help)
    second = engine.step(guardian(), first.state, "看不明白", NOW)
    assert templates(second) == ["sms.handed_to_caseworker"]
    assert [f.category for f in second.flags] == ["other"]
    assert second.state.question is None
    third = engine.step(guardian(), second.state, "嗯", NOW)
    assert templates(third) == ["sms.thanks"]  # no loop: no question is open any more


@pytest.mark.parametrize("text, category", [("2", "illness"), ("3", "dropout")])
def test_checkin_ill_or_not_at_school_flags_high_and_asks_one_follow_up(text: str, category: str) -> None:
    result = engine.step(guardian(), asked("checkin"), text, NOW)
    assert [(f.category, f.severity) for f in result.flags] == [(category, "high")]
    assert result.state.question is not None and result.state.question.kind == "checkin_followup"
    follow = engine.step(guardian(), result.state, "发烧两天了，在村卫生室打针", NOW)
    assert templates(follow) in (["sms.followup_thanks"], ["sms.concern_reply"])
    assert follow.state.question is None


def test_checkin_all_well_in_words_counts_as_1() -> None:
    result = engine.step(guardian(), asked("checkin"), "都好", NOW)
    assert templates(result) == ["sms.checkin_ok"]
    assert [r.value for r in result.records if r.kind == "answer"] == ["well"]


def test_free_text_check_in_answer_goes_through_triage_first() -> None:
    result = engine.step(guardian(), asked("checkin"), "孩子被人打了，身上都是伤", NOW)
    assert templates(result) == ["sms.urgent_reply"]
    assert result.replies[0].urgent
    assert [(f.category, f.severity, f.child_id) for f in result.flags] == [("abuse", "urgent", 7)]
    assert result.flags[0].evidence  # spans for the caseworker to see highlighted


def test_urgent_text_with_no_open_question_is_answered_and_flagged() -> None:
    result = engine.step(guardian(), State(), "娃不见了，找了一晚上", NOW)
    assert templates(result) == ["sms.urgent_reply"]
    assert result.flags[0].severity == "urgent"


def test_parent_contact_not_yet_gets_a_gentle_nudge() -> None:
    state = asked("parent_contact", parent(), parent().children[0])
    result = engine.step(parent(), state, "2", NOW)
    assert templates(result) == ["sms.parent_contact_nudge"]
    assert result.replies[0].variables == {"child": "小明"}
    yes = engine.step(parent(), state, "有", NOW)
    assert templates(yes) in (["sms.parent_contact_yes"], ["sms.reprompt_yesno"])


def test_quarterly_workplace_change_is_recorded() -> None:
    state = asked("quarterly", parent(), parent().children[0])
    ask_place = engine.step(parent(), state, "3", NOW)
    assert templates(ask_place) == ["sms.quarterly_ask_workplace"]
    done = engine.step(parent(), ask_place.state, "江苏苏州", NOW)
    assert [(r.kind, r.value) for r in done.records] == [("workplace", "江苏苏州")]


def test_quarterly_guardian_change_records_the_new_guardian_and_flags() -> None:
    state = asked("quarterly", parent(), parent().children[0])
    ask_who = engine.step(parent(), state, "4", NOW)
    done = engine.step(parent(), ask_who.state, "外婆 138 0000 0099", NOW)
    change = [r for r in done.records if r.kind == "guardian_change"][0]
    assert change.value == "13800000099" and change.data["relation"] == "外婆"
    assert [f.category for f in done.flags] == ["guardianship_change"]


@pytest.mark.parametrize("text", ["TD", "退订", "STOP", "unsubscribe", " td "])
def test_opt_out_is_honoured_at_once_confirmed_once_and_flagged(text: str) -> None:
    result = engine.step(guardian(), asked("checkin"), text, NOW)
    assert templates(result) == ["sms.optout_confirm"]
    assert [r.kind for r in result.records] == ["opt_out"]
    assert [f.category for f in result.flags] == ["opted_out"]
    assert result.state.question is None
    again = engine.step(guardian(opted_out=True), result.state, "TD", NOW)
    assert again.replies == () and again.flags == ()


def test_start_resubscribes() -> None:
    result = engine.step(guardian(opted_out=True), State(), "恢复", NOW)
    assert templates(result) == ["sms.optin_confirm"] and [r.kind for r in result.records] == ["opt_in"]


def test_help_explains_with_the_caseworker_number_and_cries_for_help_flag() -> None:
    info = engine.step(guardian(), State(), "HELP", NOW)
    assert templates(info) == ["sms.help_info"] and info.replies[0].variables == {"phone": "13900000000"}
    assert not info.flags
    for cry in ("帮助", "求助", "救命"):
        result = engine.step(guardian(), State(), cry, NOW)
        assert result.flags and result.flags[0].category in ("help",) + tuple(
            c for c in ("abuse", "injury", "missing", "self_harm"))


def test_language_switch() -> None:
    result = engine.step(guardian(), State(), "English", NOW)
    assert [(r.kind, r.value) for r in result.records] == [("language", "en")]
    back = engine.step(guardian(language="en"), State(), "中文", NOW)
    assert [(r.kind, r.value) for r in back.records] == [("language", "zh_Hans")]


def test_state_expires_and_a_late_answer_no_longer_acts() -> None:
    state = asked("confirm_guardian")
    late = engine.step(guardian(), state, "1", NOW + timedelta(days=8))
    assert not [r for r in late.records if r.kind == "arrangement"]


def test_stale_answer_to_an_older_question_never_acts_on_a_newer_one() -> None:
    older = asked("confirm_guardian")
    newer = asked("checkin")
    assert older.question is not None and newer.question is not None
    result = engine.step(guardian(), newer, "2", NOW, question_ref=older.question.ref)
    assert not result.flags and not [r for r in result.records if r.kind == "answer"]
    assert result.state == newer


def test_unknown_sender_is_answered_politely_and_flagged_for_a_caseworker() -> None:
    result = engine.step(ContactInfo(id=None), State(), "你好，请问这是哪里", NOW)
    assert templates(result) == ["sms.unknown_sender"]
    assert [(f.category, f.child_id) for f in result.flags] == [("other", None)]


def test_english_contact_texts_are_the_same_templates() -> None:
    result = engine.step(guardian(language="en"), asked("checkin"), "my grandson was beaten by his uncle", NOW)
    assert templates(result) == ["sms.urgent_reply"]
