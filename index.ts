/**
 * `pulumi up` on Minikube: the data service's image, MongoDB and the data
 * service, all from the stack's config. Everything is declared in components/;
 * this file only wires config to them and exports what users need.
 */
import { loadConfig } from './components/config';
import { createStack } from './components/stack';

const stack = createStack(loadConfig());

/** The service from the host, e.g. `curl "$(pulumi stack output url)/data"`. */
export const url = stack.url;
export const namespace = stack.namespace;
/** The exact image reference the Deployment runs (content-tagged or by digest). */
export const image = stack.image;
/** MongoDB's in-cluster DNS name, as the service dials it. */
export const mongoHost = stack.mongoHost;
/** For drivers where the node IP is not reachable from the host. */
export const portForward = stack.portForward;
export const kubeContext = stack.kubeContext;
