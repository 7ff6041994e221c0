/**
 * The `standard` StorageClass's provisioner, in the spirit of Minikube's
 * storage-provisioner (k8s.io/minikube-hostpath): every pending claim of the class
 * gets a hostPath PersistentVolume bound to it, in a directory open to any uid
 * (MongoDB runs as 999); a released volume's directory and object are deleted
 * (reclaimPolicy Delete). It runs in the process that started the node and polls
 * the API server, which is plenty for a test cluster's handful of claims.
 */
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { KubeClient } from '../kube';
import { PROVISIONER } from './addons';

type Manifest = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface Provisioner {
  stop(): Promise<void>;
}

export function startProvisioner(api: KubeClient, root: string, log: (line: string) => void): Provisioner {
  const classes = new Map<string, boolean>();
  const ours = async (className: string | undefined) => {
    if (!className) return false;
    if (!classes.has(className)) {
      const res = await api.request('GET', `/apis/storage.k8s.io/v1/storageclasses/${className}`);
      if (res.status !== 200) return false;
      classes.set(className, res.body.provisioner === PROVISIONER);
    }
    return classes.get(className);
  };

  const provision = async (claim: Manifest) => {
    const { namespace, name, uid } = claim.metadata;
    const dir = path.join(root, namespace, name);
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o777);
    const volume = {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: `pvc-${uid}`, annotations: { 'pv.kubernetes.io/provisioned-by': PROVISIONER } },
      spec: {
        capacity: { storage: claim.spec.resources.requests.storage },
        accessModes: claim.spec.accessModes,
        persistentVolumeReclaimPolicy: 'Delete',
        storageClassName: claim.spec.storageClassName,
        volumeMode: claim.spec.volumeMode ?? 'Filesystem',
        claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace, name, uid },
        hostPath: { path: dir, type: 'Directory' },
      },
    };
    const res = await api.request('POST', '/api/v1/persistentvolumes', volume);
    if (res.status === 201) log(`provisioned ${volume.metadata.name} for ${namespace}/${name} at ${dir}`);
    else if (res.status !== 409) log(`provisioning ${namespace}/${name} failed (${res.status}): ${res.body.message}`);
  };

  const reclaim = async (volume: Manifest) => {
    const dir = volume.spec.hostPath?.path as string | undefined;
    if (dir && path.resolve(dir).startsWith(path.resolve(root) + path.sep)) rmSync(dir, { recursive: true, force: true });
    const res = await api.request('DELETE', `/api/v1/persistentvolumes/${volume.metadata.name}`);
    if (res.status === 200 || res.status === 404) log(`deleted ${volume.metadata.name} (released)`);
  };

  const sweep = async () => {
    const claims = await api.request('GET', '/api/v1/persistentvolumeclaims');
    for (const claim of (claims.body.items ?? []) as Manifest[]) {
      if (claim.status?.phase === 'Pending' && !claim.spec.volumeName && !claim.metadata.deletionTimestamp && (await ours(claim.spec.storageClassName))) await provision(claim);
    }
    const volumes = await api.request('GET', '/api/v1/persistentvolumes');
    for (const volume of (volumes.body.items ?? []) as Manifest[]) {
      const provisionedByUs = volume.metadata.annotations?.['pv.kubernetes.io/provisioned-by'] === PROVISIONER;
      if (provisionedByUs && volume.status?.phase === 'Released' && volume.spec.persistentVolumeReclaimPolicy === 'Delete') await reclaim(volume);
    }
  };

  let running = true;
  const loop = (async () => {
    while (running) {
      await sweep().catch((error: Error) => log(`provisioner: ${error.message}`));
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
    },
  };
}
