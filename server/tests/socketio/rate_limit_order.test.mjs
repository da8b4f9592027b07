// A send_message refused by the rate limit is answered after the broadcasts of the
// messages sent before it. The server runs with a burst of 5 and next to no refill, so of
// a join and eight messages sent at once, the join and four messages pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WAIT_MS, as, fresh } from './lib.mjs';

test('a rate-limited send_message is answered after the broadcasts before it', async () => {
  const room = fresh('limited');
  const ana = await as('ana');
  ana.emit('join_room', room);
  await ana.next('room_history');
  for (let i = 1; i <= 8; i += 1) ana.emit('send_message', { roomId: room, content: `m${i}` });
  const arrived = () => ana.events.filter((e) => e.event === 'error' || e.event === 'new_message');
  const deadline = Date.now() + WAIT_MS;
  while (arrived().length < 8 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const order = arrived().map((e) => (e.event === 'error' ? e.args[0].code : e.args[0].content));
  assert.deepEqual(order, [
    'm1', 'm2', 'm3', 'm4', 'RATE_LIMITED', 'RATE_LIMITED', 'RATE_LIMITED', 'RATE_LIMITED',
  ]);
  ana.close();
});
