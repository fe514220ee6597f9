import { useEffect, useRef, useState } from "react";
import type { Session } from "./api";
import { avatarColor } from "./App";
import { useRoom, useTidings } from "./events";
import { chatText, type Received } from "./live";

const ACK_TIMEOUT_MS = 8000;

interface Outgoing {
  key: string;
  text: string;
  sentAt: number;
  status: "pending" | "delivered" | "failed";
  /** The envelope id of the broadcast, from the ack. */
  id?: string;
  error?: string;
}

function newKey(): string {
  return typeof crypto.randomUUID === "function" ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
}

export function Chat({ session, chatId, messages }: { session: Session; chatId: string; messages: Received[] }) {
  const room = `chat:${session.user.tenantId}:${chatId}`;
  // A failed join (refused, or its ack timed out) is retried by leaving the room for a moment:
  // useRoom keeps a membership while any component holds it, so it must be released first.
  const [holding, setHolding] = useState(true);
  const membership = useRoom(holding ? room : null);
  const rejoin = () => {
    setHolding(false);
    setTimeout(() => setHolding(true), 50);
  };
  const socket = useTidings();
  const [text, setText] = useState("");
  const [outgoing, setOutgoing] = useState<Outgoing[]>([]);
  const bottom = useRef<HTMLDivElement>(null);

  const send = (o: Outgoing) => {
    setOutgoing((all) => [...all.filter((x) => x.key !== o.key), { ...o, status: "pending", error: undefined }]);
    const settle = (patch: Partial<Outgoing>) =>
      setOutgoing((all) => all.map((x) => (x.key === o.key ? { ...x, ...patch } : x)));
    socket
      .timeout(ACK_TIMEOUT_MS)
      // The idempotency key makes a retry after a lost ack harmless: the server answers with the
      // first message instead of posting it twice.
      .emitWithAck("chat.message", { chatId, text: o.text, idempotencyKey: o.key })
      .then((ack) => {
        if (ack.ok) settle({ status: "delivered", id: ack.id });
        else settle({ status: "failed", error: ack.error });
      })
      .catch((e: unknown) => settle({ status: "failed", error: e instanceof Error ? e.message : String(e) }));
  };

  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    const t = text.trim();
    if (t === "") return;
    setText("");
    send({ key: newKey(), text: t, sentAt: Date.now(), status: "pending" });
  };

  // One timeline: the room's messages, with my own shown once (my pending/failed ones, and the
  // broadcast of a delivered one marked with its delivery).
  const mine = new Map(outgoing.filter((o) => o.id !== undefined).map((o) => [o.id!, o]));
  const rows: { key: string; at: number; el: React.ReactNode }[] = [];
  for (const r of messages) {
    const m = chatText(r);
    if ((r.envelope.data as { chatId?: string }).chatId !== chatId) continue;
    const own = mine.get(m.id);
    rows.push({
      key: m.id,
      at: Date.parse(m.sentAt) || r.receivedAt,
      el: (
        <Bubble
          key={m.id}
          name={m.name}
          userId={m.userId}
          text={m.text}
          me={m.userId === session.user.id}
          status={own !== undefined || m.userId === session.user.id ? "delivered" : undefined}
          source={r.source}
        />
      ),
    });
  }
  const shown = new Set(rows.map((r) => r.key));
  for (const o of outgoing) {
    if (o.id !== undefined && shown.has(o.id)) continue;
    rows.push({
      key: o.key,
      at: o.sentAt,
      el: (
        <Bubble
          key={o.key}
          name={session.user.name}
          userId={session.user.id}
          text={o.text}
          me
          status={o.status}
          error={o.error}
          onRetry={o.status === "failed" ? () => send(o) : undefined}
        />
      ),
    });
  }
  rows.sort((a, b) => a.at - b.at);

  useEffect(() => {
    bottom.current?.scrollIntoView({ block: "end" });
  }, [rows.length]);

  return (
    <div className="card chat">
      <div className="card-head">
        <h2>
          # {chatId}
        </h2>
        <span className={`room-status ${membership.status}`} data-testid="room-status" data-status={membership.status}>
          {membership.status === "joined"
            ? "joined"
            : membership.status === "failed"
              ? `join failed: ${membership.error.message}`
              : membership.status}
          {membership.status === "failed" && (
            <button className="link" data-testid="room-retry" onClick={rejoin}>
              retry
            </button>
          )}
        </span>
      </div>
      <div className="messages" data-testid="chat-messages">
        {rows.length === 0 && <p className="empty">No messages yet. Say hi!</p>}
        {rows.map((r) => r.el)}
        <div ref={bottom} />
      </div>
      <form className="inline-form" onSubmit={submit}>
        <input
          data-testid="chat-input"
          placeholder={`Message #${chatId}`}
          value={text}
          maxLength={4000}
          onChange={(e) => setText(e.target.value)}
        />
        <button data-testid="chat-send" disabled={text.trim() === ""}>
          Send
        </button>
      </form>
    </div>
  );
}

function Bubble(props: {
  name: string;
  userId: string;
  text: string;
  me: boolean;
  status?: Outgoing["status"];
  error?: string;
  source?: "socket" | "feed";
  onRetry?: () => void;
}) {
  return (
    <div className={`bubble ${props.me ? "me" : ""}`} data-testid="chat-message" data-status={props.status ?? "received"}>
      {!props.me && (
        <span className="avatar small" style={{ background: avatarColor(props.userId) }}>
          {props.name.slice(0, 1)}
        </span>
      )}
      <div className="bubble-body">
        {!props.me && <span className="bubble-name">{props.name}</span>}
        <span className="bubble-text" data-testid="chat-text">
          {props.text}
        </span>
        {props.me && props.status !== undefined && (
          <span className={`delivery ${props.status}`} data-testid="chat-delivery">
            {props.status === "pending" && "sending…"}
            {props.status === "delivered" && "delivered ✓"}
            {props.status === "failed" && (
              <>
                failed{props.error ? `: ${props.error}` : ""}{" "}
                <button className="link" onClick={props.onRetry}>
                  retry
                </button>
              </>
            )}
          </span>
        )}
        {props.source === "feed" && <span className="via">via feed</span>}
      </div>
    </div>
  );
}
