// Socket.IO 4 with its defaults and the room-chat behaviour of contract 004, in memory:
// join_room "room" → room_history to the joiner; send_message {roomId, content} →
// new_message to everyone in the room. No auth, no storage.
//
// Usage: node server.js 4000 (SIO_RECOVERY=1: connection state recovery on, with its
// defaults: sessions kept two minutes, in memory)
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const port = Number(process.argv[2] || 4000);
const http = createServer();
const io = new Server(http, process.env.SIO_RECOVERY ? { connectionStateRecovery: {} } : {});

io.on('connection', (socket) => {
  socket.on('join_room', (roomId) => {
    socket.join(roomId);
    socket.emit('room_history', { roomId, messages: [] });
  });
  socket.on('send_message', ({ roomId, content }) => {
    io.to(roomId).emit('new_message', {
      id: `${Date.now()}-${Math.random()}`,
      content,
      roomId,
      userId: socket.id,
      createdAt: new Date().toISOString(),
    });
  });
});

http.listen(port, '127.0.0.1');
