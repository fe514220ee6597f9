#!/usr/bin/env node
// Lets a browser test publish events on the reference server (examples/server) the way a backend
// does: `POST /internal/emit` with the `x-internal-api-key` header. The page cannot send that
// header itself (the reference server's CORS allows `authorization` and `content-type` only, and
// should: the internal API is for backends, not browsers), so it POSTs the body here and this
// relay forwards it with the key. No dependency beyond Node itself.
//
// Usage: node emit-relay.mjs --upstream-port N --key-file FILE --origin ORIGIN [--no-stdin-watch]
//
// Listens on an ephemeral port of 127.0.0.1; once listening, prints exactly one line to stdout:
// {"port":P}. Exits when its stdin reaches end-of-file (a harness holds a pipe to it), on
// SIGTERM/SIGINT.
//
//   POST /emit   the body (an `/internal/emit` body, JSON) is forwarded to
//                http://127.0.0.1:N/internal/emit with the key in FILE (read once, trimmed);
//                the answer is the server's status and JSON body.
//
// CORS: only ORIGIN (the test page's, e.g. http://127.0.0.1:24567) may read the answers, so no
// other page open meanwhile can publish through the relay.

import { readFileSync } from "node:fs";
import http from "node:http";

function fail(message) {
  const usage = "usage: node emit-relay.mjs --upstream-port N --key-file FILE --origin ORIGIN [--no-stdin-watch]";
  process.stderr.write(`emit-relay: ${message}\n${usage}\n`);
  process.exit(2);
}

let upstreamPort;
let keyFile;
let origin;
let stdinWatch = true;
for (let i = 2; i < process.argv.length; i++) {
  const arg = process.argv[i];
  if (arg === "--upstream-port") upstreamPort = Number(process.argv[++i]);
  else if (arg === "--key-file") keyFile = process.argv[++i];
  else if (arg === "--origin") origin = process.argv[++i];
  else if (arg === "--no-stdin-watch") stdinWatch = false;
  else fail(`unknown argument ${JSON.stringify(arg)}`);
}
if (!Number.isInteger(upstreamPort) || upstreamPort <= 0 || upstreamPort > 65535) {
  fail("--upstream-port expects a port");
}
if (!keyFile) fail("--key-file is required");
if (!origin || !/^https?:\/\/[^/]+$/.test(origin)) fail("--origin expects an origin (scheme://host:port)");
const key = readFileSync(keyFile, "utf8").trim();
if (key === "") fail(`${keyFile} is empty`);

const relay = http.createServer((req, res) => {
  res.setHeader("Access-Control-Allow-Origin", origin);
  res.setHeader("Vary", "Origin");
  res.setHeader("Access-Control-Allow-Methods", "POST, OPTIONS");
  res.setHeader("Access-Control-Allow-Headers", "content-type");
  res.setHeader("Cache-Control", "no-store");
  const answer = (status, body) => {
    res.writeHead(status, { "content-type": "application/json" }).end(body);
  };
  if (req.method === "OPTIONS") {
    res.writeHead(204).end();
    return;
  }
  if (req.method !== "POST" || new URL(req.url, "http://127.0.0.1").pathname !== "/emit") {
    req.resume();
    return answer(404, JSON.stringify({ error: `no route ${req.method} ${req.url}` }));
  }
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", async () => {
    try {
      const r = await fetch(`http://127.0.0.1:${upstreamPort}/internal/emit`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-internal-api-key": key },
        body: Buffer.concat(chunks),
      });
      answer(r.status, await r.text());
    } catch (e) {
      answer(502, JSON.stringify({ error: `the reference server did not answer: ${e.message}` }));
    }
  });
});

relay.on("error", (err) => {
  process.stderr.write(`emit-relay: ${err.message}\n`);
  process.exit(1);
});
relay.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: relay.address().port })}\n`);
});

const exit = () => process.exit(0);
process.on("SIGTERM", exit);
process.on("SIGINT", exit);
if (stdinWatch) {
  process.stdin.on("end", exit);
  process.stdin.on("close", exit);
  process.stdin.on("error", exit);
  process.stdin.resume();
}
