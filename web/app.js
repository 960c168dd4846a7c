// Browser client for the WebSocket chat (protocol v1.1, and v2 rooms when the server agrees; docs/protocol.md, docs/rooms-design.md §3).
//
// This file is only the DOM glue. The logic lives in DOM-free modules:
//   js/protocol.js   validation, outgoing actions, incoming-frame normalisation
//   js/connection.js WebSocket lifecycle + automatic reconnect (js/backoff.js)
//                    + idle keep-alive (js/keepalive.js, strategy documented there)
//   js/names.js      which name we hold / have asked for on this connection
//   js/reclaim.js    which name to claim on connect; re-claiming it after a
//                    reconnect (retry window, retry schedule)
//   js/conversation.js  the log's content and order, and our messages' fate:
//                    js/timeline.js (seq order, no duplicates), js/outbox.js
//                    (one message in flight, ids, acks, resends) and
//                    js/recovery.js (missed messages: since, history)
//   js/endpoint.js   ?ws= override (loopback pages only) and GET /get-ws-endpoint
//   js/signin.js     sign-in (OpenID Connect, code + PKCE) when the endpoint
//                    document says the stack requires it; the token goes with
//                    every connection attempt
//   js/members.js    the member list (`members`, a big room's `memberList`
//                    parts, join/leave/rename notices), kept by js/names.js
//   js/render.js     element builders (textContent only, no HTML parsing;
//                    multi-line messages stay inside one entry; every name
//                    and line of text a bidi isolate; a notice's name an
//                    element of its own)
//   js/clientkey.js  this tab's client key, sent with every setName
//   js/unknown.js    frames this client does not know: one console line per kind
//   js/negotiate.js  protocol v2: every setName asks for it, the ack decides;
//                    on v2, which frames are the lobby's and which the rooms UI's
//   js/rooms.js      rooms of v2 (joined, listed, invited, unread, edits)
//   js/roomlist.js   the room list's sections and labels, edit rights
//   js/typing.js     the typing throttle, who is typing, the typing line
//   js/moderation.js our standing in each room, which moderator actions it shows,
//                    the `moderate` frames, notices and moderation errors

import { tabClientKey } from "./js/clientkey.js";
import { ChatConnection, STATES } from "./js/connection.js";
import { Conversation } from "./js/conversation.js";
import { endpointOverride, fetchEndpointDocument } from "./js/endpoint.js";
import { isolate, secondsUntil } from "./js/format.js";
import { NameClaim } from "./js/names.js";
import { NameReclaim } from "./js/reclaim.js";
import { UnknownFrames } from "./js/unknown.js";
import {
  LOBBY,
  PROTOCOL_V2,
  agreedProtocol,
  asPrivateMessage,
  isLobby,
  outgoing,
  retryAfter,
  routeFrame,
} from "./js/negotiate.js";
import { RoomState, roomKey } from "./js/rooms.js";
import { RoomOutboxes, deliveryOf, roomFrameIds } from "./js/roomoutbox.js";
import { PrivateKeeping } from "./js/privacy.js";
import { canChange, roomButtonName, roomList, validateGroup } from "./js/roomlist.js";
import { TypingRoster, TypingThrottle } from "./js/typing.js";
import {
  DURATIONS,
  SLOW_MODES,
  actionLabel,
  confirmation,
  fieldsOf,
  mayDelete,
  memberActions,
  moderateFrame,
  moderationErrorText,
  noticeText,
  roomActions,
  tombstoneText,
} from "./js/moderation.js";
import {
  describeErrorCode,
  normaliseFrame,
  sameName,
  validateMessage,
  validateName,
} from "./js/protocol.js";
import { memberElement, messageElement, setDelivery } from "./js/render.js";
import { SignIn, callbackParams, redirectUriOf, signInSettings } from "./js/signin.js";

const MAX_LOG_ENTRIES = 500;
// The name we chat under, kept for this tab (sessionStorage: a reload joins
// under it again; another tab starts without one). The sign-in token is never stored.
const NAME_KEY = "chat.name";

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("status"),
  statusText: $("statusText"),
  statusDetail: $("statusDetail"),
  disconnectBtn: $("disconnectBtn"),
  reconnectBtn: $("reconnectBtn"),
  nameForm: $("nameForm"),
  nameInput: $("nameInput"),
  setNameBtn: $("setNameBtn"),
  nameHint: $("nameHint"),
  nameError: $("nameError"),
  membersList: $("membersList"),
  memberCount: $("memberCount"),
  membersEmpty: $("membersEmpty"),
  memberOptions: $("memberOptions"),
  chatBox: $("chatBox"),
  composer: $("composer"),
  toInput: $("toInput"),
  clearToBtn: $("clearToBtn"),
  messageInput: $("messageInput"),
  sendBtn: $("sendBtn"),
  composeError: $("composeError"),
  composeMode: $("composeMode"),
  signInBtn: $("signInBtn"),
  signOutBtn: $("signOutBtn"),
  roomsCard: $("roomsCard"),
  roomList: $("roomList"),
  directList: $("directList"),
  directEmpty: $("directEmpty"),
  invitedList: $("invitedList"),
  invitedHeading: $("roomsInvitedHeading"),
  publicList: $("publicList"),
  publicHeading: $("roomsPublicHeading"),
  roomForm: $("roomForm"),
  roomNameInput: $("roomNameInput"),
  roomPrivate: $("roomPrivate"),
  roomGroupField: $("roomGroupField"),
  roomGroupInput: $("roomGroupInput"),
  roomFormError: $("roomFormError"),
  roomBar: $("roomBar"),
  roomTitle: $("roomTitle"),
  roomPresence: $("roomPresence"),
  inviteForm: $("inviteForm"),
  inviteInput: $("inviteInput"),
  leaveRoomBtn: $("leaveRoomBtn"),
  roomNotice: $("roomNotice"),
  roomBox: $("roomBox"),
  typingLine: $("typingLine"),
  privateNote: $("privateNote"),
  roomTopic: $("roomTopic"),
  modMenu: $("modMenu"),
  modDialog: $("modDialog"),
  modForm: $("modForm"),
  modDialogTitle: $("modDialogTitle"),
  modDialogText: $("modDialogText"),
  modDurationField: $("modDurationField"),
  modDuration: $("modDuration"),
  modReason: $("modReason"),
  modCancel: $("modCancel"),
  modConfirm: $("modConfirm"),
  modSlowModeField: $("modSlowModeField"),
  modSlowMode: $("modSlowMode"),
  modTopicField: $("modTopicField"),
  modTopic: $("modTopic"),
  roomModBtn: $("roomModBtn"),
};

const DEFAULT_NAME_HINT = ui.nameHint.textContent;
const BASE_TITLE = document.title;

const names = new NameClaim();
const reclaim = new NameReclaim({ onRetry: (name) => claimName(name, { isReclaim: true }) });
const override = endpointOverride(window.location);
let signIn = null; // a SignIn once /get-ws-endpoint says the stack requires it
// The server closes connections that never take a name (after a few minutes). When it
// closes ours, the page does not reconnect at once (it would only be closed again): it
// connects again when a name is set, or on the Reconnect button.
let idleWithoutName = false;
const conn = new ChatConnection({
  getEndpoint: async () => {
    if (override) return override;
    const doc = await fetchEndpointDocument({ base: window.location.href });
    if (signIn === null && doc.signIn !== null) {
      signIn = new SignIn({ settings: signInSettings(doc.signIn) });
      renderSignIn();
    }
    return doc.endpoint;
  },
  socketArgs: (endpoint) => (signIn === null ? { url: endpoint } : signedInArgs(endpoint)),
  holdRetry: () => idleWithoutName,
  divert: (frame) => divertFrame(frame),
});

