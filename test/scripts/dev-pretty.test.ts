/**
 * `npm run dev`'s log lines (scripts/dev/pretty.ts), from lines as the service writes them
 * (service/src/logger.ts: pino with level labels and ISO times, and its hand-written request line).
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger, requestLogger } from '../../service/src/logger';
import { prettyLine, shortPodName } from '../../scripts/dev/pretty';

const POD = 'data-service-7d9f8c6b5-x2k4q';
const plain = (line: string) => prettyLine(POD, line, { color: false });

/** Lines exactly as the service's logger writes them. */
function serviceLines(write: (logger: ReturnType<typeof createLogger>) => void): string[] {
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(...chunk.toString().split('\n').filter(Boolean)), done()) });
  write(createLogger('info', sink as never));
  return lines;
}

describe('npm run dev: the log prettifier', () => {
  it('a request line: time, level, pod, method path status ms', () => {
    const line = '{"level":"info","time":"2026-12-02T01:02:03.456Z","service":"data-service","requestId":"abc","method":"GET","path":"/data?limit=10","status":200,"ms":3.2,"completed":true,"msg":"request"}';
    assert.equal(plain(line), '01:02:03.456 INFO  7d9f8c6b5-x2k4q │ GET /data?limit=10 200 3.2ms');
    const aborted = plain(line.replace('"completed":true', '"completed":false').replace('"status":200', '"status":499'));
    assert.match(aborted, /GET \/data\?limit=10 499 3\.2ms \(client went away\)$/);
  });

  it('the service\'s own lines: its request logger and pino with fields and an error with its stack', () => {
    const [request] = serviceLines((logger) => requestLogger(logger)({ requestId: 'r1', method: 'POST', path: '/data', status: 201, ms: 4, completed: true }));
    assert.match(plain(request), /^\d\d:\d\d:\d\d\.\d{3} INFO {2}7d9f8c6b5-x2k4q │ POST \/data 201 4ms$/);
    const [warn, error] = serviceLines((logger) => {
      logger.warn({ component: 'mongodb', attempt: 2 }, 'database not reachable yet');
      logger.error({ err: new TypeError('boom') }, 'unhandled');
    });
    assert.match(plain(warn), /^\d\d:\d\d:\d\d\.\d{3} WARN {2}7d9f8c6b5-x2k4q │ database not reachable yet component=mongodb attempt=2$/);
    const shown = plain(error).split('\n');
    assert.match(shown[0], /ERROR 7d9f8c6b5-x2k4q │ unhandled TypeError: boom$/);
    assert.match(shown[1], /^ {4}at /, 'the stack follows, indented');
  });

  it('a line that is not JSON is shown as it is, with its pod', () => {
    assert.match(plain('node:internal/modules/cjs/loader:1228'), /^\d\d:\d\d:\d\d\.\d{3} {7}7d9f8c6b5-x2k4q │ node:internal\/modules\/cjs\/loader:1228$/);
    assert.match(plain('[1,2]'), /│ \[1,2\]$/);
  });

  it('colours only when asked; the pod keeps its colour', () => {
    const line = '{"level":"error","time":"2026-12-02T01:02:03.456Z","msg":"x"}';
    assert.ok(!plain(line).includes('\x1b['));
    const coloured = prettyLine(POD, line, { color: true });
    assert.ok(coloured.includes('\x1b[31mERROR\x1b[0m'), 'the level in red');
    assert.equal(prettyLine(POD, line, { color: true }), coloured);
  });

  it('short pod names keep the rollout and the pod', () => {
    assert.equal(shortPodName(POD), '7d9f8c6b5-x2k4q');
    assert.equal(shortPodName('mongodb-0'), 'mongodb-0');
  });
});
