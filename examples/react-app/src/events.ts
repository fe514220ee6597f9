// The events of the example server come from the event catalogue (examples/catalogue/events.json,
// docs/CATALOGUE.md), generated into catalogue.generated.ts with a validator; this file binds
// the generated event maps to the hooks and names the groups the app uses.
import { createTidingsHooks } from "tidings/react";
import type {
  ChatMessageData,
  ClientToServer,
  Envelope,
  NotificationData,
  ServerToClient,
  TaskEventData,
} from "./catalogue.generated";
import type { Problem } from "./catalogue.generated";
import { SERVER_TO_CLIENT_EVENTS, isServerToClientEvent, validateServerToClient } from "./catalogue.generated";

export * from "./catalogue.generated";

export const TASK_EVENTS = ["task.created", "task.assigned", "task.completed"] as const;
export type TaskEventName = (typeof TASK_EVENTS)[number];

export type TaskEnvelope = Envelope<TaskEventData, TaskEventName>;
export type NotificationEnvelope = Envelope<NotificationData, "notification.created">;
export type ChatEnvelope = Envelope<ChatMessageData, "chat.message">;
export type AnyEnvelope = TaskEnvelope | NotificationEnvelope | ChatEnvelope;

/** The names the app listens to. */
export const LISTENED: readonly (keyof ServerToClient)[] = SERVER_TO_CLIENT_EVENTS;

export function isListened(name: string): name is keyof ServerToClient {
  return isServerToClientEvent(name);
}

/** The SDK's `validate` option: a catalogue event (from the socket or the feed) must fit the
 *  catalogue, or no listener gets it and it is reported as `invalid`. Other events pass. */
export function validateEvent(name: string, args: readonly unknown[]): Problem[] {
  return isListened(name) ? validateServerToClient(name, args[0]) : [];
}

/** The hooks, bound to the maps once. */
export const { useEvent, useEmit, useRoom, useConnectionState, useTidings } = createTidingsHooks<
  ServerToClient,
  ClientToServer
>();
