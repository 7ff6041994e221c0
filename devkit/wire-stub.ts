/**
 * A Mongo-wire server that answers at once from memory: what is left of a request's cost when the
 * database costs nothing. `npm run bench` runs its CPU comparison against it as well as against FerretDB,
 * whose SQLite backend takes about 20 ms for any query of 100 documents (75 ms sorted over 1000), so that
 * on FerretDB the clients idle between answers and their CPU per request is mostly cold caches and
 * wake-ups. Against this stub they are busy, and the figures are the clients' own work.
 *
 * It speaks just enough for the driver and the service: the handshake (OP_QUERY hello), then OP_MSG
 * find (a filter on `_id: {$gt}`, `_id` order, limit, `_id: 0` projection, batch sizes), getMore,
 * killCursors, and insert/delete/createIndexes/ping that succeed without keeping anything. Every
 * collection holds the same 1000 small documents. Not a database: nothing written is ever read back.
 *
 * Runs in a process of its own (`node --import tsx devkit/wire-stub.ts`), so that its CPU is nobody's;
 * it prints `ready <uri>` once listening.
 */
import net from 'node:net';
import { BSON, Long, ObjectId, type Document } from 'mongodb';
import { REPO_ROOT } from './paths';
import { superviseUntilAddress } from './supervisor';

const OP_REPLY = 1;
const OP_QUERY = 2004;
const OP_MSG = 2013;

export interface WireStub {
  uri: string;
  pid: number;
  stop(): Promise<void>;
}

/** Starts the stub in its own process; resolves with its URI once it listens. */
export async function startWireStub(): Promise<WireStub> {
  const { address: uri, proc: stub } = await superviseUntilAddress('the wire stub', process.execPath, {
    args: ['--import', 'tsx', __filename],
    cwd: REPO_ROOT,
    graceMs: 2000,
  });
  return { uri, pid: stub.pid, stop: async () => void (await stub.stop(2000)) };
}

const DOCUMENTS = Array.from({ length: 1000 }, (_, n) => ({ _id: new ObjectId(), key: `value${n}`, n, tags: ['a', 'b'], nested: { ok: true } }));

function answer(command: Document, cursors: Map<number, { ns: string; rest: Document[] }>, next: { cursor: number; connection: number }): Document {
  const name = Object.keys(command)[0].toLowerCase();
  switch (name) {
    case 'hello':
    case 'ismaster':
      // No topologyVersion: the driver polls instead of streaming heartbeats.
      return {
        ismaster: true,
        isWritablePrimary: true,
        helloOk: true,
        maxBsonObjectSize: 16 * 1024 * 1024,
        maxMessageSizeBytes: 48_000_000,
        maxWriteBatchSize: 100_000,
        localTime: new Date(),
        logicalSessionTimeoutMinutes: 30,
        connectionId: ++next.connection,
        minWireVersion: 0,
        maxWireVersion: 21,
        readOnly: false,
        ok: 1,
      };
    case 'find': {
      const ns = `${command.$db}.${command.find}`;
      const after = (command.filter as { _id?: { $gt?: ObjectId } } | undefined)?._id?.$gt;
      let found: Document[] = after === undefined ? DOCUMENTS : DOCUMENTS.filter((doc) => doc._id.toHexString() > after.toHexString());
      found = found.slice(0, (command.limit as number | undefined) ?? found.length);
      if ((command.projection as Document | undefined)?._id === 0) found = found.map(({ _id, ...rest }) => rest);
      const size = (command.batchSize as number | undefined) ?? 101;
      let id = 0;
      if (found.length > size) {
        id = next.cursor++;
        cursors.set(id, { ns, rest: found.slice(size) });
      }
      return { cursor: { firstBatch: found.slice(0, size), id: Long.fromNumber(id), ns }, ok: 1 };
    }
    case 'getmore': {
      const id = Number(command.getMore);
      const cursor = cursors.get(id);
      if (cursor === undefined) return { ok: 0, errmsg: 'cursor not found', code: 43 };
      const batch = cursor.rest.splice(0, (command.batchSize as number | undefined) ?? cursor.rest.length);
      if (cursor.rest.length === 0) cursors.delete(id);
      return { cursor: { nextBatch: batch, id: Long.fromNumber(cursor.rest.length > 0 ? id : 0), ns: cursor.ns }, ok: 1 };
    }
    case 'killcursors':
      for (const id of command.cursors as Long[]) cursors.delete(Number(id));
      return { cursorsKilled: command.cursors as Long[], ok: 1 };
    case 'insert':
      return { n: (command.documents as Document[] | undefined)?.length ?? 0, ok: 1 };
    case 'delete':
    case 'update':
      return { n: 0, nModified: 0, ok: 1 };
    default:
      return { ok: 1 };
  }
}

