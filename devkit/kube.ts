/**
 * The tests' Kubernetes client: @kubernetes/client-node (as the load tool uses)
 * reads the kubeconfig and brings the transport, the credentials, TLS and API
 * discovery (so any kind's path is found, not looked up in a table of ours).
 *
 * Objects travel as plain JSON, not through client-node's typed models, for two
 * reasons its 1.4 API cannot be asked to drop: its serializer copies only the
 * fields its model knows, so an unknown field would be silently removed before
 * strict field validation could refuse it (the check would prove nothing); and
 * what it reads back are class instances with Date fields, not the manifests
 * the tests compare declared objects with. Warnings (deprecated APIs, unknown
 * fields under Warn validation) are read from the response's headers.
 */
import { HttpMethod, KubeConfig, KubernetesObjectApi } from '@kubernetes/client-node';

export type Manifest = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface KubeResponse {
  status: number;
  body: Manifest;
  warnings: string[];
}

/** client-node's object API, reached for its discovery-backed paths and its configured transport. */
class RawObjectApi extends KubernetesObjectApi {
  uri(apiVersion: string, kind: string, namespace: string | undefined, name: string | undefined, action: 'create' | 'read' | 'list'): Promise<string> {
    return this.specUriPath({ apiVersion, kind, metadata: { name, namespace } }, action);
  }

  async send(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<KubeResponse> {
    const request = this.configuration.baseServer.makeRequestContext(path, method as HttpMethod);
    request.setHeaderParam('Accept', 'application/json');
    if (body !== undefined) {
      request.setHeaderParam('Content-Type', contentType);
      request.setBody(JSON.stringify(body));
    }
    request.setSignal(AbortSignal.timeout(10_000));
    await this.configuration.authMethods.default?.applySecurityAuthentication(request);
    const response = await this.configuration.httpApi.send(request).toPromise();
    const text = await response.body.text();
    let parsed: Manifest = {};
    try {
      parsed = text ? (JSON.parse(text) as Manifest) : {};
    } catch {
      parsed = { message: text };
    }
    const warning = response.headers.warning;
    return { status: response.httpStatusCode, body: parsed, warnings: warning ? [warning] : [] };
  }
}

export class KubeClient {
  private constructor(private readonly api: RawObjectApi) {}

  /** From a kubeconfig file, its current context. */
  static fromKubeconfig(kubeconfigPath: string): KubeClient {
    const config = new KubeConfig();
    config.loadFromFile(kubeconfigPath);
    return new KubeClient(config.makeApiClient(RawObjectApi));
  }

  /** The REST path of a kind (found through the API server's discovery), in a namespace or cluster-wide. */
  path(apiVersion: string, kind: string, namespace?: string, name?: string): Promise<string> {
    return this.api.uri(apiVersion, kind, namespace, name, name ? 'read' : 'list');
  }

  /** Any request; never throws on an HTTP error status (the status is returned), only when no answer comes. */
  request(method: string, path: string, body?: unknown, contentType?: string): Promise<KubeResponse> {
    return this.api.send(method, path, body, contentType);
  }

  /** Creates an object, refusing unknown or duplicated fields (fieldValidation=Strict). */
  async create(manifest: Manifest): Promise<{ object: Manifest; warnings: string[] }> {
    const path = await this.api.uri(manifest.apiVersion, manifest.kind, manifest.metadata.namespace, undefined, 'create');
    const res = await this.request('POST', `${path}?fieldValidation=Strict`, manifest);
    if (res.status !== 201) throw new Error(`${manifest.kind} ${manifest.metadata.name}: ${res.status} ${res.body.message ?? JSON.stringify(res.body)}`);
    return { object: res.body, warnings: res.warnings };
  }

  async get(apiVersion: string, kind: string, namespace: string | undefined, name: string): Promise<Manifest | undefined> {
    const res = await this.request('GET', await this.path(apiVersion, kind, namespace, name));
    return res.status === 200 ? res.body : undefined;
  }

  async list(apiVersion: string, kind: string, namespace: string): Promise<Manifest[]> {
    const res = await this.request('GET', await this.path(apiVersion, kind, namespace));
    return (res.body.items as Manifest[]) ?? [];
  }
}
