/**
 * Creates the node's own objects (addons, StorageClass) through the API server:
 * the kinds they use, mapped to their REST paths, created with strict field
 * validation; an object that exists already is left as it is.
 */
import { KubeClient } from '../kube';

type Manifest = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const RESOURCES: Record<string, { plural: string; namespaced: boolean }> = {
  Namespace: { plural: 'namespaces', namespaced: false },
  ServiceAccount: { plural: 'serviceaccounts', namespaced: true },
  ConfigMap: { plural: 'configmaps', namespaced: true },
  Service: { plural: 'services', namespaced: true },
  Deployment: { plural: 'deployments', namespaced: true },
  Pod: { plural: 'pods', namespaced: true },
  ClusterRole: { plural: 'clusterroles', namespaced: false },
  ClusterRoleBinding: { plural: 'clusterrolebindings', namespaced: false },
  RoleBinding: { plural: 'rolebindings', namespaced: true },
  APIService: { plural: 'apiservices', namespaced: false },
  StorageClass: { plural: 'storageclasses', namespaced: false },
  PersistentVolume: { plural: 'persistentvolumes', namespaced: false },
  PersistentVolumeClaim: { plural: 'persistentvolumeclaims', namespaced: true },
};

export function resourcePath(apiVersion: string, kind: string, namespace?: string, name?: string): string {
  const resource = RESOURCES[kind];
  if (!resource) throw new Error(`devkit/node/apply.ts knows no REST path for ${kind}`);
  const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const ns = resource.namespaced ? `/namespaces/${namespace ?? 'default'}` : '';
  return `${base}${ns}/${resource.plural}${name ? `/${encodeURIComponent(name)}` : ''}`;
}

export async function createAll(api: KubeClient, manifests: Manifest[]): Promise<void> {
  for (const manifest of manifests) {
    const res = await api.request('POST', `${resourcePath(manifest.apiVersion, manifest.kind, manifest.metadata.namespace)}?fieldValidation=Strict`, manifest);
    if (res.status !== 201 && res.status !== 409) {
      throw new Error(`creating ${manifest.kind} ${manifest.metadata.name} failed (${res.status}): ${res.body.message ?? JSON.stringify(res.body)}`);
    }
  }
}
