// GENERATED from examples/catalogue/events.json by `cargo run -p tidings-example-catalogue --bin tidings-catalogue-gen`: do not edit.
// The examples' event maps (for createTidingsHooks / TidingsClient) and a validator without
// dependencies; docs/CATALOGUE.md. It imports nothing, so it compiles on its own.

/** The Tidings envelope every enveloped event is wrapped in. */
export interface Envelope<T = unknown, K extends string = string> {
  id: string;
  type: K;
  version: number;
  timestamp: string;
  source: string;
  data: T;
  metadata: EnvelopeMetadata;
}

/** Routing and correlation metadata of an envelope. */
export interface EnvelopeMetadata {
  tenantId: string;
  userId?: string;
  correlationId?: string;
  sessionId?: string;
}

/** Every ack: `{ok: true, ...}` or `{ok: false, error}`. */
export type Ack<T> = ({ ok: true } & T) | { ok: false; error: string };

/** A task. The producer may add fields: they are kept. */
export interface Task {
  /** Task id. */
  id: string;
  /** Title. */
  title?: string;
  /** Who it is assigned to. */
  assigneeId?: string;
  /** Who created it. */
  createdBy?: string;
  /** Fields the catalogue does not name. */
  [field: string]: unknown;
}

/** The data of `task.created`, `task.assigned` and `task.completed`: entity id, tenant id, user id and the full entity. */
export interface TaskEventData {
  /** The task id. */
  taskId: string;
  /** The tenant. */
  tenantId: string;
  /** The user concerned (creator, assignee). */
  userId?: string;
  /** `task.assigned`: who assigned it. */
  assignedBy?: string;
  /** The task. */
  task: Task;
}

/** The data of `notification.created`: the producer decides the fields; these are the ones the examples show. */
export interface NotificationData {
  /** The tenant. */
  tenantId?: string;
  /** The user notified. */
  userId?: string;
  /** Title. */
  title?: string;
  /** Text. */
  text?: string;
  /** Fields the catalogue does not name. */
  [field: string]: unknown;
}

/** A chat message as stored and broadcast. */
export interface ChatMessage {
  /** Message id (`msg_...`). */
  id: string;
  /** The chat. */
  chatId: string;
  /** The chat's tenant. */
  tenantId: string;
  /** The sender. */
  userId: string;
  /** The sender's display name. */
  name: string;
  /** The text. */
  text: string;
  /** ISO 8601 UTC time the server received it. */
  sentAt: string;
}

/** The data of the `chat.message` the server broadcasts. */
export interface ChatMessageData {
  /** The message id. */
  messageId: string;
  /** The chat. */
  chatId: string;
  /** The tenant. */
  tenantId: string;
  /** The sender. */
  userId: string;
  /** The message. */
  message: ChatMessage;
}

/** The argument of the `chat.message` a client sends: `chatId` (a chat of the sender's tenant) or `room` (`chat:<tenantId>:<chatId>`). */
export interface ChatMessageSend {
  /** The chat, 1-64 of [A-Za-z0-9_-]. */
  chatId?: string;
  /** Instead of `chatId`: the chat room's name. */
  room?: string;
  /** 1-4000 characters (trimmed). */
  text: string;
  /** A resend with the same key is answered with the first send's ack. */
  idempotencyKey?: string;
}

/** The ack of `chat.message`. */
export interface ChatMessageAck {
  /** The envelope id of the broadcast `chat.message`. */
  id: string;
  /** Its offset in the tenant's log. */
  offset: number;
  /** Whether this answers an earlier send with the same idempotency key. */
  replayed: boolean;
}

/** The ack of `room:join`, `room:leave` and `join-tenant`. */
export interface RoomAck {
  /** The room's name. */
  room: string;
}

/** The events going server → client. */
export interface ServerToClient {
  /** A task was created. */
  "task.created": (data: Envelope<TaskEventData, "task.created">) => void;
  /** A task was assigned (`task.assigneeId`). */
  "task.assigned": (data: Envelope<TaskEventData, "task.assigned">) => void;
  /** A task was completed. */
  "task.completed": (data: Envelope<TaskEventData, "task.completed">) => void;
  /** A notification for a user. */
  "notification.created": (data: Envelope<NotificationData, "notification.created">) => void;
  /** A chat message, broadcast to `chat:<tenantId>:<chatId>`. */
  "chat.message": (data: Envelope<ChatMessageData, "chat.message">) => void;
}

