// Helpers for driving Confab with the real socket.io-client. The Rust test that runs these
// files (server/tests/socketio.rs) starts the server and passes its address and secrets in
// the environment.
import { createHmac } from 'node:crypto';
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import WebSocket from 'ws';

export const URL = process.env.CONFAB_URL;
const SECRET = process.env.CONFAB_JWT_SECRET;
const API_KEY = process.env.CONFAB_API_KEY;
export const WAIT_MS = 5000;

assert.ok(URL && SECRET && API_KEY, 'run through `cargo test --test socketio`');

// Every client a file opened, closed when its tests are done (failed tests included), so
// the process can exit.
const open = new Set();
after(() => open.forEach((client) => client.close()));

const b64url = (value) => Buffer.from(value).toString('base64url');

/** An HS256 JWT for `sub`, as an identity provider would sign it. */
export function token(sub, { expiresIn = 3600, claims = {} } = {}) {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({
    sub,
    username: sub[0].toUpperCase() + sub.slice(1),
    email: `${sub}@example.com`,
    image_url: `https://img.example/${sub}.png`,
    exp: Math.floor(Date.now() / 1000) + expiresIn,
    ...claims,
  }));
  const signature = createHmac('sha256', SECRET).update(`${header}.${body}`).digest('base64url');
  return `${header}.${body}.${signature}`;
}

/**
 * A Socket.IO client that records every event it receives, so a test can wait for the next
 * one of a name without racing its arrival.
 */
export class Client {
  constructor(namespace = '/', options = {}, base = URL) {
    this.events = [];
    this.waiters = [];
    this.socket = io(base + namespace, {
      forceNew: true,
      reconnection: false,
      transports: ['websocket'],
      timeout: WAIT_MS,
      ...options,
    });
    open.add(this);
    this.socket.onAny((event, ...args) => {
      this.events.push({ event, args });
      this.wake();
    });
    this.socket.on('connect_error', (err) => {
      this.events.push({ event: 'connect_error', args: [err] });
      this.wake();
    });
  }

  wake() {
    const waiters = this.waiters;
    this.waiters = [];
    waiters.forEach((wake) => wake());
  }

  /** Resolves once connected; rejects with the `connect_error`. */
  async connected() {
    if (this.socket.connected) return this;
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no connect within the wait')), WAIT_MS);
      this.socket.once('connect', () => { clearTimeout(timer); resolve(); });
      this.socket.once('connect_error', (err) => { clearTimeout(timer); reject(err); });
    });
    return this;
  }

  /** The first argument of the next `event` not yet consumed. */
  async next(event, wait = WAIT_MS) {
    const deadline = Date.now() + wait;
    for (;;) {
      const index = this.events.findIndex((e) => e.event === event);
      if (index >= 0) return this.events.splice(index, 1)[0].args[0];
      const left = deadline - Date.now();
      if (left <= 0) {
        const seen = this.events.map((e) => e.event).join(', ');
        throw new Error(`no ${event} within ${wait} ms (unread: ${seen || 'none'})`);
      }
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  /** Asserts that no `event` arrives for `ms`. */
  async silent(event, ms = 300) {
    await new Promise((resolve) => setTimeout(resolve, ms));
    const got = this.events.filter((e) => e.event === event);
    assert.equal(got.length, 0, `unexpected ${event}: ${JSON.stringify(got.map((e) => e.args))}`);
  }

  emit(event, ...args) {
    this.socket.emit(event, ...args);
  }

  /** Emits and waits for the server's acknowledgement. */
  ack(event, ...args) {
    return this.socket.timeout(WAIT_MS).emitWithAck(event, ...args);
  }

  close() {
    this.socket.disconnect();
  }
}

/** A connected default-namespace client with a token for `sub`. */
export async function as(sub, namespace = '/', options = {}) {
  return new Client(namespace, { auth: { token: token(sub) }, ...options }).connected();
}

/** The `connect_error` message a handshake gets. */
export async function refusal(options) {
  const client = new Client('/', options);
  try {
    await client.connected();
    assert.fail('the connection was accepted');
  } catch (err) {
    return err.message;
  } finally {
    client.close();
  }
}

/** A call to Confab's HTTP API; `key` false leaves the service key out. */
export async function api(method, path, body, { key = true, bearer } = {}) {
  const headers = { 'content-type': 'application/json' };
  if (key) headers.authorization = `Bearer ${API_KEY}`;
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  const response = await fetch(URL + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** A plain WebSocket client (the `/ws` and `/qf` dialects) with the same recording. */
export class PlainClient {
  static async open(path, base = URL) {
    const client = new PlainClient();
    client.ws = new WebSocket(base.replace(/^http/, 'ws') + path);
    open.add(client);
    client.messages = [];
    client.waiters = [];
    client.ws.on('message', (data) => {
      client.messages.push(JSON.parse(data.toString()));
      const waiters = client.waiters;
      client.waiters = [];
      waiters.forEach((wake) => wake());
    });
    await new Promise((resolve, reject) => {
      client.ws.once('open', resolve);
      client.ws.once('error', reject);
    });
    return client;
  }

  send(message) {
    this.ws.send(JSON.stringify(message));
  }

  async next(type, wait = WAIT_MS) {
    const deadline = Date.now() + wait;
    for (;;) {
      const index = this.messages.findIndex((m) => m.type === type);
      if (index >= 0) return this.messages.splice(index, 1)[0];
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${type} within ${wait} ms`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  close() {
    this.ws.close();
  }
}

/**
 * Resolves once the `/qf/notifications` socket `qf` of `sub` receives what is published to
 * its user. The socket signs in after its upgrade, and nothing tells the client when: a
 * ping to oneself, repeated until one arrives, does.
 */
export async function subscribed(qf, sub) {
  const username = sub[0].toUpperCase() + sub.slice(1);
  for (let attempt = 1; ; attempt++) {
    const pinged = await api('POST', `/qf/users/online/${encodeURIComponent(username)}/ping`, {}, { bearer: token(sub) });
    assert.equal(pinged.status, 200, JSON.stringify(pinged.body));
    try {
      await qf.next('ping', 200);
      return;
    } catch (err) {
      if (attempt >= 5) throw err;
    }
  }
}

/** A room id no other test uses. */
export const fresh = (prefix) => `${prefix}-${Math.random().toString(36).slice(2, 10)}`;