const unknownFrames = new UnknownFrames();
let countdownTimer = null;
let unread = 0;
// Protocol v2 (docs/rooms-design.md §3): null until this connection's setName ack says.
let protocol = null;
let lobbySince = null; // the `since` of our last joining setName: the lobby's joinRoom takes it
const roomState = new RoomState();
// Whether private messages are kept (js/privacy.js): the line in the composer, shown while
// writing privately or in a direct conversation.
const privateKeeping = new PrivateKeeping();
const typingThrottle = new TypingThrottle();
const typingRoster = new TypingRoster();
const roomMembers = new Map(); // roomKey -> [names], from the rooms' `members` frames
let lobbyJoined = false; // v2: this connection's joinRoom of the lobby was acknowledged
let pendingOpen = null; // roomKey of a room to show once its `joined` ack comes
// roomKey -> sign-in group of a private room we asked to create for one (the `joined` ack
// names it too; the `rooms` reply does not, so the page remembers the ones it made).
const pendingGroups = new Map();
let editing = null; // {room, messageId, seq}: the composer edits this message
let typingTimer = null;
let connectionGeneration = 0; // a retry timer of an earlier connection does nothing
let lastEndpointErrorLogged = false;

// ------------------------------------------------------------------ log

/** conversation.js's view: log entries are elements of #chatBox. */
const logView = {
  insert(entry, before) {
    const box = ui.chatBox;
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 48;
    const node = messageElement(document, { ts: Date.now(), ...entry });
    if (typeof entry.messageId === "string") node.dataset.messageId = entry.messageId;
    box.insertBefore(node, before);
    if (node.dataset.messageId) refreshLobbyEntry(node);
    if (nearBottom || entry.mine) box.scrollTop = box.scrollHeight;
    if (document.hidden && !entry.local && !entry.mine) {
      unread += 1;
      document.title = `(${unread}) ${BASE_TITLE}`;
    }
    return node;
  },
  move(node, before) {
    ui.chatBox.insertBefore(node, before);
  },
  update(node, changes) {
    setDelivery(document, node, changes);
    if (typeof changes.messageId === "string") {
      node.dataset.messageId = changes.messageId;
      refreshLobbyEntry(node);
    }
  },
  remove(node) {
    node.remove();
  },
};

// This tab's identity for the server's de-duplication, on every setName (js/clientkey.js).
const clientKey = (() => {
  try {
    return tabClientKey();
  } catch (err) {
    console.warn(`Joining without a client key: ${err?.message ?? err}`);
    return null;
  }
})();

const conversation = new Conversation({
  view: logView,
  clientKey,
  send: (frame) => {
    if (frame?.action === "setName" && Number.isInteger(frame.since)) lobbySince = frame.since;
    return conn.send(outgoing(frame, protocol));
  },
  maxEntries: MAX_LOG_ENTRIES,
  onReconnectNeeded: () => conn.abandon("the server no longer knows this connection"),
});

const logLocal = (text, kind = "system") => conversation.notice({ kind, text, local: true });

// ------------------------------------------------------------------ status

function renderStatus({ state, reconnect, retryAt }) {
  ui.status.dataset.state = state;
  if (countdownTimer !== null) clearInterval(countdownTimer);
  countdownTimer = null;
  ui.statusDetail.textContent = "";

  switch (state) {
    case STATES.CONNECTING:
      ui.statusText.textContent = reconnect ? "Reconnecting…" : "Connecting…";
      break;
    case STATES.CONNECTED:
      ui.statusText.textContent = "Connected";
      break;
    case STATES.RECONNECTING: {
      ui.statusText.textContent = "Reconnecting";
      const tick = () => {
        ui.statusDetail.textContent = ` in ${secondsUntil(retryAt, Date.now())}s…`;
      };
      tick();
      countdownTimer = setInterval(tick, 500);
      break;
    }
    default:
      ui.statusText.textContent = "Disconnected";
  }
  ui.disconnectBtn.disabled = state === STATES.DISCONNECTED;
  ui.reconnectBtn.disabled = state === STATES.CONNECTED || state === STATES.CONNECTING;
}

// ------------------------------------------------------------------ sign-in

/** Open the socket with the token; finish a sign-in the issuer just sent us back from. */
async function signedInArgs(endpoint) {
  if (!signIn.signedIn && callbackParams(window.location.href) !== null) {
    try {
      const back = await signIn.complete(window.location.href);
      window.history.replaceState(null, "", back);
    } catch (err) {
      signIn.forget();
      window.history.replaceState(null, "", redirectUriOf(window.location.href));
      logLocal(err?.message ?? "Sign-in failed.", "error");
      throw err;
    }
    renderSignIn();
  } else if (!signIn.signedIn && signIn.refreshToken === null && signIn.wasSignedIn) {
    // A reload of a signed-in tab: through the issuer again (its session answers at once).
    window.location.assign(await signIn.begin(window.location.href));
    return new Promise(() => {});
  }
  return signIn.socketArgs(endpoint);
}

function renderSignIn() {
  const on = signIn !== null;
  ui.signInBtn.hidden = !on || signIn.signedIn;
  ui.signOutBtn.hidden = !on || !signIn.signedIn;
  renderGroupField();
  if (on && signIn.signedIn && signIn.name && !reclaim.wanted && !ui.nameInput.value) {
    ui.nameInput.value = signIn.name; // the server only grants the name the token gives
  }
}

ui.signInBtn.addEventListener("click", async () => {
  try {
    window.location.assign(await signIn.begin(window.location.href));
  } catch (err) {
    logLocal(err?.message ?? "Sign-in failed.", "error");
  }
});

ui.signOutBtn.addEventListener("click", () => {
  const next = signIn.signOut(window.location.href);
  saveName(null);
  reclaim.choose(null);
  conn.disconnect();
  renderSignIn();
  ui.statusText.textContent = "Signed out";
  if (next) window.location.assign(next);
});

// ------------------------------------------------------------------ names

function savedName() {
  try {
    const name = window.sessionStorage.getItem(NAME_KEY);
    return name !== null && validateName(name).ok ? name : null;
  } catch {
    return null;
  }
}

function saveName(name) {
  try {
    if (name === null) window.sessionStorage.removeItem(NAME_KEY);
    else window.sessionStorage.setItem(NAME_KEY, name);
  } catch {
    /* storage off: a reload starts without a name */
  }
}

function setNameError(text) {
  ui.nameError.textContent = text;
  if (text) ui.nameInput.setAttribute("aria-invalid", "true");
  else ui.nameInput.removeAttribute("aria-invalid");
}

function setNameHint(text) {
  ui.nameHint.textContent = text || DEFAULT_NAME_HINT;
}

function refreshNameButton() {
  ui.setNameBtn.textContent = names.confirmed ? "Rename" : "Set name";
}

function claimName(name, { isReclaim = false } = {}) {
  // The first setName on a connection carries `since`, so we get what we missed.
  const claim = names.confirmed === null;
  names.request(name);
  if (!conversation.sendSetName(name, { claim })) {
    names.withdraw(); // reclaim.wanted is kept: it is claimed on the next open
    return false;
  }
  setNameHint(isReclaim ? `Re-joining as “${isolate(name)}”…` : `Joining as “${isolate(name)}”…`);
  return true;
}

function onNameConfirmed({ name }) {
  reclaim.confirmed(name);
  roomState.me = name;
  saveName(name);
  // On v2 the lobby's messages wait for its joinRoom (the server refuses them before it).
  if (!v2() || lobbyJoined) conversation.named(name);
  setNameError("");
  setNameHint(`You are chatting as “${isolate(name)}”.`);
  if (document.activeElement !== ui.nameInput || sameName(ui.nameInput.value.trim(), name)) {
    ui.nameInput.value = name;
  }
  refreshNameButton();
  renderMembers();
  updateComposeMode();
  refreshLobbyLog();
}

