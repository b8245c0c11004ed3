// Runs INSIDE an isolated node's network namespace (started with `nsenter --net=…`): listens on
// 127.0.0.1:PORT there and carries every connection to a unix socket on the shared filesystem, where
// the test process forwards it to the same port on the host's loopback. One registry port becomes
// reachable from the node; nothing else does (the namespace has no route out).
// Usage: node bridge-listen.js PORT UNIX_SOCKET
import { connect, createServer } from 'node:net';

const [portArg, socketPath] = process.argv.slice(2);
const port = Number(portArg);
if (!Number.isInteger(port) || port <= 0 || !socketPath) {
  process.stderr.write('usage: bridge-listen.js PORT UNIX_SOCKET\n');
  process.exit(2);
}

const server = createServer((inbound) => {
  const outbound = connect(socketPath);
  inbound.pipe(outbound).pipe(inbound);
  const close = (): void => {
    inbound.destroy();
    outbound.destroy();
  };
  inbound.on('error', close);
  outbound.on('error', close);
});
server.on('error', (e) => {
  process.stderr.write(`bridge-listen: ${e.message}\n`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => process.exit(0));
// The parent holds our stdin open; EOF means it is gone and nobody forwards the unix socket any more.
process.stdin.on('end', () => process.exit(0)).on('error', () => process.exit(0)).resume();
