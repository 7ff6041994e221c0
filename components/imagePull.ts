import type * as pulumi from '@pulumi/pulumi';

/**
 * What a pod needs of an image: the reference its container runs, how to pull it, and the Secret to pull
 * with (registry mode). A ServiceImage is one; a component that runs an image takes it whole.
 */
export interface ImagePull {
  ref: pulumi.Input<string>;
  pullPolicy?: string;
  pullSecretName?: pulumi.Input<string>;
}

/** A pod spec's `imagePullSecrets` for the image. */
export function imagePullSecrets(image: ImagePull): Array<{ name: pulumi.Input<string> }> | undefined {
  return image.pullSecretName ? [{ name: image.pullSecretName }] : undefined;
}
