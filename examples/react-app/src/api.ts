// The example server's HTTP API: the demo login, demo tasks and the REST feed's URL (the SDK reads
// the feed itself).
import { serverUrl } from "./config";

export interface Session {
  token: string;
  user: { id: string; tenantId: string; name: string };
  expiresAt: string;
}

export interface DemoUser {
  id: string;
  tenantId: string;
  name: string;
}

async function json<T>(res: Response): Promise<T> {
  const body: unknown = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = body as { error?: string; code?: string };
    throw new Error(err.error ?? `HTTP ${res.status}`);
  }
  return body as T;
}

/** DEMO ONLY: `POST /api/dev/login`. */
export async function devLogin(userId: string): Promise<Session> {
  const res = await fetch(`${serverUrl}/api/dev/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ userId }),
  });
  return json<Session>(res);
}

/** DEMO ONLY: `GET /api/dev/users`. */
export async function demoUsers(): Promise<DemoUser[]> {
  const res = await fetch(`${serverUrl}/api/dev/users`);
  return (await json<{ users: DemoUser[] }>(res)).users;
}

/** DEMO ONLY: `POST /api/dev/tasks` creates a task (`task.created` to the tenant). */
export async function createDemoTask(token: string, title: string): Promise<{ id: string; taskId: string }> {
  const res = await fetch(`${serverUrl}/api/dev/tasks`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ title }),
  });
  return json(res);
}

/** The feed's URL for a tenant (`FeedConfig` / the `feed` option of `connect`). */
export function feedUrl(tenantId: string): string {
  return `${serverUrl}/api/polling/${encodeURIComponent(tenantId)}`;
}
