/**
 * `npm run backup` / `npm run restore` reach the stack's MongoDB by fixed names (scripts/backup/target.ts):
 * they must be the names the program gives its Service, port and Secret.
 */
import assert from 'node:assert/strict';
import { MONGO_PORT, MONGO_SECRET, MONGO_SERVICE, SECRET_PASSWORD_KEY, SECRET_USERNAME_KEY } from '../../scripts/backup/target';
import { ofType, plain } from './harness';
import { runStack } from './fixtures';

describe('backup and restore find the stack\'s MongoDB', () => {
  it('by the Service, port and Secret keys the program declares', async () => {
    const { resources } = await runStack();
    const services = ofType(resources, 'kubernetes:core/v1:Service').map((service) => plain(service.inputs));
    const mongo = services.find((service) => service.metadata.name === MONGO_SERVICE);
    assert.ok(mongo, `a Service named ${MONGO_SERVICE}`);
    assert.ok(mongo.spec.ports.some((port: { port: number }) => port.port === MONGO_PORT));
    const secrets = ofType(resources, 'kubernetes:core/v1:Secret').map((secret) => plain(secret.inputs));
    const credentials = secrets.find((secret) => secret.metadata.name === MONGO_SECRET);
    assert.ok(credentials, `a Secret named ${MONGO_SECRET}`);
    assert.ok(SECRET_USERNAME_KEY in credentials.stringData && SECRET_PASSWORD_KEY in credentials.stringData);
  });
});
