import { useEffect, useRef, useState } from "react";
import type { ConnectionState, FeedStatus } from "tidings";
import { createDemoTask, type Session } from "./api";
import { avatarColor } from "./App";
import { Chat } from "./Chat";
import { chatId, testReconnectionDelay } from "./config";
import { useConnectionState, useEvent, useTidings, type AnyEnvelope } from "./events";
import { useLive, type Invalid, type Live, type Received, type TaskView } from "./live";

/** After "io server disconnect" (a server shutting down closes its sockets) Socket.IO clients do not
 * reconnect by themselves; the app does, after this long. */
const SERVER_CLOSE_RETRY_MS = testReconnectionDelay ?? 2000;

/** Where the user's last visit stopped (the SDK's cursor), kept across visits: `feed.since`. */
export function cursorKey(user: Session["user"]): string {
  return `tidings-demo-cursor:${user.tenantId}:${user.id}`;
}

/** The SDK's catch-up from the feed after a reconnect that did not recover the session. */
interface CatchUp {
  status: "catching-up" | "caught-up" | "gave-up";
  /** When it started. */
  at: number;
  /** Events the feed delivered since. */
  added: number;
  error?: string;
}

interface Reconnect {
  recovered: boolean;
  /** When the connection was lost before it. */
  lostAt: number;
}

