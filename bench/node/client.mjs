// socket.io-client 4.8.4 side of the Tidings benchmarks. Spawned by `tidings-bench` (bench/src);
// prints one JSON object (the result) as its last stdout line.
//
//   node client.mjs throughput URL N   receive N `task.created` events
//   node client.mjs rtt URL N          N sequential emitWithAck("echo", task)
//   node client.mjs idle URL N         open N idle connections, report RSS
import { io } from "socket.io-client";
import { readFileSync } from "node:fs";

const [mode, url, nArg] = process.argv.slice(2);
const n = Number(nArg);
const opts = (auth) => ({
  transports: ["websocket"],
  forceNew: true,
  reconnection: false,
  timeout: 60000,
  auth,
});

function rssBytes() {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
}
const cpuSeconds = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
};
// Exit only once the line is written: stdout is a pipe, and process.exit() would cut it at 64 KiB.
const done = (obj) => process.stdout.write(JSON.stringify(obj) + "\n", () => process.exit(0));
const fail = (msg) => {
  process.stderr.write(`node client: ${msg}\n`);
  process.exit(1);
};

if (mode === "throughput") {
  const cpu0 = cpuSeconds();
  const t0 = process.hrtime.bigint();
  const socket = io(url, opts({ mode: "throughput", n }));
  let count = 0;
  let check = 0;
  socket.on("task.created", (task) => {
    // Touch the payload like a typed handler would.
    check += task.priority + task.title.length;
    if (++count === n) {
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      done({ events: count, wall_s: wall, cpu_s: cpuSeconds() - cpu0, check });
    }
  });
  socket.on("connect_error", (e) => fail(`connect_error ${e.message}`));
  socket.on("disconnect", (r) => count < n && fail(`disconnected (${r}) after ${count} events`));
} else if (mode === "rtt") {
  const socket = io(url, opts({ mode: "rtt" }));
  socket.on("connect_error", (e) => fail(`connect_error ${e.message}`));
  socket.on("connect", async () => {
    const task = JSON.parse(process.env.BENCH_TASK_JSON);
    const lat = new Array(n);
    for (let i = 0; i < n; i++) {
      const t = process.hrtime.bigint();
      const reply = await socket.timeout(10000).emitWithAck("echo", task);
      if (!reply || reply.ok !== true) return fail(`bad ack ${JSON.stringify(reply)}`);
      lat[i] = Number(process.hrtime.bigint() - t) / 1e3;
    }
    done({ lat_us: lat });
  });
} else if (mode === "idle") {
  if (global.gc) global.gc();
  const rss0 = rssBytes();
  const sockets = [];
  let connected = 0;
  const batch = 200;
  for (let i = 0; i < n; i += batch) {
    const wave = [];
    for (let j = i; j < Math.min(n, i + batch); j++) {
      const s = io(url, opts({ mode: "idle" }));
      sockets.push(s);
      wave.push(
        new Promise((resolve, reject) => {
          s.once("connect", () => { connected++; resolve(); });
          s.once("connect_error", (e) => reject(new Error(`connect_error ${e.message}`)));
        }),
      );
    }
    try { await Promise.all(wave); } catch (e) { fail(e.message); }
  }
  await new Promise((r) => setTimeout(r, 2000));
  if (global.gc) global.gc();
  await new Promise((r) => setTimeout(r, 500));
  const lost = sockets.filter((s) => !s.connected).length;
  if (lost) fail(`${lost} connections dropped while idle`);
  done({ connections: connected, rss_before: rss0, rss_after: rssBytes() });
} else {
  fail(`unknown mode ${mode}`);
}
