// Contract 002 (studio) with an unmodified socket.io-client: namespaces /, /media and
// /notifications, and the publish API that feeds them. The server runs with
// CONFAB_ANONYMOUS=allow, so that clients may authenticate after connecting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, PlainClient, subscribed, api, as, fresh, token } from './lib.mjs';

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

test('welcome on every namespace', async () => {
  for (const namespace of ['/', '/media', '/notifications']) {
    const client = await new Client(namespace).connected();
    const welcome = await client.next('welcome');
    assert.equal(welcome.socketId, client.socket.id);
    assert.ok(welcome.message);
    assert.match(welcome.serverTime, ISO);
    await client.silent('authenticated', 100);
  }
});

test('handshake auth: authenticated, or authError with the connection kept', async () => {
  const good = await as('ana', '/media');
  const authenticated = await good.next('authenticated');
  assert.equal(authenticated.userId, 'ana');
  assert.equal(authenticated.email, 'ana@example.com');
  assert.match(authenticated.authenticatedAt, ISO);

  for (const namespace of ['/media', '/notifications']) {
    const bad = await new Client(namespace, { auth: { token: 'garbage' } }).connected();
    assert.equal((await bad.next('authError')).message, 'Invalid token');
    assert.ok(bad.socket.connected);
    const info = await bad.ack('getConnectionInfo');
    assert.equal(info.authenticated, false);
  }
  const expired = await new Client('/media', { auth: { token: token('ana', { expiresIn: -60 }) } }).connected();
  assert.equal((await expired.next('authError')).message, 'Token expired');
});

test('authenticate: ack {success, userId} and authenticated, or ack {error} and authError', async () => {
  const client = await new Client('/').connected();
  const refused = await client.ack('authenticate', { token: 'nope' });
  assert.deepEqual(refused, { success: false, error: 'Invalid token' });
  await client.next('authError');
  const accepted = await client.ack('authenticate', { token: token('ben') });
  assert.deepEqual(accepted, { success: true, userId: 'ben' });
  assert.equal((await client.next('authenticated')).userId, 'ben');
  const info = await client.ack('getConnectionInfo');
  assert.equal(info.authenticated, true);
  assert.ok(info.rooms.includes('user:ben'));
});

test('logout: ack, then loggedOut; the connection stays, unauthenticated', async () => {
  const client = await as('ana');
  await client.next('authenticated');
  assert.deepEqual(await client.ack('logout'), { success: true });
  assert.ok((await client.next('loggedOut')).message);
  const info = await client.ack('getConnectionInfo');
  assert.equal(info.authenticated, false);
  assert.deepEqual(info.rooms, [client.socket.id]);
  const join = await client.ack('joinRoom', 'project-1');
  assert.deepEqual(join, { success: false, error: 'Authentication required' });
});

test('joinRoom / leaveRoom: acks, roomJoined / roomLeft, and room events', async () => {
  const room = fresh('project');
  const client = await as('ana');
  assert.deepEqual(await client.ack('joinRoom', room), { success: true, room });
  assert.deepEqual(await client.next('roomJoined'), { room, success: true });
  const published = await api('POST', `/api/rooms/${room}/events`, { event: 'projectUpdate', data: { status: 'rendering', step: 2 } });
  assert.equal(published.status, 202);
  assert.deepEqual(await client.next('projectUpdate'), { status: 'rendering', step: 2 });
  assert.deepEqual(await client.ack('leaveRoom', room), { success: true, room });
  assert.deepEqual(await client.next('roomLeft'), { room, success: true });
  await api('POST', `/api/rooms/${room}/events`, { event: 'projectUpdate', data: { status: 'done' } });
  await client.silent('projectUpdate');
  const notJoined = await client.ack('leaveRoom', room);
  assert.equal(notJoined.success, false);
  assert.ok(notJoined.error);
  assert.equal((await client.ack('joinRoom')).success, false);
});

test('getConnectionInfo: socketId, connected, rooms, authenticated, connectedAt', async () => {
  const client = await as('ana');
  await client.ack('joinRoom', 'project-123');
  const info = await client.ack('getConnectionInfo');
  assert.equal(info.socketId, client.socket.id);
  assert.equal(info.connected, true);
  assert.deepEqual(info.rooms, [client.socket.id, 'project-123', 'user:ana']);
  assert.equal(info.authenticated, true);
  assert.match(info.connectedAt, ISO);
});

