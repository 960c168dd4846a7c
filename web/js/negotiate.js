// Protocol v2 negotiation and frame routing (docs/rooms-design.md §3). DOM-free.
//
// The page asks for v2 on every setName (`"protocol": 2`). A v2 server's ack
// says what was agreed (`{"ack":"setName",…,"protocol":2}`); an older server
// ignores the field and acks without it, and the page stays exactly the v1.1
// client it was. On a v2 connection the lobby is still shown by the v1.1
// machinery (conversation.js and friends: its frames are today's plus `room`),
// so outgoing lobby frames gain `"room":"lobby"`, and every frame of another
// room, or of a kind only v2 has, goes to the rooms UI instead (routeFrame).

import { foldName } from "./protocol.js";

export const PROTOCOL_V2 = 2;
export const LOBBY = "lobby";

// Actions that exist only in v2; their acks and errors belong to the rooms UI.
export const V2_ACTIONS = new Set([
  "joinRoom",
  "leaveRoom",
  "createRoom",
  "invite",
  "listRooms",
  "typing",
  "editMessage",
  "deleteMessage",
  "markRead",
  "moderate",
]);

// Frame keys only a v2 server sends.
const V2_KEYS = [
  "joined",
  "left",
  "rooms",
  "invited",
  "typing",
  "presence",
  "messageEdited",
  "messageDeleted",
  "directMessage",
  "moderation",
];

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/** Whether `room` names the lobby (by its folded name, as the server keys rooms). */
export function isLobby(room) {
  return typeof room === "string" && foldName(room) === LOBBY;
}

/**
 * The protocol a setName ack agreed: 2 when the ack says `"protocol":2`, else 1
 * (an older server acks without the field). null when `frame` is not a setName ack.
 */
export function agreedProtocol(frame) {
  if (!isObject(frame) || frame.ack !== "setName") return null;
  return frame.protocol === PROTOCOL_V2 ? PROTOCOL_V2 : 1;
}

/**
 * An outgoing frame as it goes out: every setName asks for v2; on a v2
 * connection a lobby `sendPublic`/`history` (the v1.1 machinery's) names the
 * lobby, since v2 requires `room` on them. Returns a new object when it changes.
 */
export function outgoing(frame, protocol) {
  if (!isObject(frame)) return frame;
  if (frame.action === "setName") return { ...frame, protocol: PROTOCOL_V2 };
  const lobbyAction = frame.action === "sendPublic" || frame.action === "history";
  if (protocol === PROTOCOL_V2 && lobbyAction && frame.room === undefined) {
    return { ...frame, room: LOBBY };
  }
  return frame;
}

/**
 * Who handles an incoming frame: `conversation` (the v1.1 lobby machinery) and/or
 * `rooms` (the rooms UI). On a v1 connection everything is the conversation's.
 */
export function routeFrame(frame, protocol) {
  if (protocol !== PROTOCOL_V2 || !isObject(frame)) return { conversation: true, rooms: false };
  if (isObject(frame.error)) {
    const v2 = V2_ACTIONS.has(frame.error.action) || (frame.error.action === "sendPublic" && isRoomError(frame));
    return { conversation: !v2, rooms: v2 };
  }
  if (typeof frame.ack === "string") {
    if (V2_ACTIONS.has(frame.ack)) return { conversation: false, rooms: true };
    // A v2 sendPrivate ack names the direct room: the outbox needs it, and so does the list.
    if (frame.ack === "sendPrivate" && typeof frame.room === "string") {
      return { conversation: true, rooms: true };
    }
    return { conversation: true, rooms: false };
  }
  // Every v2 room frame names its room (a rooms reply lists them); one that does not
  // is not a frame this client knows, and is reported as today's page reports those.
  const named = typeof frame.room === "string" || isObject(frame.rooms);
  if (named && V2_KEYS.some((k) => k in frame)) return { conversation: false, rooms: true };
  if (typeof frame.room === "string" && !isLobby(frame.room)) {
    return { conversation: false, rooms: true };
  }
  // The lobby's own frames (messages, members, notices, history): shown by the
  // v1.1 machinery, and seen by the rooms UI (typing line, member count).
  return { conversation: true, rooms: typeof frame.room === "string" };
}

// Room actions that draw on the server's rooms bucket (12 at once, then one per 10 s by
// default): a refusal says when to send the same frame again.
const NAME_BUCKET_ACTIONS = new Set(["joinRoom", "leaveRoom", "createRoom"]);

/**
 * How long to wait before sending a refused room frame again (ms), or null when
 * the error is not one to retry: RATE_LIMITED on joinRoom, leaveRoom or createRoom.
 */
export function retryAfter(frame) {
  const err = isObject(frame) ? frame.error : null;
  if (!isObject(err) || err.code !== "RATE_LIMITED" || !NAME_BUCKET_ACTIONS.has(err.action)) {
    return null;
  }
  const wait = err.retryAfterMs;
  return typeof wait === "number" && Number.isFinite(wait) && wait >= 0 ? Math.max(wait, 100) : 1000;
}

/**
 * A live direct message as the lobby's log shows it: today's private message
 * (the conversation knows no `directMessage`), without the direct room's `seq`,
 * which is not the lobby's and must not order the lobby's log. null for other frames.
 */
export function asPrivateMessage(frame) {
  if (!isObject(frame) || typeof frame.directMessage !== "string") return null;
  const { directMessage, room, seq, prev, ...rest } = frame;
  return { ...rest, privateMessage: directMessage };
}

// Errors of a room's sendPublic carry the room's frame id, which the rooms UI made.
function isRoomError(frame) {
  return typeof frame.error.id === "string" && frame.error.id.startsWith("room-");
}
