/**
 * Minimal access to the local API server (bearer token, its self-signed
 * certificate accepted): create with strict field validation, read back, list.
 */
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

type Manifest = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const PLURALS: Record<string, string> = {
  Namespace: 'namespaces',
  Secret: 'secrets',
  ConfigMap: 'configmaps',
  PersistentVolume: 'persistentvolumes',
  PersistentVolumeClaim: 'persistentvolumeclaims',
  Service: 'services',
  StatefulSet: 'statefulsets',
  Job: 'jobs',
  Deployment: 'deployments',
  ReplicaSet: 'replicasets',
  Pod: 'pods',
  HorizontalPodAutoscaler: 'horizontalpodautoscalers',
  PodDisruptionBudget: 'poddisruptionbudgets',
  Node: 'nodes',
  NetworkPolicy: 'networkpolicies',
  StorageClass: 'storageclasses',
};

export class KubeApi {
  constructor(
    private readonly server: string,
    private readonly token: string,
  ) {}

  /** From a kubeconfig with one cluster and one token user (as the local control plane writes it). */
  static fromKubeconfig(kubeconfigPath: string): KubeApi {
    const config = parse(readFileSync(kubeconfigPath, 'utf8')) as { clusters: Array<{ cluster: { server: string } }>; users: Array<{ user: { token: string } }> };
    return new KubeApi(config.clusters[0].cluster.server, config.users[0].user.token);
  }

  static path(apiVersion: string, kind: string, namespace?: string, name?: string): string {
    const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const plural = PLURALS[kind];
    if (!plural) throw new Error(`no plural known for ${kind}`);
    return `${base}${namespace ? `/namespaces/${namespace}` : ''}/${plural}${name ? `/${name}` : ''}`;
  }

  request(method: string, path: string, body?: unknown): Promise<{ status: number; body: Manifest; warnings: string[] }> {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = https.request(
        `${this.server}${path}`,
        {
          method,
          rejectUnauthorized: false, // the test cluster's self-signed certificate, made fresh per run
          headers: { Authorization: `Bearer ${this.token}`, Accept: 'application/json', ...(payload ? { 'Content-Type': 'application/json' } : {}) },
          timeout: 10_000,
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => {
            const warnings = ([] as string[]).concat(res.headers.warning ?? []);
            let parsed: Manifest = {};
            try {
              parsed = text ? (JSON.parse(text) as Manifest) : {};
            } catch {
              parsed = { message: text };
            }
            resolve({ status: res.statusCode ?? 0, body: parsed, warnings });
          });
        },
      );
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error(`no answer from ${this.server} in 10 s`)));
      req.end(payload);
    });
  }

  /** Creates an object, refusing unknown or duplicated fields (fieldValidation=Strict). */
  async create(manifest: Manifest): Promise<{ object: Manifest; warnings: string[] }> {
    const path = KubeApi.path(manifest.apiVersion, manifest.kind, manifest.metadata.namespace);
    const res = await this.request('POST', `${path}?fieldValidation=Strict`, manifest);
    if (res.status !== 201) throw new Error(`${manifest.kind} ${manifest.metadata.name}: ${res.status} ${res.body.message ?? JSON.stringify(res.body)}`);
    return { object: res.body, warnings: res.warnings };
  }

  async get(apiVersion: string, kind: string, namespace: string | undefined, name: string): Promise<Manifest | undefined> {
    const res = await this.request('GET', KubeApi.path(apiVersion, kind, namespace, name));
    return res.status === 200 ? res.body : undefined;
  }

  async list(apiVersion: string, kind: string, namespace: string): Promise<Manifest[]> {
    const res = await this.request('GET', KubeApi.path(apiVersion, kind, namespace));
    return (res.body.items as Manifest[]) ?? [];
  }
}
