import assert from 'node:assert/strict';
import net from 'node:net';
import { freePort, spawnService, startInProcess, waitFor, type InProcessService, type SpawnedService } from './helpers';

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** ms from the first byte written until the server closed or answered. */
  ms: number;
  closedWithoutAnswer: boolean;
}

/** Writes `parts` on a raw socket (pausing `gapMs` between them) and reads until the server closes. */
function rawExchange(url: string, parts: string[], gapMs = 0, maxMs = 15_000): Promise<RawAnswer> {
  const { port, hostname } = new URL(url);
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = net.connect(Number(port), hostname);
    let data = '';
    const timer = setTimeout(() => socket.destroy(), maxMs);
    socket.on('connect', async () => {
      for (const part of parts) {
        if (socket.destroyed) return;
        socket.write(part);
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
    });
    socket.on('data', (chunk) => (data += chunk.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const [head, ...rest] = data.split('\r\n\r\n');
      const lines = head.split('\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const at = line.indexOf(':');
        if (at > 0) headers[line.slice(0, at).toLowerCase()] = line.slice(at + 1).trim();
      }
      resolve({ status, headers, body: rest.join('\r\n\r\n'), ms: Date.now() - started, closedWithoutAnswer: data === '' });
    });
    socket.on('timeout', reject);
  });
}

const expectJsonError = (answer: RawAnswer, status: number, message: RegExp) => {
  assert.equal(answer.status, status, JSON.stringify(answer));
  assert.match(answer.headers['content-type'] ?? '', /^application\/json/);
  assert.match(answer.headers['x-request-id'] ?? '', /^[0-9a-f-]{36}$/);
  assert.equal(answer.headers['x-content-type-options'], 'nosniff');
  assert.match((JSON.parse(answer.body) as { error: string }).error, message);
};

