// Contract 004 (discussion rooms) with an unmodified socket.io-client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, WAIT_MS, as, fresh, refusal, token } from './lib.mjs';

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

test('no token: connect_error "Authentication required"', async () => {
  assert.equal(await refusal({}), 'Authentication required');
  assert.equal(await refusal({ transports: ['polling'] }), 'Authentication required');
});

test('a bad or expired token: connect_error "Invalid token"', async () => {
  assert.equal(await refusal({ auth: { token: 'not-a-jwt' } }), 'Invalid token');
  assert.equal(await refusal({ auth: { token: token('ana', { expiresIn: -60 }) } }), 'Invalid token');
  const forged = token('ana').slice(0, -2) + 'xx';
  assert.equal(await refusal({ auth: { token: forged } }), 'Invalid token');
});

test('the token may come in an Authorization header', async () => {
  const client = await new Client('/', {
    transports: ['polling'],
    extraHeaders: { authorization: `Bearer ${token('ana')}` },
  }).connected();
  client.emit('join_room', fresh('header'));
  assert.deepEqual((await client.next('room_history')).messages, []);
  client.close();
});

test('without --socketio-recovery the CONNECT reply has no pid and events no offset', async () => {
  const client = await as('ana');
  assert.equal(client.socket._pid, undefined);
  let args;
  client.socket.once('room_history', (...all) => { args = all; });
  client.emit('join_room', fresh('no-offset'));
  await client.next('room_history');
  assert.equal(args.length, 1, 'the payload alone');
  client.close();
});

test('the server announces the contract ping timings', async () => {
  const client = await as('ana');
  assert.equal(client.socket.io.engine._pingInterval, 25000);
  assert.equal(client.socket.io.engine._pingTimeout, 60000);
  client.close();
});

test('join_room: room_history to the joiner, user_joined to the room', async () => {
  const room = fresh('asteroid');
  const ana = await as('ana');
  ana.emit('join_room', room);
  assert.deepEqual(await ana.next('room_history'), { roomId: room, messages: [] });
  const ben = await as('ben');
  ben.emit('join_room', room);
  await ben.next('room_history');
  const joined = await ana.next('user_joined');
  assert.equal(joined.userId, 'ben');
  assert.equal(joined.email, 'ben@example.com');
  assert.match(joined.timestamp, ISO);
  await ben.silent('user_joined');
  ana.close();
  ben.close();
});

test('send_message: trimmed, stored, broadcast as new_message to everyone', async () => {
  const room = fresh('asteroid');
  const ana = await as('ana');
  const ben = await as('ben');
  for (const c of [ana, ben]) {
    c.emit('join_room', room);
    await c.next('room_history');
  }
  ana.emit('send_message', { roomId: room, content: '  This asteroid is getting closer!  ' });
  for (const c of [ana, ben]) {
    const message = await c.next('new_message');
    assert.equal(message.content, 'This asteroid is getting closer!');
    assert.equal(message.roomId, room);
    assert.equal(message.userId, 'ana');
    assert.match(message.createdAt, ISO);
    assert.ok(message.id);
    assert.deepEqual(message.user, { id: 'ana', name: 'Ana', avatar: 'https://img.example/ana.png' });
  }
  ana.close();
  ben.close();
});

test('room_history holds the last 50 messages, oldest first', async () => {
  const room = fresh('history');
  // Two senders, so neither reaches the per-connection rate limit.
  const senders = [await as('ana'), await as('ben')];
  for (const c of senders) {
    c.emit('join_room', room);
    await c.next('room_history');
  }
  for (let i = 1; i <= 54; i += 1) {
    senders[i % 2].emit('send_message', { roomId: room, content: `message ${i}` });
    await senders[0].next('new_message');
  }
  const late = await as('carl');
  late.emit('join_room', room);
  const { messages } = await late.next('room_history');
  assert.equal(messages.length, 50);
  assert.equal(messages[0].content, 'message 5');
  assert.equal(messages[49].content, 'message 54');
  assert.equal(messages[0].user.name, 'Ben');
  [...senders, late].forEach((c) => c.close());
});

test("one socket's events are handled in the order it sent them", async () => {
  const room = fresh('order');
  const ana = await as('ana');
  // Sent without waiting: the join is still being stored when the messages arrive.
  ana.emit('join_room', room);
  const count = 30;
  for (let i = 1; i <= count; i += 1) {
    ana.emit('send_message', { roomId: room, content: `message ${i}` });
  }
  assert.deepEqual((await ana.next('room_history')).messages, []);
  for (let i = 1; i <= count; i += 1) {
    const message = await ana.next('new_message');
    assert.equal(message.content, `message ${i}`);
    assert.equal(message.seq, i);
  }
  await ana.silent('error');
  ana.close();
});