test('events are answered in the order sent: joinRoom, then getConnectionInfo at once', async () => {
  const client = await as('ana');
  const room = fresh('project');
  // Not awaited: the join is still being stored when the info is asked for.
  const join = client.ack('joinRoom', room);
  const info = await client.ack('getConnectionInfo');
  assert.ok(info.rooms.includes(room), `rooms ${JSON.stringify(info.rooms)} lack ${room}`);
  assert.deepEqual(await join, { success: true, room });
});

test('ping: ack {timestamp} and pong', async () => {
  const client = await new Client('/media').connected();
  const before = Date.now();
  const answer = await client.ack('ping');
  assert.ok(answer.timestamp >= before - 1000 && answer.timestamp <= Date.now() + 1000);
  assert.equal(typeof (await client.next('pong')).timestamp, 'number');
});

test('heartbeat: ack and heartbeatAck {timestamp, serverTime, latency}', async () => {
  const client = await new Client('/').connected();
  const answer = await client.ack('heartbeat', { timestamp: Date.now() - 40 });
  assert.ok(answer.latency >= 40 && answer.latency < 5000, `latency ${answer.latency}`);
  assert.match(answer.serverTime, ISO);
  const echoed = await client.next('heartbeatAck');
  assert.equal(echoed.timestamp, answer.timestamp);
  assert.equal((await client.ack('heartbeat', {})).latency, null);
});

test('/notifications: a published notification reaches both dialects, each in its shape', async () => {
  const user = fresh('nina');
  const sio = await as(user, '/notifications');
  await sio.next('authenticated');
  const { body: { token: wsToken } } = await api('GET', '/qf/auth/ws-token', undefined, { bearer: token(user) });
  const qf = await PlainClient.open(`/qf/notifications/ws?token=${wsToken}`);
  await subscribed(qf, user);
  const published = await api('POST', '/api/notifications', {
    userId: user,
    type: 'success',
    title: 'Render finished',
    message: 'Your video is ready',
    data: { mediaId: 'm-1' },
  });
  assert.equal(published.status, 201);
  const notification = await sio.next('notification');
  assert.equal(notification.id, published.body.id);
  assert.equal(notification.type, 'success');
  assert.equal(notification.title, 'Render finished');
  assert.equal(notification.message, 'Your video is ready');
  assert.deepEqual(notification.data, { mediaId: 'm-1' });
  assert.match(notification.timestamp, ISO);
  const channel = await qf.next('notification');
  assert.equal(channel.id, published.body.id);
  assert.equal(channel.phrase_text, 'Your video is ready');
  qf.close();
});

test('/notifications: what arrived while offline is sent on connect, once', async () => {
  const user = fresh('olga');
  const { body: { id } } = await api('POST', '/api/notifications', { userId: user, type: 'info', title: 'While away', message: 'hello' });
  const first = await as(user, '/notifications');
  assert.equal((await first.next('notification')).id, id);
  first.close();
  const second = await as(user, '/notifications');
  await second.next('authenticated');
  await second.silent('notification');
  // Authenticating later brings the backlog too.
  const later = fresh('paul');
  await api('POST', '/api/notifications', { userId: later, type: 'warning', title: 'Queued', message: 'x' });
  const client = await new Client('/notifications').connected();
  assert.equal((await client.ack('authenticate', { token: token(later) })).success, true);
  assert.equal((await client.next('notification')).title, 'Queued');
});

