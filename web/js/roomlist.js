// What the rooms UI shows, computed from rooms.js's RoomState. DOM-free.
//
// roomList(state): the sidebar's sections, each a list of entries
//   {room, label, unread, badge, current, joined, kind, group, action}
//   (`group`: the sign-in group that admits people to a private room, from its
//   `joined` ack or, for a room this page made, from the createRoom; the `rooms`
//   reply does not carry it)
//   - "rooms": the lobby first, then the public and private rooms joined or in
//     the read state (`mine`), by name;
//   - "direct": direct conversations, labelled with the other person's name;
//   - "invited": invitations not yet taken (action "join");
//   - "public": public rooms of the last list that are not ours (action "join").
// canChange(message, me, nowMs, windowSeconds): whether our own message may
// still be edited or deleted (the server's rule: rooms.within_edit_window).
// validateGroup(text): a private room's sign-in group as the server accepts it
// (rooms.validate_group).

import { sameName } from "./protocol.js";
import { roomKey, unreadLabel } from "./rooms.js";
import { LOBBY, isLobby } from "./negotiate.js";

/** The server's default `editWindowSeconds`. */
export const EDIT_WINDOW_SECONDS = 900;
const CLOCK_SKEW_MS = 5000;

const byName = (a, b) => a.label.localeCompare(b.label, undefined, { sensitivity: "base" });

function entry(state, r, action = "open") {
  const unread = state.unread(r.name);
  const direct = r.kind === "direct";
  return {
    room: r.name,
    label: direct ? (r.with ?? "Direct conversation") : r.name,
    unread,
    badge: unreadLabel(unread),
    current: state.current === roomKey(r.name),
    joined: r.joined,
    kind: r.kind ?? (isLobby(r.name) ? "public" : null),
    group: r.group ?? null,
    action,
  };
}

export function roomList(state) {
  const ours = [...state.rooms.values()].filter((r) => r.joined || r.mine);
  const lobby = state.room(LOBBY) ?? { name: LOBBY, kind: "public", joined: false, with: null };
  const rooms = ours
    .filter((r) => r.kind !== "direct" && !isLobby(r.name))
    .map((r) => entry(state, r))
    .sort(byName);
  const direct = ours
    .filter((r) => r.kind === "direct")
    .map((r) => entry(state, r))
    .sort(byName);
  const known = new Set(ours.map((r) => roomKey(r.name)));
  known.add(LOBBY);
  const invited = state.invited
    .filter((i) => !known.has(roomKey(i.room)))
    .map((i) => ({
      room: i.room,
      label: i.room,
      from: i.from ?? null,
      unread: 0,
      badge: "",
      current: false,
      joined: false,
      kind: "private",
      action: "join",
    }));
  const invitedKeys = new Set(invited.map((i) => roomKey(i.room)));
  const publicRooms = state.publicRooms
    .filter((p) => !known.has(roomKey(p.room)) && !invitedKeys.has(roomKey(p.room)))
    .map((p) => ({
      room: p.room,
      label: p.room,
      unread: 0,
      badge: "",
      current: false,
      joined: false,
      kind: p.kind ?? "public",
      action: "join",
    }))
    .sort(byName);
  return {
    rooms: [entry(state, lobby), ...rooms],
    direct,
    invited,
    public: publicRooms,
  };
}

/** Whether `message` (a RoomState message) is ours and still inside the edit window. */
export function canChange(message, me, nowMs, windowSeconds = EDIT_WINDOW_SECONDS) {
  if (!message || message.deleted || me === null || !sameName(message.from, me)) return false;
  if (!Number.isInteger(message.seq) || typeof message.ts !== "number") return false;
  const age = nowMs - message.ts;
  return windowSeconds > 0 && age >= -CLOCK_SKEW_MS && age < windowSeconds * 1000;
}

/** The accessible name of a room's button: its label, kind and unread count. */
export function roomButtonName(e) {
  const kind = e.kind === "direct" ? "direct conversation with " : e.kind === "private" ? "private room " : "room ";
  const unread = e.unread > 0 ? `, ${e.badge} unread` : "";
  const invite = e.from ? `, invited by ${e.from}` : "";
  const group = e.group ? `, for sign-in group ${e.group}` : "";
  return `${e.action === "join" ? "Join " : ""}${kind}${e.label}${group}${invite}${unread}`;
}

/** The server's limit on a group's length (rooms.GROUP_MAX_LENGTH). */
export const GROUP_MAX_LENGTH = 128;
// Printable ASCII without a comma, neither starting nor ending with a space (rooms.GROUP).
const GROUP = /^[!-+\--~](?:[ -+\--~]*[!-+\--~])?$/;

/**
 * A private room's sign-in group: {ok: true, value} (value null for none: empty
 * or only spaces) or {ok: false, message}.
 */
export function validateGroup(text) {
  const value = typeof text === "string" ? text.trim() : "";
  if (value === "") return { ok: true, value: null };
  if (value.length > GROUP_MAX_LENGTH || !GROUP.test(value)) {
    return {
      ok: false,
      message: `A group must be 1-${GROUP_MAX_LENGTH} printable ASCII characters without a comma.`,
    };
  }
  return { ok: true, value };
}
