/**
 * Downloads a model repository's files from the Hugging Face Hub (or a server that speaks its API: a mirror, a local
 * test server): the file list with sizes and checksums from the tree API (`/api/models/REPO/tree/REV?recursive=true`:
 * LFS files carry `lfs.oid`, their SHA-256; others their git blob id), each file from `/REPO/resolve/REV/PATH` (which
 * redirects to a CDN), streamed to `PATH.part` beside its destination and renamed only once its size and checksum
 * match. A cancelled or broken download keeps its `.part`; the next one asks for the rest (`Range: bytes=N-`), and
 * starts over if the server ignores the range. Proxies: an explicit proxy URL (VS Code's `http.proxy`), else the
 * usual environment variables. No `vscode` here, so that tests run it against a loopback server.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { HttpProxyAgent } from 'http-proxy-agent';
import { HttpsProxyAgent } from 'https-proxy-agent';

export const DEFAULT_HUB = 'https://huggingface.co';

/** The paper's models as the authors' diffusers checkpoints (Ho et al. 2020; weights float32). */
export interface PretrainedModel {
  repo: string;
  label: string;
  resolution: number;
  /** What it generates. */
  what: string;
  /** Parameters and download size (float32 weights plus configs), for the pick. */
  params: number;
  approxBytes: number;
}

export const PRETRAINED_MODELS: readonly PretrainedModel[] = [
  {
    repo: 'google/ddpm-cifar10-32',
    label: 'CIFAR-10',
    resolution: 32,
    what: 'small photos in 10 classes: planes, cars, birds, cats, deer, dogs, frogs, horses, ships, trucks (FID 3.17)',
    params: 35_746_307,
    approxBytes: 143e6,
  },
  {
    repo: 'google/ddpm-celebahq-256',
    label: 'CelebA-HQ',
    resolution: 256,
    what: 'faces of celebrities',
    params: 113_673_219,
    approxBytes: 455e6,
  },
  {
    repo: 'google/ddpm-church-256',
    label: 'LSUN Church',
    resolution: 256,
    what: 'church buildings, outdoors',
    params: 113_673_219,
    approxBytes: 455e6,
  },
  {
    repo: 'google/ddpm-bedroom-256',
    label: 'LSUN Bedroom',
    resolution: 256,
    what: 'bedrooms',
    params: 113_673_219,
    approxBytes: 455e6,
  },
  {
    repo: 'google/ddpm-cat-256',
    label: 'LSUN Cat',
    resolution: 256,
    what: 'cats',
    params: 113_673_219,
    approxBytes: 455e6,
  },
];

/** A file as the tree API lists it, with what it must hash to. */
export interface RemoteFile {
  path: string;
  size: number;
  /** SHA-256 (hex) of an LFS file, else the git blob SHA-1 of the content. */
  checksum: { algorithm: 'sha256' | 'git-sha1'; hex: string };
}

export interface DownloadProgress {
  /** Bytes on disk of all files so far (resumed bytes included), and of all of them. */
  received: number;
  total: number;
  /** Bytes per second over this session's transfer, and the time left at that rate (null before it is known). */
  bytesPerSecond: number | null;
  etaSeconds: number | null;
  file: string;
}

export interface HubOptions {
  /** The hub's base URL (default https://huggingface.co). */
  endpoint?: string;
  revision?: string;
  /** A proxy URL (http://user:pass@host:port) for every request; else HTTPS_PROXY / HTTP_PROXY unless NO_PROXY. */
  proxy?: string;
  /** Reject servers whose certificate does not verify (VS Code's http.proxyStrictSSL). Default true. */
  strictSSL?: boolean;
  /** An access token for gated or private repositories. */
  token?: string;
  signal?: AbortSignal;
  onProgress?: (p: DownloadProgress) => void;
  userAgent?: string;
}