export const SERVER_TO_CLIENT_EVENTS = ["task.created", "task.assigned", "task.completed", "notification.created", "chat.message"] as const;
export function isServerToClientEvent(name: string): name is keyof ServerToClient {
  return (SERVER_TO_CLIENT_EVENTS as readonly string[]).includes(name);
}

/** The events going client → server. */
export interface ClientToServer {
  /** Sends a chat message; it is logged and broadcast. */
  "chat.message": (data: ChatMessageSend, ack: (reply: Ack<ChatMessageAck>) => void) => void;
  /** Joins a room (`chat:<tenantId>:<chatId>`). */
  "room:join": (data: string, ack: (reply: Ack<RoomAck>) => void) => void;
  /** Leaves a chat room. */
  "room:leave": (data: string, ack: (reply: Ack<RoomAck>) => void) => void;
  /** Checks the tenant id (the tenant room is joined on connect). */
  "join-tenant": (data: string, ack: (reply: Ack<RoomAck>) => void) => void;
}

export const CLIENT_TO_SERVER_EVENTS = ["chat.message", "room:join", "room:leave", "join-tenant"] as const;
export function isClientToServerEvent(name: string): name is keyof ClientToServer {
  return (CLIENT_TO_SERVER_EVENTS as readonly string[]).includes(name);
}

/** The first argument of event `K` going server → client. */
export type ServerToClientPayload<K extends keyof ServerToClient> = Parameters<ServerToClient[K]>[0];
/** The first argument of event `K` going client → server. */
export type ClientToServerPayload<K extends keyof ClientToServer> = Parameters<ClientToServer[K]>[0];

/** One thing wrong with a payload (the Rust validator reports the same ones). */
export interface Problem {
  /** `$` is the payload, `$.data.task.id` a field, `$.items[2]` an element. */
  path: string;
  message: string;
}

type Check = (v: unknown, path: string, out: Problem[]) => void;

function kind(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}
function expected(what: string, v: unknown, path: string, out: Problem[]): void {
  out.push({ path, message: `expected ${what}, got ${kind(v)}` });
}
function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
function field(
  o: Record<string, unknown>,
  name: string,
  check: Check,
  optional: boolean,
  nullable: boolean,
  path: string,
  out: Problem[],
): void {
  const p = `${path}.${name}`;
  if (!Object.prototype.hasOwnProperty.call(o, name)) {
    if (!optional) out.push({ path: p, message: "missing" });
    return;
  }
  const v = o[name];
  if (v === null && nullable) return;
  check(v, p, out);
}
function run(checks: Record<string, Check>, name: string, payload: unknown): Problem[] {
  const check = Object.prototype.hasOwnProperty.call(checks, name) ? checks[name] : undefined;
  if (!check) return [{ path: "$", message: `${JSON.stringify(name)} is not in the catalogue` }];
  const out: Problem[] = [];
  check(payload, "$", out);
  return out;
}
function cString(v: unknown, path: string, out: Problem[]): void {
  if (typeof v !== "string") expected("string", v, path, out);
}
function cInteger(v: unknown, path: string, out: Problem[]): void {
  if (typeof v !== "number" || !Number.isInteger(v)) expected("integer", v, path, out);
}

function cTask(v: unknown, path: string, out: Problem[]): void {
  if (!isObject(v)) return expected("object", v, path, out);
  field(v, "id", cString, false, false, path, out);
  field(v, "title", cString, true, false, path, out);
  field(v, "assigneeId", cString, true, false, path, out);
  field(v, "createdBy", cString, true, false, path, out);
}

function cTaskEventData(v: unknown, path: string, out: Problem[]): void {
  if (!isObject(v)) return expected("object", v, path, out);
  field(v, "taskId", cString, false, false, path, out);
  field(v, "tenantId", cString, false, false, path, out);
  field(v, "userId", cString, true, false, path, out);
  field(v, "assignedBy", cString, true, false, path, out);
  field(v, "task", cTask, false, false, path, out);
}

function cNotificationData(v: unknown, path: string, out: Problem[]): void {
  if (!isObject(v)) return expected("object", v, path, out);
  field(v, "tenantId", cString, true, false, path, out);
  field(v, "userId", cString, true, false, path, out);
  field(v, "title", cString, true, false, path, out);
  field(v, "text", cString, true, false, path, out);
}

