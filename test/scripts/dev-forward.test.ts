/**
 * `npm run dev`'s port-forward (scripts/dev/forward.ts) against a fake backend: each "pod" is an HTTP
 * server on loopback that answers with its name and drains as the data service does (answers with
 * `Connection: close`, closes connections idle for a second, stops listening), and dial is plain TCP
 * to it. The pod set is driven by hand, as the API server's watch would change it during a rollout.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { Forward, Unreachable, choosePod, type Dial } from '../../scripts/dev/forward';
import { PodSet, type PodInfo } from '../../scripts/dev/pods';

interface FakePod {
  info: PodInfo;
  server: http.Server;
  served: number;
  drain(): Promise<void>;
  kill(): void;
}

async function fakePod(name: string, rollout: string, created: number): Promise<FakePod> {
  let draining = false;
  const idleSince = new Map<net.Socket, number | undefined>();
  const pod = { served: 0 } as FakePod;
  const server = http.createServer((req, res) => {
    idleSince.set(req.socket, undefined);
    res.on('finish', () => idleSince.set(req.socket, Date.now()));
    pod.served += 1;
    if (draining) res.setHeader('connection', 'close');
    res.end(JSON.stringify({ pod: name }));
  });
  server.on('connection', (socket) => {
    idleSince.set(socket, Date.now());
    socket.on('close', () => idleSince.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  pod.server = server;
  pod.info = { name, ready: true, started: true, deleting: false, image: `img:${rollout}`, created, rollout, port, container: 'data-service' };
  pod.drain = async () => {
    draining = true;
    const closed = new Promise<void>((resolve) => net.Server.prototype.close.call(server, () => resolve()));
    const reaper = setInterval(() => {
      for (const [socket, since] of idleSince) if (since !== undefined && Date.now() - since >= 1000) socket.destroy();
    }, 50);
    await closed;
    clearInterval(reaper);
  };
  pod.kill = () => {
    server.closeAllConnections();
    server.close();
  };
  return pod;
}

const tcpDial: Dial = (pod) =>
  new Promise((resolve, reject) => {
    const socket = net.connect(pod.port, '127.0.0.1');
    socket.once('connect', () => resolve(socket));
    socket.once('error', (error) => reject(new Unreachable(error.message)));
  });

const get = async (port: number, init: RequestInit = {}) => {
  const res = await fetch(`http://127.0.0.1:${port}/`, { ...init, signal: AbortSignal.timeout(5000) });
  return { status: res.status, pod: ((await res.json()) as { pod: string }).pod };
};

describe('npm run dev: the port-forward across rollouts (fake pods)', function () {
  this.timeout(60_000);
  let forward: Forward | undefined;
  const pods: FakePod[] = [];
  afterEach(async () => {
    await forward?.close();
    forward = undefined;
    for (const pod of pods.splice(0)) pod.kill();
  });

  const start = async (set: PodSet, dial: Dial = tcpDial, waitForPodMs?: number) => {
    forward = new Forward({ pods: set, dial, port: 0, waitForPodMs });
    return forward.listen();
  };
  const add = async (set: PodSet, name: string, rollout: string, created: number) => {
    const pod = await fakePod(name, rollout, created);
    pods.push(pod);
    set.set(pod.info);
    return pod;
  };

  it('chooses Ready pods of the newest rollout, round robin, never a deleting or unready one', () => {
    const info = (name: string, rollout: string, created: number, extra: Partial<PodInfo> = {}): PodInfo => ({
      name, ready: true, started: true, deleting: false, image: rollout, created, rollout, port: 1, container: 'c', ...extra,
    });
    const old1 = info('old-1', 'a', 1);
    const old2 = info('old-2', 'a', 2);
    const new1 = info('new-1', 'b', 3);
    const new2 = info('new-2', 'b', 4, { ready: false });
    assert.deepEqual([0, 1, 2].map((turn) => choosePod([old1, old2, new1, new2], new Set(), turn)?.name), ['new-1', 'new-1', 'new-1']);
    assert.deepEqual([0, 1].map((turn) => choosePod([old1, old2], new Set(), turn)?.name), ['old-1', 'old-2']);
    assert.equal(choosePod([old1, { ...new1, deleting: true, ready: false }], new Set(), 0)?.name, 'old-1');
    assert.equal(choosePod([old1, new1], new Set(['new-1']), 0)?.name, 'old-1', 'a pod that failed this connection is not chosen again');
    assert.equal(choosePod([new2], new Set(), 0), undefined);
  });

  it('a connection waits for a Ready pod when there is none, instead of being refused', async () => {
    const set = new PodSet();
    const port = await start(set);
    const answer = get(port);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await add(set, 'late', 'a', 1);
    assert.deepEqual(await answer, { status: 200, pod: 'late' });
  });

  it('a pod listed Ready that refuses the connection: the request goes to another pod, the client sees nothing', async () => {
    const set = new PodSet();
    const port = await start(set);
    await add(set, 'good', 'a', 1);
    const gone = await add(set, 'gone', 'b', 2); // newest, so chosen first
    gone.kill();
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (let i = 0; i < 5; i += 1) assert.deepEqual(await get(port), { status: 200, pod: 'good' });
    assert.ok(forward!.stats.retried >= 1, 'the refused dial was retried');
    assert.equal(forward!.stats.failed, 0);
  });

  it('a tunnel that fails after the request was sent is not replayed (a POST is never sent twice)', async () => {
    const set = new PodSet();
    const server = net.createServer((socket) => socket.once('data', () => socket.destroy())); // takes the request, then dies
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const other = await add(set, 'other', 'a', 1);
    set.set({ ...other.info, name: 'dies', created: 2, rollout: 'b', port: (server.address() as net.AddressInfo).port });
    try {
      const port = await start(set);
      await assert.rejects(get(port, { method: 'POST', body: 'x' }));
      assert.equal(other.served, 0, 'the request did not reach a second pod');
      assert.equal(forward!.stats.failed, 1);
    } finally {
      server.close();
    }
  });

  it('a kept-alive connection its pod closes as the next request arrives: a GET goes on to another pod on the same connection, a POST does not', async () => {
    const set = new PodSet();
    // Answers one request per connection, then closes at the next one (a draining pod closing an idle connection as a request comes).
    const closer = net.createServer((socket) => {
      let requests = 0;
      socket.on('data', () => {
        requests += 1;
        if (requests === 1) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\ncloser');
        else socket.end();
      });
    });
    await new Promise<void>((resolve) => closer.listen(0, '127.0.0.1', resolve));
    try {
      const other = await add(set, 'other', 'a', 1);
      set.set({ ...other.info, name: 'closer', created: 2, rollout: 'b', port: (closer.address() as net.AddressInfo).port });
      const port = await start(set);
      const exchange = async (second: string) => {
        const socket = net.connect(port, '127.0.0.1');
        let received = '';
        socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
        const ended = new Promise((resolve) => socket.once('close', resolve));
        socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
        await new Promise((resolve) => setTimeout(resolve, 200));
        set.set({ ...set.get('closer')!, ready: false, deleting: true }); // draining now
        socket.write(second);
        await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 1000))]);
        socket.destroy();
        return received;
      };
      const gets = await exchange('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.match(gets, /closer[\s\S]*"pod":"other"/, `the second GET answered by the other pod on the same connection: ${gets}`);
      set.set({ ...set.get('closer')!, ready: true, deleting: false });
      const served = other.served;
      const posts = await exchange('POST /data HTTP/1.1\r\nHost: x\r\ncontent-length: 2\r\n\r\n{}');
      assert.doesNotMatch(posts, /"pod":"other"/, 'the POST was not sent again');
      assert.equal(other.served, served, 'the other pod never saw the POST');
    } finally {
      closer.close();
    }
  });

  it('a rollout under steady load (old pods drain, new ones come): zero failed requests, new pods answer', async () => {
    const set = new PodSet();
    const port = await start(set);
    const a1 = await add(set, 'a-1', 'a', 1);
    const a2 = await add(set, 'a-2', 'a', 2);
    let running = true;
    const answers: string[] = [];
    const failures: string[] = [];
    const client = async () => {
      while (running) {
        try {
          const { pod } = await get(port);
          answers.push(pod);
        } catch (error) {
          failures.push((error as Error).message);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    const clients = Array.from({ length: 4 }, client);
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    try {
      // maxSurge 1, maxUnavailable 0, as the Deployment does: a new pod Ready, then an old one deleted.
      await pause(300);
      for (const [old, name, created] of [[a1, 'b-1', 3], [a2, 'b-2', 4]] as const) {
        await add(set, name, 'b', created);
        await pause(200);
        set.set({ ...old.info, ready: false, deleting: true });
        await old.drain();
        set.remove(old.info.name);
      }
      await pause(300);
    } finally {
      running = false;
      await Promise.all(clients);
    }
    assert.deepEqual(failures, []);
    assert.equal(forward!.stats.failed, 0);
    assert.ok(answers.length > 50, `steady load ran (${answers.length} answers)`);
    assert.ok(answers.slice(-10).every((pod) => pod.startsWith('b-')), 'the new pods answer at the end');
  });

  it('close() ends every connection and tunnel and stops listening', async () => {
    const set = new PodSet();
    const port = await start(set);
    const pod = await add(set, 'p', 'a', 1);
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((resolve) => socket.once('data', resolve));
    const ended = new Promise((resolve) => socket.once('close', resolve));
    await forward!.close();
    await ended;
    await assert.rejects(get(port));
    const open = await new Promise<number>((resolve) => pod.server.getConnections((_e, count) => resolve(count)));
    assert.equal(open, 0, 'no tunnel left open to the pod');
  });
});

describe('npm run dev: its local port taken (AirPlay Receiver holds 5000 on macOS)', () => {
  it('says so in one line with the fix, instead of a stack trace of EADDRINUSE', async () => {
    const other = net.createServer();
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const port = (other.address() as net.AddressInfo).port;
    try {
      const forward = new Forward({ pods: new PodSet(), dial: (() => Promise.reject(new Error('unused'))) as unknown as Dial, port, log: () => undefined });
      await assert.rejects(forward.listen(), (error: Error) => {
        assert.equal(error.message.split('\n').length, 1, 'one line');
        assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port} is taken by another program`));
        assert.match(error.message, /DEV_PORT=5050 npm run dev/);
        assert.match(error.message, /AirPlay Receiver/);
        return true;
      });
    } finally {
      await new Promise((resolve) => other.close(resolve));
    }
  });
});
