import assert from 'node:assert/strict';
import { manifests } from './harness';
import { runStack } from './fixtures';
import { STACK_VARIANTS, secretsFor } from './stack-variants';

type Manifest = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
interface Model { validate(): void }
type ModelClass = new (data: Manifest) => Model;

/** The kubernetes-models class for a manifest's apiVersion and kind (its OpenAPI schema and validator). */
function modelFor(manifest: Manifest): ModelClass {
  const module = `kubernetes-models/${manifest.apiVersion}`;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const models = require(module) as Record<string, ModelClass>;
  const model = models[manifest.kind];
  if (!model) throw new Error(`no model for ${manifest.apiVersion} ${manifest.kind}`);
  return model;
}

/**
 * Every object the program declares, validated against the Kubernetes OpenAPI
 * schema (kubernetes-models): the closest thing to an API server here.
 */
describe('Kubernetes OpenAPI schema validation', () => {
  it('the validator really rejects a broken object (sanity check)', () => {
    const broken = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' }, spec: { selector: {}, template: { spec: { containers: [{ image: 'a:1' }] } } } };
    assert.throws(() => new (modelFor(broken))(broken).validate(), /name/);
    const wrongType = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'x' }, spec: { ports: [{ port: '80' }] } };
    assert.throws(() => new (modelFor(wrongType))(wrongType).validate());
  });

  for (const [variant, overrides] of Object.entries(STACK_VARIANTS) as Array<[string, Record<string, string>]>) {
    it(`every object validates: ${variant}`, async () => {
      const { resources } = await runStack(overrides, secretsFor(overrides));
      const objects = manifests(resources);
      assert.ok(objects.length >= 10);
      for (const manifest of objects) {
        const Model = modelFor(manifest);
        assert.doesNotThrow(() => new Model(manifest).validate(), `${manifest.kind} ${manifest.metadata?.name}`);
      }
    });
  }
});
