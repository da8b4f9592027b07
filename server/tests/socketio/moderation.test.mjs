// Moderation seen by unmodified socket.io-clients of contracts 001, 002 and 004: the
// extension events a moderator's actions send, and a ban that disconnects. The server runs
// with CONFAB_ANONYMOUS=allow, for the 001 client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, api, as, fresh, refusal, token } from './lib.mjs';

/** A room with `ana` and `ben` (004, with tokens) and `jane` (001, anonymous). */
async function room() {
  const id = fresh('moderated');
  const ana = await as('ana');
  const ben = await as('ben');
  for (const c of [ana, ben]) {
    c.emit('join_room', id);
    await c.next('room_history');
  }
  const jane = await new Client('/').connected();
  jane.emit('join_room', { roomId: id, userId: 'jane-id', username: 'jane' });
  await jane.next('history');
  return { id, ana, ben, jane };
}

test('a deleted message: message_deleted to every member of either contract', async () => {
  const { id, ana, ben, jane } = await room();
  ana.emit('send_message', { roomId: id, content: 'delete me' });
  const sent = await ana.next('new_message');
  await ben.next('new_message');
  await jane.next('message_received');
  const { status, body } = await api('DELETE', `/api/admin/messages/${sent.id}`, { reason: 'spam' });
  assert.equal(status, 200, JSON.stringify(body));
  for (const c of [ana, ben, jane]) {
    assert.deepEqual(await c.next('message_deleted'), { roomId: id, messageId: sent.id, seq: body.seq });
  }
  // A joiner's history no longer has it.
  const carl = await as('carl');
  carl.emit('join_room', id);
  assert.deepEqual((await carl.next('room_history')).messages, []);
});

test('a removed member: user_left with removed, to the room and to them', async () => {
  const { id, ana, ben, jane } = await room();
  const { status } = await api('DELETE', `/api/admin/rooms/${id}/members/ben`);
  assert.equal(status, 204);
  for (const c of [ana, ben]) {
    const left = await c.next('user_left');
    assert.equal(left.userId, 'ben');
    assert.equal(left.removed, true);
  }
  assert.deepEqual(await jane.next('user_left'), { roomId: id, userId: 'ben', removed: true });
  ana.emit('send_message', { roomId: id, content: 'ben cannot see this' });
  await jane.next('message_received');
  await ben.silent('new_message');
});

test('a closed room: room_closed, and joining it is refused', async () => {
  const { id, ana, ben, jane } = await room();
  const { status } = await api('POST', `/api/admin/rooms/${id}/close`, { reason: 'raid' });
  assert.equal(status, 204);
  for (const c of [ana, ben, jane]) {
    assert.deepEqual(await c.next('room_closed'), { roomId: id });
  }
  const carl = await as('carl');
  carl.emit('join_room', id);
  const refused = await carl.next('error');
  assert.match(JSON.stringify(refused), /room is closed/);
});

test('a ban: authError "Account banned" and a disconnect on every namespace, then refusal', async () => {
  const user = fresh('dana');
  const chat = await as(user);
  const notifications = await new Client('/notifications', { auth: { token: token(user) } }).connected();
  await notifications.next('authenticated');
  const disconnected = (client) => new Promise((resolve) => client.socket.once('disconnect', resolve));
  const gone = [disconnected(chat), disconnected(notifications)];

  const { status } = await api('PUT', `/api/admin/bans/${user}`, { reason: 'abuse' });
  assert.equal(status, 200);
  for (const c of [chat, notifications]) {
    assert.equal((await c.next('authError')).message, 'Account banned');
  }
  assert.deepEqual(await Promise.all(gone), ['io server disconnect', 'io server disconnect']);

  assert.equal(await refusal({ auth: { token: token(user) } }), 'Account banned');
  const again = await new Client('/notifications', { auth: { token: token(user) } }).connected();
  assert.equal((await again.next('authError')).message, 'Account banned');

  assert.equal((await api('DELETE', `/api/admin/bans/${user}`)).status, 204);
  const back = await as(user);
  assert.ok(back.socket.connected);
});