function onNameRejected(outcome) {
  const { code, message } = outcome;
  const text = message || describeErrorCode(code);
  const next = reclaim.rejected(outcome, { held: names.confirmed });
  if (next.action === "retry") {
    const { name, delayMs } = next;
    const seconds = Math.max(1, Math.round(delayMs / 1000));
    if (code === "RATE_LIMITED") {
      setNameHint(`Re-joining as “${isolate(name)}” in ${seconds}s…`);
      setNameError("");
      return;
    }
    // Most likely our own previous connection still holds the name.
    setNameHint(`Waiting for “${isolate(name)}” to be released by your previous connection…`);
    setNameError(`“${isolate(name)}” is still in use; retrying in ${seconds}s. You can also pick another name.`);
    return;
  }
  if (next.action === "giveUp") {
    saveName(null);
    conversation.failAll(`you are no longer in the chat as “${isolate(next.name)}”`);
  }
  setNameHint(names.confirmed ? `You are chatting as “${isolate(names.confirmed)}”.` : "");
  setNameError(text);
  refreshNameButton();
}

ui.nameForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const v = validateName(ui.nameInput.value);
  if (!v.ok) {
    setNameError(v.message);
    ui.nameInput.focus();
    return;
  }
  if (names.confirmed !== null && v.value === names.confirmed) {
    setNameError("");
    setNameHint(`You are already chatting as “${isolate(v.value)}”.`);
    return;
  }
  reclaim.choose(v.value);
  setNameError("");
  if (conn.isOpen) {
    claimName(v.value);
  } else if (idleWithoutName && conn.state === STATES.DISCONNECTED) {
    conn.connect();
    setNameHint(`You will join as “${isolate(v.value)}” as soon as the connection is up.`);
  } else {
    setNameHint(
      conn.state === STATES.DISCONNECTED
        ? `You will join as “${isolate(v.value)}” when you reconnect.`
        : `You will join as “${isolate(v.value)}” as soon as the connection is up.`,
    );
  }
});

ui.nameInput.addEventListener("input", () => {
  if (ui.nameError.textContent && !reclaim.retrying) setNameError("");
});

// ------------------------------------------------------------------ members

function renderMembers() {
  // On v2, in a room other than the lobby: that room's members.
  const list = inRoom() ? (roomMembers.get(roomKey(shownRoom())) ?? []) : names.members;
  const focusedName =
    document.activeElement && document.activeElement.parentElement === ui.membersList
      ? document.activeElement.dataset.name
      : null;

  const focusedMod = document.activeElement?.classList?.contains("member__mod")
    ? document.activeElement.dataset.name
    : null;
  const items = list.map((m) => {
    const li = memberElement(document, m, { isYou: names.confirmed !== null && sameName(m, names.confirmed) });
    if (memberMenuActions(m).length > 0) li.append(moderateButton(m));
    return li;
  });
  ui.membersList.replaceChildren(...items);
  ui.memberOptions.replaceChildren(
    ...list
      .filter((m) => !(names.confirmed && sameName(m, names.confirmed)))
      .map((m) => {
        const o = document.createElement("option");
        o.value = m;
        return o;
      }),
  );
  ui.memberCount.textContent = String(list.length);
  renderRooms();
  ui.membersEmpty.hidden = list.length > 0;
  ui.membersEmpty.textContent = !conn.isOpen
    ? "Not connected."
    : names.confirmed
      ? "Nobody else is here yet."
      : "Set your name to join and see who is here.";

  if (focusedName !== null) {
    const again = items.find((li) => li.dataset.name === focusedName && li.tabIndex === 0);
    if (again) again.focus();
  }
  if (focusedMod !== null) modTrigger(focusedMod)?.focus();
  if (openMenuFor !== null && modTrigger(openMenuFor) === null) closeMemberMenu({ focus: false });
}

function pickMember(li) {
  if (!li || !li.dataset.name || li.classList.contains("member--you")) return;
  ui.toInput.value = li.dataset.name;
  updateComposeMode();
  ui.messageInput.focus();
}

ui.membersList.addEventListener("click", (ev) => {
  const mod = ev.target.closest(".member__mod");
  if (mod) {
    toggleMemberMenu(mod);
    return;
  }
  pickMember(ev.target.closest("li"));
});
ui.membersList.addEventListener("keydown", (ev) => {
  if (ev.target.closest(".member__mod")) {
    if (ev.key === "ArrowDown") {
      ev.preventDefault();
      openMemberMenu(ev.target);
    }
    return; // Enter and Space are the button's own
  }
  if (ev.key === "Enter" || ev.key === " " || ev.key === "Spacebar") {
    const li = ev.target.closest("li");
    if (li) {
      ev.preventDefault();
      pickMember(li);
    }
  }
});

// ------------------------------------------------------------------ composer

function updateComposeMode() {
  const to = ui.toInput.value.trim();
  ui.composer.classList.toggle("composer--private", to !== "");
  ui.clearToBtn.hidden = to === "";
  const room = inRoom() ? shownRoom() : null;
  const where = room === null ? "everyone" : roomState.room(room)?.kind === "direct" ? "this conversation" : room;
  ui.messageInput.placeholder = editing
    ? "Edit your message (Escape to cancel)"
    : to
      ? `Private message to ${isolate(to)}`
      : `Message ${room === null ? where : isolate(where)}`;
  ui.composeMode.textContent = editing ? "Editing" : to ? `Private to ${isolate(to)}` : room === null ? "Public" : "Room";
  renderPrivateNote();
}

/** The line on keeping private messages: about the person written to, or the direct room's. */
function renderPrivateNote() {
  const to = ui.toInput.value.trim();
  const r = inRoom() ? roomState.room(shownRoom()) : null;
  const who = to || (r?.kind === "direct" ? r.with : null);
  ui.privateNote.textContent = privateKeeping.line(who, isolate);
  ui.privateNote.hidden = !who; // shown while writing privately, or in a direct conversation
}

function setComposeError(text) {
  ui.composeError.textContent = text;
  if (text) ui.messageInput.setAttribute("aria-invalid", "true");
  else ui.messageInput.removeAttribute("aria-invalid");
}

function autoGrow() {
  const ta = ui.messageInput;
  ta.style.height = "auto";
  ta.style.height = `${ta.scrollHeight + 2}px`;
}

ui.toInput.addEventListener("input", () => {
  updateComposeMode();
  setComposeError("");
});
ui.toInput.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.isComposing) {
    // Enter in the recipient field moves on to the message instead of sending.
    ev.preventDefault();
    ui.messageInput.focus();
  } else if (ev.key === "Escape" && ui.toInput.value) {
    ev.preventDefault();
    ui.clearToBtn.click();
  }
});
ui.clearToBtn.addEventListener("click", () => {
  ui.toInput.value = "";
  updateComposeMode();
  setComposeError("");
  ui.messageInput.focus();
});

ui.messageInput.addEventListener("input", () => {
  autoGrow();
  if (ui.messageInput.value) typed();
  if (ui.composeError.textContent) setComposeError("");
});
ui.messageInput.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape" && editing) {
    ev.preventDefault();
    ui.messageInput.value = "";
    stopEditing();
    return;
  }
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
    ev.preventDefault();
    ui.composer.requestSubmit();
  }
});

