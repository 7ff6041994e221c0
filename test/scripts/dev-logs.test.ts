/**
 * `npm run dev`'s log streams (scripts/dev/logs.ts) with a fake API server: a stream per started pod,
 * new pods followed as they come, gone pods dropped, a stream that ends while its pod stays (a
 * container restart) reopened from its last line, none twice.
 */
import assert from 'node:assert/strict';
import { PassThrough, type Readable } from 'node:stream';
import { LogFollower, sortableStamp, type OpenLog } from '../../scripts/dev/logs';
import { PodSet, type PodInfo } from '../../scripts/dev/pods';

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const pod = (name: string, extra: Partial<PodInfo> = {}): PodInfo => ({
  name, ready: true, started: true, deleting: false, image: 'img:a', created: 1, rollout: 'a', port: 5000, container: 'data-service', ...extra,
});

describe('npm run dev: following the pods\' logs', () => {
  it('follows every started pod, new ones as they come; drops pods that go', async () => {
    const set = new PodSet();
    const streams = new Map<string, PassThrough>();
    const opened: string[] = [];
    const open: OpenLog = async (p, _since, signal) => {
      opened.push(p.name);
      const stream = new PassThrough();
      signal.addEventListener('abort', () => stream.end());
      streams.set(p.name, stream);
      return stream as Readable;
    };
    const printed: string[] = [];
    const logs = new LogFollower({ pods: set, open, print: (name, line) => printed.push(`${name}: ${line}`), retryMs: 20 });
    set.set(pod('a-1'));
    set.set(pod('b-1', { started: false, ready: false }));
    logs.start();
    await pause(20);
    assert.deepEqual(opened, ['a-1'], 'only a pod whose container started has a log');
    streams.get('a-1')!.write('2026-12-02T01:00:00.1Z {"msg":"one"}\n');
    set.set(pod('b-1'));
    await pause(20);
    streams.get('b-1')!.write('2026-12-02T01:00:01Z {"msg":"two"}\n');
    await pause(20);
    assert.deepEqual(printed, ['a-1: {"msg":"one"}', 'b-1: {"msg":"two"}']);
    set.remove('a-1');
    await pause(60);
    assert.equal(streams.get('a-1')!.writableEnded, true, 'the gone pod\'s stream was stopped');
    assert.deepEqual(opened, ['a-1', 'b-1'], 'and not reopened');
    logs.stop();
    assert.equal(streams.get('b-1')!.writableEnded, true, 'stop() ends every stream');
  });

  it('a stream that ends while the pod stays is reopened after its last line; no line twice', async () => {
    const set = new PodSet();
    const sinces: Array<string | undefined> = [];
    const history = ['2026-12-02T01:00:00.5Z first', '2026-12-02T01:00:00.75Z second'];
    let round = 0;
    const open: OpenLog = async (_p, since) => {
      sinces.push(since);
      round += 1;
      const stream = new PassThrough();
      // As the kubelet does with sinceTime: from that second on (inclusive), so old lines come again.
      if (round === 1) stream.end(`${history.join('\n')}\n`);
      else stream.write(`${history[1]}\n2026-12-02T01:00:02Z third\n`);
      return stream;
    };
    const printed: string[] = [];
    const logs = new LogFollower({ pods: set, open, print: (_name, line) => printed.push(line), retryMs: 20 });
    set.set(pod('a-1'));
    logs.start();
    await pause(100);
    logs.stop();
    assert.deepEqual(printed, ['first', 'second', 'third']);
    assert.deepEqual(sinces, [undefined, '2026-12-02T01:00:00.750000000Z']);
  });

  it('timestamps with trimmed nanoseconds compare in time order', () => {
    assert.ok(sortableStamp('2026-12-02T01:00:00.12345Z') < sortableStamp('2026-12-02T01:00:00.123456789Z'));
    assert.ok(sortableStamp('2026-12-02T01:00:00Z') < sortableStamp('2026-12-02T01:00:00.1Z'));
  });
});
