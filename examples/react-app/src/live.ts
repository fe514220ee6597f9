// The app's event store: every envelope once, whichever way it came (the socket, or the REST feed
// the SDK reads while the socket is down and after a reconnect that did not recover the session).
// Events are checked against the event catalogue by the SDK (the `validate` option, see App.tsx)
// before they get here; those that do not fit arrive as `invalid` reports.
import { useCallback, useMemo, useReducer, useRef } from "react";
import type { EventSource, InvalidEvent } from "tidings";
import type { AnyEnvelope, ChatEnvelope, Problem, Task, TaskEnvelope } from "./events";

export type Source = EventSource;

export interface Received {
  envelope: AnyEnvelope;
  source: Source;
  receivedAt: number;
}

/** An event whose payload does not fit the event catalogue: reported, never shown as valid. */
export interface Invalid {
  name: string;
  source: Source;
  problems: Problem[];
  receivedAt: number;
}

export interface TaskView {
  task: Task;
  status: "open" | "assigned" | "completed";
  updatedAt: string;
}

export interface LiveState {
  /** Task and notification events, newest first. */
  activity: Received[];
  tasks: Record<string, TaskView>;
  chat: Received[];
  /** Envelopes seen a second time (socket + feed) and dropped. */
  duplicates: number;
  fromFeed: number;
  /** Events that failed validation (newest first). */
  invalid: Invalid[];
}

const EMPTY: LiveState = { activity: [], tasks: {}, chat: [], duplicates: 0, fromFeed: 0, invalid: [] };
const MAX_ITEMS = 300;

type Action = { fresh: Received[]; duplicates: number; invalid: Invalid[] };

function reduce(state: LiveState, { fresh, duplicates, invalid }: Action): LiveState {
  let { activity, chat, tasks } = state;
  let fromFeed = state.fromFeed;
  for (const r of fresh) {
    if (r.source === "feed") fromFeed += 1;
    const e = r.envelope;
    if (e.type === "chat.message") {
      chat = [...chat, r].slice(-MAX_ITEMS);
      continue;
    }
    activity = [r, ...activity].slice(0, MAX_ITEMS);
    if (e.type === "task.created" || e.type === "task.assigned" || e.type === "task.completed") {
      tasks = { ...tasks, [e.data.taskId]: taskView(tasks[e.data.taskId], e as TaskEnvelope) };
    }
  }
  return {
    activity,
    chat,
    tasks,
    duplicates: state.duplicates + duplicates,
    fromFeed,
    invalid: [...invalid, ...state.invalid].slice(0, MAX_ITEMS),
  };
}

function taskView(prev: TaskView | undefined, e: TaskEnvelope): TaskView {
  const task = { ...prev?.task, ...e.data.task };
  const status =
    e.type === "task.completed" || prev?.status === "completed"
      ? "completed"
      : e.type === "task.assigned" || task.assigneeId
        ? "assigned"
        : "open";
  return { task, status, updatedAt: e.timestamp };
}

export interface Live {
  state: LiveState;
  /** Adds an event the SDK delivered (already checked against the catalogue); one already seen
   *  is counted as a duplicate and dropped. */
  add(envelope: AnyEnvelope, source: Source): void;
  /** Records an event the SDK's validator refused. */
  refuse(report: InvalidEvent): void;
}

export function useLive(): Live {
  const [state, dispatch] = useReducer(reduce, EMPTY);
  const seen = useRef(new Set<string>());

  const add = useCallback((envelope: AnyEnvelope, source: Source) => {
    const fresh = seen.current.has(envelope.id) ? [] : [{ envelope, source, receivedAt: Date.now() }];
    seen.current.add(envelope.id);
    dispatch({ fresh, duplicates: 1 - fresh.length, invalid: [] });
  }, []);

  const refuse = useCallback((r: InvalidEvent) => {
    const invalid = { name: r.event, source: r.meta.source, problems: r.problems as Problem[], receivedAt: Date.now() };
    console.warn(`tidings: ${r.event} from the ${r.meta.source} does not fit the event catalogue`, r.problems, r.args);
    dispatch({ fresh: [], duplicates: 0, invalid: [invalid] });
  }, []);

  return useMemo(() => ({ state, add, refuse }), [state, add, refuse]);
}

export function chatText(r: Received): { id: string; userId: string; name: string; text: string; sentAt: string } {
  const e = r.envelope as ChatEnvelope;
  return { ...e.data.message, id: e.id };
}