test('a refused send_message is answered before a later message is broadcast', async () => {
  const room = fresh('refused');
  const ana = await as('ana');
  ana.emit('join_room', room);
  await ana.next('room_history');
  // Sent without waiting: the first is refused, the second stored and broadcast.
  for (let i = 1; i <= 5; i += 1) {
    ana.emit('send_message', { roomId: room, content: '   ' });
    ana.emit('send_message', { roomId: room, content: `kept ${i}` });
  }
  const arrived = () => ana.events.filter((e) => e.event === 'error' || e.event === 'new_message');
  const deadline = Date.now() + WAIT_MS;
  while (arrived().length < 10 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const order = arrived().map((e) => (e.event === 'error' ? 'refused' : e.args[0].content));
  assert.deepEqual(order, [
    'refused', 'kept 1', 'refused', 'kept 2', 'refused', 'kept 3',
    'refused', 'kept 4', 'refused', 'kept 5',
  ]);
  ana.close();
});

test('send_message validation: empty, too long, not a member', async () => {
  const room = fresh('rules');
  const ana = await as('ana');
  ana.emit('join_room', room);
  await ana.next('room_history');
  ana.emit('send_message', { roomId: room, content: '   ' });
  assert.match((await ana.next('error')).message, /empty/);
  ana.emit('send_message', { roomId: room, content: 'x'.repeat(1001) });
  assert.match((await ana.next('error')).message, /1000/);
  ana.emit('send_message', { roomId: room, content: 'é'.repeat(1000) });
  assert.equal((await ana.next('new_message')).content.length, 1000);
  const ben = await as('ben');
  ben.emit('send_message', { roomId: room, content: 'let me in' });
  const error = await ben.next('error');
  assert.equal(error.message, 'not a member of this room');
  assert.equal(error.code, 'NOT_IN_ROOM');
  ben.emit('send_message', 'not an object');
  assert.ok((await ben.next('error')).message);
  assert.ok(ben.socket.connected, 'bad input leaves the connection open');
  await ana.silent('new_message');
  ana.close();
  ben.close();
});

test('typing_start / typing_stop reach the others only', async () => {
  const room = fresh('typing');
  const ana = await as('ana');
  const ben = await as('ben');
  for (const c of [ana, ben]) {
    c.emit('join_room', room);
    await c.next('room_history');
  }
  ana.emit('typing_start', room);
  assert.deepEqual(await ben.next('user_typing'), { roomId: room, userId: 'ana', email: 'ana@example.com' });
  ana.emit('typing_stop', room);
  assert.deepEqual(await ben.next('user_stopped_typing'), { roomId: room, userId: 'ana' });
  await ana.silent('user_typing');
  await ana.silent('user_stopped_typing');
  ana.close();
  ben.close();
});

test('leave_room: user_left to the room, and no more messages', async () => {
  const room = fresh('leave');
  const ana = await as('ana');
  const ben = await as('ben');
  for (const c of [ana, ben]) {
    c.emit('join_room', room);
    await c.next('room_history');
  }
  ben.emit('leave_room', room);
  const left = await ana.next('user_left');
  assert.equal(left.userId, 'ben');
  assert.equal(left.email, 'ben@example.com');
  assert.match(left.timestamp, ISO);
  ana.emit('send_message', { roomId: room, content: 'still here?' });
  await ana.next('new_message');
  await ben.silent('new_message');
  ana.close();
  ben.close();
});

test('a whole flow over long-polling only', async () => {
  const room = fresh('polling');
  const options = { transports: ['polling'], upgrade: false };
  const ana = await as('ana', '/', options);
  const ben = await as('ben', '/', options);
  assert.equal(ana.socket.io.engine.transport.name, 'polling');
  for (const c of [ana, ben]) {
    c.emit('join_room', room);
    await c.next('room_history');
  }
  ben.emit('typing_start', room);
  await ana.next('user_typing');
  ben.emit('send_message', { roomId: room, content: 'over polling' });
  assert.equal((await ana.next('new_message')).content, 'over polling');
  ben.emit('leave_room', room);
  assert.equal((await ana.next('user_left')).userId, 'ben');
  ana.close();
  ben.close();
});

test('a session ends when its token expires: the socket is disconnected', async () => {
  const client = await new Client('/', { auth: { token: token('ana', { expiresIn: 2 }) } }).connected();
  const reason = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('still connected 6 s later')), 6000);
    client.socket.once('disconnect', (why) => { clearTimeout(timer); resolve(why); });
  });
  assert.equal(reason, 'io server disconnect');
});
