// Contract 001 (chat rooms) with an unmodified socket.io-client. The server runs with
// CONFAB_ANONYMOUS=allow, since 001 clients send no token.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, PlainClient, as, fresh, token } from './lib.mjs';

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const anonymous = () => new Client('/').connected();

/** A room made with create_room, and clients that joined it. */
async function roomWith(...names) {
  const clients = [];
  const creator = await anonymous();
  creator.emit('create_room', { name: 'General Chat', userId: `${names[0]}-id` });
  const { id } = await creator.next('room_created');
  for (const name of names) {
    const client = name === names[0] ? creator : await anonymous();
    client.emit('join_room', { roomId: id, userId: `${name}-id`, username: name, avatar: `https://img.example/${name}.png` });
    await client.next('history');
    clients.push(client);
  }
  return { id, clients };
}

test('create_room: room_created {id (uuid), name, createdAt}', async () => {
  const client = await anonymous();
  client.emit('create_room', { name: 'General Chat', userId: 'user-1' });
  const room = await client.next('room_created');
  assert.match(room.id, UUID);
  assert.equal(room.name, 'General Chat');
  assert.match(room.createdAt, ISO);
});

test('join_room upserts the user: history to the joiner, user_joined to the room', async () => {
  const { id, clients: [jane] } = await roomWith('jane');
  jane.emit('send_message', { roomId: id, userId: 'jane-id', content: 'Hi there', type: 'text' });
  await jane.next('message_received');
  const john = await anonymous();
  john.emit('join_room', { roomId: id, userId: 'john-id', username: 'JohnDoe' });
  const history = await john.next('history');
  assert.equal(history.length, 1);
  assert.equal(history[0].content, 'Hi there');
  assert.equal(history[0].userId, 'jane-id');
  assert.deepEqual(history[0].user, { username: 'jane', avatar: 'https://img.example/jane.png' });
  assert.match(history[0].createdAt, ISO);
  assert.ok(history[0].id);
  const joined = await jane.next('user_joined');
  assert.equal(joined.userId, 'john-id');
  assert.equal(joined.username, 'JohnDoe');

  // Joining again with a new name updates the user everywhere.
  john.emit('join_room', { roomId: id, userId: 'john-id', username: 'John' });
  await john.next('history');
  john.emit('send_message', { roomId: id, userId: 'john-id', content: 'renamed' });
  assert.equal((await jane.next('message_received')).user.username, 'John');
});

test('send_message: message_received to everyone in the room, text or image', async () => {
  const { id, clients: [ana, ben] } = await roomWith('ana', 'ben');
  ana.emit('send_message', { roomId: id, userId: 'ana-id', content: 'Hello world!', type: 'text' });
  for (const client of [ana, ben]) {
    const message = await client.next('message_received');
    assert.equal(message.content, 'Hello world!');
    assert.equal(message.userId, 'ana-id');
    assert.equal(message.user.username, 'ana');
    assert.match(message.createdAt, ISO);
  }
  ben.emit('send_message', { roomId: id, userId: 'ben-id', content: 'https://img.example/cat.png', type: 'image' });
  assert.equal((await ana.next('message_received')).type, 'image');
});

test('typing: user_typing {userId, isTyping} to the others only', async () => {
  const { id, clients: [ana, ben] } = await roomWith('ana', 'ben');
  ana.emit('typing', { roomId: id, userId: 'ana-id', isTyping: true });
  const typing = await ben.next('user_typing');
  assert.equal(typing.userId, 'ana-id');
  assert.equal(typing.isTyping, true);
  ana.emit('typing', { roomId: id, userId: 'ana-id', isTyping: false });
  assert.equal((await ben.next('user_typing')).isTyping, false);
  await ana.silent('user_typing');
});

test('leave_room: user_left {userId} to the room', async () => {
  const { id, clients: [ana, ben] } = await roomWith('ana', 'ben');
  ben.emit('leave_room', { roomId: id, userId: 'ben-id' });
  assert.equal((await ana.next('user_left')).userId, 'ben-id');
  ana.emit('send_message', { roomId: id, userId: 'ana-id', content: 'gone?' });
  await ana.next('message_received');
  await ben.silent('message_received');
});