ui.composer.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const v = validateMessage(ui.messageInput.value);
  if (!v.ok) {
    setComposeError(v.message);
    ui.messageInput.focus();
    return;
  }
  if (conn.state === STATES.DISCONNECTED) {
    setComposeError("Not connected right now; your message is kept here until you can send it.");
    return;
  }
  // While (re)connecting or re-claiming, a message waits in the queue for our name.
  const me =
    names.confirmed ??
    names.pending?.name ??
    (!conn.isOpen || reclaim.retrying ? reclaim.wanted : null);
  if (!me) {
    setComposeError("Set your name first.");
    setNameError(ui.nameError.textContent || "Set a name to start chatting.");
    ui.nameInput.focus();
    return;
  }

  let to = ui.toInput.value.trim();
  if (to) {
    const here = inRoom() ? (roomMembers.get(roomKey(shownRoom())) ?? []) : [];
    const known = [...here, ...names.members].find((m) => sameName(m, to));
    if (known) {
      to = known;
    } else if (names.members.length > 0 || !validateName(to).ok) {
      setComposeError(`“${isolate(to)}” is not in the chat.`);
      ui.toInput.focus();
      return;
    }
  }

  if ((inRoom() || editing) && !to) {
    // A room other than the lobby (protocol v2): shown as sending until the server echoes it.
    if (!sendInRoom(v.value)) {
      setComposeError("Not connected right now; your message is kept here until you can send it.");
      return;
    }
  } else {
    conversation.submit({ kind: to ? "private" : "public", to: to || null, text: v.value, from: me });
  }
  setComposeError("");
  ui.messageInput.value = "";
  autoGrow();
  ui.messageInput.focus();
});

// ------------------------------------------------------------------ server events

function handleEvents(frameEvents) {
  // One frame's events; a frame the server delivered twice is dropped here.
  const events = conversation.fresh(frameEvents);
  for (const outcome of names.handle(events)) {
    if (outcome.type === "confirmed") onNameConfirmed(outcome);
    else if (outcome.type === "rejected") onNameRejected(outcome);
    else if (outcome.type === "members") renderMembers();
  }

  // Messages, history, acknowledgements and errors about our own frames.
  for (const ev of conversation.handle(events)) {
    switch (ev.type) {
      case "system":
        // The name is shown as an element of its own (render.js), the wording around it
        // is the client's; a notice without a name is shown as the server's text.
        conversation.notice({
          kind: "system",
          text: ev.text,
          ts: ev.ts,
          event: ev.event,
          name: ev.name,
          previous: ev.previous,
        });
        if (ev.event === "rename" && ev.previous && ev.name) followRename(ev.previous, ev.name);
        break;
      case "error":
        handleError(ev);
        break;
      case "members":
      case "memberList":
      case "ack":
        break; // applied by names.handle above
      default: {
        // A frame this client does not know: said once per kind, not shown.
        const line = unknownFrames.report(ev.type === "unknown" ? ev : { kind: `event ${ev.type}` });
        if (line !== null) console.warn(line);
        break;
      }
    }
  }
}

/** Keep the private recipient when that person renames themselves. */
function followRename(previous, name) {
  if (sameName(ui.toInput.value.trim(), previous)) {
    ui.toInput.value = name;
    updateComposeMode();
  }
}

function handleError(ev) {
  const isNameError =
    ev.action === "setName" ||
    (ev.action === null && (ev.code === "NAME_TAKEN" || ev.code === "INVALID_NAME"));
  if (isNameError) return; // shown inline next to the name field (onNameRejected)

  const text =
    ev.code === "GATEWAY"
      ? `Server error: ${ev.message}`
      : ev.message || describeErrorCode(ev.code);
  conversation.notice({ kind: "error", text, code: ev.code, ts: ev.ts });
  if (ev.code === "NAME_REQUIRED") {
    setNameError("Set a name to start chatting.");
    ui.nameInput.focus();
  }
}

// ------------------------------------------------------------------ rooms (protocol v2)

// Room frame ids: "room-", this page's random token and a counter (never reused after a
// reload: the server de-duplicates message ids per client key for 10 minutes).
const nextRoomId = roomFrameIds();
// Our messages in rooms other than the lobby: shown as sending until acknowledged, resent
// with the same id (js/roomoutbox.js). The lobby's go through conversation.js.
const roomOutbox = new RoomOutboxes({
  send: (frame) => conn.send(frame),
  nextId: nextRoomId,
  onChange: (room) => {
    if (inRoom() && roomKey(room) === roomKey(shownRoom())) renderRoomLog();
  },
  onReconnectNeeded: () => conn.abandon("the server no longer knows this connection"),
});
const retried = new Map(); // id -> joinRoom/leaveRoom/createRoom frame, kept to send again

/** Send a room frame that draws on the server's rooms bucket (kept until answered). */
function sendRoomAction(frame) {
  retried.set(frame.id, frame);
  if (retried.size > 50) retried.delete(retried.keys().next().value);
  return conn.send(frame);
}
const v2 = () => protocol === PROTOCOL_V2;
/** The room shown: its name, or null on a v1 connection (the lobby, as today). */
const shownRoom = () => (v2() ? (roomState.currentRoom ?? LOBBY) : null);
const inRoom = () => v2() && !isLobby(shownRoom());

function divertFrame(frame) {
  const agreed = agreedProtocol(frame);
  if (agreed === PROTOCOL_V2 && protocol !== PROTOCOL_V2) {
    protocol = PROTOCOL_V2;
    queueMicrotask(startRooms); // after the conversation has taken the ack
  } else if (agreed !== null && protocol === null) {
    protocol = agreed; // an older server: today's page, unchanged
  }
  if (agreed !== null) privateKeeping.agreed(protocol);
  if (privateKeeping.see(frame) || agreed !== null) renderPrivateNote();
  const route = routeFrame(frame, protocol);
  if (route.rooms) {
    try {
      onRoomFrame(frame);
    } catch (err) {
      console.warn("rooms: could not apply a frame:", err);
    }
  }
  // A direct message also shows in the lobby's log, as today's private message.
  const asPrivate = route.rooms ? asPrivateMessage(frame) : null;
  if (asPrivate !== null) handleEvents(normaliseFrame(asPrivate));
  return !route.conversation;
}

function startRooms() {
  roomState.me = names.confirmed;
  ui.roomsCard.hidden = false;
  ui.roomBar.hidden = false;
  const since = lobbySince;
  sendRoomAction({ action: "joinRoom", room: LOBBY, ...(since === null ? {} : { since }), id: nextRoomId() });
  for (const name of roomState.myRooms) {
    if (!isLobby(name) && roomState.room(name)?.wasJoined) joinRoom(name);
  }
  conn.send({ action: "listRooms", id: nextRoomId() });
  listedAt = Date.now();
  if (roomState.current === null) roomState.open(LOBBY);
  renderRooms();
}

function joinRoom(room) {
  const since = roomState.since(room);
  return sendRoomAction({ action: "joinRoom", room, ...(since === null ? {} : { since }), id: nextRoomId() });
}

function markRead(room) {
  const seq = roomState.toMarkRead(room);
  if (seq !== null && conn.isOpen) conn.send({ action: "markRead", room, seq, id: nextRoomId() });
}

// markRead of the room shown as its messages come, at most one per MARK_READ_MS: each is
// a frame that draws on the same per-connection bucket as our own messages.
const MARK_READ_MS = 2000;
const markReadTimers = new Map(); // roomKey -> timer
function markReadSoon(room) {
  const key = roomKey(room);
  if (markReadTimers.has(key)) return;
  markReadTimers.set(
    key,
    setTimeout(() => {
      markReadTimers.delete(key);
      const shown = shownRoom();
      if (shown !== null && roomKey(shown) === key && !document.hidden) markRead(room);
    }, MARK_READ_MS),
  );
}

/** What we have seen of `room` is read now (we are leaving it, or showing another). */
function flushMarkRead(room) {
  const key = roomKey(room);
  clearTimeout(markReadTimers.get(key));
  markReadTimers.delete(key);
  if (!document.hidden) markRead(room);
}

// The public rooms of the list, again when the room form is used (at most every 10 s).
let listedAt = 0;
ui.roomNameInput.addEventListener("focus", () => {
  if (!v2() || !conn.isOpen || Date.now() - listedAt < 10_000) return;
  listedAt = Date.now();
  conn.send({ action: "listRooms", id: nextRoomId() });
});

