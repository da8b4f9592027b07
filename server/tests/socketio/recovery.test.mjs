// Connection state recovery (`--socketio-recovery`): a socket.io client that loses its
// connection gets what it missed when it reconnects, with socket.io-client's own recovery.
// Run against one node by server/tests/api/socketio.rs, and with CONFAB_URLS (three nodes,
// the first a process the test may kill) by server/tests/api/cluster.rs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, as, fresh, token, URL } from './lib.mjs';

const URLS = (process.env.CONFAB_URLS || URL).split(',');
const VICTIM_PID = Number(process.env.CONFAB_VICTIM_PID || 0);
// The server's bound on messages one reconnect replays (recovery.rs, MAX_MISSED_MESSAGES).
const MAX_MISSED_MESSAGES = 500;

/** A default-namespace client for `sub` on `base`, connected. */
function recoverable(sub, base = URLS[0]) {
  return new Client('/', { auth: { token: token(sub) } }, base).connected();
}

/** Drops the client's transport as a network failure would. */
async function drop(client) {
  const gone = new Promise((resolve) => client.socket.once('disconnect', resolve));
  client.socket.io.engine.close();
  await gone;
}

/** Reconnects (to `base`, as a load balancer might send it elsewhere); `recovered`. */
async function reconnect(client, base) {
  if (base) client.socket.io.uri = base;
  client.socket.connect();
  await client.connected();
  return client.socket.recovered;
}

/**
 * Sends `count` messages from a 004 client and waits until each is stored (echoed), 100 at
 * a time, well within what the server lets one socket have waiting.
 */
async function post(sender, room, prefix, count) {
  for (let first = 1; first <= count; first += 100) {
    const last = Math.min(count, first + 99);
    for (let i = first; i <= last; i += 1) {
      sender.emit('send_message', { roomId: room, content: `${prefix} ${i}` });
    }
    for (let i = first; i <= last; i += 1) {
      assert.equal((await sender.next('new_message')).content, `${prefix} ${i}`);
    }
  }
}

/** The contents of the next `count` `event`s. */
async function contents(client, event, count) {
  const got = [];
  for (let i = 0; i < count; i += 1) got.push((await client.next(event)).content);
  return got;
}

const numbered = (prefix, count) => Array.from({ length: count }, (_, i) => `${prefix} ${i + 1}`);

/** A room with `ana` (004) and `bob` (004) in it, both on `base`. */
async function roomOf(base = URLS[0]) {
  const room = fresh('recover');
  const ana = await recoverable('ana', base);
  ana.emit('join_room', room);
  await ana.next('room_history');
  const bob = await recoverable('bob', base);
  bob.emit('join_room', room);
  await bob.next('room_history');
  return { room, ana, bob };
}

test('events end with an offset once the CONNECT reply carries a pid', async () => {
  const ana = await recoverable('ana');
  assert.equal(typeof ana.socket._pid, 'string');
  const seen = [];
  ana.socket.onAny((event, ...args) => seen.push({ event, last: args.at(-1) }));
  const room = fresh('offsets');
  ana.emit('join_room', room);
  await ana.next('room_history');
  ana.emit('send_message', { roomId: room, content: 'hi' });
  await ana.next('new_message');
  ana.emit('send_message', { roomId: fresh('nowhere'), content: 'x' });
  await ana.next('error');
  const names = seen.map((e) => e.event);
  for (const name of ['room_history', 'new_message', 'error']) assert.ok(names.includes(name), name);
  for (const { event, last } of seen) assert.equal(typeof last, 'string', event);
  // The contract (004), then the room's hash and the seq of its last message.
  assert.match(ana.socket._lastOffset, /^4\.[A-Za-z0-9_-]{8}:1$/);
  ana.close();
});

test('a dropped socket gets the 20 messages it missed, in order, once each, before newer ones', async () => {
  const { room, ana, bob } = await roomOf();
  await post(bob, room, 'before', 1);
  assert.equal((await ana.next('new_message')).content, 'before 1');

  await drop(ana);
  await post(bob, room, 'missed', 20);
  assert.equal(await reconnect(ana), true, 'recovered');
  assert.deepEqual(await contents(ana, 'new_message', 20), numbered('missed', 20));

  await post(bob, room, 'after', 1);
  assert.equal((await ana.next('new_message')).content, 'after 1');
  await ana.silent('new_message');
  // Still a member, still heard: the recovered socket posts to the room.
  ana.emit('send_message', { roomId: room, content: 'back' });
  assert.equal((await bob.next('new_message')).content, 'back');
  ana.close();
  bob.close();
});

