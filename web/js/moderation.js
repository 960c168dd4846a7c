// Moderation in the web client (issue 17; docs/protocol.md "Moderation"). DOM-free.
//
// - A room's standing: the `role` of our `joined` frame ("creator", "moderator",
//   "stackModerator"; absent for a plain member), then the room's `appoint` and
//   `dismiss` announcements whose `target` is our name (ModerationStanding).
// - Which actions a standing allows on a member or a message (the server decides
//   anyway: chat.moderation.may_moderate; this only chooses what to show).
// - The `moderate` frames the page sends, the words of its confirmation dialog, a
//   notice's text, and MUTED / BANNED / SLOW_MODE errors as sentences with their wait.

import { foldName, sameName } from "./protocol.js";

/** The roles a `joined` frame names, lowest first (a member has none). */
export const ROLES = Object.freeze(["moderator", "creator", "stackModerator"]);

/** Ranks, as the server orders them (chat.moderation.Rank). */
export const RANK = Object.freeze({ member: 0, moderator: 1, creator: 2, stackModerator: 3 });

/** A role's rank; anything unknown is a member's. */
export function rankOf(role) {
  return Object.hasOwn(RANK, role ?? "") ? RANK[role] : RANK.member;
}

/** A `joined` frame's role, or null for a plain member (or a role this client does not know). */
export function roleOf(frame) {
  const role = frame?.role;
  return typeof role === "string" && ROLES.includes(role) ? role : null;
}

/** The durations offered for a mute or a ban, shortest first (the server caps them at moderationMaxSeconds). */
export const DURATIONS = Object.freeze([
  { seconds: 300, label: "5 minutes" },
  { seconds: 3600, label: "1 hour" },
  { seconds: 86400, label: "1 day" },
  { seconds: 604800, label: "7 days" },
]);

/** Slow mode's choices (0: off; the server's default slowModeMaxSeconds is 600). */
export const SLOW_MODES = Object.freeze([
  { seconds: 0, label: "Off" },
  { seconds: 10, label: "10 seconds" },
  { seconds: 30, label: "30 seconds" },
  { seconds: 60, label: "1 minute" },
  { seconds: 300, label: "5 minutes" },
]);

/** The server's limit on a topic's length (chat.moderation.TOPIC_MAX_LENGTH). */
export const TOPIC_MAX_LENGTH = 200;

/** The server's limit on a reason's length (chat.moderation.REASON_MAX_LENGTH). */
export const REASON_MAX_LENGTH = 200;

/**
 * What a standing may do in a room: `delete` (any message), and on a member
 * `kick`, `mute`, `ban`, and `appoint`/`dismiss` (the creator and stack
 * moderators). Empty for a member.
 */
export function roomPowers(role) {
  const rank = rankOf(role);
  if (rank < RANK.moderator) return new Set();
  const powers = new Set(["delete", "kick", "mute", "ban"]);
  if (rank >= RANK.creator) powers.add("appoint");
  return powers;
}

/**
 * The member menu's actions for `target` in a room, in the order shown: none for
 * ourselves, for a member we do not outrank, or when we moderate nothing.
 * `targetRole` is what the page knows of the target (a moderator it saw appointed).
 */
export function memberActions({ role, me, target, targetRole = null }) {
  if (typeof target !== "string" || (me !== null && sameName(target, me))) return [];
  const powers = roomPowers(role);
  if (powers.size === 0 || rankOf(role) <= rankOf(targetRole)) return [];
  const actions = ["kick", "mute", "ban"];
  if (powers.has("appoint")) actions.push(targetRole === "moderator" ? "dismiss" : "appoint");
  return actions;
}

/** The room menu's actions (the topic, slow mode): for any moderator of the room. */
export function roomActions(role) {
  return rankOf(role) >= RANK.moderator ? ["topic", "slowMode"] : [];
}

/** Whether a standing shows a moderator's Delete on `message` (any message not yet deleted). */
export function mayDelete(role, message) {
  return roomPowers(role).has("delete") && !!message && !message.deleted && !message.notice;
}

