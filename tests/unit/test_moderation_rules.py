"""Moderation's pure rules (chat.moderation): ranks, the one permission function, targets,
the mute and slow-mode waits, and what a `moderate` frame may ask."""

from __future__ import annotations

from typing import Any

import pytest

from chat.errors import ChatError
from chat.moderation import (
    SYSTEM,
    Actor,
    Op,
    Rank,
    RoomAuthority,
    Scope,
    Target,
    is_stack_moderator,
    may_moderate,
    may_target,
    mute_wait_ms,
    rank_in,
    read_request,
    role_of,
    slow_mode_wait_ms,
)

ROOM = RoomAuthority(creator="sub#creator", moderators=frozenset({"sub#mod"}))
CREATOR = Actor("sub#creator", "Cree")
ROOM_MOD = Actor("sub#mod", "Moe")
MEMBER = Actor("sub#member", "Mem")
STACK_MOD = Actor("sub#staff", "Staff", stack_moderator=True)
ROOM_OPS = [Op.DELETE, Op.KICK, Op.MUTE, Op.UNMUTE, Op.BAN, Op.UNBAN, Op.SLOW_MODE, Op.TOPIC]


def ranks(actor: Actor, room: RoomAuthority = ROOM) -> Rank:
    return rank_in(
        actor.identity, stack_moderator=actor.stack_moderator, room=room, system=actor.system
    )


def test_ranks_order_member_room_moderator_creator_stack_moderator_system():
    assert [ranks(a) for a in (MEMBER, ROOM_MOD, CREATOR, STACK_MOD, SYSTEM)] == sorted(Rank)


def test_each_rank_above_member_has_its_stable_role_name_and_a_member_none():
    assert [role_of(ranks(a)) for a in (MEMBER, ROOM_MOD, CREATOR, STACK_MOD)] == [
        None,
        "moderator",
        "creator",
        "stackModerator",
    ]


def test_a_room_without_a_creator_has_none_even_for_an_empty_identity():
    assert rank_in("", stack_moderator=False, room=RoomAuthority()) is Rank.MEMBER


@pytest.mark.parametrize("op", ROOM_OPS)
def test_room_ops_are_for_room_moderators_and_above(op):
    assert not may_moderate(MEMBER, op, ROOM)
    assert all(may_moderate(actor, op, ROOM) for actor in (ROOM_MOD, CREATOR, STACK_MOD, SYSTEM))


@pytest.mark.parametrize("op", [Op.APPOINT, Op.DISMISS])
def test_appointing_is_for_the_creator_and_above(op):
    assert not may_moderate(ROOM_MOD, op, ROOM)
    assert may_moderate(CREATOR, op, ROOM)
    assert may_moderate(STACK_MOD, op, RoomAuthority())  # the lobby: no creator


def test_disconnect_and_stack_bans_are_for_stack_moderators_only():
    assert not may_moderate(CREATOR, Op.DISCONNECT, ROOM)
    assert not may_moderate(CREATOR, Op.BAN, ROOM, scope=Scope.STACK)
    assert may_moderate(STACK_MOD, Op.DISCONNECT, ROOM)
    assert may_moderate(SYSTEM, Op.BAN, RoomAuthority(), scope=Scope.STACK)


def test_an_actor_acts_only_on_lower_ranks():
    assert may_target(Rank.CREATOR, Rank.ROOM_MODERATOR)
    assert not may_target(Rank.ROOM_MODERATOR, Rank.ROOM_MODERATOR)
    assert not may_target(Rank.STACK_MODERATOR, Rank.STACK_MODERATOR)
    assert may_target(Rank.SYSTEM, Rank.STACK_MODERATOR)


def test_the_moderator_group_makes_a_stack_moderator_and_no_group_makes_none():
    assert is_stack_moderator(("staff", "moderators"), "moderators")
    assert not is_stack_moderator(("staff",), "moderators")
    assert not is_stack_moderator(("",), "")


def test_a_mute_waits_until_its_end_and_slow_mode_one_interval_after_the_last_message():
    assert (mute_wait_ms(10_000, 4_000), mute_wait_ms(10_000, 10_000), mute_wait_ms(0, 5)) == (
        6_000,
        0,
        0,
    )
    assert slow_mode_wait_ms(None, 1_000, 30) == 0
    assert slow_mode_wait_ms(1_000, 11_000, 30) == 20_000
    assert slow_mode_wait_ms(1_000, 31_000, 30) == 0
    assert slow_mode_wait_ms(1_000, 2_000, 0) == 0


def read(**body: Any):
    return read_request(body, max_seconds=3600, slow_mode_max_seconds=60)


def test_a_request_is_read_with_its_fields_trimmed():
    request = read(op="mute", target=" Bob ", seconds=60, reason="  flood ")
    assert (request.op, request.target, request.seconds, request.reason) == (
        Op.MUTE,
        "Bob",
        60,
        "flood",
    )
    ban = read(op="ban", scope="stack", address="203.0.113.9", seconds=5)
    assert (ban.scope, ban.target_kind, ban.target) == (Scope.STACK, Target.ADDRESS, "203.0.113.9")
    assert read(op="topic", topic="  ").topic is None  # clears it
    assert read(op="slowMode", seconds=0).seconds == 0


@pytest.mark.parametrize(
    "body",
    [
        {"op": "nuke"},
        {"op": 3},
        {"op": "kick"},
        {"op": "kick", "target": "x" * 129},
        {"op": "mute", "target": "Bob", "seconds": 3601},
        {"op": "mute", "target": "Bob", "seconds": True},
        {"op": "ban", "seconds": 5},
        {"op": "ban", "name": "Bob", "address": "1.2.3.4", "seconds": 5},
        {"op": "ban", "name": "", "seconds": 5},
        {"op": "slowMode", "seconds": 61},
        {"op": "topic", "topic": 5},
        {"op": "topic", "topic": "a\u0007b"},
        {"op": "kick", "target": "Bob", "reason": "x" * 201},
        {"op": "kick", "target": "Bob", "scope": "stack"},
        {"op": "ban", "name": "Bob", "seconds": 5, "scope": "world"},
    ],
)
def test_a_request_out_of_bounds_is_invalid_moderation(body):
    with pytest.raises(ChatError) as refused:
        read(**body)
    assert refused.value.code == "INVALID_MODERATION"


def test_a_delete_needs_a_seq_and_a_message_id():
    with pytest.raises(ChatError) as refused:
        read(op="delete", messageId="m1", seq=-1)
    assert refused.value.code == "INVALID_ID"
    with pytest.raises(ChatError) as refused:
        read(op="delete", seq=1)
    assert refused.value.code == "UNKNOWN_MESSAGE"
    assert read(op="delete", messageId="m1", seq=3).seq == 3