/** A download that failed in a way the user can act on; `kind` says which. */
export class HubError extends Error {
  constructor(
    readonly kind: 'offline' | 'proxy' | 'http' | 'checksum' | 'format',
    message: string,
  ) {
    super(message);
    this.name = 'HubError';
  }
}

function abortError(): Error {
  const e = new Error('download cancelled');
  e.name = 'AbortError';
  return e;
}

/** The proxy for `url`: the explicit one, else the environment's (curl's rules: NO_PROXY host suffixes, `*`). */
export function proxyFor(
  url: URL,
  explicit: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (explicit) return explicit;
  const noProxy = (env.NO_PROXY ?? env.no_proxy ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  const host = url.hostname.toLowerCase();
  if (noProxy.some((n) => n === '*' || host === n.replace(/^\./, '') || host.endsWith(n.startsWith('.') ? n : `.${n}`)))
    return undefined;
  const v =
    url.protocol === 'https:'
      ? (env.HTTPS_PROXY ?? env.https_proxy ?? env.HTTP_PROXY ?? env.http_proxy)
      : (env.HTTP_PROXY ?? env.http_proxy);
  return v || undefined;
}

/** What a network error means to the user, naming the host (and the proxy, when one was used). */
function networkError(e: NodeJS.ErrnoException, url: URL, proxy: string | undefined): HubError {
  const code = e.code ?? '';
  const via = proxy ? ` through the proxy ${new URL(proxy).host}` : '';
  if (proxy && /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ECONNRESET/.test(code) && e.message.includes(new URL(proxy).hostname))
    return new HubError('proxy', `cannot reach the proxy ${new URL(proxy).host} (${code}): check http.proxy`);
  if (/ENOTFOUND|EAI_AGAIN/.test(code))
    return new HubError('offline', `cannot resolve ${url.host}${via} (${code}): offline, or DNS blocked?`);
  if (/ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE/.test(code))
    return new HubError('offline', `cannot connect to ${url.host}${via} (${code}): offline, or blocked by a firewall?`);
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code) || /certificate/i.test(e.message))
    return new HubError(
      'proxy',
      `${url.host}'s certificate did not verify${via} (${code || e.message}): a proxy that inspects HTTPS? Set http.proxyStrictSSL to false only if you trust it`,
    );
  if (/Bad response: 407|407/.test(e.message))
    return new HubError('proxy', `the proxy asks for authentication (407): put user:password in http.proxy`);
  return new HubError('offline', `request to ${url.host}${via} failed: ${e.message}`);
}

interface Response {
  res: http.IncomingMessage;
  url: URL;
  /**
   * The SHA-256 the hub gave for an LFS or Xet file along the redirects (`x-linked-etag`: the hub answers /resolve/
   * with it before redirecting to its CDN), if any.
   */
  linkedSha256?: string;
}

