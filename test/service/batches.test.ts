/**
 * The store's find is tried a second time on exactly the errors the driver's own retryable reads retry (a
 * connection lost, a server shutting down or no longer primary), never on a refusal, never a third time;
 * the session is ended whatever happens. A stand-in collection answers the commands, so that each failure
 * comes exactly when the test says.
 */
import assert from 'node:assert/strict';
import type { Collection, Document } from 'mongodb';
import { Batches } from '../../service/src/store/batches';
import { serviceDriver } from './helpers';

const { Long, MongoNetworkError, MongoServerError } = serviceDriver();

/** A collection whose commands fail with `failures`, in turn, then answer with one exhausted batch. */
function collectionFailing(...failures: Error[]) {
  return collectionWith({ retryReads: true }, ...failures);
}

function collectionWith(options: { retryReads: boolean }, ...failures: Error[]) {
  const sent: Document[] = [];
  let sessions = 0;
  let ended = 0;
  const collection = {
    collectionName: 'data',
    readPreference: undefined,
    db: {
      client: { options, startSession: () => (sessions++, { endSession: async () => void ended++ }) },
      command: async (body: Document) => {
        sent.push(body);
        const failure = failures.shift();
        if (failure) throw failure;
        return { cursor: { id: Long.ZERO, firstBatch: [Buffer.from([5, 0, 0, 0, 0])] } };
      },
    },
  } as unknown as Collection<Document>;
  return { collection, sent, sessions: () => sessions, ended: () => ended };
}

describe('Batches: the find tried once more on what the driver retries', () => {
  it('a lost connection: tried again once, in the same session, and answered', async () => {
    const fake = collectionFailing(new MongoNetworkError('connection 3 to 127.0.0.1:27017 closed'));
    const batches = await Batches.open(fake.collection, { filter: {}, batchSize: 101 });
    assert.equal(fake.sent.length, 2);
    assert.deepEqual(fake.sent[1], fake.sent[0], 'the same find');
    assert.equal(batches.first.length, 1);
    assert.equal(batches.exhausted, true);
    assert.equal(fake.sessions(), 1);
    await batches.close();
    assert.equal(fake.ended(), 1);
  });

  it('a server shutting down (91) or no longer primary (10107): tried again', async () => {
    for (const code of [91, 10107]) {
      const fake = collectionFailing(new MongoServerError({ code, errmsg: `code ${code}` }));
      await (await Batches.open(fake.collection, { filter: {}, batchSize: 101 })).close();
      assert.equal(fake.sent.length, 2, `code ${code}`);
    }
  });

  it('a refusal (bad value, 2), or a second lost connection: not tried again, and the session ended', async () => {
    const refused = collectionFailing(new MongoServerError({ code: 2, errmsg: 'bad filter' }));
    await assert.rejects(Batches.open(refused.collection, { filter: {}, batchSize: 101 }), /bad filter/);
    assert.equal(refused.sent.length, 1);
    assert.equal(refused.ended(), 1);

    const twice = collectionFailing(new MongoNetworkError('first'), new MongoNetworkError('second'));
    await assert.rejects(Batches.open(twice.collection, { filter: {}, batchSize: 101 }), /second/);
    assert.equal(twice.sent.length, 2);
    assert.equal(twice.ended(), 1);
  });

  it('retryReads=false in the URI: not tried again', async () => {
    const fake = collectionWith({ retryReads: false }, new MongoNetworkError('closed'));
    await assert.rejects(Batches.open(fake.collection, { filter: {}, batchSize: 101 }), /closed/);
    assert.equal(fake.sent.length, 1);
  });

  it('a deadline that has passed: not tried again', async () => {
    const controller = new AbortController();
    controller.abort();
    const fake = collectionFailing(new MongoNetworkError('closed'));
    await assert.rejects(Batches.open(fake.collection, { filter: {}, batchSize: 101 }, controller.signal), /closed/);
    assert.equal(fake.sent.length, 1);
  });
});
