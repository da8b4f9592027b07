// Many sockets joining a room that does not exist yet, at the same moment: the first join
// creates it, and every join succeeds (none is told the room is full).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WAIT_MS, as, fresh } from './lib.mjs';

const ROOMS = 20;
const JOINERS = 50;

/** `JOINERS` connected sockets on `namespace`, one user each, for room number `room`. */
async function joiners(namespace, room) {
  return Promise.all(
    Array.from({ length: JOINERS }, (_, i) => as(`joiner-${room}-${i}`, namespace)),
  );
}

test(`contract 004: ${JOINERS} first joins of each of ${ROOMS} new rooms all get room_history`, async () => {
  const refused = [];
  for (let room = 0; room < ROOMS; room++) {
    const roomId = fresh('crowd');
    const clients = await joiners('/', room);
    const answers = clients.map(async (client) => {
      const answer = new Promise((resolve) => {
        const timer = setTimeout(() => resolve({ timeout: `no answer within ${WAIT_MS} ms` }), WAIT_MS);
        client.socket.once('room_history', () => { clearTimeout(timer); resolve(null); });
        client.socket.once('error', (error) => { clearTimeout(timer); resolve(error); });
      });
      client.emit('join_room', roomId);
      const refusal = await answer;
      if (refusal) refused.push(refusal);
    });
    await Promise.all(answers);
    clients.forEach((client) => client.close());
  }
  assert.deepEqual(refused, [], `${refused.length} of ${ROOMS * JOINERS} joins refused`);
});

test(`contract 002: ${JOINERS} first joinRoom of each of ${ROOMS} new rooms all succeed`, async () => {
  const refused = [];
  for (let room = 0; room < ROOMS; room++) {
    const name = fresh('project');
    const clients = await joiners('/media', room);
    const answers = await Promise.all(
      clients.map((client) => client.socket.timeout(WAIT_MS).emitWithAck('joinRoom', name)),
    );
    refused.push(...answers.filter((answer) => !answer.success));
    clients.forEach((client) => client.close());
  }
  assert.deepEqual(refused, [], `${refused.length} of ${ROOMS * JOINERS} joins refused`);
});
