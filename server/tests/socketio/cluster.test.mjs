// Several nodes, one system: a room shared by a /ws client on the first node, a contract
// 004 client on the second and a contract 001 client on the third. The Rust test starts
// the nodes and passes their addresses in CONFAB_URLS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, PlainClient, token } from './lib.mjs';

const URLS = (process.env.CONFAB_URLS || '').split(',');
assert.equal(URLS.length, 3, 'run through the cluster tests, which start three nodes');

test('a message from any dialect on any node reaches every dialect on every node', async () => {
  const wes = await PlainClient.open('/ws', URLS[0]);
  wes.send({ type: 'auth', token: token('wes') });
  await wes.next('auth:ok');
  wes.send({ type: 'room:create', roomType: 'chat', maxUsers: 10 });
  const { room } = await wes.next('room:created');

  const dora = await new Client('/', { auth: { token: token('dora') } }, URLS[1]).connected();
  dora.emit('join_room', room.code);
  await dora.next('room_history');
  assert.equal((await wes.next('room:user_joined')).user.userId, 'dora');

  const ana = await new Client('/', {}, URLS[2]).connected();
  ana.emit('join_room', { roomId: room.code, userId: 'ana-id', username: 'ana' });
  await ana.next('history');
  // A tokenless 001 user's id is marked as unverified where other contracts show it.
  assert.equal((await dora.next('user_joined')).userId, 'anon:ana-id');

  // Each sender gets its own message back too: read it before the next one.
  wes.send({ type: 'room:chat', code: room.code, message: 'from /ws on node 1' });
  assert.equal((await wes.next('room:chat')).message, 'from /ws on node 1');
  assert.equal((await dora.next('new_message')).content, 'from /ws on node 1');
  assert.equal((await ana.next('message_received')).content, 'from /ws on node 1');

  dora.emit('send_message', { roomId: room.code, content: 'from 004 on node 2' });
  assert.equal((await dora.next('new_message')).content, 'from 004 on node 2');
  assert.equal((await wes.next('room:chat')).message, 'from 004 on node 2');
  const seenBy001 = await ana.next('message_received');
  assert.equal(seenBy001.content, 'from 004 on node 2');
  assert.equal(seenBy001.user.username, 'Dora');

  ana.emit('send_message', { roomId: room.code, userId: 'ana-id', content: 'from 001 on node 3' });
  assert.equal((await ana.next('message_received')).content, 'from 001 on node 3');
  const seenByWs = await wes.next('room:chat');
  assert.equal(seenByWs.from, 'anon:ana-id');
  assert.equal(seenByWs.message, 'from 001 on node 3');
  assert.equal((await dora.next('new_message')).content, 'from 001 on node 3');

  // Typing from 004 on node 2 reaches 001 on node 3.
  dora.emit('typing_start', room.code);
  assert.equal((await ana.next('user_typing')).isTyping, true);
  wes.close();
});