test('failures: error {code, message} with stable codes', async () => {
  const { id, clients: [ana] } = await roomWith('ana');
  const cases = [
    [['join_room', { roomId: 'no-such-room', userId: 'ana-id', username: 'ana' }], 'ROOM_NOT_FOUND'],
    [['send_message', { roomId: id, userId: 'ana-id', content: '' }], 'VALIDATION_ERROR'],
    [['send_message', { roomId: id, userId: 'ana-id', content: 'x', type: 'video' }], 'INVALID_PAYLOAD'],
    [['send_message', { roomId: id }], 'INVALID_PAYLOAD'],
    [['create_room', { userId: 'ana-id' }], 'INVALID_PAYLOAD'],
    [['typing', { roomId: 'elsewhere', userId: 'ana-id', isTyping: true }], 'ROOM_NOT_FOUND'],
  ];
  for (const [[event, payload], code] of cases) {
    ana.emit(event, payload);
    const error = await ana.next('error');
    assert.equal(error.code, code, `${event} ${JSON.stringify(payload)}: ${error.message}`);
    assert.ok(error.message);
  }
  const stranger = await anonymous();
  stranger.emit('send_message', { roomId: id, userId: 'stranger-id', content: 'hi' });
  assert.equal((await stranger.next('error')).code, 'NOT_IN_ROOM');
  assert.ok(ana.socket.connected && stranger.socket.connected);
});

test('with a token, a payload userId other than the token subject is refused', async () => {
  const { id } = await roomWith('ana');
  const ben = await as('ben');
  ben.emit('join_room', { roomId: id, userId: 'someone-else', username: 'Imposter' });
  assert.equal((await ben.next('error')).code, 'USER_MISMATCH');
  ben.emit('join_room', { roomId: id, userId: 'ben', username: 'Ben' });
  await ben.next('history');
});

test('anonymous users cannot pass for token users', async () => {
  const { id, clients: [ana] } = await roomWith('ana');
  const real = await as('carl');
  real.emit('join_room', { roomId: id, userId: 'carl', username: 'Carl' });
  await real.next('history');
  const fake = await anonymous();
  fake.emit('join_room', { roomId: id, userId: 'carl', username: 'Carl' });
  await fake.next('history');
  fake.emit('send_message', { roomId: id, userId: 'carl', content: 'I am Carl' });
  // Stored under its own identity: the token user's sockets do not count it as theirs.
  const [fromFake] = [await real.next('message_received')];
  assert.equal(fromFake.content, 'I am Carl');
  await ana.next('message_received');
  real.emit('leave_room', { roomId: id, userId: 'carl' });
  await ana.next('user_left');
  fake.emit('send_message', { roomId: id, userId: 'carl', content: 'still here' });
  assert.equal((await ana.next('message_received')).content, 'still here', 'the anonymous carl was not removed');
});

test('001 and 004 clients share one server and one room', async () => {
  const { id, clients: [ana] } = await roomWith('ana');
  const dora = await as('dora');
  dora.emit('join_room', id);
  await dora.next('room_history');
  assert.equal((await ana.next('user_joined')).userId, 'dora');
  ana.emit('send_message', { roomId: id, userId: 'ana-id', content: 'from 001' });
  const seenBy004 = await dora.next('new_message');
  assert.equal(seenBy004.content, 'from 001');
  assert.equal(seenBy004.user.name, 'ana');
  assert.equal((await ana.next('message_received')).content, 'from 001', 'the sender gets it too');
  dora.emit('send_message', { roomId: id, content: 'from 004' });
  const seenBy001 = await ana.next('message_received');
  assert.equal(seenBy001.content, 'from 004');
  assert.equal(seenBy001.user.username, 'Dora');
  dora.emit('typing_start', id);
  assert.equal((await ana.next('user_typing')).isTyping, true);
});

test('a room shared between Socket.IO and /ws clients', async () => {
  const native = await PlainClient.open('/ws');
  native.send({ type: 'auth', token: token('wes') });
  await native.next('auth:ok');
  native.send({ type: 'room:create', roomType: 'chat', maxUsers: 10 });
  const { room } = await native.next('room:created');
  const dora = await as('dora');
  dora.emit('join_room', room.code);
  await dora.next('room_history');
  assert.equal((await native.next('room:user_joined')).user.userId, 'dora');
  dora.emit('send_message', { roomId: room.code, content: 'hello /ws' });
  const chat = await native.next('room:chat');
  assert.equal(chat.message, 'hello /ws');
  assert.equal(chat.from, 'dora');
  assert.equal((await dora.next('new_message')).content, 'hello /ws', 'the sender gets it too');
  native.send({ type: 'room:chat', code: room.code, message: 'hello Socket.IO' });
  const message = await dora.next('new_message');
  assert.equal(message.content, 'hello Socket.IO');
  assert.equal(message.userId, 'wes');
  native.close();
});