function openRoom(room) {
  const r = roomState.room(room);
  if (!isLobby(room) && !r?.joined) {
    pendingOpen = roomKey(room);
    joinRoom(room);
    return;
  }
  pendingOpen = null;
  if (editing && roomKey(editing.room) !== roomKey(room)) stopEditing();
  const before = shownRoom();
  if (before !== null && roomKey(before) !== roomKey(room)) flushMarkRead(before);
  const seq = roomState.open(room);
  if (seq !== null) conn.send({ action: "markRead", room, seq, id: nextRoomId() });
  setRoomNotice("");
  renderRooms();
  renderRoomLog();
  renderMembers();
  renderTyping();
  updateComposeMode();
}

function setRoomNotice(text) {
  ui.roomNotice.textContent = text;
}

function onRoomFrame(frame) {
  const ours = roomOutbox.handle(frame);
  if (ours !== null && inRoom() && roomKey(ours.room) === roomKey(shownRoom())) renderRoomLog();
  if (ours !== null && frame.error) {
    // Shown on the message itself; a mute or slow mode also says how long to wait.
    const why = moderationErrorText(frame.error);
    if (why !== null) setRoomNotice(why);
    return;
  }
  if (frame.error) {
    const { action, message, code, id } = frame.error;
    const wait = retryAfter(frame);
    const again = retried.get(id);
    retried.delete(id);
    if (wait !== null && again) {
      // The server's rooms bucket is empty for now: the same frame again when it refills.
      const what = { joinRoom: "Joining", leaveRoom: "Leaving", createRoom: "Creating" }[action];
      setRoomNotice(`${what} ${isolate(again.room)} in ${Math.max(1, Math.round(wait / 1000))} s…`);
      const gen = connectionGeneration;
      setTimeout(() => {
        if (gen === connectionGeneration && conn.isOpen) sendRoomAction({ ...again, id: nextRoomId() });
      }, wait);
      return;
    }
    const text = moderationErrorText(frame.error) ?? (message || describeErrorCode(code));
    if (action === "joinRoom" || action === "createRoom") {
      ui.roomFormError.textContent = text;
      pendingOpen = null;
      if (action === "createRoom" && again) pendingGroups.delete(roomKey(again.room));
    } else if (action === "typing") {
      return;
    } else {
      setRoomNotice(text);
    }
    return;
  }
  if (frame.ack === "sendPrivate" && typeof frame.room === "string") {
    if (!roomState.room(frame.room)?.joined) joinRoom(frame.room);
    return;
  }
  if (frame.ack === "invite") {
    setRoomNotice(`Invited ${isolate(frame.to ?? "")} to ${isolate(frame.room ?? "")}.`);
    return;
  }
  if (frame.ack === "editMessage" || frame.ack === "deleteMessage" || frame.ack === "moderate") return;
  if (typeof frame.room === "string" && Array.isArray(frame.members)) {
    roomMembers.set(roomKey(frame.room), frame.members.filter((m) => typeof m === "string"));
  }
  const { room, join, moderation } = roomState.apply(frame);
  if (moderation) onOwnStanding(moderation, frame);
  if ("moderation" in frame && room !== null && isLobby(room)) {
    // The lobby's log is the conversation's: the notice goes there.
    conversation.notice({ kind: "system", text: noticeText(frame), ts: frame.ts });
  }
  const typingRoom = typingRoster.apply(frame);
  if (join && room !== null) joinRoom(room);
  if (("joined" in frame || "left" in frame) && typeof frame.id === "string") retried.delete(frame.id);
  if ("joined" in frame && typeof frame.room === "string") {
    const r = roomState.room(frame.room);
    if (r) r.wasJoined = true;
    if (!isLobby(frame.room)) roomOutbox.joined(frame.room);
    const group = pendingGroups.get(roomKey(frame.room));
    if (r && group !== undefined && frame.kind === "private") r.group = group;
    pendingGroups.delete(roomKey(frame.room));
    if (isLobby(frame.room) && !lobbyJoined) {
      lobbyJoined = true;
      if (names.confirmed !== null) conversation.named(names.confirmed);
    }
    ui.roomFormError.textContent = "";
    if (pendingOpen === roomKey(frame.room)) openRoom(frame.room);
    if (!isLobby(frame.room)) conn.send({ action: "listRooms", id: nextRoomId() });
  }
  if ("left" in frame && typeof frame.room === "string") {
    const r = roomState.room(frame.room);
    if (r) r.wasJoined = false;
    roomOutbox.left(frame.room);
    roomMembers.delete(roomKey(frame.room));
    if (roomState.current === null) openRoom(LOBBY);
    if (removal?.key === roomKey(frame.room)) setRoomNotice(removal.text);
    removal = null;
    conn.send({ action: "listRooms", id: nextRoomId() });
  }
  if ("invited" in frame && typeof frame.room === "string") {
    setRoomNotice(`${isolate(frame.from ?? "Someone")} invited you to ${isolate(frame.room)}.`);
  }
  const shown = shownRoom();
  if (room !== null && shown !== null && roomKey(room) === roomKey(shown)) {
    if ("publicMessage" in frame || "directMessage" in frame || "history" in frame) {
      if (!document.hidden) markReadSoon(room);
    }
    if (!isLobby(room)) renderRoomLog();
    renderMembers();
  }
  if (room !== null && isLobby(room) && ("messageEdited" in frame || "messageDeleted" in frame || "history" in frame || "moderation" in frame || "joined" in frame)) {
    refreshLobbyLog();
  }
  if (typingRoom !== null) renderTyping();
  renderRooms();
}

// ---- the room list

function roomItem(e) {
  const li = document.createElement("li");
  li.className = "rooms__item";
  const btn = document.createElement("button");
  btn.type = "button";
  btn.className = `room-btn${e.action === "join" ? " room-btn--join" : ""}`;
  btn.dataset.room = e.room;
  btn.dataset.action = e.action;
  btn.setAttribute("aria-label", roomButtonName(e));
  if (e.current) btn.setAttribute("aria-current", "page");
  const label = document.createElement("bdi");
  label.dir = "auto";
  label.className = "room-btn__name";
  label.textContent = e.kind === "direct" ? e.label : `${e.kind === "private" ? "🔒 " : "# "}${e.label}`;
  btn.append(label);
  if (e.group) {
    const group = document.createElement("span");
    group.className = "room-btn__group";
    group.textContent = ` · group ${e.group}`;
    btn.append(group);
  }
  if (e.from) {
    const from = document.createElement("span");
    from.className = "room-btn__from";
    from.textContent = ` from ${e.from}`;
    btn.append(from);
  }
  if (e.badge) {
    const badge = document.createElement("span");
    badge.className = "room-btn__unread";
    badge.textContent = e.badge;
    badge.setAttribute("aria-hidden", "true");
    btn.append(badge);
  }
  li.append(btn);
  return li;
}

function renderRooms() {
  if (!v2()) return;
  const focused = document.activeElement?.classList?.contains("room-btn")
    ? `${document.activeElement.dataset.action}:${document.activeElement.dataset.room}`
    : null;
  const list = roomList(roomState);
  ui.roomList.replaceChildren(...list.rooms.map(roomItem));
  ui.directList.replaceChildren(...list.direct.map(roomItem));
  ui.directEmpty.hidden = list.direct.length > 0;
  ui.invitedList.replaceChildren(...list.invited.map(roomItem));
  ui.invitedList.hidden = ui.invitedHeading.hidden = list.invited.length === 0;
  ui.publicList.replaceChildren(...list.public.map(roomItem));
  ui.publicList.hidden = ui.publicHeading.hidden = list.public.length === 0;
  const shown = shownRoom();
  const r = roomState.room(shown);
  ui.roomTitle.textContent = r?.kind === "direct" ? `Direct · ${r.with ?? "conversation"}` : shown;
  const count = isLobby(shown) ? names.members.length : (roomMembers.get(roomKey(shown))?.length ?? r?.count);
  ui.roomPresence.textContent = Number.isInteger(count) ? `${count} here` : "";
  const topic = r?.standing.topic ?? null;
  ui.roomTopic.textContent = topic === null ? "" : `Topic: ${topic}`;
  ui.roomTopic.hidden = topic === null;
  ui.inviteForm.hidden = r?.kind !== "private" || !r.joined;
  ui.roomModBtn.hidden = !(r?.joined || isLobby(shown)) || roomActions(shownRole()).length === 0;
  if (ui.roomModBtn.hidden && menu?.key === "room") closeMemberMenu({ focus: false });
  ui.leaveRoomBtn.hidden = isLobby(shown) || !r?.joined;
  if (focused !== null) {
    const [action, ...rest] = focused.split(":");
    const room = rest.join(":");
    const again = [...ui.roomsCard.querySelectorAll(".room-btn")].find(
      (b) => b.dataset.room === room && b.dataset.action === action,
    );
    if (again) again.focus();
  }
}

