/**
 * Creates the node's own objects (addons, StorageClass) through the API server, with strict field
 * validation (paths found by the wing's client through discovery); an object that exists already is left
 * as it is.
 */
import type { KubeClient, Manifest } from '../kube';

export async function createAll(api: KubeClient, manifests: Manifest[]): Promise<void> {
  for (const manifest of manifests) {
    const collection = await api.path(manifest.apiVersion, manifest.kind, manifest.metadata.namespace);
    const res = await api.request('POST', `${collection}?fieldValidation=Strict`, manifest);
    if (res.status !== 201 && res.status !== 409) {
      throw new Error(`creating ${manifest.kind} ${manifest.metadata.name} failed (${res.status}): ${res.body.message ?? JSON.stringify(res.body)}`);
    }
  }
}