/** One reply: an OP_MSG (or, to an OP_QUERY, an OP_REPLY) carrying `body`. */
function reply(opCode: number, responseTo: number, body: Buffer): Buffer[] {
  const legacy = opCode === OP_QUERY;
  const head = Buffer.alloc(legacy ? 36 : 21);
  head.writeInt32LE(head.length + body.length, 0);
  head.writeInt32LE(0, 4);
  head.writeInt32LE(responseTo, 8);
  head.writeInt32LE(legacy ? OP_REPLY : OP_MSG, 12);
  if (legacy) {
    head.writeInt32LE(0, 16); // responseFlags
    head.writeBigInt64LE(0n, 20); // cursorID
    head.writeInt32LE(0, 28); // startingFrom
    head.writeInt32LE(1, 32); // numberReturned
  } else {
    head.writeUInt32LE(0, 16); // flagBits
    head[20] = 0; // section kind 0: the body
  }
  return [head, body];
}

/** The command in one OP_QUERY or OP_MSG (document sequences folded in under their names). */
function parse(message: Buffer, opCode: number): Document {
  if (opCode === OP_QUERY) {
    const query = message.indexOf(0, 20) + 1 + 8; // after the collection name, numberToSkip and numberToReturn
    return BSON.deserialize(message.subarray(query, query + message.readInt32LE(query)));
  }
  const end = message.readUInt32LE(16) & 1 ? message.length - 4 : message.length; // a checksum ends it
  let command: Document = {};
  for (let at = 20; at < end; ) {
    const kind = message[at++];
    const size = message.readInt32LE(at);
    if (kind === 0) {
      command = { ...BSON.deserialize(message.subarray(at, at + size)), ...command };
    } else {
      const nameEnd = message.indexOf(0, at + 4);
      const documents: Document[] = [];
      for (let doc = nameEnd + 1; doc < at + size; doc += message.readInt32LE(doc)) {
        documents.push(BSON.deserialize(message.subarray(doc, doc + message.readInt32LE(doc))));
      }
      command[message.toString('utf8', at + 4, nameEnd)] = documents;
    }
    at += size;
  }
  return command;
}

function serve(): void {
  const cursors = new Map<number, { ns: string; rest: Document[] }>();
  const next = { cursor: 1, connection: 0 };
  const server = net.createServer((socket) => {
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      const out: Buffer[] = [];
      while (pending.length >= 16 && pending.length >= pending.readInt32LE(0)) {
        const message = pending.subarray(0, pending.readInt32LE(0));
        pending = pending.subarray(message.length);
        const opCode = message.readInt32LE(12);
        if (opCode !== OP_MSG && opCode !== OP_QUERY) {
          socket.destroy();
          return;
        }
        out.push(...reply(opCode, message.readInt32LE(4), Buffer.from(BSON.serialize(answer(parse(message, opCode), cursors, next)))));
      }
      if (out.length > 0) socket.write(Buffer.concat(out));
    });
    socket.on('error', () => socket.destroy());
  });
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as net.AddressInfo;
    process.stdout.write(`ready mongodb://127.0.0.1:${port}/\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
}

if (require.main === module) serve();