ui.roomsCard.addEventListener("click", (ev) => {
  const btn = ev.target.closest(".room-btn");
  if (!btn) return;
  openRoom(btn.dataset.room);
});

// Arrow keys move between the room buttons; Home and End go to the first and last.
ui.roomsCard.addEventListener("keydown", (ev) => {
  if (!ev.target.classList?.contains("room-btn")) return;
  const all = [...ui.roomsCard.querySelectorAll(".room-btn")];
  const i = all.indexOf(ev.target);
  const to = { ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: all.length - 1 }[ev.key];
  if (to === undefined || all.length === 0) return;
  ev.preventDefault();
  all[(to + all.length) % all.length].focus();
});

ui.roomForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const v = validateName(ui.roomNameInput.value);
  if (!v.ok) {
    ui.roomFormError.textContent = v.message.replace(/^A name|^Names?/, "A room name");
    ui.roomNameInput.focus();
    return;
  }
  const g = ui.roomGroupField.hidden ? { ok: true, value: null } : validateGroup(ui.roomGroupInput.value);
  if (!g.ok) {
    ui.roomFormError.textContent = g.message;
    ui.roomGroupInput.focus();
    return;
  }
  ui.roomFormError.textContent = "";
  pendingOpen = roomKey(v.value);
  if (ui.roomPrivate.checked) {
    const group = g.value === null ? {} : { group: g.value };
    if (g.value !== null) pendingGroups.set(roomKey(v.value), g.value);
    sendRoomAction({ action: "createRoom", room: v.value, kind: "private", ...group, id: nextRoomId() });
  } else {
    joinRoom(v.value);
  }
  ui.roomNameInput.value = "";
  ui.roomPrivate.checked = false;
  ui.roomGroupInput.value = "";
  renderGroupField();
});

// A private room may name a sign-in group (createRoom's `group`): only when signed in.
function renderGroupField() {
  ui.roomGroupField.hidden = !(ui.roomPrivate.checked && signIn !== null && signIn.signedIn);
}
ui.roomPrivate.addEventListener("change", renderGroupField);

ui.inviteForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const v = validateName(ui.inviteInput.value);
  if (!v.ok) {
    setRoomNotice(v.message);
    return;
  }
  conn.send({ action: "invite", room: shownRoom(), to: v.value, id: nextRoomId() });
  ui.inviteInput.value = "";
});

ui.leaveRoomBtn.addEventListener("click", () => {
  const room = shownRoom();
  if (!isLobby(room)) {
    flushMarkRead(room);
    sendRoomAction({ action: "leaveRoom", room, id: nextRoomId() });
  }
  openRoom(LOBBY);
  ui.messageInput.focus();
});

// ---- a room's log

function roomMessageElement(m, role = shownRole()) {
  if (m.notice) {
    const notice = messageElement(document, { kind: "system", text: noticeText({ systemMessage: m.text, reason: m.reason, moderation: m.op }), ts: m.ts });
    notice.classList.add("msg--moderation");
    notice.dataset.notice = m.messageId;
    return notice;
  }
  const mine = names.confirmed !== null && sameName(m.from, names.confirmed);
  const node = m.deleted
    ? messageElement(document, { kind: "system", text: tombstoneText(m), ts: m.ts })
    : messageElement(document, { kind: "public", from: m.from, text: m.text ?? "", ts: m.ts, mine });
  node.dataset.messageId = m.messageId;
  if (m.deleted) {
    node.classList.add("msg--deleted");
    node.dataset.kind = "deleted";
    return node;
  }
  const body = node.querySelector(".msg__body");
  if (m.edited) {
    const note = document.createElement("span");
    note.className = "msg__edited";
    note.textContent = " (edited)";
    body.append(note);
  }
  if (canChange(m, names.confirmed, Date.now())) {
    const tools = document.createElement("span");
    tools.className = "msg__tools";
    for (const [action, word] of [["edit", "Edit"], ["delete", "Delete"]]) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = `btn btn--quiet btn--tiny msg__${action}`;
      b.dataset.action = action;
      b.textContent = word;
      b.setAttribute("aria-label", `${word} your message: ${(m.text ?? "").slice(0, 40)}`);
      tools.append(b);
    }
    body.append(tools);
  } else if (mayDelete(role, m)) {
    const tools = document.createElement("span");
    tools.className = "msg__tools";
    const b = document.createElement("button");
    b.type = "button";
    b.className = "btn btn--quiet btn--tiny msg__mod-delete";
    b.dataset.action = "modDelete";
    b.textContent = "Delete";
    b.setAttribute("aria-label", `Delete ${m.from ?? "this"}'s message: ${(m.text ?? "").slice(0, 40)}`);
    tools.append(b);
    body.append(tools);
  }
  return node;
}

function renderRoomLog() {
  const room = inRoom();
  ui.roomBox.hidden = !room;
  ui.chatBox.hidden = room;
  if (!room) return;
  const box = ui.roomBox;
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 48;
  const focusedId = document.activeElement?.closest?.("#roomBox [data-message-id]")?.dataset.messageId;
  const focusedAction = document.activeElement?.dataset?.action;
  const shown = roomState.messages(shownRoom()).map((m) => {
    const node = roomMessageElement(m);
    if (roomOutbox.wasSent(m.messageId) && !m.deleted) setDelivery(document, node, { delivery: "sent" });
    return node;
  });
  const now = Date.now();
  const waiting = roomOutbox.pending(shownRoom()).map((item) => {
    const node = messageElement(document, { kind: "public", from: names.confirmed ?? reclaim.wanted, text: item.text, ts: item.ts ?? now, mine: true, ...deliveryOf(item, now) });
    node.dataset.id = item.id;
    return node;
  });
  box.replaceChildren(...shown, ...waiting);
  if (nearBottom) box.scrollTop = box.scrollHeight;
  if (focusedId) {
    const again = box.querySelector(`[data-message-id="${CSS.escape(focusedId)}"] [data-action="${focusedAction}"]`);
    if (again) again.focus();
  }
}

// ---- edit and delete in the lobby's log (#chatBox, kept by conversation.js): on v2 the
// lobby's messages are in roomState too (with their edits and deletes applied), and each
// entry of #chatBox with a messageId is brought in line with it.

const lobbyLooks = new WeakMap(); // #chatBox entry -> what it shows of its message

