import * as docker from '@pulumi/docker';
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { contextHash } from './buildContext';
import type { ImageMode } from './config';
import type { ImagePull } from './imagePull';
import { MinikubeImage } from './minikubeImage';

export interface ServiceImageArgs {
  mode: ImageMode;
  /** Directory holding the Dockerfile and the build context (service/ or admin/). */
  contextDir: string;
  /** Repository to tag into, e.g. `data-service` or `docker.io/me/data-service`. */
  repository: string;
  /** prebuilt mode: the exact reference to deploy. */
  reference?: string;
  /** registry mode: where to push, with a secret password. */
  registry?: { server: string; username: string; password: pulumi.Input<string> };
  /** minikube mode: the profile whose node builds and runs the image. */
  minikubeProfile?: string;
  /** registry mode: build platform, e.g. linux/arm64 for arm64 nodes (default: the local Docker's). */
  platform?: string;
  /** Namespace for the image pull secret (registry mode). */
  namespace: pulumi.Input<string>;
  labels: Record<string, string>;
}

/**
 * A container image built from a directory of this repository holding its Dockerfile: the data service's
 * (service/) and the database admin tasks' (admin/, the backup CronJob), in one of three modes:
 * - minikube: built inside the Minikube node by `minikube image build`, whatever its container
 *   runtime (see minikubeImage.ts); never pushed; IfNotPresent.
 * - registry: built and pushed with credentials from secret config; deployed by
 *   digest, with an imagePullSecret.
 * - prebuilt: a reference built elsewhere (CI, another registry); nothing built.
 * The reference changes whenever its build context changes (and only then: each image hashes its own directory).
 */
export class ServiceImage extends pulumi.ComponentResource implements ImagePull {
  /** What the Deployment's container uses as `image`. */
  readonly ref: pulumi.Output<string>;
  readonly pullPolicy: 'IfNotPresent';
  /** Name of the dockerconfigjson Secret to pull with (registry mode only). */
  readonly pullSecretName?: pulumi.Output<string>;
  /** Content hash of the build context (the tag), when this stack builds the image. */
  readonly contentTag?: string;

  constructor(name: string, args: ServiceImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super('koa-mongodb:image:ServiceImage', name, {}, opts);
    this.pullPolicy = 'IfNotPresent';

    if (args.mode === 'prebuilt') {
      if (!args.reference) throw new Error('ServiceImage: prebuilt mode needs a reference');
      this.ref = pulumi.output(args.reference);
    } else {
      this.contentTag = contextHash(args.contextDir);
      const imageName = `${args.repository}:${this.contentTag}`;

      if (args.mode === 'minikube') {
        const image = new MinikubeImage(
          name,
          { profile: args.minikubeProfile ?? 'minikube', imageName, contextDir: args.contextDir },
          { parent: this },
        );
        // The kubelet finds the image by this tag in the node's own image store.
        this.ref = image.imageName;
      } else {
        if (!args.registry) throw new Error('ServiceImage: registry mode needs registry settings');
        const registry = args.registry;
        const image = new docker.Image(
          name,
          {
            imageName,
            build: { context: args.contextDir, dockerfile: `${args.contextDir}/Dockerfile`, platform: args.platform },
            registry: { server: registry.server, username: registry.username, password: registry.password },
          },
          { parent: this },
        );
        // Deploy by digest: immutable, and exactly what was pushed.
        this.ref = image.repoDigest;

        const dockerConfig = pulumi.secret(
          pulumi.output(registry.password).apply((password) =>
            JSON.stringify({
              auths: {
                [registry.server]: {
                  username: registry.username,
                  password,
                  auth: Buffer.from(`${registry.username}:${password}`).toString('base64'),
                },
              },
            }),
          ),
        );
        const pullSecret = new k8s.core.v1.Secret(
          `${name}-pull`,
          {
            metadata: { name: `${name}-pull`, namespace: args.namespace, labels: args.labels },
            type: 'kubernetes.io/dockerconfigjson',
            stringData: { '.dockerconfigjson': dockerConfig },
          },
          { parent: this, deleteBeforeReplace: true },
        );
        this.pullSecretName = pullSecret.metadata.name;
      }
    }

    this.registerOutputs({ ref: this.ref, pullSecretName: this.pullSecretName, contentTag: this.contentTag });
  }
}
