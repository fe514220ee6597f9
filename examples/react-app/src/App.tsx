import { useEffect, useMemo, useState } from "react";
import type { TidingsOptions } from "tidings";
import { TidingsProvider } from "tidings/react";
import { demoUsers, devLogin, feedUrl, type DemoUser, type Session } from "./api";
import { feedAfter, serverUrl, testReconnectionDelay } from "./config";
import { Dashboard, cursorKey } from "./Dashboard";
import { validateEvent } from "./events";

const SESSION_KEY = "tidings-demo-session";

function storedSession(): Session | undefined {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? "null") as Session | null;
    return s !== null && Date.parse(s.expiresAt) > Date.now() + 60_000 ? s : undefined;
  } catch {
    return undefined;
  }
}

export function App() {
  const [session, setSession] = useState<Session | undefined>(storedSession);
  const signOut = () => {
    sessionStorage.removeItem(SESSION_KEY);
    setSession(undefined);
  };
  if (session === undefined) {
    return (
      <Login
        onSession={(s) => {
          sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
          setSession(s);
        }}
      />
    );
  }
  return <Connected key={session.token} session={session} onSignOut={signOut} />;
}

function Connected({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const options = useMemo<TidingsOptions>(
    () => ({
      auth: { token: session.token },
      // The REST feed: while the socket is down the client polls it, and after a reconnect that
      // did not recover the session it reads what was missed, before the socket's new events;
      // it delivers through the same listeners, each event once. `since`: where this user's last
      // visit stopped, so the events sent while the app was closed are read first.
      feed: {
        url: feedUrl(session.user.tenantId),
        after: feedAfter,
        interval: 5000,
        since: localStorage.getItem(cursorKey(session.user)) ?? undefined,
      },
      // Every catalogue event is checked against the catalogue before a listener sees it.
      validate: validateEvent,
      ackTimeout: 8000,
      ...(testReconnectionDelay !== undefined
        ? {
            reconnectionDelay: testReconnectionDelay,
            reconnectionDelayMax: testReconnectionDelay,
            randomizationFactor: 0,
          }
        : { reconnectionDelay: 1000, reconnectionDelayMax: 8000 }),
    }),
    [session],
  );
  return (
    <TidingsProvider url={serverUrl} options={options}>
      <Dashboard session={session} onSignOut={onSignOut} />
    </TidingsProvider>
  );
}

function Login({ onSession }: { onSession: (s: Session) => void }) {
  const [users, setUsers] = useState<DemoUser[]>([]);
  const [busy, setBusy] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    demoUsers()
      .then((u) => setUsers(u.filter((x) => x.id !== "bot")))
      .catch((e: unknown) => setError(`Cannot reach the server at ${serverUrl}: ${String(e)}`));
  }, []);
  const signIn = (id: string) => {
    setBusy(id);
    setError(undefined);
    devLogin(id)
      .then(onSession)
      .catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)))
      .finally(() => setBusy(undefined));
  };
  return (
    <main className="login">
      <div className="login-card">
        <div className="brand">
          <span className="brand-dot" />
          Tidings
        </div>
        <h1>Live dashboard</h1>
        <p className="muted">
          Sign in as a demo user. Tasks, notifications and chat arrive over Socket.IO, with the REST feed as a
          fallback.
        </p>
        <div className="user-grid">
          {users.map((u) => (
            <button
              key={u.id}
              className="user-button"
              data-testid={`login-${u.id}`}
              disabled={busy !== undefined}
              onClick={() => signIn(u.id)}
            >
              <span className="avatar" style={{ background: avatarColor(u.id) }}>
                {u.name.slice(0, 1)}
              </span>
              <span>
                <strong>{u.name}</strong>
                <small>tenant {u.tenantId}</small>
              </span>
            </button>
          ))}
        </div>
        {error !== undefined && (
          <p className="error" data-testid="login-error">
            {error}
          </p>
        )}
        <p className="fine">Demo login: no password, dev tokens only. Never enable it in production.</p>
      </div>
    </main>
  );
}

export function avatarColor(id: string): string {
  let h = 0;
  for (const c of id) h = (h * 31 + c.charCodeAt(0)) % 360;
  return `hsl(${h} 65% 55%)`;
}