function linkedSha256(res: http.IncomingMessage): string | undefined {
  const etag = res.headers['x-linked-etag'];
  const v = (Array.isArray(etag) ? etag[0] : etag)?.replace(/^W\//, '').replace(/"/g, '');
  return v && /^[0-9a-f]{64}$/.test(v) ? v : undefined;
}

/** GET `url` (following up to 5 redirects), with the hub's headers; resolves at the response headers. */
function get(url: URL, o: HubOptions, headers: Record<string, string> = {}, redirects = 5): Promise<Response> {
  return new Promise((resolve, reject) => {
    if (o.signal?.aborted) return reject(abortError());
    const proxy = proxyFor(url, o.proxy);
    const secure = url.protocol === 'https:';
    const agent = proxy
      ? secure
        ? new HttpsProxyAgent(proxy, { rejectUnauthorized: o.strictSSL !== false })
        : new HttpProxyAgent(proxy)
      : undefined;
    const sameHost = !o.endpoint || new URL(o.endpoint).host === url.host;
    const req = (secure ? https : http).get(
      url,
      {
        agent,
        rejectUnauthorized: o.strictSSL !== false,
        headers: {
          'user-agent': o.userAgent ?? 'ddpm-studio',
          // The token goes only to the hub itself, never to the CDN it redirects to.
          ...(o.token && sameHost ? { authorization: `Bearer ${o.token}` } : {}),
          ...headers,
        },
        timeout: 30_000,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400 && res.headers.location) {
          res.resume();
          if (redirects === 0) return reject(new HubError('http', `too many redirects from ${url.host}`));
          const linked = linkedSha256(res);
          get(new URL(res.headers.location, url), o, headers, redirects - 1).then(
            (r) => resolve({ ...r, linkedSha256: r.linkedSha256 ?? linked }),
            reject,
          );
          return;
        }
        resolve({ res, url, ...(linkedSha256(res) ? { linkedSha256: linkedSha256(res) } : {}) });
      },
    );
    const onAbort = () => req.destroy(abortError());
    o.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('close', () => o.signal?.removeEventListener('abort', onAbort));
    req.on('timeout', () =>
      req.destroy(Object.assign(new Error(`no answer in 30 s`), { code: 'ETIMEDOUT' }) as NodeJS.ErrnoException),
    );
    req.on('error', (e: NodeJS.ErrnoException) => reject(e.name === 'AbortError' ? e : networkError(e, url, proxy)));
  });
}

function httpError(status: number, url: URL, what: string): HubError {
  const why =
    status === 401 || status === 403
      ? 'the repository is gated or private: it needs an access token'
      : status === 404
        ? 'not found'
        : status === 429
          ? 'too many requests: try again later'
          : `HTTP ${status}`;
  return new HubError('http', `${what} (${url.origin}${url.pathname}): ${why}`);
}

