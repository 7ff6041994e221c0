/**
 * `npm run images`: makes (or finds cached) the four images with one builder and prints, as
 * JSON on stdout, each one's reference and archive, plus how long the call took.
 */
import { startDockerd } from './dockerd';
import { buildAdminImage, buildServiceImage, ensureBaseImage, ensureMongoStandIn } from './index';

async function main(): Promise<void> {
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const started = Date.now();
  const daemon = await startDockerd(log);
  try {
    const base = await ensureBaseImage({ daemon, log });
    const service = await buildServiceImage(undefined, { daemon, log });
    const admin = await buildAdminImage({ daemon, log });
    const mongo = await ensureMongoStandIn({ daemon, log });
    console.log(JSON.stringify({ base, service, admin, mongo, seconds: (Date.now() - started) / 1000 }, null, 2));
  } finally {
    await daemon.stop();
  }
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
