// A Hugging Face Hub look-alike on the loopback address, for the download tests (unit and e2e): the tree API
// (`/api/models/REPO/tree/REV?recursive=true`, LFS entries with their SHA-256) and `/REPO/resolve/REV/PATH`, which
// redirects to `/cdn/PATH` as the hub redirects to its CDN, served with Range support. It serves the small diffusers
// fixture (test/fixtures/diffusers/small) and a scheduler config as the repository `test/ddpm-small`.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

export const SMALL_REPO = 'test/ddpm-small';
const FIXTURE = path.join(__dirname, '..', 'fixtures', 'diffusers', 'small');

export interface HubServerOptions {
  /** Bytes per write and a pause between writes (slow downloads, to cancel one in the middle). */
  chunk?: number;
  delayMs?: number;
  /** Answer Range requests with the whole file (200). */
  ignoreRange?: boolean;
  /** Serve this file with one byte changed (its listing keeps the right checksum). */
  corrupt?: string;
  /**
   * List the weights as a Xet-backed file (xetHash, no lfs), their SHA-256 only in the /resolve/ redirect's
   * x-linked-etag, as the hub does; 'no-etag': not even there.
   */
  xet?: boolean | 'no-etag';
  /** Name the LFS SHA-256 `sha256` (huggingface_hub's listing) instead of the API's `oid`. */
  lfsSha256Key?: boolean;
  /** Serve these bytes as diffusion_pytorch_model.bin in place of the safetensors (a repo with only torch.save's). */
  torchBin?: Buffer;
}

export interface HubServer {
  url: string;
  requests: { url: string; range?: string }[];
  close(): Promise<void>;
}

const SCHEDULER = Buffer.from(
  JSON.stringify({
    _class_name: 'DDPMScheduler',
    beta_end: 0.02,
    beta_schedule: 'linear',
    beta_start: 0.0001,
    clip_sample: true,
    num_train_timesteps: 1000,
    trained_betas: null,
    variance_type: 'fixed_small',
  }),
);

function repoFiles(torchBin?: Buffer): Map<string, Buffer> {
  return new Map([
    ['config.json', fs.readFileSync(path.join(FIXTURE, 'config.json'))],
    torchBin
      ? ['diffusion_pytorch_model.bin', torchBin]
      : [
          'diffusion_pytorch_model.safetensors',
          fs.readFileSync(path.join(FIXTURE, 'diffusion_pytorch_model.safetensors')),
        ],
    ['scheduler_config.json', SCHEDULER],
    ['README.md', Buffer.from('# a test model\n')],
  ]);
}

/** The weights are LFS files on the hub (safetensors, and torch.save's .bin); the rest plain git blobs. */
const isLfs = (p: string) => /\.(safetensors|bin)$/.test(p);

export function startHubServer(o: HubServerOptions = {}): Promise<HubServer> {
  const files = repoFiles(o.torchBin);
  const requests: HubServer['requests'] = [];
  const sockets = new Set<import('node:net').Socket>();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push({ url: req.url ?? '', ...(req.headers.range ? { range: req.headers.range } : {}) });
    if (url.pathname === `/api/models/${SMALL_REPO}/tree/main`) {
      const entries = [...files].map(([p, b]) =>
        isLfs(p) && o.xet
          ? { type: 'file', path: p, size: b.length, oid: 'f'.repeat(40), xetHash: 'a'.repeat(64) }
          : isLfs(p)
            ? {
                type: 'file',
                path: p,
                size: b.length,
                oid: crypto.createHash('sha1').update(`version https://git-lfs…${p}`).digest('hex'),
                lfs: {
                  [o.lfsSha256Key ? 'sha256' : 'oid']: crypto.createHash('sha256').update(b).digest('hex'),
                  size: b.length,
                  pointerSize: 134,
                },
              }
            : {
                type: 'file',
                path: p,
                size: b.length,
                oid: crypto.createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex'),
              },
      );
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify([{ type: 'directory', path: 'images', oid: '0'.repeat(40), size: 0 }, ...entries]));
      return;
    }
    const resolve = new RegExp(`^/${SMALL_REPO}/resolve/main/(.+)$`).exec(url.pathname);
    if (resolve && files.has(resolve[1])) {
      const sha = crypto.createHash('sha256').update(files.get(resolve[1])!).digest('hex');
      res.writeHead(302, {
        location: `/cdn/${resolve[1]}`,
        ...(resolve[1].endsWith('.safetensors') && o.xet !== 'no-etag' ? { 'x-linked-etag': `"${sha}"` } : {}),
      });
      res.end();
      return;
    }
    const cdn = /^\/cdn\/(.+)$/.exec(url.pathname);
    const body = cdn ? files.get(cdn[1]) : undefined;
    if (!cdn || !body) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('Repository not found');
      return;
    }
    let data = body;
    if (o.corrupt === cdn[1]) {
      data = Buffer.from(body);
      data[data.length >> 1] ^= 0xff;
    }
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    let start = 0;
    if (m && !o.ignoreRange) {
      start = Number(m[1]);
      if (start >= data.length) {
        res.writeHead(416, { 'content-range': `bytes */${data.length}` });
        res.end();
        return;
      }
      res.writeHead(206, {
        'content-length': data.length - start,
        'content-range': `bytes ${start}-${data.length - 1}/${data.length}`,
        'accept-ranges': 'bytes',
      });
    } else res.writeHead(200, { 'content-length': data.length, 'accept-ranges': 'bytes' });
    const rest = data.subarray(start);
    if (!o.chunk) {
      res.end(rest);
      return;
    }
    let off = 0;
    const step = () => {
      if (res.destroyed) return;
      if (off >= rest.length) return void res.end();
      res.write(rest.subarray(off, off + o.chunk!));
      off += o.chunk!;
      setTimeout(step, o.delayMs ?? 0);
    };
    step();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return new Promise((resolveStart) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      resolveStart({
        url: `http://127.0.0.1:${port}`,
        requests,
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      });
    }),
  );
}