test('/media: subscribers get progress, completion and errors; unsubscribe stops them', async () => {
  const media = fresh('media');
  const client = await as('ana', '/media');
  const other = await as('ben', '/media');
  assert.deepEqual(await client.ack('subscribeMedia', media), { success: true, mediaId: media });
  let response = await api('POST', `/api/media/${media}/progress`, { progress: 40, stage: 'encoding', message: 'pass 1' });
  assert.equal(response.status, 202);
  assert.deepEqual(await client.next('mediaProgress'), { mediaId: media, progress: 40, stage: 'encoding', message: 'pass 1' });
  response = await api('POST', `/api/media/${media}/complete`, {
    url: 'https://cdn.example/v.mp4', thumbnailUrl: 'https://cdn.example/v.jpg', metadata: { seconds: 12 },
  });
  assert.equal(response.status, 202);
  assert.deepEqual(await client.next('mediaComplete'), {
    mediaId: media, url: 'https://cdn.example/v.mp4', thumbnailUrl: 'https://cdn.example/v.jpg', metadata: { seconds: 12 },
  });
  await api('POST', `/api/media/${media}/error`, { error: 'out of credits', code: 'QUOTA' });
  assert.deepEqual(await client.next('mediaError'), { mediaId: media, error: 'out of credits', code: 'QUOTA' });
  await other.silent('mediaProgress', 50);
  assert.deepEqual(await client.ack('unsubscribeMedia', media), { success: true, mediaId: media });
  await api('POST', `/api/media/${media}/progress`, { progress: 90, stage: 'encoding' });
  await client.silent('mediaProgress');

  const anonymous = await new Client('/media').connected();
  assert.deepEqual(await anonymous.ack('subscribeMedia', media), { success: false, error: 'Authentication required' });
  assert.equal((await client.ack('subscribeMedia')).success, false);
});

test('/media: a job published with its owner reaches only the owner, whoever else subscribes', async () => {
  const media = fresh('media');
  const owner = await as('ana', '/media');
  const snoop = await as('mallory', '/media');
  for (const client of [owner, snoop]) {
    assert.deepEqual(await client.ack('subscribeMedia', media), { success: true, mediaId: media });
  }
  const updates = [
    ['progress', 'mediaProgress', { progress: 10, stage: 'upload' }],
    ['complete', 'mediaComplete', { url: 'https://cdn.example/a.mp4' }],
    ['error', 'mediaError', { error: 'retrying' }],
  ];
  for (const [call, event, body] of updates) {
    const response = await api('POST', `/api/media/${media}/${call}`, { ...body, userId: 'ana' });
    assert.equal(response.status, 202, call);
    assert.equal((await owner.next(event)).mediaId, media);
  }
  // Published without an owner, an update reaches every subscriber, so the snoop was
  // subscribed all along and still got none of the owned ones.
  await api('POST', `/api/media/${media}/progress`, { progress: 99, stage: 'public' });
  assert.equal((await snoop.next('mediaProgress')).stage, 'public');
  assert.equal((await owner.next('mediaProgress')).stage, 'public');
  await snoop.silent('mediaComplete', 50);
  await snoop.silent('mediaError', 50);

  for (const userId of ['', 'x'.repeat(129), 'a\u0000b', 42]) {
    const response = await api('POST', `/api/media/${media}/progress`, { progress: 1, stage: 's', userId });
    assert.equal(response.status, 400, JSON.stringify(userId));
  }
});

test('the publish API: service key required, input validated', async () => {
  const media = fresh('media');
  const calls = [
    ['POST', `/api/media/${media}/progress`, { progress: 10, stage: 's' }],
    ['POST', `/api/rooms/r/events`, { event: 'projectUpdate' }],
    ['POST', '/api/notifications', { userId: 'u', type: 'info', title: 't', message: 'm' }],
  ];
  for (const [method, path, body] of calls) {
    assert.equal((await api(method, path, body, { key: false })).status, 401, path);
    assert.equal((await api(method, path, body, { bearer: 'wrong-key' })).status, 401, path);
  }
  const invalid = [
    [`/api/media/${media}/progress`, { progress: 101, stage: 's' }],
    [`/api/media/${media}/progress`, { progress: 50 }],
    [`/api/media/${media}/progress`, { progress: 50, stage: '' }],
    [`/api/media/${media}/complete`, { url: 'javascript:alert(1)' }],
    [`/api/media/${media}/error`, { code: 'X' }],
    ['/api/rooms/r/events', { event: 'disconnect' }],
    ['/api/rooms/r/events', { event: '' }],
    ['/api/rooms/r/events', { event: 'x', extra: 1 }],
  ];
  for (const [path, body] of invalid) {
    const response = await api('POST', path, body);
    assert.equal(response.status, 400, `${path} ${JSON.stringify(body)}`);
    assert.ok(response.body.error.message);
  }
});

test('/media: an expired session says authError and stays connected, unauthenticated', async () => {
  const client = await new Client('/media', { auth: { token: token('ana', { expiresIn: 2 }) } }).connected();
  await client.next('authenticated');
  assert.equal((await client.next('authError', 6000)).message, 'Token expired');
  assert.ok(client.socket.connected);
  assert.equal((await client.ack('getConnectionInfo')).authenticated, false);
});
