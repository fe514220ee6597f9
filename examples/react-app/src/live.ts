// The app's event store: every envelope once, whichever way it came (socket or REST feed), and the
// catch-up from the feed after a reconnect that did not recover the session.
import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from "react";
import { readFeed } from "./api";
import {
  isListened,
  validateServerToClient,
  type AnyEnvelope,
  type ChatEnvelope,
  type Problem,
  type Task,
  type TaskEnvelope,
} from "./events";

export type Source = "socket" | "feed";

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

/** An event as it arrived: its name and its payload, not yet checked. */
export interface Incoming {
  name: string;
  payload: unknown;
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

export interface CatchUp {
  at: number;
  /** Events the feed had that the socket had not delivered. */
  added: number;
  error?: string;
}

export interface Live {
  state: LiveState;
  /** Checks events against the catalogue and adds the valid ones; those already seen are
   *  counted as duplicates and dropped, invalid ones are reported (`state.invalid`, console). */
  ingest(events: Incoming[], source: Source): void;
  /** Reads the feed from the last envelope seen (or from its end) and adds what is new. */
  catchUp(): Promise<CatchUp>;
  lastCatchUp: CatchUp | undefined;
}

export function useLive(tenantId: string, token: string): Live {
  const [state, dispatch] = useReducer(reduce, EMPTY);
  const seen = useRef(new Set<string>());
  /** The last envelope id (or feed cursor) seen: where a catch-up starts. */
  const cursor = useRef<string | undefined>(undefined);
  const running = useRef<Promise<CatchUp> | undefined>(undefined);
  const [lastCatchUp, setLastCatchUp] = useState<CatchUp | undefined>(undefined);

  const ingest = useCallback((events: Incoming[], source: Source) => {
    const fresh: Received[] = [];
    const invalid: Invalid[] = [];
    const envelopes: AnyEnvelope[] = [];
    for (const { name, payload } of events) {
      const problems = validateServerToClient(name, payload);
      if (problems.length > 0) {
        console.warn(`tidings: ${name} from the ${source} does not fit the event catalogue`, problems, payload);
        invalid.push({ name, source, problems, receivedAt: Date.now() });
        continue;
      }
      envelopes.push(payload as AnyEnvelope);
    }
    for (const envelope of envelopes) {
      if (seen.current.has(envelope.id)) continue;
      seen.current.add(envelope.id);
      fresh.push({ envelope, source, receivedAt: Date.now() });
    }
    if (source === "socket" && envelopes.length > 0) cursor.current = envelopes[envelopes.length - 1]!.id;
    dispatch({ fresh, duplicates: envelopes.length - fresh.length, invalid });
    return fresh.length;
  }, []);

  const catchUp = useCallback((): Promise<CatchUp> => {
    // One catch-up at a time; a second request while one runs waits for it, then runs again.
    const run = async (): Promise<CatchUp> => {
      let added = 0;
      try {
        for (let page = 0; page < 50; page += 1) {
          const before = cursor.current;
          const res = await readFeed(tenantId, token, before);
          const events = res.events.filter((e) => isListened(e.event)).map((e) => ({ name: e.event, payload: e.data }));
          added += ingestCounted(events);
          // A socket event that arrived meanwhile is newer than this page: keep it as the cursor.
          if (cursor.current === before) cursor.current = String(res.cursor);
          if (!res.hasMore) break;
        }
        return { at: Date.now(), added };
      } catch (e) {
        return { at: Date.now(), added, error: e instanceof Error ? e.message : String(e) };
      }
    };
    const ingestCounted = (events: Incoming[]): number => {
      const before = seen.current.size;
      ingest(events, "feed");
      return seen.current.size - before;
    };
    const next = (running.current ?? Promise.resolve(undefined)).then(run);
    running.current = next;
    void next.then((r) => {
      if (running.current === next) running.current = undefined;
      setLastCatchUp(r);
    });
    return next;
  }, [ingest, tenantId, token]);

  // Start from the end of the feed (nothing old is replayed), so a later catch-up has a cursor
  // even when no event came before the first disconnect.
  useEffect(() => {
    void catchUp();
  }, [catchUp]);

  return useMemo(() => ({ state, ingest, catchUp, lastCatchUp }), [state, ingest, catchUp, lastCatchUp]);
}

export function chatText(r: Received): { id: string; userId: string; name: string; text: string; sentAt: string } {
  const e = r.envelope as ChatEnvelope;
  return { ...e.data.message, id: e.id };
}