/** Bring one #chatBox entry in line with the lobby's message (edited, deleted, tools). */
function refreshLobbyEntry(node) {
  if (!v2() || !node.dataset.messageId) return;
  const m = roomState.room(LOBBY)?.messages.get(node.dataset.messageId);
  if (!m) return;
  const lobbyRole = roomState.room(LOBBY)?.standing.role ?? null;
  const tools = canChange(m, names.confirmed, Date.now()) || mayDelete(lobbyRole, m);
  const look = `${m.deleted}|${m.edited}|${m.text}|${tools}|${m.deletedBy ?? ""}`;
  if (lobbyLooks.get(node) === look) return;
  const first = lobbyLooks.get(node) === undefined;
  lobbyLooks.set(node, look);
  if (first && !tools && !m.edited && !m.deleted) return; // as conversation.js drew it
  const fresh = roomMessageElement(m, lobbyRole);
  const focused = node.contains(document.activeElement) ? document.activeElement.dataset.action : null;
  node.replaceChildren(...fresh.childNodes);
  node.dataset.kind = fresh.dataset.kind;
  for (const c of ["msg--deleted", "msg--public", "msg--system", "msg--multiline"]) {
    node.classList.toggle(c, fresh.classList.contains(c));
  }
  if (focused) node.querySelector(`[data-action="${focused}"]`)?.focus();
}

function refreshLobbyLog() {
  for (const node of ui.chatBox.querySelectorAll(":scope > [data-message-id]")) refreshLobbyEntry(node);
}

/** Edit or Delete on one of our messages, in the room shown (the lobby included). */
function onMessageTool(ev) {
  const b = ev.target.closest("button[data-action]");
  const entry = b?.closest("[data-message-id]");
  if (!entry) return;
  const room = shownRoom();
  const m = roomState.messages(room).find((x) => x.messageId === entry.dataset.messageId);
  if (!m) return;
  if (b.dataset.action === "modDelete") {
    askToDelete(m, b);
  } else if (b.dataset.action === "delete") {
    conn.send({ action: "deleteMessage", room, messageId: m.messageId, seq: m.seq, id: nextRoomId() });
  } else {
    editing = { room, messageId: m.messageId, seq: m.seq };
    ui.messageInput.value = m.text ?? "";
    updateComposeMode();
    ui.messageInput.focus();
  }
}
ui.roomBox.addEventListener("click", onMessageTool);
ui.chatBox.addEventListener("click", onMessageTool);

function stopEditing() {
  editing = null;
  updateComposeMode();
}

/** Send the composer's text in the room shown (or as the edit being made). */
function sendInRoom(text) {
  const room = shownRoom();
  if (editing) {
    const { messageId, seq } = editing;
    conn.send({ action: "editMessage", room: editing.room, messageId, seq, message: text, id: nextRoomId() });
    stopEditing();
    return true;
  }
  const item = roomOutbox.enqueue(room, text);
  item.ts = Date.now();
  renderRoomLog();
  return true;
}

// ---- moderation (js/moderation.js): the member menu, the moderator's Delete, the
// confirmation dialog, notices and the errors a moderated member sees

/** Our role in the room shown (null: a plain member, or a v1 connection). */
function shownRole() {
  return v2() ? (roomState.room(shownRoom())?.standing.role ?? null) : null;
}

/** The member menu's actions for `name` in the room shown. */
function memberMenuActions(name) {
  if (!v2()) return [];
  const r = roomState.room(shownRoom());
  if (!r?.joined && !isLobby(shownRoom())) return [];
  const targetRole = r?.standing.roleOf(name) ?? null;
  return memberActions({ role: shownRole(), me: names.confirmed, target: name, targetRole });
}

function moderateButton(name) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "btn btn--quiet member__mod";
  b.dataset.name = name;
  b.textContent = "⋯";
  b.title = `Moderate ${name}`;
  b.setAttribute("aria-label", `Moderate ${name}`);
  b.setAttribute("aria-haspopup", "menu");
  b.setAttribute("aria-expanded", "false");
  b.setAttribute("aria-controls", "modMenu");
  return b;
}

// One menu element (#modMenu) serves a member's menu and the room's: `menu` says whose.
let menu = null; // {key, restore: () => the trigger, pick: (op) => void}
let openMenuFor = null; // the member whose menu is open (null: none, or the room's)

function modTrigger(name) {
  if (name === null) return null;
  return [...ui.membersList.querySelectorAll(".member__mod")].find((b) => b.dataset.name === name) ?? null;
}

function toggleMemberMenu(trigger) {
  if (!ui.modMenu.hidden && openMenuFor === trigger.dataset.name) closeMemberMenu();
  else openMemberMenu(trigger);
}

function openMemberMenu(trigger) {
  const name = trigger.dataset.name;
  const actions = memberMenuActions(name);
  if (actions.length === 0) return;
  openMenu(trigger, {
    key: `member:${name}`,
    label: `Moderate ${name} in ${shownRoom()}`,
    items: actions.map((op) => [op, actionLabel(op, name)]),
    restore: () => modTrigger(name),
    pick: (op) => askToModerate(op, { target: name }, () => modTrigger(name)),
  });
  openMenuFor = name;
}

function openRoomMenu() {
  const room = shownRoom();
  const actions = roomActions(shownRole());
  if (room === null || actions.length === 0) return;
  openMenu(ui.roomModBtn, {
    key: "room",
    label: `Moderate ${room}`,
    items: actions.map((op) => [op, actionLabel(op, room)]),
    restore: () => ui.roomModBtn,
    pick: (op) => askToModerate(op, {}, () => ui.roomModBtn),
  });
}

function openMenu(trigger, { key, label, items, restore, pick }) {
  closeMemberMenu({ focus: false });
  menu = { key, restore, pick };
  const buttons = items.map(([op, text]) => {
    const item = document.createElement("button");
    item.type = "button";
    item.className = "mod-menu__item";
    item.setAttribute("role", "menuitem");
    item.tabIndex = -1;
    item.dataset.op = op;
    item.textContent = text;
    return item;
  });
  ui.modMenu.replaceChildren(...buttons);
  ui.modMenu.setAttribute("aria-label", label);
  ui.modMenu.hidden = false;
  // Under its button, kept inside the window (#modMenu is placed against the page:
  // none of its ancestors is positioned).
  const box = trigger.getBoundingClientRect();
  const width = ui.modMenu.offsetWidth;
  const left = Math.max(8, Math.min(box.right - width, document.documentElement.clientWidth - width - 8));
  ui.modMenu.style.left = `${left + window.scrollX}px`;
  // Below it, or above it when the window has no room below (the member list's end).
  const height = ui.modMenu.offsetHeight;
  const below = box.bottom + 4 + height <= window.innerHeight - 8 || box.top - 4 - height < 8;
  ui.modMenu.style.top = `${(below ? box.bottom + 4 : box.top - 4 - height) + window.scrollY}px`;
  trigger.setAttribute("aria-expanded", "true");
  buttons[0].focus();
}

function closeMemberMenu({ focus = true } = {}) {
  if (ui.modMenu.hidden || menu === null) return;
  const trigger = menu.restore();
  ui.modMenu.hidden = true;
  ui.modMenu.replaceChildren();
  menu = null;
  openMenuFor = null;
  trigger?.setAttribute("aria-expanded", "false");
  if (focus) trigger?.focus();
}

ui.modMenu.addEventListener("click", (ev) => {
  const item = ev.target.closest(".mod-menu__item");
  if (!item || menu === null) return;
  const { pick } = menu;
  closeMemberMenu({ focus: false });
  pick(item.dataset.op);
});

ui.modMenu.addEventListener("keydown", (ev) => {
  const all = [...ui.modMenu.querySelectorAll(".mod-menu__item")];
  const i = all.indexOf(document.activeElement);
  const to = { ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: all.length - 1 }[ev.key];
  if (to !== undefined && all.length > 0) {
    ev.preventDefault();
    all[(to + all.length) % all.length].focus();
  } else if (ev.key === "Escape") {
    ev.preventDefault();
    closeMemberMenu();
  } else if (ev.key === "Tab") {
    closeMemberMenu({ focus: false });
  }
});

document.addEventListener("click", (ev) => {
  if (ui.modMenu.hidden) return;
  if (ui.modMenu.contains(ev.target) || ev.target.closest?.(".member__mod, #roomModBtn")) return;
  closeMemberMenu({ focus: false });
});