describe('HTTP limits and the answers Node gives itself', function () {
  this.timeout(60_000);
  let svc: InProcessService;

  before(async () => {
    svc = await startInProcess({
      HEADERS_TIMEOUT_MS: '1000',
      REQUEST_TIMEOUT_MS: '2000',
      KEEP_ALIVE_TIMEOUT_MS: '1000',
      MAX_CONNECTIONS: '8',
      BODY_LIMIT_BYTES: '1024',
    });
  });
  after(() => svc.close());

  it('headers that never finish are cut at HEADERS_TIMEOUT_MS with a JSON 408', async () => {
    const answer = await rawExchange(svc.url, ['GET /healthz HTTP/1.1\r\nHost: x\r\n', 'X-Slow: 1\r\n']);
    expectJsonError(answer, 408, /did not arrive in time/);
    assert.ok(answer.ms >= 900 && answer.ms < 4000, `after ${answer.ms} ms`);
  });

  it('a body that trickles in too slowly is cut at REQUEST_TIMEOUT_MS with a JSON 408', async () => {
    const head = 'POST /data HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n';
    const answer = await rawExchange(svc.url, [head, '{"a":', '"b', 'b'], 600);
    expectJsonError(answer, 408, /did not arrive in time/);
    assert.ok(answer.ms >= 1900 && answer.ms < 5000, `after ${answer.ms} ms`);
  });

  it('an idle keep-alive connection is closed after KEEP_ALIVE_TIMEOUT_MS', async () => {
    const answer = await rawExchange(svc.url, ['GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n']);
    assert.equal(answer.status, 200);
    assert.ok(answer.ms >= 900 && answer.ms < 4000, `closed after ${answer.ms} ms`);
  });

  it('connections beyond MAX_CONNECTIONS are refused at accept; the ones held keep working', async () => {
    const held = await Promise.all(
      Array.from({ length: 8 }, () => new Promise<net.Socket>((resolve) => {
        const socket = net.connect(Number(new URL(svc.url).port), '127.0.0.1', () => resolve(socket));
      })),
    );
    try {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const extra = await rawExchange(svc.url, ['GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'], 0, 3000);
      assert.equal(extra.closedWithoutAnswer, true, `the ninth connection was served: ${JSON.stringify(extra)}`);
      assert.ok(extra.ms < 2000, 'closed at once, not left hanging');
    } finally {
      for (const socket of held) socket.destroy();
    }
    await waitFor('a new connection served once others closed', async () => (await fetch(`${svc.url}/healthz`)).status === 200, 3000);
  });

  it('a malformed request, an unknown method and oversized headers get JSON 400/400/431 with a request id', async () => {
    expectJsonError(await rawExchange(svc.url, ['GARBAGE\r\n\r\n']), 400, /malformed request/);
    expectJsonError(await rawExchange(svc.url, ['FOO /data HTTP/1.1\r\nHost: x\r\n\r\n']), 400, /malformed request/);
    expectJsonError(await rawExchange(svc.url, [`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`]), 431, /headers are too large/);
  });

  it('`Expect: 100-continue` with a Content-Length over the limit is refused with 413 before the body is sent', async () => {
    const head = 'POST /data HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n';
    const answer = await rawExchange(svc.url, [head]);
    expectJsonError(answer, 413, /exceeds the limit of 1024 bytes/);
    assert.doesNotMatch(answer.body, /100 Continue/);
  });

  it('an `Expect` other than 100-continue is a JSON 417', async () => {
    const answer = await rawExchange(svc.url, ['POST /data HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nExpect: teapot\r\n\r\n']);
    expectJsonError(answer, 417, /Expect "teapot" is not supported/);
  });

  it('`Expect: 100-continue` within the limit gets 100 Continue and then its answer', async () => {
    const body = '{"k":"v"}';
    const head = `POST /data HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`;
    const { port } = new URL(svc.url);
    const text = await new Promise<string>((resolve) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => socket.write(head));
      let data = '';
      socket.on('data', (chunk) => {
        data += chunk.toString();
        if (data.startsWith('HTTP/1.1 100') && !data.includes('\r\n\r\nHTTP')) socket.write(body);
      });
      socket.on('close', () => resolve(data));
    });
    assert.match(text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 (201|503)/);
  });

  it('every answer carries X-Content-Type-Options: nosniff', async () => {
    for (const path of ['/', '/healthz', '/nope', '/data?limit=x']) {
      const res = await fetch(`${svc.url}${path}`);
      await res.arrayBuffer();
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
    }
  });
});

describe('/metrics off the public port (METRICS_PORT, METRICS_PATH)', function () {
  this.timeout(30_000);
  let svc: SpawnedService;
  let metricsPort: number;
  before(async () => {
    metricsPort = await freePort();
    svc = await spawnService({ MONGODB_URI: 'mongodb://127.0.0.1:1/', METRICS_PORT: String(metricsPort), METRICS_PATH: '/internal/metrics' });
  });
  after(async () => {
    svc.kill();
    await svc.exited;
  });

  it('serves metrics only on its own port and path', async () => {
    assert.equal((await fetch(`${svc.url}/metrics`)).status, 404);
    assert.equal((await fetch(`${svc.url}/internal/metrics`)).status, 404);
    const res = await fetch(`http://127.0.0.1:${metricsPort}/internal/metrics`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /http_requests_total|process_cpu/);
    assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/data`)).status, 404);
  });
});

describe('methods the service does not implement', function () {
  this.timeout(30_000);
  it('are a JSON 501 logged as one request line, not as an error with a stack', async () => {
    const svc = await spawnService({ MONGODB_URI: 'mongodb://127.0.0.1:1/' });
    try {
      const res = await fetch(`${svc.url}/data`, { method: 'PROPFIND' });
      assert.equal(res.status, 501);
      assert.match(((await res.json()) as { error: string }).error, /not implemented/);
      await waitFor('request line', async () => svc.logs.some((line) => line.includes('"method":"PROPFIND"')), 3000);
    } finally {
      svc.kill();
      await svc.exited;
    }
    const errors = svc.logs.filter((line) => line.includes('"level":"error"'));
    assert.deepEqual(errors, []);
  });
});
