// What the rooms UI shows, computed from rooms.js's RoomState. DOM-free.
//
// roomList(state): the sidebar's sections, each a list of entries
//   {room, label, unread, badge, current, joined, kind, action}
//   - "rooms": the lobby first, then the public and private rooms joined or in
//     the read state (`mine`), by name;
//   - "direct": direct conversations, labelled with the other person's name;
//   - "invited": invitations not yet taken (action "join");
//   - "public": public rooms of the last list that are not ours (action "join").
// canChange(message, me, nowMs, windowSeconds): whether our own message may
// still be edited or deleted (the server's rule: rooms.within_edit_window).

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
  return `${e.action === "join" ? "Join " : ""}${kind}${e.label}${invite}${unread}`;
}
