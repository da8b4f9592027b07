// Events a client sends in the same tick as its `connect` event are answered, on every
// namespace and both transports: the server has every handler in place before the client
// learns it is connected. Each test opens 1,000 fresh sockets over WebSocket and 200 over
// long-polling, because a lost first event showed up in about one connection in a few
// hundred. The server runs with
// CONFAB_ANONYMOUS=allow, so contract 001's clients (which send no token) can connect too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { URL, WAIT_MS, fresh, token } from './lib.mjs';

/** Fresh sockets per namespace and first event over WebSocket, and over long-polling. */
const WEBSOCKET_SOCKETS = 1000;
const POLLING_SOCKETS = 200;
/** Sockets connecting at the same time. */
const AT_ONCE = 50;

const TRANSPORTS = [
  { name: 'websocket', transports: ['websocket'], count: WEBSOCKET_SOCKETS },
  { name: 'polling', transports: ['polling'], count: POLLING_SOCKETS },
];

/** The first argument of the next `event` on `socket`. */
const next = (socket, event) => new Promise((resolve) => socket.once(event, resolve));

/**
 * Opens `count` fresh sockets, `AT_ONCE` at a time, the `index`th with the handshake
 * `auth(index)`. Each calls `first(socket, events, index)` from inside its `connect`
 * listener, so whatever `first` emits synchronously goes out in the same tick; `first`
 * resolves once the server has answered. `events` lists the names of
 * the events the socket received, in order. Returns the sockets that got no answer.
 */
async function firstEvents({ namespace = '/', transports, auth, count, first }) {
  const failures = [];
  let started = 0;
  async function one(index) {
    const socket = io(URL + namespace, {
      forceNew: true,
      reconnection: false,
      transports,
      auth: auth?.(index),
      timeout: WAIT_MS,
    });
    const events = [];
    socket.onAny((event) => events.push(event));
    try {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer within ${WAIT_MS} ms`)), WAIT_MS);
        const settle = (settler) => (value) => {
          clearTimeout(timer);
          settler(value);
        };
        socket.once('connect', () => {
          first(socket, events, index).then(settle(resolve), settle(reject));
        });
        socket.once('connect_error', settle(reject));
      });
    } catch (err) {
      failures.push(`socket ${index}: ${err.message}`);
    } finally {
      socket.disconnect();
    }
  }
  await Promise.all(
    Array.from({ length: AT_ONCE }, async () => {
      while (started < count) await one(started++);
    }),
  );
  return failures;
}

function assertAllAnswered(failures, count) {
  assert.deepEqual(failures.slice(0, 5), [], `${failures.length} of ${count} sockets got no answer`);
}

for (const { name, transports, count } of TRANSPORTS) {
  test(`${name}: contract 004's join_room (no ack) right at connect gets room_history`, async () => {
    const failures = await firstEvents({
      transports,
      count,
      // A user each: one user may be in only so many rooms.
      auth: (index) => ({ token: token(`ana-${name}-${index}`) }),
      first: async (socket) => {
        const room = fresh('first');
        const history = next(socket, 'room_history');
        socket.emit('join_room', room);
        assert.equal((await history).roomId, room);
      },
    });
    assertAllAnswered(failures, count);
  });

  test(`${name}: contract 001's create_room (no ack) right at connect gets room_created`, async () => {
    const failures = await firstEvents({
      transports,
      count,
      first: async (socket, _events, index) => {
        const created = next(socket, 'room_created');
        socket.emit('create_room', { name: 'First', userId: `first-${name}-${index}` });
        assert.equal((await created).name, 'First');
      },
    });
    assertAllAnswered(failures, count);
  });

  test(`${name}: contract 002's ping (acked) right at connect, on /, after welcome`, async () => {
    const failures = await firstEvents({
      transports,
      count,
      auth: () => ({ token: token('ben') }),
      first: async (socket, events) => {
        const answer = await socket.timeout(WAIT_MS).emitWithAck('ping');
        assert.equal(typeof answer.timestamp, 'number');
        assert.deepEqual(events.slice(0, 2), ['welcome', 'authenticated'], 'greeted first');
      },
    });
    assertAllAnswered(failures, count);
  });

  test(`${name}: /media subscribeMedia (acked) right at connect, after welcome`, async () => {
    const failures = await firstEvents({
      namespace: '/media',
      transports,
      count,
      auth: () => ({ token: token('cleo') }),
      first: async (socket, events) => {
        const media = fresh('media');
        const answer = await socket.timeout(WAIT_MS).emitWithAck('subscribeMedia', media);
        assert.deepEqual(answer, { success: true, mediaId: media });
        assert.deepEqual(events.slice(0, 2), ['welcome', 'authenticated'], 'greeted first');
      },
    });
    assertAllAnswered(failures, count);
  });

  test(`${name}: /notifications getConnectionInfo (acked) and heartbeat (no ack) right at connect`, async () => {
    const failures = await firstEvents({
      namespace: '/notifications',
      transports,
      count,
      auth: () => ({ token: token('dan') }),
      first: async (socket, events) => {
        const beat = next(socket, 'heartbeatAck');
        socket.emit('heartbeat', { timestamp: Date.now() });
        const info = await socket.timeout(WAIT_MS).emitWithAck('getConnectionInfo');
        assert.equal(info.socketId, socket.id);
        assert.equal(info.authenticated, true);
        assert.equal(typeof (await beat).serverTime, 'string');
        assert.deepEqual(events.slice(0, 2), ['welcome', 'authenticated'], 'greeted first');
      },
    });
    assertAllAnswered(failures, count);
  });
}
