// The events of the example server (examples/server), typed for tidings' event maps.
// Keep in step with examples/README.md ("Events (server → client)" and "Socket.IO events").
import { createTidingsHooks } from "tidings/react";

/** Every server event carries one envelope (examples/server/src/store.rs `Envelope`). */
export interface Envelope<T = unknown, K extends string = string> {
  /** `evt_<32 hex>`; also the feed's event id and a valid `since` cursor. */
  id: string;
  type: K;
  version: number;
  /** ISO 8601 UTC time the event was logged. */
  timestamp: string;
  source: string;
  data: T;
  metadata: { tenantId: string; userId?: string; correlationId?: string; sessionId?: string };
}

export interface Task {
  id: string;
  title: string;
  assigneeId?: string;
  [field: string]: unknown;
}

/** `task.created`, `task.assigned`, `task.completed`. */
export interface TaskEventData {
  taskId: string;
  tenantId: string;
  userId?: string;
  task: Task;
}

/** `notification.created` (the producer decides the fields; these are the ones shown). */
export interface NotificationData {
  tenantId?: string;
  userId?: string;
  title?: string;
  text?: string;
  [field: string]: unknown;
}

export interface ChatMessage {
  id: string;
  chatId: string;
  tenantId: string;
  userId: string;
  name: string;
  text: string;
  sentAt: string;
}

/** `chat.message` */
export interface ChatMessageData {
  messageId: string;
  chatId: string;
  tenantId: string;
  userId: string;
  message: ChatMessage;
}

export const TASK_EVENTS = ["task.created", "task.assigned", "task.completed"] as const;
export type TaskEventName = (typeof TASK_EVENTS)[number];

export type TaskEnvelope = Envelope<TaskEventData, TaskEventName>;
export type NotificationEnvelope = Envelope<NotificationData, "notification.created">;
export type ChatEnvelope = Envelope<ChatMessageData, "chat.message">;
export type AnyEnvelope = TaskEnvelope | NotificationEnvelope | ChatEnvelope;

/** Events the server sends. */
export interface ServerToClient {
  "task.created": (e: Envelope<TaskEventData, "task.created">) => void;
  "task.assigned": (e: Envelope<TaskEventData, "task.assigned">) => void;
  "task.completed": (e: Envelope<TaskEventData, "task.completed">) => void;
  "notification.created": (e: NotificationEnvelope) => void;
  "chat.message": (e: ChatEnvelope) => void;
}

/** Every ack of the example server: `{ok: true, ...}` or `{ok: false, error}`. */
export type Ack<T> = ({ ok: true } & T) | { ok: false; error: string };

export interface ChatMessageAck {
  /** The envelope id of the broadcast `chat.message`. */
  id: string;
  offset: number;
  replayed: boolean;
}

/** Events the client sends (all acknowledged). */
export interface ClientToServer {
  "chat.message": (
    msg: { chatId: string; text: string; idempotencyKey?: string },
    ack: (reply: Ack<ChatMessageAck>) => void,
  ) => void;
  "room:join": (room: string, ack: (reply: Ack<{ room: string }>) => void) => void;
  "room:leave": (room: string, ack: (reply: Ack<{ room: string }>) => void) => void;
}

/** The names the app listens to (for the feed catch-up, which returns every visible event). */
export const LISTENED: readonly (keyof ServerToClient)[] = [...TASK_EVENTS, "notification.created", "chat.message"];

export function isListened(name: string): name is keyof ServerToClient {
  return (LISTENED as readonly string[]).includes(name);
}

/** The hooks, bound to the maps once. */
export const { useEvent, useEmit, useRoom, useConnectionState, useTidings } = createTidingsHooks<
  ServerToClient,
  ClientToServer
>();
