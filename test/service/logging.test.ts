import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger, requestLogger } from '../../service/src/logger';
import { freePort, spawnService, waitFor } from './helpers';

describe('the request log line', () => {
  /** A logger as the service makes it, writing into an array. */
  const capture = (level: 'info' | 'warn') => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _encoding, done) => (lines.push(...chunk.toString().split('\n').filter(Boolean)), done()) });
    return { logger: createLogger(level, sink), lines };
  };

  it('is written by hand exactly as pino writes it (paths with quotes, newlines and non-ASCII included)', () => {
    const { logger, lines } = capture('info');
    const line = { requestId: 'r-1', method: 'GET', path: '/data"\n\u2028ü\\', status: 499, ms: 12.3, completed: false };
    logger.info(line, 'request');
    requestLogger(logger)(line);
    assert.equal(lines.length, 2);
    const [generic, byHand] = lines.map((text) => JSON.parse(text) as Record<string, unknown>);
    assert.ok(typeof byHand.time === 'string' && !Number.isNaN(Date.parse(byHand.time)));
    delete generic.time;
    delete byHand.time;
    assert.deepEqual(byHand, generic);
    assert.deepEqual(Object.keys(byHand), Object.keys(generic), 'same order of fields');
  });

  it('follows the log level', () => {
    const { logger, lines } = capture('warn');
    requestLogger(logger)({ requestId: 'r-2', method: 'POST', path: '/data', status: 201, ms: 1, completed: true });
    assert.deepEqual(lines, []);
  });
});

/** Structured JSON logs, one line per request with its id; credentials never in logs or bodies. */
describe('logs and secrets', function () {
  this.timeout(30_000);

  it('never prints credentials, even when the URI carries them and the database is failing', async () => {
    const port = await freePort();
    const svc = await spawnService({
      MONGODB_URI: `mongodb://admin:UriS3cret%21@127.0.0.1:${port}/?authSource=admin`,
      MONGODB_USER: 'app',
      MONGODB_PASSWORD: 'EnvS3cret!',
      MONGODB_SERVER_SELECTION_TIMEOUT_MS: '500',
      LOG_LEVEL: 'debug',
    });
    const bodies: string[] = [];
    const post = await fetch(`${svc.url}/data`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Request-Id': 'test-0' }, body: '{"k":"v"}' });
    assert.equal(post.status, 503);
    bodies.push(await post.text());
    for (const [n, path] of ['/readyz', '/data', '/nope'].entries()) {
      bodies.push(await (await fetch(`${svc.url}${path}`, { headers: { 'X-Request-Id': `test-${n + 1}` } })).text());
    }
    await fetch(`${svc.url}/healthz`, { headers: { 'X-Request-Id': 'trace-me-1' } });
    svc.kill();
    assert.equal(await svc.exited, 0);

    const everything = svc.logs.join('\n') + bodies.join('\n');
    for (const secret of ['UriS3cret', 'EnvS3cret']) {
      assert.ok(!everything.includes(secret), `"${secret}" leaked:\n${everything}`);
    }
    assert.ok(!bodies.join('').includes('127.0.0.1'), 'error bodies do not reveal the database address');

    const lines = svc.logs.filter((line) => !line.startsWith('(node:')).map((line) => JSON.parse(line) as Record<string, unknown>);
    const starting = lines.find((line) => line.msg === 'starting');
    assert.equal(starting?.mongo, `mongodb://***@127.0.0.1:${port}/?authSource=admin`);
    const ours = new Set(['test-0', 'test-1', 'test-2', 'test-3', 'trace-me-1']);
    const requests = lines.filter((line) => line.msg === 'request' && ours.has(String(line.requestId)));
    assert.deepEqual(requests.map((line) => line.requestId).sort(), [...ours].sort(), 'one line per request');
    for (const line of requests) {
      assert.equal(typeof line.requestId, 'string');
      assert.equal(typeof line.status, 'number');
      assert.equal(typeof line.ms, 'number');
    }
    assert.ok(requests.some((line) => line.requestId === 'trace-me-1' && line.path === '/healthz'));
  });

  it('logs a 5xx with its request id and the error, but the client only sees a generic message', async () => {
    const port = await freePort();
    const svc = await spawnService({ MONGODB_URI: `mongodb://127.0.0.1:${port}/`, MONGODB_SERVER_SELECTION_TIMEOUT_MS: '300' });
    const res = await fetch(`${svc.url}/data`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Request-Id': 'req-503' }, body: '{"a":1}' });
    assert.equal(res.status, 503);
    await waitFor('error log line', async () => svc.logs.some((line) => line.includes('"requestId":"req-503"') && line.includes('"msg":"request failed"')), 3000);
    svc.kill();
    await svc.exited;
  });
});