test('recovery works again after a second and a third drop', async () => {
  const { room, ana, bob } = await roomOf();
  for (const round of ['second', 'third', 'fourth']) {
    await drop(ana);
    await post(bob, room, round, 5);
    assert.equal(await reconnect(ana), true, `recovered after the ${round} drop`);
    assert.deepEqual(await contents(ana, 'new_message', 5), numbered(round, 5));
  }
  await ana.silent('new_message');
  ana.close();
  bob.close();
});

test('a contract 001 socket recovers in its own contract', async () => {
  const room = fresh('recover-001');
  const ana = await recoverable('ana');
  ana.emit('join_room', room);
  await ana.next('room_history');
  const cleo = await recoverable('cleo');
  cleo.emit('join_room', { roomId: room, userId: 'cleo', username: 'Cleo' });
  await cleo.next('history');

  await drop(cleo);
  await post(ana, room, 'to 001', 3);
  assert.equal(await reconnect(cleo), true);
  const got = [];
  for (let i = 0; i < 3; i += 1) got.push(await cleo.next('message_received'));
  assert.deepEqual(got.map((m) => m.content), numbered('to 001', 3));
  assert.equal(got[0].userId, 'ana');
  await cleo.silent('new_message');
  ana.close();
  cleo.close();
});

test(`up to ${MAX_MISSED_MESSAGES} missed messages are recovered; one more and the client rejoins`, async () => {
  const { room, ana, bob } = await roomOf();
  await drop(ana);
  await post(bob, room, 'at the bound', MAX_MISSED_MESSAGES);
  assert.equal(await reconnect(ana), true, `${MAX_MISSED_MESSAGES} missed: recovered`);
  const got = await contents(ana, 'new_message', MAX_MISSED_MESSAGES);
  assert.deepEqual(got, numbered('at the bound', MAX_MISSED_MESSAGES));

  await drop(ana);
  await post(bob, room, 'past the bound', MAX_MISSED_MESSAGES + 1);
  assert.equal(await reconnect(ana), false, 'one past the bound: a fresh session');
  await ana.silent('new_message');
  // The client's usual path: join again, and the history has the latest.
  ana.emit('join_room', room);
  const { messages } = await ana.next('room_history');
  assert.equal(messages.at(-1).content, `past the bound ${MAX_MISSED_MESSAGES + 1}`);
  // Live again, and recoverable again.
  await drop(ana);
  await post(bob, room, 'once more', 2);
  assert.equal(await reconnect(ana), true);
  assert.deepEqual(await contents(ana, 'new_message', 2), numbered('once more', 2));
  ana.close();
  bob.close();
});

test('a socket whose user left the room meanwhile is not recovered', async () => {
  const { room, ana, bob } = await roomOf();
  await drop(ana);
  const otherTab = await recoverable('ana');
  otherTab.emit('leave_room', room);
  await post(bob, room, 'after the leave', 2);
  assert.equal(await reconnect(ana), false);
  await ana.silent('new_message');
  otherTab.close();
  ana.close();
  bob.close();
});

test('a pid presented by another user, or a forged offset, gives a fresh session', async () => {
  const { room, ana, bob } = await roomOf();
  const pid = ana.socket._pid;
  const offset = ana.socket._lastOffset;
  ana.close();
  const thief = new Client('/', { auth: { token: token('mallory'), pid, offset } });
  await thief.connected();
  assert.notEqual(thief.socket._pid, pid);
  await post(bob, room, 'not for mallory', 1);
  await thief.silent('new_message');
  const forged = new Client('/', { auth: { token: token('ana'), pid, offset: '4.AAAAAAAA:0' } });
  await forged.connected();
  assert.notEqual(forged.socket._pid, pid);
  thief.close();
  forged.close();
  bob.close();
});

test('a socket recovers on another node, and after its node is killed', { skip: URLS.length < 3 }, async () => {
  const [victim, one, two] = URLS;
  const { room, ana, bob } = await roomOf(one);
  await drop(ana);
  await post(bob, room, 'elsewhere', 20);
  assert.equal(await reconnect(ana, two), true, 'recovered on another node');
  assert.deepEqual(await contents(ana, 'new_message', 20), numbered('elsewhere', 20));

  const carl = await recoverable('carl', victim);
  carl.emit('join_room', room);
  await carl.next('room_history');
  const gone = new Promise((resolve) => carl.socket.once('disconnect', resolve));
  process.kill(VICTIM_PID, 'SIGKILL');
  await gone;
  await post(bob, room, 'after the kill', 20);
  assert.equal(await reconnect(carl, two), true, 'recovered after its node died');
  assert.deepEqual(await contents(carl, 'new_message', 20), numbered('after the kill', 20));
  await post(bob, room, 'live', 1);
  assert.equal((await carl.next('new_message')).content, 'live 1');
  await carl.silent('new_message');
  for (const client of [ana, bob, carl]) client.close();
});
