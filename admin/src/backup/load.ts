/**
 * Restores an archive into a database, all or nothing, without transactions (FerretDB v1 has none):
 *
 *   1. read the whole file and check it (readArchive): a truncated, damaged or altered file is refused
 *      before anything is written;
 *   2. refuse a database that holds documents unless `drop` (replace) was asked for;
 *   3. load every collection into a new collection of its own (__restore_<run>_<n>), with its options and
 *      indexes, and check there what the database now holds: the count, and the order-free checksum of
 *      every document as canonical Extended JSON, against the archive's;
 *   4. swap: rename each existing collection aside (__replaced_<run>_<n>) and the loaded one into its
 *      place; if any rename fails, the renames done so far are undone;
 *   5. drop the replaced collections.
 * A failure in 1-4 drops what this run created and leaves the database as it was.
 */
import { randomBytes } from 'node:crypto';
import type { Db } from 'mongodb';
import { ArchiveError, LineTally, readArchive, type ArchivedCollection, type Manifest } from './archive';
import { bsonToCanonicalLine, canonicalLineToDocument, NEGATIVE_ZERO, type Value } from './ejson';
import { isWorkCollection, loadingName, LOADING_PREFIX, replacedName, REPLACED_PREFIX } from './names';

/** Restore would overwrite documents and was not told to (--drop): exit code 4, nothing written. */
export class RefusedError extends Error {}
/** Restore failed part-way and undid its work: exit code 1. */
export class RestoreFailed extends Error {}

export interface RestoreProgress {
  phase: 'checking' | 'loading';
  documents: number;
  totalDocuments?: number;
  fileBytes: number;
  totalFileBytes?: number;
}

export interface RestoreOptions {
  /** Replace the archive's collections when the database holds documents. */
  drop?: boolean;
  /** Only check the file (step 1). */
  checkOnly?: boolean;
  /** The file's manifest from an earlier readArchive (step 1 done already). */
  checked?: Manifest;
  progress?: (state: RestoreProgress) => void;
  note?: (line: string) => void;
  /** Asked between batches; true stops the restore (and undoes it), e.g. after Ctrl-C. */
  interrupted?: () => boolean;
  /** For tests: runs before the swap of the n-th collection (0-based). */
  beforeSwap?: (index: number) => Promise<void>;
}

export interface RestoredCollection {
  name: string;
  documents: number;
  bytes: number;
  indexes: number;
  /** Documents the database holds after loading (read back). */
  counted: number;
  /** 'exact': every document reads back as in the archive; 'negative-zero': except -0.0 read back as 0.0. */
  checksum: 'exact' | 'negative-zero';
  sum: string;
  negativeZeroDocuments: number;
  replaced: boolean;
}

export interface RestoreSummary {
  manifest: Manifest;
  database: string;
  collections: RestoredCollection[];
  /** Collections of the database that the archive does not hold: left as they were. */
  untouched: string[];
  checkOnly: boolean;
}

const BATCH_DOCUMENTS = 1000;
const BATCH_BYTES = 4 * 1024 * 1024;

/** What the database holds now: user collections and whether each holds a document, and our leftovers. */
async function inventory(db: Db): Promise<{ collections: Map<string, boolean>; loading: string[]; replaced: string[] }> {
  const names = (await db.listCollections({}, { nameOnly: true }).toArray()).map((entry) => entry.name).filter((name) => !name.startsWith('system.'));
  const collections = new Map<string, boolean>();
  for (const name of names.filter((n) => !isWorkCollection(n))) {
    collections.set(name, (await db.collection(name).findOne({}, { projection: { _id: 1 } })) !== null);
  }
  return { collections, loading: names.filter((n) => n.startsWith(LOADING_PREFIX)), replaced: names.filter((n) => n.startsWith(REPLACED_PREFIX)) };
}

const withoutKeys = (map: Map<string, Value>, keys: string[]) => new Map([...map].filter(([key]) => !keys.includes(key)));