async function readBody(res: http.IncomingMessage, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res) {
    n += (c as Buffer).length;
    if (n > max) throw new HubError('format', `the answer is larger than ${max} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const hubUrl = (o: HubOptions, p: string) => new URL(p, `${(o.endpoint ?? DEFAULT_HUB).replace(/\/+$/, '')}/`);
const encodePath = (p: string) => p.split('/').map(encodeURIComponent).join('/');

/** Every file of `repo` at the revision, with its size and checksum. */
export async function listRepoFiles(repo: string, o: HubOptions = {}): Promise<RemoteFile[]> {
  const rev = encodeURIComponent(o.revision ?? 'main');
  const url = hubUrl(o, `api/models/${encodePath(repo)}/tree/${rev}?recursive=true`);
  const { res } = await get(url, o, { accept: 'application/json' });
  if (res.statusCode !== 200) {
    res.resume();
    throw httpError(res.statusCode ?? 0, url, `cannot list ${repo}`);
  }
  let entries: unknown;
  try {
    entries = JSON.parse(await readBody(res, 8 << 20));
  } catch (e) {
    if (e instanceof HubError) throw e;
    throw new HubError('format', `the file list of ${repo} is not JSON`);
  }
  if (!Array.isArray(entries)) throw new HubError('format', `the file list of ${repo} is not a list`);
  const files: RemoteFile[] = [];
  for (const e of entries as Record<string, unknown>[]) {
    if (e?.type !== 'file' || typeof e.path !== 'string' || typeof e.size !== 'number') continue;
    const lfs = e.lfs as { oid?: unknown; sha256?: unknown; size?: unknown } | undefined;
    // The API names the SHA-256 `oid`; huggingface_hub's own listing (and some mirrors) `sha256`.
    const sha256 = lfs?.oid ?? lfs?.sha256;
    if (lfs && typeof sha256 === 'string' && /^[0-9a-f]{64}$/.test(sha256))
      files.push({
        path: e.path,
        size: typeof lfs.size === 'number' ? lfs.size : e.size,
        checksum: { algorithm: 'sha256', hex: sha256 },
      });
    // A Xet-backed file without LFS details: its `oid` is not its content's; the SHA-256 comes with the download
    // (x-linked-etag), and a file without one is refused rather than taken unchecked.
    else if (lfs || typeof e.xetHash === 'string')
      files.push({ path: e.path, size: e.size, checksum: { algorithm: 'sha256', hex: '' } });
    else if (typeof e.oid === 'string' && /^[0-9a-f]{40}$/.test(e.oid))
      files.push({ path: e.path, size: e.size, checksum: { algorithm: 'git-sha1', hex: e.oid } });
  }
  return files;
}

/**
 * The files a UNet2DModel import needs from a repository's listing: the model at the top (config.json,
 * diffusion_pytorch_model.safetensors — or .bin where there is no safetensors —, scheduler_config.json) or a pipeline's
 * unet/ and scheduler/ folders.
 */
export function modelFiles(repo: string, files: readonly RemoteFile[]): RemoteFile[] {
  const byPath = new Map(files.map((f) => [f.path, f]));
  for (const dir of ['unet/', '']) {
    const config = byPath.get(`${dir}config.json`);
    if (!config) continue;
    // safetensors where the repository has it; else torch.save's .bin, which the sidecar reads without running it.
    const weights =
      byPath.get(`${dir}diffusion_pytorch_model.safetensors`) ?? byPath.get(`${dir}diffusion_pytorch_model.bin`);
    if (!weights)
      throw new HubError(
        'format',
        `${repo} has no ${dir}diffusion_pytorch_model.safetensors (nor diffusion_pytorch_model.bin)`,
      );
    const scheduler = byPath.get(dir ? 'scheduler/scheduler_config.json' : 'scheduler_config.json');
    return [config, weights, ...(scheduler ? [scheduler] : [])];
  }
  throw new HubError('format', `${repo} holds no diffusers model (no config.json nor unet/config.json)`);
}

function checksumOf(file: string, algorithm: RemoteFile['checksum']['algorithm'], size: number): crypto.Hash {
  const h = crypto.createHash(algorithm === 'sha256' ? 'sha256' : 'sha1');
  if (algorithm === 'git-sha1') h.update(`blob ${size}\0`);
  if (fs.existsSync(file)) {
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.alloc(1 << 22);
      let n: number;
      while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) h.update(buf.subarray(0, n));
    } finally {
      fs.closeSync(fd);
    }
  }
  return h;
}

/** Whether `file` has the size and checksum the hub lists (a finished earlier download). */
export function isComplete(file: string, f: RemoteFile): boolean {
  if (fs.statSync(file, { throwIfNoEntry: false })?.size !== f.size) return false;
  return checksumOf(file, f.checksum.algorithm, f.size).digest('hex') === f.checksum.hex;
}

/**
 * Downloads one file to `dest` (through `dest.part`, resumed if there is one), checking its size and checksum.
 * `onBytes` gets each chunk's length as it arrives.
 */
export async function downloadFile(
  repo: string,
  f: RemoteFile,
  dest: string,
  o: HubOptions,
  onBytes: (n: number, resumedFrom: number) => void,
): Promise<void> {
  const part = `${dest}.part`;
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  let have = fs.statSync(part, { throwIfNoEntry: false })?.size ?? 0;
  // Too long to be a prefix of the file; or complete, but its checksum comes only with the download's headers
  // (x-linked-etag): start over.
  if (have > f.size || (!f.checksum.hex && have === f.size)) {
    fs.rmSync(part);
    have = 0;
  }
  const url = hubUrl(
    o,
    `${encodePath(repo)}/resolve/${encodeURIComponent(o.revision ?? 'main')}/${encodePath(f.path)}`,
  );
  if (have < f.size) {
    const { res, url: at, linkedSha256: linked } = await get(url, o, have > 0 ? { range: `bytes=${have}-` } : {});
    if (!f.checksum.hex && linked) f.checksum.hex = linked;
    const status = res.statusCode ?? 0;
    if (status === 416) {
      res.resume();
      fs.rmSync(part, { force: true });
      throw new HubError(
        'http',
        `${f.path}: the server refused to resume (416); the partial file was removed, try again`,
      );
    }
    if (status !== 200 && status !== 206) {
      res.resume();
      throw httpError(status, at, `cannot download ${repo}/${f.path}`);
    }
    // 200 to a range request: the server sends the whole file; start over.
    if (status === 200) have = 0;
    onBytes(0, have);
    const out = fs.createWriteStream(part, { flags: have > 0 ? 'a' : 'w' });
    await new Promise<void>((resolve, reject) => {
      let done = false;
      const fail = (e: Error) => {
        if (done) return;
        done = true;
        res.destroy();
        out.end(() => reject(e));
      };
      const onAbort = () => fail(abortError());
      o.signal?.addEventListener('abort', onAbort, { once: true });
      res.on('data', (c: Buffer) => onBytes(c.length, have));
      res.on('error', (e: NodeJS.ErrnoException) =>
        fail(o.signal?.aborted ? abortError() : networkError(e, at, undefined)),
      );
      res.on('aborted', () =>
        fail(
          o.signal?.aborted
            ? abortError()
            : new HubError('offline', `${f.path}: the connection broke off; try again to resume`),
        ),
      );
      out.on('error', fail);
      res.pipe(out);
      out.on('finish', () => {
        o.signal?.removeEventListener('abort', onAbort);
        if (done) return;
        done = true;
        resolve();
      });
    });
    if (o.signal?.aborted) throw abortError();
  } else onBytes(0, have);
  const size = fs.statSync(part).size;
  if (size !== f.size) {
    if (size > f.size) fs.rmSync(part, { force: true });
    throw new HubError(
      size > f.size ? 'checksum' : 'offline',
      `${f.path}: got ${size} of ${f.size} bytes${size < f.size ? '; try again to resume' : '; the file was removed'}`,
    );
  }
  if (!f.checksum.hex) {
    fs.rmSync(part, { force: true });
    throw new HubError('checksum', `${f.path}: the hub lists no SHA-256 for it, so it cannot be checked; not used`);
  }
  const got = checksumOf(part, f.checksum.algorithm, f.size).digest('hex');
  if (got !== f.checksum.hex) {
    fs.rmSync(part, { force: true });
    throw new HubError(
      'checksum',
      `${f.path}: its ${f.checksum.algorithm === 'sha256' ? 'SHA-256' : 'git blob SHA-1'} is ${got}, but the hub lists ${f.checksum.hex}; the download was removed, try again`,
    );
  }
  fs.renameSync(part, dest);
}

/**
 * Downloads the model files of `repo` into `destDir` (keeping the repository's layout) and returns the folder to
 * import. Files already there with the listed checksum are not downloaded again.
 */
export async function downloadModel(repo: string, destDir: string, o: HubOptions = {}): Promise<string> {
  const files = modelFiles(repo, await listRepoFiles(repo, o));
  const total = files.reduce((n, f) => n + f.size, 0);
  let received = 0;
  let fresh = 0;
  const t0 = Date.now();
  let lastReport = 0;
  const report = (file: string, force = false) => {
    const now = Date.now();
    if (!force && now - lastReport < 100) return;
    lastReport = now;
    const secs = (now - t0) / 1000;
    const rate = secs > 0.5 && fresh > 0 ? fresh / secs : null;
    o.onProgress?.({
      received,
      total,
      bytesPerSecond: rate,
      etaSeconds: rate ? (total - received) / rate : null,
      file,
    });
  };
  for (const f of files) {
    const dest = path.join(destDir, ...f.path.split('/'));
    if (isComplete(dest, f)) {
      received += f.size;
      report(f.path, true);
      continue;
    }
    const base = received;
    await downloadFile(repo, f, dest, o, (n, resumedFrom) => {
      if (n === 0) received = base + resumedFrom;
      received += n;
      fresh += n;
      report(f.path);
    });
    received = base + f.size;
    report(f.path, true);
  }
  return destDir;
}
