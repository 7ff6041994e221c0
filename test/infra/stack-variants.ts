/**
 * The stack's modes, defined once: the infra tests (mocks, schema, invariants) and the cluster tests
 * (real API server) run the program under each of these config overrides of the dev stack.
 */
import { DEV_SECRETS } from './harness';

export const REGISTRY_PASSWORD = 'Registry-T0ken-never-in-plain';

export const STACK_VARIANTS = {
  dev: {},
  'registry push': { imageMode: 'registry', imageRepository: 'docker.io/me/data-service', registryServer: 'docker.io', registryUsername: 'me' },
  'static hostPath volume': { mongoStaticVolume: 'true' },
  'LoadBalancer service': { serviceType: 'LoadBalancer', nodePort: '30500' },
  'ClusterIP service': { serviceType: 'ClusterIP' },
  'prebuilt image': { imageMode: 'prebuilt', image: `ghcr.io/me/data-service@sha256:${'a'.repeat(64)}`, adminImage: `ghcr.io/me/data-admin@sha256:${'b'.repeat(64)}` },
  'fixed node port': { nodePort: '30999' },
} satisfies Record<string, Record<string, string>>;

export type VariantName = keyof typeof STACK_VARIANTS;

/** The secrets a variant needs: the two MongoDB passwords, and the registry token in registry mode. */
export function secretsFor(overrides: Record<string, string>): Record<string, string> {
  return { ...DEV_SECRETS, ...(overrides.imageMode === 'registry' ? { registryPassword: REGISTRY_PASSWORD } : {}) };
}
