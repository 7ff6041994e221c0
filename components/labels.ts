/** Kubernetes recommended labels (app.kubernetes.io/*) for one part of the stack. */
export interface AppLabels {
  /** All recommended labels, for metadata. */
  all: Record<string, string>;
  /** The stable subset used in selectors (selectors are immutable, so no version in them). */
  selector: Record<string, string>;
}

export function appLabels(name: string, component: string, partOf: string, instance: string): AppLabels {
  const selector = {
    'app.kubernetes.io/name': name,
    'app.kubernetes.io/instance': instance,
    'app.kubernetes.io/component': component,
  };
  return {
    selector,
    all: { ...selector, 'app.kubernetes.io/part-of': partOf, 'app.kubernetes.io/managed-by': 'pulumi' },
  };
}