/** The label of a member menu item, its accessible name (e.g. "Kick Bob", "Mute Bob…"). */
export function actionLabel(op, target) {
  const words = {
    kick: `Kick ${target}`,
    mute: `Mute ${target}…`,
    ban: `Ban ${target}…`,
    appoint: `Appoint ${target} moderator`,
    dismiss: `Dismiss ${target} as moderator`,
    topic: `Set the topic of ${target}…`,
    slowMode: `Slow mode in ${target}…`,
  };
  return words[op] ?? `${op} ${target}`;
}

/** Which ops ask how long. */
export const TIMED = new Set(["mute", "ban"]);
/** The dialog's fields for an op: a duration, slow mode's interval, a topic; all take a reason. */
export function fieldsOf(op) {
  return { duration: TIMED.has(op), slowMode: op === "slowMode", topic: op === "topic" };
}

/**
 * The confirmation dialog's words for an op: its title, the sentence under it and the
 * confirm button's label. `target` is a member's name, or for `delete` the message's author.
 */
export function confirmation(op, { room, target = null, excerpt = "" }) {
  const quoted = excerpt ? ` “${excerpt.length > 60 ? `${excerpt.slice(0, 59)}…` : excerpt}”` : "";
  switch (op) {
    case "delete":
      return {
        title: "Delete this message?",
        text: `${target ?? "Someone"}'s message${quoted} will be replaced by a tombstone for everyone in ${room}.`,
        confirm: "Delete message",
      };
    case "kick":
      return { title: `Kick ${target}?`, text: `${target} will be removed from ${room}. They can join again.`, confirm: `Kick ${target}` };
    case "mute":
      return { title: `Mute ${target}?`, text: `${target} will not be able to send in ${room} for the time you choose.`, confirm: `Mute ${target}` };
    case "ban":
      return { title: `Ban ${target}?`, text: `${target} will be removed from ${room} and may not join it again for the time you choose.`, confirm: `Ban ${target}` };
    case "appoint":
      return { title: `Appoint ${target}?`, text: `${target} will moderate ${room}.`, confirm: `Appoint ${target}` };
    case "dismiss":
      return { title: `Dismiss ${target}?`, text: `${target} will no longer moderate ${room}.`, confirm: `Dismiss ${target}` };
    case "topic":
      return { title: `Topic of ${room}`, text: `Everyone in ${room} sees the topic; leave it empty to clear it.`, confirm: "Set topic" };
    case "slowMode":
      return { title: `Slow mode in ${room}`, text: `Each member may send one message per interval in ${room}; moderators are exempt.`, confirm: "Set slow mode" };
    default:
      return { title: `${op}?`, text: "", confirm: "Confirm" };
  }
}

/**
 * The `moderate` frame for an op the dialog confirmed. A ban names its target by `name`;
 * the other member ops by `target`. An empty reason is left out.
 */
export function moderateFrame(op, { room, target = null, seconds = null, reason = "", messageId = null, seq = null, topic = "", id = undefined }) {
  const frame = { action: "moderate", op, room };
  if (op === "delete") Object.assign(frame, { messageId, seq });
  else if (op === "topic") frame.topic = (typeof topic === "string" ? topic.trim() : "").slice(0, TOPIC_MAX_LENGTH);
  else if (op === "ban") frame.name = target;
  else if (op !== "slowMode") frame.target = target;
  if (TIMED.has(op) || op === "slowMode") frame.seconds = seconds;
  const why = typeof reason === "string" ? reason.trim() : "";
  if (why) frame.reason = why.slice(0, REASON_MAX_LENGTH);
  if (id !== undefined) frame.id = id;
  return frame;
}

/** A wait in words: "45 s", "10 min", "2 h 5 min", "3 days". */
export function formatWait(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms <= 0) return "";
  const s = Math.ceil(ms / 1000);
  if (s < 60) return `${s} s`;
  const min = Math.ceil(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  const rest = min % 60;
  if (h < 24) return rest ? `${h} h ${rest} min` : `${h} h`;
  const days = Math.round(h / 24);
  return days === 1 ? "1 day" : `${days} days`;
}

