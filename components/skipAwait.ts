/**
 * Annotations every Kubernetes object of a component carries, from one switch.
 *
 * skipAwait: create the object without waiting for it to become ready, for clusters that run no pods
 * (the local API server of test/cluster) or readiness watched elsewhere. An object that is not awaited
 * cannot be judged unready, so it never asks for `replaceUnready` either.
 *
 * (Components set this on their own objects rather than through a stack-wide `transforms` callback:
 * Pulumi's unit-test mocks do not run transforms, and the old `transformations` are deprecated.)
 */
export function annotations(skipAwait: boolean | undefined, own: Record<string, string> = {}): Record<string, string> | undefined {
  const all: Record<string, string> = { ...own };
  if (skipAwait) {
    all['pulumi.com/skipAwait'] = 'true';
    delete all['pulumi.com/replaceUnready'];
  }
  return Object.keys(all).length > 0 ? all : undefined;
}