export function Dashboard({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const { user, token } = session;
  const live = useLive();
  const socket = useTidings();
  const state = useConnectionState();
  const [feed, setFeed] = useState<FeedStatus["status"]>("stopped");
  const [lastReconnect, setLastReconnect] = useState<Reconnect | undefined>();
  const [catchUp, setCatchUp] = useState<CatchUp | undefined>();
  const lostAt = useRef(0);
  const [serverClosedAt, setServerClosedAt] = useState<number | undefined>();
  const connectedBefore = useRef(false);
  /** Events the feed delivered since the SDK's catch-up started. */
  const fromFeed = useRef(0);

  // Each listener gets an event the SDK checked against the catalogue (the `validate` option);
  // `lastEventMeta` says whether the socket or the feed delivered it.
  const add = (envelope: AnyEnvelope) => {
    const source = socket.lastEventMeta?.source ?? "socket";
    if (source === "feed") fromFeed.current += 1;
    live.add(envelope, source);
    localStorage.setItem(cursorKey(user), envelope.id);
  };
  useEvent("task.created", add);
  useEvent("task.assigned", add);
  useEvent("task.completed", add);
  useEvent("notification.created", add);
  useEvent("chat.message", add);
  useEvent("invalid", live.refuse);
  useEvent("feed", (s) => {
    setFeed(s.status);
    if (s.status === "catching-up") fromFeed.current = 0;
    if (s.status !== "catching-up" && s.status !== "caught-up" && s.status !== "gave-up") return;
    const added = fromFeed.current;
    const error = s.status === "gave-up" ? s.error : undefined;
    setCatchUp((c) => ({ status: s.status, at: s.status === "catching-up" || !c ? Date.now() : c.at, added, error }));
  });

  // Connected again: say whether the server restored the session. When it did not, the SDK reads
  // what the socket missed from the feed (the `feed` notices above), before the new events.
  useEffect(() => {
    if (state.status !== "connected") {
      if (connectedBefore.current && lostAt.current === 0) lostAt.current = Date.now();
      return;
    }
    const reconnect = connectedBefore.current;
    connectedBefore.current = true;
    if (reconnect) setLastReconnect({ recovered: state.recovered, lostAt: lostAt.current });
    lostAt.current = 0;
    // Only a change of connection (status, new id) matters here.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [state.status, state.status === "connected" ? state.id : undefined]);

  // "io server disconnect": reconnect ourselves after a pause.
  useEffect(() => {
    if (state.status !== "disconnected" || state.reason !== "io server disconnect") {
      setServerClosedAt(undefined);
      return undefined;
    }
    setServerClosedAt(Date.now());
    const t = setTimeout(() => socket.connect(), SERVER_CLOSE_RETRY_MS);
    return () => clearTimeout(t);
  }, [state, socket]);

  return (
    <div className="layout">
      <header className="topbar">
        <div className="brand">
          <span className="brand-dot" />
          Tidings
        </div>
        <ConnectionBadge
          state={state}
          feed={feed}
          lastReconnect={lastReconnect}
          catchUp={catchUp !== undefined && lastReconnect !== undefined && catchUp.at >= lastReconnect.lostAt ? catchUp : undefined}
          serverClosedAt={serverClosedAt}
        />
        <div className="me">
          <span className="avatar small" style={{ background: avatarColor(user.id) }}>
            {user.name.slice(0, 1)}
          </span>
          <span data-testid="signed-in-as">
            {user.name} <small>· {user.tenantId}</small>
          </span>
          <button className="link" data-testid="sign-out" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <main className="grid">
        <section className="panel">
          <Tasks tasks={live.state.tasks} token={token} />
          <Activity live={live} />
        </section>
        <section className="panel chat-panel">
          <Chat session={session} chatId={chatId} messages={live.state.chat} />
        </section>
      </main>
      <footer className="stats" data-testid="stats">
        <span>
          events <b data-testid="stat-events">{live.state.activity.length + live.state.chat.length}</b>
        </span>
        <span title={live.state.invalid[0] ? invalidText(live.state.invalid[0]) : "every event fit the catalogue"}>
          invalid <b data-testid="stat-invalid">{live.state.invalid.length}</b>
        </span>
        <span>
          from feed <b data-testid="stat-from-feed">{live.state.fromFeed}</b>
        </span>
        <span>
          duplicates dropped <b data-testid="stat-duplicates">{live.state.duplicates}</b>
        </span>
      </footer>
    </div>
  );
}

/** The current time, read at render; while `active`, the component re-renders every `every` ms.
 * (Reading the clock at render, not from state set by the last tick, keeps a countdown that starts
 * now from reading a stale "now" that lies before its own start.) */
function useNow(active: boolean, every = 100): number {
  const [, setTick] = useState(0);
  useEffect(() => {
    if (!active) return undefined;
    const t = setInterval(() => setTick((n) => n + 1), every);
    return () => clearInterval(t);
  }, [active, every]);
  return Date.now();
}

/** When `state` entered its current status (or reconnect attempt), fixed in the render that first
 * saw it, so the first frame of a countdown already counts from the right moment. */
function useSince(state: ConnectionState): number {
  const key = state.status === "reconnecting" ? `r${state.attempt}` : state.status;
  const mark = useRef<{ key: string; at: number } | null>(null);
  if (mark.current === null || mark.current.key !== key) mark.current = { key, at: Date.now() };
  return mark.current.at;
}

function ConnectionBadge({
  state,
  feed,
  lastReconnect,
  catchUp,
  serverClosedAt,
}: {
  state: ConnectionState;
  feed: FeedStatus["status"];
  lastReconnect: Reconnect | undefined;
  catchUp: CatchUp | undefined;
  serverClosedAt: number | undefined;
}) {
  const since = useSince(state);
  const counting = state.status === "reconnecting" || serverClosedAt !== undefined;
  const now = useNow(counting);
  let tone: string;
  let label: string;
  let detail = "";
  switch (state.status) {
    case "connecting":
      tone = "pending";
      label = "Connecting…";
      break;
    case "connected":
      tone = "ok";
      label = state.transport === "websocket" ? "WebSocket" : "Long-polling";
      break;
    case "reconnecting": {
      tone = "warn";
      const left = Math.max(0, state.delay - (now - since)) / 1000;
      label = "Reconnecting";
      detail = `attempt ${state.attempt} · ${left > 0 ? `in ${left.toFixed(1)} s` : "now"}`;
      break;
    }
    case "disconnected":
      tone = "down";
      label = "Disconnected";
      detail =
        serverClosedAt !== undefined
          ? `server closed · retry in ${(Math.max(0, SERVER_CLOSE_RETRY_MS - (now - serverClosedAt)) / 1000).toFixed(1)} s`
          : state.reason;
      break;
  }
  const polling = feed === "polling" && state.status !== "connected";
  return (
    <div className="connection">
      <span
        className={`badge ${polling ? "feed" : tone}`}
        data-testid="connection-badge"
        data-status={state.status}
        data-transport={state.status === "connected" ? state.transport : polling ? "feed" : ""}
      >
        <span className="dot" />
        {polling ? "Feed fallback" : label}
        {detail !== "" && (
          <span className="badge-detail" data-testid="connection-detail">
            {detail}
          </span>
        )}
      </span>
      {polling && <span className="badge-note">{label}{detail ? ` · ${detail}` : ""}</span>}
      {feed === "gave-up" && <span className="badge-note error">feed gave up</span>}
      {lastReconnect !== undefined && (
        <span
          className={`badge-note ${lastReconnect.recovered ? "good" : ""}`}
          data-testid="last-reconnect"
          data-recovered={String(lastReconnect.recovered)}
        >
          last reconnect:{" "}
          {lastReconnect.recovered ? "session recovered ✓" : `not recovered · ${catchUpText(catchUp)}`}
        </span>
      )}
    </div>
  );
}

function catchUpText(c: CatchUp | undefined): string {
  switch (c?.status) {
    case undefined:
      return "nothing to catch up from";
    case "catching-up":
      return "reading the feed…";
    case "caught-up":
      return `${c.added} missed from the feed`;
    case "gave-up":
      return `feed catch-up failed (${c.error ?? "no reason given"})`;
  }
}

const STATUS_LABEL: Record<TaskView["status"], string> = { open: "Open", assigned: "Assigned", completed: "Done" };

function Tasks({ tasks, token }: { tasks: Record<string, TaskView>; token: string }) {
  const [title, setTitle] = useState("");
  const [error, setError] = useState<string | undefined>();
  const list = Object.values(tasks).sort((a, b) => b.updatedAt.localeCompare(a.updatedAt));
  const create = (e: React.FormEvent) => {
    e.preventDefault();
    const t = title.trim();
    if (t === "") return;
    setError(undefined);
    createDemoTask(token, t)
      .then(() => setTitle(""))
      .catch((err: unknown) => setError(err instanceof Error ? err.message : String(err)));
  };
  return (
    <div className="card">
      <div className="card-head">
        <h2>Tasks</h2>
        <span className="count">{list.length}</span>
      </div>
      <form className="inline-form" onSubmit={create}>
        <input
          data-testid="task-title"
          placeholder="New task (the bot assigns it)…"
          value={title}
          maxLength={200}
          onChange={(e) => setTitle(e.target.value)}
        />
        <button data-testid="task-create" disabled={title.trim() === ""}>
          Create
        </button>
      </form>
      {error !== undefined && <p className="error">{error}</p>}
      {list.length === 0 ? (
        <p className="empty">No tasks yet.</p>
      ) : (
        <ul className="tasks" data-testid="tasks">
          {list.map((t) => (
            <li key={t.task.id} data-testid="task" data-task-id={t.task.id} data-status={t.status}>
              <span className={`pill ${t.status}`}>{STATUS_LABEL[t.status]}</span>
              <span className="task-title">{t.task.title || t.task.id}</span>
              {t.task.assigneeId !== undefined && <span className="assignee">→ {t.task.assigneeId}</span>}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function invalidText(i: Invalid): string {
  return `${i.name} (${i.source}): ${i.problems.map((p) => `${p.path}: ${p.message}`).join("; ")}`;
}

function describe(r: Received): { icon: string; text: string } {
  const e = r.envelope;
  switch (e.type) {
    case "task.created":
      return { icon: "+", text: `Task created: ${e.data.task.title || e.data.taskId}` };
    case "task.assigned":
      return { icon: "→", text: `${e.data.task.title || e.data.taskId} assigned to ${e.data.task.assigneeId ?? "?"}` };
    case "task.completed":
      return { icon: "✓", text: `Task done: ${e.data.task.title || e.data.taskId}` };
    case "notification.created":
      return { icon: "●", text: e.data.title ?? e.data.text ?? JSON.stringify(e.data) };
    default:
      return { icon: "•", text: e.type };
  }
}

function Activity({ live }: { live: Live }) {
  const items = live.state.activity;
  return (
    <div className="card">
      <div className="card-head">
        <h2>Live feed</h2>
        <span className="count">{items.length}</span>
      </div>
      {items.length === 0 ? (
        <p className="empty">Waiting for task.* and notification.created events…</p>
      ) : (
        <ul className="activity" data-testid="activity">
          {items.map((r) => {
            const d = describe(r);
            return (
              <li
                key={r.envelope.id}
                data-testid="event"
                data-event-id={r.envelope.id}
                data-event-type={r.envelope.type}
                data-source={r.source}
                className="fade-in"
              >
                <span className="icon">{d.icon}</span>
                <span className="event-text">
                  {d.text}
                  {e2eTag(r)}
                </span>
                <span className="event-meta">
                  <code>{r.envelope.type}</code>
                  {r.source === "feed" && <span className="via">via feed</span>}
                  <time>{new Date(r.envelope.timestamp).toLocaleTimeString()}</time>
                </span>
              </li>
            );
          })}
        </ul>
      )}
    </div>
  );
}

function e2eTag(r: Received): string {
  const d = r.envelope.data as { text?: unknown; title?: unknown };
  return r.envelope.type === "notification.created" && typeof d.text === "string" && typeof d.title === "string"
    ? ` — ${d.text}`
    : "";
}
