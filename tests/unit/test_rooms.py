"""Rooms' rules (issue 16): names like chat names, one room per look, who may enter which
room, direct rooms the same from either side, a bounded edit window, throttled typing."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat import store
from chat.errors import ChatError, ErrorCode
from chat.rooms import (
    CLOCK_SKEW_MS,
    LOBBY,
    LOBBY_ROOM,
    Room,
    RoomKind,
    Visitor,
    creatable_kind,
    direct_room,
    direct_room_id,
    is_direct_id,
    is_lobby,
    may_join,
    may_see,
    read_room,
    room_claim_keys,
    room_key,
    rooms_clash,
    typing_allowed,
    validate_group,
    validate_room_name,
    within_edit_window,
)

identities = st.text(min_size=1, max_size=80)
ALICE = "key#aaaaaaaaaaaaaaaaaaaaaaaa"
BOB = "key#bbbbbbbbbbbbbbbbbbbbbbbb"
CAROL = "sub#3f2a-carol"


def refused(raw: object) -> ChatError:
    with pytest.raises(ChatError) as excinfo:
        validate_room_name(raw)
    assert excinfo.value.code is ErrorCode.INVALID_ROOM
    return excinfo.value


# --- names and keys -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["dev", "Café society", "李雷的房间", "Дача", "O'Brien's", "lobby"]
)
def test_a_room_name_valid_as_a_chat_name_is_a_valid_room_name(name):
    assert validate_room_name(f"  {name} ") == name


def test_a_room_name_is_trimmed_and_put_in_nfc():
    assert validate_room_name(" Cafe\u0301 ") == "Caf\u00e9"


@pytest.mark.parametrize(
    "raw",
    [
        None,
        42,
        "",
        "   ",
        "x" * 33,
        "a:b",
        "dev\u200b",
        "\u0430dmin",
        "ADMIN",
        "a d m i n",
        "\u0430lice",  # mixed scripts
    ],
)
def test_a_room_name_that_breaks_a_chat_name_rule_is_refused_as_invalid_room(raw):
    error = refused(raw)
    assert error.message.startswith("A room name") or "room" in error.message


def test_reserved_names_are_refused_as_rooms_and_the_deployers_list_is_used():
    refused("Moderator")
    assert validate_room_name("moderator", reserved=()) == "moderator"
    with pytest.raises(ChatError):
        validate_room_name("staff", reserved=("staff",))


@pytest.mark.parametrize("raw", ["a#b", "#general", "a\uff03b", "@dev", "\uff20dev", "\ufe6bdev"])
def test_a_room_name_with_the_key_separator_or_the_direct_prefix_or_their_look_alikes_is_refused(
    raw,
):
    refused(raw)


def test_an_at_sign_inside_a_room_name_is_allowed():
    assert validate_room_name("pizza@noon") == "pizza@noon"


@pytest.mark.parametrize("raw", ["a#b", "\u0430dmin", "x" * 40, "dev\u200b"])
def test_a_refusal_never_repeats_the_room_name(raw):
    assert raw not in refused(raw).message


@pytest.mark.parametrize("look_alike", ["Dev", "DEV", "\uff24\uff25\uff36", "\u1d05\u1d07\u1d20"])
def test_rooms_whose_names_look_alike_share_one_key(look_alike):
    assert room_key(validate_room_name(look_alike)) == room_key("dev")


def test_rooms_whose_names_look_alike_through_either_key_clash_though_their_room_keys_differ():
    # A capital I for a small l: the room key is the first claim key, the clash the second.
    assert room_key("aIice") != room_key("alice")
    assert rooms_clash("aIice", "alice") and rooms_clash("alice", "aIice")
    assert set(room_claim_keys("aIice")) >= {room_key("aIice"), room_key("alice")}
    assert not rooms_clash("alice", "alicia")


@pytest.mark.parametrize("name", ["lobby", "Lobby", "LOBBY", "\u029f\u1d0f\u0299\u0299\u028f"])
def test_the_lobby_and_its_look_alikes_are_known_without_a_read(name):
    assert is_lobby(validate_room_name(name))


def test_a_room_named_like_the_lobby_only_in_part_is_not_the_lobby():
    assert not is_lobby("lobby2")
    assert not is_lobby("lobbyists")


def test_the_lobby_keeps_the_partition_keys_the_store_has_always_written():
    assert room_key(LOBBY) == LOBBY == store.ROOM
    assert room_key(validate_room_name("Lobby")) == store.ROOM
    assert LOBBY_ROOM.kind is RoomKind.PUBLIC


@given(st.text(max_size=40))
def test_a_valid_room_name_has_keys_that_cannot_collide_with_table_key_parts(raw):
    try:
        name = validate_room_name(raw)
    except ChatError as error:
        assert error.code is ErrorCode.INVALID_ROOM
        return
    key = room_key(name)
    assert key and "#" not in key and not key.startswith("@")
    assert not is_direct_id(key)


def test_read_room_takes_a_room_name_or_a_direct_rooms_id():
    named = read_room(" Dev ")
    assert (named.key, named.name, named.direct) == ("dev", "Dev", False)
    direct_id = direct_room_id(ALICE, BOB)
    assert read_room(direct_id) == type(named)(key=direct_id, name=direct_id, direct=True)


@pytest.mark.parametrize("raw", [None, "", "@" + "0" * 31, "@" + "G" * 32, 7])
def test_read_room_refuses_what_is_neither_a_room_name_nor_a_direct_id(raw):
    with pytest.raises(ChatError) as excinfo:
        read_room(raw)
    assert excinfo.value.code is ErrorCode.INVALID_ROOM


# --- kinds and groups ---------------------------------------------------------------------


def test_create_room_makes_a_private_room_unless_asked_for_a_public_one():
    assert creatable_kind(None) is RoomKind.PRIVATE
    assert creatable_kind("public") is RoomKind.PUBLIC
    assert creatable_kind("private") is RoomKind.PRIVATE


@pytest.mark.parametrize("raw", ["direct", "Public", "", 1, ["public"]])
def test_create_room_cannot_make_a_direct_room_or_an_unknown_kind(raw):
    with pytest.raises(ChatError) as excinfo:
        creatable_kind(raw)
    assert excinfo.value.code is ErrorCode.INVALID_ROOM


@pytest.mark.parametrize("group", ["sre", "eu-west-1_AbC:admins", "a b", "x" * 128])
def test_a_group_is_printable_ascii(group):
    assert validate_group(group) == group
    assert validate_group(None) is None


@pytest.mark.parametrize("group", ["", "a,b", " sre", "sre ", "x" * 129, "gr\u00fcn", "a\tb", 5])
def test_a_group_with_a_comma_spaces_at_its_ends_or_other_characters_is_refused(group):
    with pytest.raises(ChatError) as excinfo:
        validate_group(group)
    assert excinfo.value.code is ErrorCode.INVALID_ROOM


# --- who may see and join -----------------------------------------------------------------

PUBLIC = Room(key="dev", name="dev", kind=RoomKind.PUBLIC)
PRIVATE = Room(key="ops", name="Ops", kind=RoomKind.PRIVATE)
BY_GROUP = Room(key="sre", name="SRE", kind=RoomKind.PRIVATE, group="sre")


def test_anyone_may_see_and_join_a_public_room():
    stranger = Visitor(identity="conn#x")
    assert may_see(PUBLIC, stranger) and may_join(PUBLIC, stranger)


def test_a_private_room_is_invisible_and_closed_to_someone_without_an_invitation():
    stranger = Visitor(identity=BOB, groups=frozenset({"ops"}), invited=frozenset({"dev"}))
    assert not may_see(PRIVATE, stranger)
    assert not may_join(PRIVATE, stranger)


def test_an_invitation_to_a_private_room_lets_its_holder_see_and_join_it():
    invited = Visitor(identity=BOB, invited=frozenset({"ops"}))
    assert may_see(PRIVATE, invited) and may_join(PRIVATE, invited)


def test_the_group_a_private_room_names_admits_whoever_carries_it_and_nobody_else():
    assert may_join(BY_GROUP, Visitor(identity=CAROL, groups=frozenset({"dev", "sre"})))
    assert not may_join(BY_GROUP, Visitor(identity=CAROL, groups=frozenset({"SRE", "sre-2"})))
    assert may_join(BY_GROUP, Visitor(identity=BOB, invited=frozenset({"sre"})))


def test_a_direct_room_admits_its_two_parties_only():
    room = direct_room(ALICE, BOB)
    assert room.kind is RoomKind.DIRECT and room.key == room.name
    assert may_join(room, Visitor(identity=ALICE))
    assert may_join(room, Visitor(identity=BOB))
    intruder = Visitor(identity=CAROL, invited=frozenset({room.key}), groups=frozenset({"x"}))
    assert not may_see(room, intruder)
    assert not may_join(room, intruder)


# --- direct rooms -------------------------------------------------------------------------


@given(identities, identities)
def test_a_direct_rooms_id_is_the_same_whoever_writes_first(first, second):
    assert direct_room_id(first, second) == direct_room_id(second, first)
    assert direct_room(first, second) == direct_room(second, first)


@given(identities, identities, identities, identities)
def test_different_pairs_of_people_get_different_direct_rooms(a, b, c, d):
    if {a, b} != {c, d}:
        assert direct_room_id(a, b) != direct_room_id(c, d)


def test_pairs_that_concatenate_alike_get_different_direct_rooms():
    assert direct_room_id("ab", "c") != direct_room_id("a", "bc")
    assert direct_room_id("a\nb", "c") != direct_room_id("a", "b\nc")


@given(identities, identities)
def test_a_direct_rooms_id_is_never_a_valid_room_name_and_is_read_back_as_direct(first, second):
    room_id = direct_room_id(first, second)
    assert is_direct_id(room_id) and len(room_id) == 33
    refused(room_id)
    assert read_room(room_id).direct


def test_a_direct_room_with_oneself_is_a_room_of_one():
    assert direct_room(ALICE, ALICE).parties == frozenset({ALICE})


def test_a_direct_room_needs_two_identities():
    with pytest.raises(ValueError):
        direct_room_id("", BOB)


# --- edit window --------------------------------------------------------------------------

SENT = 1_795_654_691_420


def test_a_message_may_be_edited_until_its_window_has_passed_and_not_at_its_end():
    assert within_edit_window(SENT, SENT, 900)
    assert within_edit_window(SENT, SENT + 899_999, 900)
    assert not within_edit_window(SENT, SENT + 900_000, 900)
    assert not within_edit_window(SENT, SENT + 86_400_000, 900)


def test_a_window_of_zero_allows_no_edit_at_all():
    assert not within_edit_window(SENT, SENT, 0)


def test_a_message_a_little_in_the_future_is_a_clock_but_far_in_the_future_is_refused():
    assert within_edit_window(SENT, SENT - CLOCK_SKEW_MS, 900)
    assert not within_edit_window(SENT, SENT - CLOCK_SKEW_MS - 1, 900)


@given(
    st.integers(min_value=0, max_value=2**50),
    st.integers(min_value=-CLOCK_SKEW_MS, max_value=10**9),
    st.integers(min_value=0, max_value=10**9),
    st.integers(min_value=0, max_value=604_800),
)
def test_once_the_edit_window_has_closed_it_stays_closed(sent, elapsed, later, window):
    if not within_edit_window(sent, sent + elapsed, window):
        assert not within_edit_window(sent, sent + elapsed + later, window)


# --- typing throttle ----------------------------------------------------------------------


def test_the_first_typing_indicator_goes_out():
    assert typing_allowed(None, SENT, 3.0)


def test_a_typing_indicator_within_the_interval_of_the_last_one_is_held_back():
    assert not typing_allowed(SENT, SENT + 2_999, 3.0)
    assert typing_allowed(SENT, SENT + 3_000, 3.0)
    assert typing_allowed(SENT, SENT + 500, 0.5)


@pytest.mark.parametrize("interval_ms", [2007, 2011, 4099, 59_999])
def test_an_interval_that_is_not_exact_in_binary_still_holds_back_to_the_millisecond(interval_ms):
    # interval_ms / 1000 * 1000 is a hair above interval_ms for these in floating point.
    assert typing_allowed(SENT, SENT + interval_ms, interval_ms / 1000)
    assert not typing_allowed(SENT, SENT + interval_ms - 1, interval_ms / 1000)


def test_the_typing_interval_must_be_positive():
    with pytest.raises(ValueError):
        typing_allowed(None, SENT, 0)


@given(
    st.integers(min_value=500, max_value=60_000) | st.sampled_from([2007, 2011, 4099]),
    st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=40),
)
def test_the_typing_rule_decides_exactly_as_a_one_token_bucket_refilled_once_per_interval(
    interval_ms, gaps
):
    # The bucket as the store keeps it (chat.store's _spend), in exact arithmetic: it starts
    # full, refills for the time passed, and a frame goes out when it has a whole token.
    rate = Fraction(1, interval_ms)  # tokens per millisecond
    tokens, counted_at = Fraction(1), 0
    last_sent: int | None = None
    now = 0
    for gap in gaps:
        now += gap
        tokens = min(Fraction(1), tokens + (now - counted_at) * rate)
        counted_at = now
        by_bucket = tokens >= 1
        if by_bucket:
            tokens -= 1
        by_rule = typing_allowed(last_sent, now, interval_ms / 1000)
        assert by_rule == by_bucket
        if by_rule:
            last_sent = now
