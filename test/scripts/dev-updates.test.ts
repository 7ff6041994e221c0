/**
 * `npm run dev`'s update queue (scripts/dev/updates.ts): one update at a time, a burst of saves
 * before an update is one update, and every edit made while an update runs goes into ONE next update.
 */
import assert from 'node:assert/strict';
import { UpdateQueue, type Batch } from '../../scripts/dev/updates';

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('npm run dev: edits coalesced into updates', () => {
  it('edits during an update make exactly one next update, with every file once', async () => {
    const batches: Batch[] = [];
    let release: () => void = () => undefined;
    let running = 0;
    let overlapped = false;
    const queue = new UpdateQueue(
      async (batch) => {
        batches.push(batch);
        running += 1;
        if (running > 1) overlapped = true;
        await new Promise<void>((resolve) => (release = resolve));
        running -= 1;
      },
      { settleMs: 20 },
    );
    queue.submit('src/a.ts');
    await pause(60);
    assert.equal(batches.length, 1, 'the first update started after the settle time');
    assert.ok(queue.busy);
    for (const file of ['src/b.ts', 'src/c.ts', 'src/b.ts', 'package.json', 'src/c.ts']) {
      queue.submit(file);
      await pause(5);
    }
    await pause(60);
    assert.equal(batches.length, 1, 'nothing starts while an update runs');
    release();
    await pause(60);
    assert.equal(batches.length, 2, 'one next update for all of them');
    assert.deepEqual(batches[1].files, ['src/b.ts', 'src/c.ts', 'package.json']);
    release();
    await queue.idle();
    assert.equal(batches.length, 2, 'and no third');
    assert.equal(overlapped, false, 'never two updates at once');
    assert.deepEqual(batches[0].files, ['src/a.ts']);
  });

  it('a burst of saves before an update is one update; the save time is the first event', async () => {
    const batches: Batch[] = [];
    const queue = new UpdateQueue(async (batch) => void batches.push(batch), { settleMs: 40 });
    const first = Date.now();
    for (const file of ['src/x.ts', 'src/.x.ts.swp', 'src/x.ts']) {
      queue.submit(file);
      await pause(10);
    }
    await queue.idle();
    assert.equal(batches.length, 1);
    assert.deepEqual(batches[0].files, ['src/x.ts', 'src/.x.ts.swp']);
    assert.ok(batches[0].firstAt >= first && batches[0].firstAt < first + 10, 'firstAt is the first save');
  });

  it('submit() says whether a file is new in the waiting batch (dev says "goes in the next update" once)', async () => {
    const queue = new UpdateQueue(async () => void (await pause(50)), { settleMs: 10 });
    assert.equal(queue.submit('src/a.ts'), true);
    assert.equal(queue.submit('src/a.ts'), false, 'the same file again: already waiting');
    await pause(30);
    assert.ok(queue.busy);
    assert.equal(queue.submit('src/a.ts'), true, 'a save during the update is new in the next batch');
    assert.equal(queue.submit('src/a.ts'), false);
    await queue.idle();
  });

  it('a failed update is reported and the next edit still updates', async () => {
    const errors: unknown[] = [];
    let calls = 0;
    const queue = new UpdateQueue(
      async () => {
        calls += 1;
        if (calls === 1) throw new Error('pulumi up failed');
      },
      { settleMs: 10, onError: (error) => errors.push(error) },
    );
    queue.submit('src/a.ts');
    await queue.idle();
    queue.submit('src/a.ts');
    await queue.idle();
    assert.equal(calls, 2);
    assert.equal(errors.length, 1);
  });

  it('stop() waits for the running update and drops what is pending', async () => {
    let release: () => void = () => undefined;
    let calls = 0;
    const queue = new UpdateQueue(
      async () => {
        calls += 1;
        await new Promise<void>((resolve) => (release = resolve));
      },
      { settleMs: 10 },
    );
    queue.submit('src/a.ts');
    await pause(40);
    queue.submit('src/b.ts');
    let stopped = false;
    const stopping = queue.stop().then(() => (stopped = true));
    await pause(20);
    assert.equal(stopped, false, 'stop waits for the update in progress');
    release();
    await stopping;
    await pause(40);
    assert.equal(calls, 1, 'the pending edit was dropped');
    queue.submit('src/c.ts');
    await pause(40);
    assert.equal(calls, 1, 'nothing after stop');
  });
});
