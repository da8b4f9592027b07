// A socket that sends events faster than they are answered is disconnected once
// MAX_QUEUED_EVENTS (256, with the default limits) of its events wait, rather than growing the server; a burst below
// that bound is answered in full, and other sockets are answered meanwhile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WAIT_MS, as, fresh } from './lib.mjs';

const BOUND = 256;

test('a burst below the bound is answered in full', async () => {
  const client = await as('burst');
  const acks = Array.from({ length: BOUND - 56 }, () => client.ack('ping'));
  const answers = await Promise.all(acks);
  assert.ok(answers.every((answer) => typeof answer.timestamp === 'number'));
  assert.ok(client.socket.connected, 'still connected');
  client.close();
});

test('a flood past the bound is disconnected, and others are still answered', async () => {
  const bystander = await as('bystander');
  const room = fresh('flooded');
  bystander.emit('join_room', room);
  await bystander.next('room_history');

  const flooder = await as('flooder');
  const disconnected = new Promise((resolve) => flooder.socket.once('disconnect', resolve));
  for (let i = 0; i < 20 * BOUND; i++) flooder.emit('join_room', `${room}-${i % 50}`);
  const reason = await Promise.race([
    disconnected,
    new Promise((resolve) => setTimeout(() => resolve('still connected'), WAIT_MS)),
  ]);
  // The server ends it: with a DISCONNECT packet, or by closing the transport when that
  // packet is still queued behind the flood's answers.
  assert.ok(['io server disconnect', 'transport close'].includes(reason), reason);

  const answer = await bystander.ack('ping');
  assert.equal(typeof answer.timestamp, 'number');
  bystander.close();
});
