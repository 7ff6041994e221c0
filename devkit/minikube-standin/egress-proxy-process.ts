/**
 * devkit/images' egress proxy (CONNECT to the npm registry only) as a process of its own, so that the
 * node supervises it beside buildkitd and stops it with them (buildkit.ts): it listens on a unix socket,
 * which the relay inside the node's network namespace reaches (a unix socket is a file, not an address of
 * any network namespace), and prints `listening` once it does.
 *
 * Usage: egress-proxy-process.ts <socket> <allowed host>...
 */
import { rmSync } from 'node:fs';
import { startEgressProxy } from '../images/egress-proxy';

const [socket, ...hosts] = process.argv.slice(2);
if (!socket || hosts.length === 0) {
  console.error('usage: egress-proxy-process.ts <socket> <allowed host>...');
  process.exit(2);
}
rmSync(socket, { force: true }); // a socket left by an earlier proxy of this node (a restart) would be in use
startEgressProxy(socket, hosts, (line) => console.log(line)).then(
  () => console.log(`listening on ${socket} for CONNECT to ${hosts.join(', ')}:443`),
  (error: Error) => {
    console.error(error.message);
    process.exit(1);
  },
);