ui.roomModBtn.addEventListener("click", () => {
  if (!ui.modMenu.hidden && menu?.key === "room") closeMemberMenu();
  else openRoomMenu();
});
ui.roomModBtn.addEventListener("keydown", (ev) => {
  if (ev.key === "ArrowDown") {
    ev.preventDefault();
    openRoomMenu();
  }
});

// The confirmation dialog: every moderator action asks first, with an optional reason.
for (const [select, choices] of [[ui.modDuration, DURATIONS], [ui.modSlowMode, SLOW_MODES]]) {
  for (const d of choices) {
    const o = document.createElement("option");
    o.value = String(d.seconds);
    o.textContent = d.label;
    select.append(o);
  }
}
let confirming = null; // {op, room, target, messageId, seq, restore}

function askToModerate(op, details, restore) {
  const room = shownRoom();
  if (room === null) return;
  const words = confirmation(op, { room, target: details.target ?? null, excerpt: details.excerpt ?? "" });
  ui.modDialogTitle.textContent = words.title;
  ui.modDialogText.textContent = words.text;
  ui.modConfirm.textContent = words.confirm;
  const fields = fieldsOf(op);
  const standing = roomState.room(room)?.standing;
  ui.modDurationField.hidden = !fields.duration;
  ui.modDuration.value = String(DURATIONS[0].seconds);
  ui.modSlowModeField.hidden = !fields.slowMode;
  ui.modSlowMode.value = String(SLOW_MODES[0].seconds);
  ui.modTopicField.hidden = !fields.topic;
  ui.modTopic.value = standing?.topic ?? "";
  ui.modReason.value = "";
  confirming = { op, room, ...details, restore };
  ui.modDialog.showModal();
  const first = fields.duration ? ui.modDuration : fields.slowMode ? ui.modSlowMode : fields.topic ? ui.modTopic : ui.modReason;
  first.focus();
}

ui.modForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const c = confirming;
  if (c === null) return;
  const frame = moderateFrame(c.op, {
    room: c.room,
    target: c.target ?? null,
    messageId: c.messageId ?? null,
    seq: c.seq ?? null,
    seconds: Number((c.op === "slowMode" ? ui.modSlowMode : ui.modDuration).value),
    topic: ui.modTopic.value,
    reason: ui.modReason.value,
    id: nextRoomId(),
  });
  if (!conn.send(frame)) setRoomNotice("Not connected right now: nothing was done.");
  ui.modDialog.close("confirm");
});
ui.modCancel.addEventListener("click", () => ui.modDialog.close("cancel"));
ui.modDialog.addEventListener("close", () => {
  const c = confirming;
  confirming = null;
  if (ui.modDialog.returnValue !== "confirm" && c !== null) setRoomNotice("Cancelled: nothing was done.");
  ui.modDialog.returnValue = "";
  const back = c?.restore?.();
  if (back?.isConnected) back.focus();
  else ui.messageInput.focus();
});

/** A moderator's Delete on a message of the room shown. */
function askToDelete(m, button) {
  const entry = button.closest("[data-message-id]");
  const id = m.messageId;
  const box = entry?.parentElement ?? ui.roomBox;
  askToModerate("delete", { target: m.from ?? null, messageId: id, seq: m.seq, excerpt: m.text ?? "" }, () =>
    box.querySelector(`[data-message-id="${CSS.escape(id)}"] [data-action="modDelete"]`) ?? box,
  );
}

/** What a moderation event said about us ("appointed", "dismissed", "removed"), told once. */
function onOwnStanding(change, frame) {
  const room = frame.room;
  if (change === "appointed") setRoomNotice(`You now moderate ${isolate(room)}.`);
  else if (change === "dismissed") setRoomNotice(`You no longer moderate ${isolate(room)}.`);
  else if (change === "removed") {
    setRoomNotice(noticeText(frame));
    removal = { key: roomKey(room), text: noticeText(frame) }; // said again once we are out
  }
}
let removal = null; // {key, text}: the kick or ban of us that the room's `left` follows

// ---- typing

function renderTyping() {
  clearTimeout(typingTimer);
  const room = shownRoom();
  ui.typingLine.textContent = room === null ? "" : typingRoster.line(room, isolate);
  const next = room === null ? null : typingRoster.nextExpiry(room);
  if (next !== null) typingTimer = setTimeout(renderTyping, Math.max(50, next - Date.now() + 10));
}

function typed() {
  if (!v2() || !conn.isOpen || ui.toInput.value.trim() !== "" || editing) return;
  const frame = typingThrottle.typed(shownRoom());
  if (frame !== null) conn.send(frame);
}

function roomsClosed() {
  protocol = null;
  connectionGeneration += 1;
  retried.clear();
  lobbyJoined = false;
  roomState.disconnected();
  roomOutbox.closed();
  typingRoster.reset();
  typingThrottle.reset();
  roomMembers.clear();
  pendingOpen = null;
  renderTyping();
}

// ------------------------------------------------------------------ connection

conn.on("state", renderStatus);

conn.on("open", ({ reconnected, endpoint }) => {
  lastEndpointErrorLogged = false;
  idleWithoutName = false;
  ui.status.title = `Server: ${endpoint}`;
  logLocal(reconnected ? "Reconnected." : "Connected.");
  renderSignIn();
  renderMembers();
  const claim = reclaim.opened();
  if (claim) {
    claimName(claim.name, { isReclaim: claim.reclaim });
  } else if (!names.confirmed) {
    setNameHint("");
  }
});

conn.on("close", ({ intentional, wasOpen }) => {
  const hadName = names.connectionLost();
  reclaim.closed({ held: hadName, intentional });
  // Closed (by the server, most likely for staying unnamed) while we neither had nor
  // wanted a name: hold the reconnect (ChatConnection's holdRetry) until a name is set.
  idleWithoutName = !intentional && wasOpen && hadName === null && !reclaim.wanted;
  conversation.closed();
  roomsClosed();
  refreshNameButton();
  renderMembers();
  updateComposeMode();
  if (intentional) {
    logLocal("You disconnected.");
    setNameHint(hadName ? `Reconnect to chat as “${isolate(hadName)}” again.` : "");
  } else if (idleWithoutName) {
    logLocal("The connection closed while you had no name. Set a name to connect again.");
    setNameHint("Set a name to connect again.");
  } else if (wasOpen) {
    logLocal("Connection lost. Reconnecting…");
    const again = reclaim.wanted;
    if (again) setNameHint(`You will re-join as “${isolate(again)}” when reconnected.`);
  }
});

conn.on("endpointError", ({ error }) => {
  if (lastEndpointErrorLogged) return;
  lastEndpointErrorLogged = true;
  logLocal(`Could not find the chat server (${error?.message ?? "network error"}). Retrying…`, "error");
});

conn.on("signInNeeded", () => {
  renderSignIn();
  ui.statusText.textContent = "Sign in to chat";
  ui.membersEmpty.textContent = "Sign in to see who is here.";
});

ui.disconnectBtn.addEventListener("click", () => conn.disconnect());
ui.reconnectBtn.addEventListener("click", () => conn.connect());

window.addEventListener("online", () => conn.retryNow());
document.addEventListener("visibilitychange", () => {
  if (document.hidden) return;
  unread = 0;
  document.title = BASE_TITLE;
  conn.checkKeepAlive();
  conn.retryNow();
  if (v2()) markRead(shownRoom());
});

// ------------------------------------------------------------------ start

conn.on("events", handleEvents);
updateComposeMode();
renderMembers();
const restored = savedName();
if (restored !== null) {
  // A reload: join under the same name again, as after a reconnect.
  reclaim.restore(restored);
  ui.nameInput.value = restored;
  setNameHint(`You will re-join as “${isolate(restored)}” as soon as the connection is up.`);
}
if (override) logLocal(`Using the WebSocket endpoint from the address bar: ${override}`);
conn.connect();