function cChatMessage(v: unknown, path: string, out: Problem[]): void {
  if (!isObject(v)) return expected("object", v, path, out);
  field(v, "id", cString, false, false, path, out);
  field(v, "chatId", cString, false, false, path, out);
  field(v, "tenantId", cString, false, false, path, out);
  field(v, "userId", cString, false, false, path, out);
  field(v, "name", cString, false, false, path, out);
  field(v, "text", cString, false, false, path, out);
  field(v, "sentAt", cString, false, false, path, out);
}

function cChatMessageData(v: unknown, path: string, out: Problem[]): void {
  if (!isObject(v)) return expected("object", v, path, out);
  field(v, "messageId", cString, false, false, path, out);
  field(v, "chatId", cString, false, false, path, out);
  field(v, "tenantId", cString, false, false, path, out);
  field(v, "userId", cString, false, false, path, out);
  field(v, "message", cChatMessage, false, false, path, out);
}

function cChatMessageSend(v: unknown, path: string, out: Problem[]): void {
  if (!isObject(v)) return expected("object", v, path, out);
  field(v, "chatId", cString, true, false, path, out);
  field(v, "room", cString, true, false, path, out);
  field(v, "text", cString, false, false, path, out);
  field(v, "idempotencyKey", cString, true, false, path, out);
}

function envelope(data: Check): Check {
  return (v, path, out) => {
    if (!isObject(v)) return expected("object", v, path, out);
    field(v, "id", cString, false, false, path, out);
    field(v, "type", cString, false, false, path, out);
    field(v, "version", cInteger, false, false, path, out);
    field(v, "timestamp", cString, false, false, path, out);
    field(v, "source", cString, false, false, path, out);
    field(v, "data", data, false, false, path, out);
    if (!Object.prototype.hasOwnProperty.call(v, "metadata")) return void out.push({ path: `${path}.metadata`, message: "missing" });
    const m = v.metadata;
    if (!isObject(m)) return expected("object", m, `${path}.metadata`, out);
    field(m, "tenantId", cString, false, false, `${path}.metadata`, out);
    field(m, "userId", cString, true, false, `${path}.metadata`, out);
    field(m, "correlationId", cString, true, false, `${path}.metadata`, out);
    field(m, "sessionId", cString, true, false, `${path}.metadata`, out);
  };
}

const SERVER_TO_CLIENT_PAYLOAD: Record<keyof ServerToClient, Check> = {
  "task.created": envelope(cTaskEventData),
  "task.assigned": envelope(cTaskEventData),
  "task.completed": envelope(cTaskEventData),
  "notification.created": envelope(cNotificationData),
  "chat.message": envelope(cChatMessageData),
};
const SERVER_TO_CLIENT_DATA: Record<keyof ServerToClient, Check> = {
  "task.created": cTaskEventData,
  "task.assigned": cTaskEventData,
  "task.completed": cTaskEventData,
  "notification.created": cNotificationData,
  "chat.message": cChatMessageData,
};
/** The problems of event `name`'s payload going server → client as it is on the wire (the envelope for
 * enveloped events); none when it is valid. An event not in the catalogue is a problem. */
export function validateServerToClient(name: string, payload: unknown): Problem[] {
  return run(SERVER_TO_CLIENT_PAYLOAD, name, payload);
}
/** The problems of event `name`'s data (an envelope's `data`). */
export function validateServerToClientData(name: string, data: unknown): Problem[] {
  return run(SERVER_TO_CLIENT_DATA, name, data);
}

const CLIENT_TO_SERVER_PAYLOAD: Record<keyof ClientToServer, Check> = {
  "chat.message": cChatMessageSend,
  "room:join": cString,
  "room:leave": cString,
  "join-tenant": cString,
};
const CLIENT_TO_SERVER_DATA: Record<keyof ClientToServer, Check> = {
  "chat.message": cChatMessageSend,
  "room:join": cString,
  "room:leave": cString,
  "join-tenant": cString,
};
/** The problems of event `name`'s payload going client → server as it is on the wire (the envelope for
 * enveloped events); none when it is valid. An event not in the catalogue is a problem. */
export function validateClientToServer(name: string, payload: unknown): Problem[] {
  return run(CLIENT_TO_SERVER_PAYLOAD, name, payload);
}
/** The problems of event `name`'s data (an envelope's `data`). */
export function validateClientToServerData(name: string, data: unknown): Problem[] {
  return run(CLIENT_TO_SERVER_DATA, name, data);
}