export async function restoreArchive(db: Db, path: string, options: RestoreOptions = {}): Promise<RestoreSummary> {
  const note = options.note ?? (() => undefined);
  const manifest =
    options.checked ??
    (await readArchive(path, {
      progress: (fileBytes, documents) => options.progress?.({ phase: 'checking', fileBytes, documents }),
    }));
  const summary: RestoreSummary = { manifest, database: db.databaseName, collections: [], untouched: [], checkOnly: Boolean(options.checkOnly) };
  if (options.checkOnly) return summary;

  const before = await inventory(db);
  const holding = [...before.collections].filter(([, any]) => any).map(([name]) => name);
  if (holding.length > 0 && !options.drop) {
    // Counted only to say so (a count can cost a whole scan on FerretDB).
    const counts = await Promise.all(holding.map(async (name) => [name, await db.collection(name).countDocuments()] as const));
    const total = counts.reduce((sum, [, count]) => sum + count, 0);
    throw new RefusedError(
      `database ${db.databaseName} already holds documents (${counts.map(([name, count]) => `${name}: ${count}`).join(', ')}; ${total} in all); ` +
        'add --drop to replace the collections the backup holds; nothing was written',
    );
  }
  for (const name of before.loading) {
    await db.collection(name).drop();
    note(`dropped ${name}, left by an interrupted restore (it held a partial load, never your data)`);
  }
  for (const name of before.replaced) note(`${name} holds the data an interrupted restore replaced; drop it once you no longer need it`);
  if (manifest.header.database !== db.databaseName) note(`the backup is of database ${manifest.header.database}; restoring it into ${db.databaseName}`);
  const archived = new Set(manifest.collections.map((c) => c.name));
  summary.untouched = [...before.collections.keys()].filter((name) => !archived.has(name)).sort();

  const run = randomBytes(3).toString('hex');
  const created: string[] = [];
  const dropCreated = async () => {
    for (const name of created.splice(0)) await db.collection(name).drop().catch(() => undefined);
  };
  const stopIfInterrupted = () => {
    if (options.interrupted?.()) throw new RestoreFailed('interrupted');
  };

  // Pass 2: load and check, collection by collection.
  let index = -1;
  let loading: { name: string; batch: Map<string, Value>[]; batchBytes: number; normalized: LineTally; negativeZero: number } | undefined;
  let inflight: Promise<void> = Promise.resolve();
  let failure: Error | undefined;
  let loaded = 0;
  const flush = async () => {
    await inflight;
    if (failure) throw failure;
    stopIfInterrupted();
    if (!loading || loading.batch.length === 0) return;
    const { name, batch } = loading;
    loading.batch = [];
    loading.batchBytes = 0;
    // One batch in flight while the next is parsed.
    inflight = db
      .collection(name)
      .insertMany(batch as unknown as Array<Record<string, unknown>>, { ordered: true, forceServerObjectId: true })
      .then(
        () => undefined,
        (error: Error) => {
          failure = error;
        },
      );
  };

  try {
    await readArchive(path, {
      progress: (fileBytes, documents) =>
        options.progress?.({ phase: 'loading', fileBytes, documents, totalDocuments: manifest.documents, totalFileBytes: manifest.fileBytes }),
      start: async (info) => {
        stopIfInterrupted();
        index += 1;
        const temp = loadingName(run, index);
        await db.command({ create: temp, ...Object.fromEntries(info.options) });
        created.push(temp);
        loading = { name: temp, batch: [], batchBytes: 0, normalized: new LineTally(), negativeZero: 0 };
      },
      document: async (line) => {
        const text = line.toString('utf8');
        let doc: Map<string, Value>;
        try {
          doc = canonicalLineToDocument(text);
        } catch (error) {
          throw new ArchiveError(`${path}: document ${loaded + 1}: ${(error as Error).message}`);
        }
        loading!.batch.push(doc);
        loading!.batchBytes += line.length;
        if (text.includes(NEGATIVE_ZERO)) {
          loading!.negativeZero += 1;
          loading!.normalized.addToSum(text.replaceAll(NEGATIVE_ZERO, '{"$numberDouble":"0.0"}'));
        } else {
          loading!.normalized.addToSum(text);
        }
        loaded += 1;
        if (loading!.batch.length >= BATCH_DOCUMENTS || loading!.batchBytes >= BATCH_BYTES) await flush();
      },
      done: async (collection: ArchivedCollection) => {
        await flush();
        await inflight;
        if (failure) throw failure;
        const temp = loading!.name;
        const specs = collection.indexes.filter((spec) => spec.get('name') !== '_id_').map((spec) => withoutKeys(spec, ['v', 'ns']));
        if (specs.length) await db.command({ createIndexes: temp, indexes: specs });
        // Read back what the database now holds, as canonical Extended JSON, and compare.
        const back = new LineTally();
        for await (const raw of db.collection(temp).find({}, { raw: true, batchSize: 1000 } as object) as AsyncIterable<Buffer>) back.addToSum(bsonToCanonicalLine(raw));
        let checksum: RestoredCollection['checksum'];
        if (back.documents !== collection.documents) {
          throw new RestoreFailed(`collection ${collection.name}: the database holds ${back.documents} documents after loading, the backup ${collection.documents}`);
        } else if (back.sum === collection.sum) {
          checksum = 'exact';
        } else if (loading!.negativeZero > 0 && back.sum === loading!.normalized.sum) {
          checksum = 'negative-zero';
        } else {
          throw new RestoreFailed(
            `collection ${collection.name}: what the database holds after loading differs from the backup (checksum ${back.sum.slice(0, 12)}…, backup ${collection.sum.slice(0, 12)}…): this server changes some value`,
          );
        }
        summary.collections.push({
          name: collection.name,
          documents: collection.documents,
          bytes: collection.bytes,
          indexes: collection.indexes.length,
          counted: back.documents,
          checksum,
          sum: back.sum,
          negativeZeroDocuments: loading!.negativeZero,
          replaced: before.collections.has(collection.name),
        });
        loading = undefined;
      },
    });
  } catch (error) {
    await inflight;
    await dropCreated();
    if (error instanceof ArchiveError || error instanceof RestoreFailed) throw error;
    throw new RestoreFailed(`${firstLine(error)} (while loading${loading ? ` collection ${manifest.collections[index]?.name ?? ''}` : ''})`);
  }

  // Swap: each loaded collection into its place; undone entirely if one rename fails.
  const steps: Array<{ name: string; temp: string; aside?: string; movedAside: boolean; movedIn: boolean }> = [];
  try {
    for (const [i, collection] of manifest.collections.entries()) {
      await options.beforeSwap?.(i);
      const step = {
        name: collection.name,
        temp: loadingName(run, i),
        aside: before.collections.has(collection.name) ? replacedName(run, i) : undefined,
        movedAside: false,
        movedIn: false,
      };
      steps.push(step);
      if (step.aside) {
        await db.renameCollection(step.name, step.aside);
        step.movedAside = true;
      }
      await db.renameCollection(step.temp, step.name);
      step.movedIn = true;
    }
  } catch (error) {
    const stuck: string[] = [];
    for (const step of [...steps].reverse()) {
      try {
        if (step.movedIn) await db.renameCollection(step.name, step.temp);
        if (step.movedAside) await db.renameCollection(step.aside!, step.name);
      } catch (undoError) {
        stuck.push(`${step.name} (${firstLine(undoError)})`);
      }
    }
    if (stuck.length) {
      throw new RestoreFailed(
        `the swap failed (${firstLine(error)}) and could not be undone for ${stuck.join(', ')}: the earlier data is in the ${REPLACED_PREFIX}${run}_* collections`,
      );
    }
    await dropCreated();
    throw new RestoreFailed(`${firstLine(error)} (while swapping the restored collections in; undone, nothing changed)`);
  }
  for (const step of steps) {
    if (step.aside) await db.collection(step.aside).drop().catch((error: Error) => note(`could not drop ${step.aside} (the replaced data): ${firstLine(error)}; drop it yourself`));
  }
  return summary;
}

export const firstLine = (error: unknown) => String((error as Error)?.message ?? error).split('\n')[0];