/** The sentence for a moderation error (MUTED, BANNED, SLOW_MODE, NOT_MODERATOR), or null for others. */
export function moderationErrorText(error) {
  if (error === null || typeof error !== "object") return null;
  const wait = formatWait(error.retryAfterMs);
  switch (error.code) {
    case "MUTED":
      return `A moderator muted you in this room${wait ? `: you can send again in ${wait}` : ""}.`;
    case "BANNED":
      return error.action === "setName"
        ? `You are banned from this chat${wait ? ` for another ${wait}` : ""}.`
        : `You are banned from this room${wait ? ` for another ${wait}` : ""}.`;
    case "SLOW_MODE":
      return `This room is in slow mode${wait ? `: you can send again in ${wait}` : ""}.`;
    case "NOT_MODERATOR":
      return error.message || "Only this room's moderators may do that.";
    default:
      return null;
  }
}

/** A `moderation` event's notice: the server's sentence, and the reason when there is one. */
export function noticeText(frame) {
  const text = typeof frame?.systemMessage === "string" ? frame.systemMessage : `${frame?.moderation ?? "moderation"} in ${frame?.room ?? "the room"}`;
  const reason = typeof frame?.reason === "string" && frame.reason ? ` (reason: ${frame.reason})` : "";
  return `${text}${reason}`;
}

/** The tombstone's line: who removed the message, when a moderator did. */
export function tombstoneText(message) {
  const who = message?.from ? `${message.from}: ` : "";
  const by = typeof message?.deletedBy === "string" && message.deletedBy && message.deletedBy !== message.from;
  return by ? `${who}This message was removed by ${message.deletedBy}.` : `${who}This message was deleted.`;
}

/**
 * One room's standing as the page knows it: our role (from `joined`, then our own
 * appointment or dismissal), the members we saw appointed, and the topic. Events
 * older than the last `joined` (a history replay) do not undo what `joined` said.
 */
export class ModerationStanding {
  constructor() {
    this.role = null;
    this.moderators = new Set(); // folded names of members seen appointed
    this.seniors = new Set(); // folded names seen appointing or dismissing: a creator or above
    this.topic = null;
    this.asOf = -1; // the seq our role is known at
  }

  /** A `joined` frame: the server's word on our role and the topic. */
  joined(frame) {
    this.role = roleOf(frame);
    this.topic = typeof frame?.topic === "string" && frame.topic ? frame.topic : null;
    this.asOf = Number.isInteger(frame?.seq) ? frame.seq : this.asOf;
  }

  /**
   * A `moderation` event (live or from history). Returns what changed for us:
   * "appointed", "dismissed", "removed" (a kick or a ban naming us), or null.
   */
  event(frame, me) {
    const op = frame?.moderation;
    const seq = Number.isInteger(frame?.seq) ? frame.seq : null;
    const newer = seq === null || seq > this.asOf;
    const target = typeof frame?.target === "string" ? frame.target : null;
    const mine = target !== null && me !== null && sameName(target, me);
    if (op === "topic" && newer) this.topic = typeof frame.topic === "string" && frame.topic ? frame.topic : null;
    if ((op === "appoint" || op === "dismiss") && typeof frame.by === "string" && frame.by !== "system") {
      this.seniors.add(foldName(frame.by));
    }
    if ((op === "appoint" || op === "dismiss") && target !== null) {
      const key = foldName(target);
      if (op === "appoint") this.moderators.add(key);
      else this.moderators.delete(key);
    }
    if (!mine || !newer) return null;
    if (seq !== null) this.asOf = seq;
    if (op === "appoint" && rankOf(this.role) < RANK.moderator) {
      this.role = "moderator";
      return "appointed";
    }
    if (op === "dismiss" && this.role === "moderator") {
      this.role = null;
      return "dismissed";
    }
    if (op === "kick" || op === "ban") return "removed";
    return null;
  }

  /**
   * What the page knows of another member's role: "creator" for one seen appointing or
   * dismissing (only a creator or a stack moderator may), "moderator" for one seen
   * appointed, else null. The server decides anyway (NOT_MODERATOR).
   */
  roleOf(name) {
    if (typeof name !== "string") return null;
    const key = foldName(name);
    if (this.seniors.has(key)) return "creator";
    return this.moderators.has(key) ? "moderator" : null;
  }
}
