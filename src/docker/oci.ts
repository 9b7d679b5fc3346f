// An image archive that both `docker load` (the docker-archive manifest.json, which Docker
// 20.10 reads) and OCI tools (index.json + oci-layout) accept, written without a Docker
// daemon. One uncompressed layer: the role's root file system as a tar.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

export interface ImageConfig {
  /** e.g. piinit/homelab-server:1.8.7-abc123 */
  tag: string;
  /** Seconds since the epoch; the image's "created" (SOURCE_DATE_EPOCH). */
  created: number;
  cmd: string[];
  env: string[];
  stopSignal?: string;
  volumes?: string[];
  labels?: Record<string, string>;
}

async function sha256OfFile(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path), h);
  return h.digest('hex');
}

export function imageConfigJson(cfg: ImageConfig, layerDiffId: string): string {
  const created = new Date(cfg.created * 1000).toISOString();
  return JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    created,
    config: {
      Cmd: cfg.cmd,
      Env: cfg.env,
      ...(cfg.stopSignal ? { StopSignal: cfg.stopSignal } : {}),
      ...(cfg.volumes?.length ? { Volumes: Object.fromEntries(cfg.volumes.map((v) => [v, {}])) } : {}),
      ...(cfg.labels ? { Labels: cfg.labels } : {}),
    },
    rootfs: { type: 'layers', diff_ids: [`sha256:${layerDiffId}`] },
    history: [{ created, created_by: 'piinit image --format oci' }],
  });
}

/**
 * Writes `out` (atomically) from a layer tar already on disk. The archive is reproducible:
 * the layer tar must be (GNU tar --sort=name --mtime ... --numeric-owner), and every
 * member here has a fixed mtime and owner.
 */
export async function writeImageArchive(layerTar: string, cfg: ImageConfig, out: string): Promise<{ imageId: string; layerDigest: string }> {
  const layerDigest = await sha256OfFile(layerTar);
  const layerSize = (await stat(layerTar)).size;
  const config = Buffer.from(imageConfigJson(cfg, layerDigest));
  const configDigest = createHash('sha256').update(config).digest('hex');
  const ociManifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${configDigest}`, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${layerDigest}`, size: layerSize }],
    }),
  );
  const ociManifestDigest = createHash('sha256').update(ociManifest).digest('hex');
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: `sha256:${ociManifestDigest}`,
          size: ociManifest.length,
          annotations: { 'io.containerd.image.name': cfg.tag, 'org.opencontainers.image.ref.name': cfg.tag.split(':').pop() },
        },
      ],
    }),
  );
  const dockerManifest = Buffer.from(
    JSON.stringify([{ Config: `blobs/sha256/${configDigest}`, RepoTags: [cfg.tag], Layers: [`blobs/sha256/${layerDigest}`] }]),
  );

  const mtime = new Date(cfg.created * 1000);
  const pack = tar.pack();
  const tmp = `${out}.tmp-${process.pid}`;
  const written = pipeline(pack, createWriteStream(tmp, { mode: 0o600 })); // the cluster's keys and tokens are in it
  const entry = (name: string, body: Buffer) =>
    new Promise<void>((resolve, reject) => pack.entry({ name, mode: 0o644, mtime, uid: 0, gid: 0 }, body, (e) => (e ? reject(e) : resolve())));
  try {
    await entry('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
    await entry('index.json', index);
    await entry('manifest.json', dockerManifest);
    pack.entry({ name: 'blobs/', type: 'directory', mode: 0o755, mtime, uid: 0, gid: 0 });
    pack.entry({ name: 'blobs/sha256/', type: 'directory', mode: 0o755, mtime, uid: 0, gid: 0 });
    await entry(`blobs/sha256/${configDigest}`, config);
    await entry(`blobs/sha256/${ociManifestDigest}`, ociManifest);
    await new Promise<void>((resolve, reject) => {
      const sink = pack.entry({ name: `blobs/sha256/${layerDigest}`, size: layerSize, mode: 0o644, mtime, uid: 0, gid: 0 }, (e) =>
        e ? reject(e) : resolve(),
      );
      createReadStream(layerTar).on('error', reject).pipe(sink);
    });
    pack.finalize();
    await written;
    await rename(tmp, out);
  } catch (err) {
    pack.destroy();
    await rm(tmp, { force: true });
    throw err;
  }
  return { imageId: configDigest, layerDigest };
}
