/**
 * A diffusers model on disk: a `UNet2DModel` folder (config.json + diffusion_pytorch_model.safetensors, optionally
 * scheduler_config.json beside it), or a pipeline folder as the Hugging Face Hub lays it out (model_index.json,
 * unet/, scheduler/). Reads one into our config, schedule and weights (any of F32, F16, BF16, F64; both attention
 * namings), and writes ours as one that `UNet2DModel.from_pretrained` and `DDPMPipeline.from_pretrained` load.
 * Weights are read from safetensors, or, where a folder has none, from PyTorch's diffusion_pytorch_model.bin through
 * a restricted unpickler that runs nothing (torchCheckpoint.ts): pickle's own loader would run what the file names.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../checkpoint/checkpoint.ts';
import {
  encodeSafetensors,
  readHeader,
  readTensorF32,
  type SafetensorsHeader,
  type TensorToWrite,
} from '../checkpoint/safetensors.ts';
import type { ScheduleConfig } from '../ddpm/schedule.ts';
import type { UNetConfig } from '../ddpm/unet.ts';
import {
  diffusersConfigFromUnet,
  diffusersSchedulerConfig,
  scheduleFromDiffusers,
  unetConfigFromDiffusers,
  type ImportedSchedule,
  type SamplingConfig,
} from './diffusersConfig.ts';
import { diffusersKeyPairs, fromTorchLayout, toTorchLayout } from './diffusersWeights.ts';
import { readTorchCheckpoint } from './torchCheckpoint.ts';

/** A folder that is not a diffusers model we can read (missing files, unreadable weights, tensors that do not fit). */
export class DiffusersFolderError extends Error {
  override name = 'DiffusersFolderError';
}

export const WEIGHTS_FILE = 'diffusion_pytorch_model.safetensors';
/** torch.save's state_dict, read when a folder has no safetensors (some Hub repos of the DDPM models have only it). */
export const TORCH_WEIGHTS_FILE = 'diffusion_pytorch_model.bin';
/** In order of preference: safetensors first. */
const WEIGHTS_CANDIDATES = [WEIGHTS_FILE, 'diffusion_pytorch_model.fp16.safetensors', TORCH_WEIGHTS_FILE];
const isTorchFile = (p: string) => /\.(bin|pt|pth)$/.test(p);
/** config.json files larger than this are not a model config. */
const MAX_CONFIG_BYTES = 1 << 20;

export interface DiffusersFiles {
  /** The folder holding config.json and the weights. */
  unetDir: string;
  config: string;
  weights: string;
  /** scheduler_config.json, where there is one. */
  scheduler?: string;
}

const isFile = (p: string) => fs.statSync(p, { throwIfNoEntry: false })?.isFile() ?? false;
const isDir = (p: string) => fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;

/** Finds the files of the diffusers model at `p`: a model folder, a pipeline folder, or the weights file itself. */
export function locateDiffusersModel(p: string): DiffusersFiles {
  if (!fs.existsSync(p)) throw Object.assign(new Error(`no such file or folder: ${p}`), { code: 'ENOENT' });
  let dir = isDir(p) ? p : path.dirname(p);
  if (isDir(path.join(dir, 'unet')) && isFile(path.join(dir, 'unet', 'config.json'))) dir = path.join(dir, 'unet');
  const config = path.join(dir, 'config.json');
  if (!isFile(config))
    throw new DiffusersFolderError(
      `${dir} is not a diffusers model: it has no config.json (nor unet/config.json); a UNet2DModel folder holds config.json and ${WEIGHTS_FILE}`,
    );
  const weights =
    !isDir(p) && (p.endsWith('.safetensors') || isTorchFile(p))
      ? p
      : WEIGHTS_CANDIDATES.map((f) => path.join(dir, f)).find(isFile);
  if (!weights)
    throw new DiffusersFolderError(`${dir} has a config.json but no ${WEIGHTS_FILE} (nor ${TORCH_WEIGHTS_FILE})`);
  // The scheduler: beside the model, or in ../scheduler/ of a pipeline folder.
  const scheduler = [
    path.join(dir, 'scheduler_config.json'),
    ...(path.basename(dir) === 'unet' ? [path.join(dir, '..', 'scheduler', 'scheduler_config.json')] : []),
  ].find(isFile);
  return { unetDir: dir, config, weights, ...(scheduler ? { scheduler } : {}) };
}

function readJson(file: string): unknown {
  const size = fs.statSync(file).size;
  if (size > MAX_CONFIG_BYTES)
    throw new DiffusersFolderError(`${file} is ${size} bytes: too large for a config (at most ${MAX_CONFIG_BYTES})`);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new DiffusersFolderError(`${file} is not valid JSON (${(e as Error).message})`);
  }
}

export interface DiffusersModel {
  files: DiffusersFiles;
  config: UNetConfig;
  /** Our parameter name → values in our layout (float32). */
  weights: Map<string, { shape: number[]; data: Float32Array }>;
  schedule: ImportedSchedule;
  /** The stored dtypes (e.g. ['F16']), the attention naming found, and the diffusers version that wrote the config. */
  dtypes: string[];
  attentionNaming: 'to_q/to_k/to_v/to_out.0' | 'query/key/value/proj_attn' | 'none';
  diffusersVersion?: string;
}

/**
 * Reads the diffusers model at `p` (see locateDiffusersModel). `configOverride` replaces fields of its config.json
 * (as diffusers' `from_pretrained(…, **kwargs)`), for checks of other settings of the same weights.
 */
export function readDiffusersModel(p: string, configOverride: Record<string, unknown> = {}): DiffusersModel {
  const files = locateDiffusersModel(p);
  const rawConfig = readJson(files.config);
  const merged =
    rawConfig && typeof rawConfig === 'object' && !Array.isArray(rawConfig)
      ? { ...(rawConfig as Record<string, unknown>), ...configOverride }
      : rawConfig;
  const config = unetConfigFromDiffusers(merged, files.config);
  const schedule = scheduleFromDiffusers(files.scheduler ? readJson(files.scheduler) : undefined, files.scheduler);
  const header = isTorchFile(files.weights) ? readTorchCheckpoint(files.weights) : readHeader(files.weights);
  const byName = new Map(header.tensors.map((t) => [t.name, t]));
  const weights = new Map<string, { shape: number[]; data: Float32Array }>();
  const used = new Set<string>();
  let legacy = 0;
  let current = 0;
  for (const k of diffusersKeyPairs(config)) {
    let entry = byName.get(k.diffusers);
    if (!entry && k.legacy) {
      entry = byName.get(k.legacy);
      if (entry) legacy++;
    } else if (entry && k.legacy) current++;
    if (!entry)
      throw new DiffusersFolderError(
        `${files.weights} has no tensor '${k.diffusers}'${k.legacy ? ` (nor its 2022 name '${k.legacy}')` : ''}, which the config in ${files.config} needs`,
      );
    if (entry.shape.join(',') !== k.torchShape.join(','))
      throw new DiffusersFolderError(
        `${files.weights}: tensor '${entry.name}' is [${entry.shape.join(', ')}] but the config needs [${k.torchShape.join(', ')}]`,
      );
    if (!['F32', 'F16', 'BF16', 'F64'].includes(entry.dtype))
      throw new DiffusersFolderError(
        `${files.weights}: tensor '${entry.name}' is ${entry.dtype}; weights must be F32, F16, BF16 or F64`,
      );
    used.add(entry.name);
    weights.set(k.ours, {
      shape: k.shape,
      data: fromTorchLayout(readTensorF32(header, entry), k.torchShape, k.layout),
    });
  }
  const extra = header.tensors.filter((t) => !used.has(t.name)).map((t) => t.name);
  if (extra.length)
    throw new DiffusersFolderError(
      `${files.weights} has ${extra.length} tensor(s) that the config in ${files.config} does not use, e.g. ${extra
        .slice(0, 3)
        .map((n) => `'${n}'`)
        .join(', ')}: the config and the weights do not belong together`,
    );
  const version = (rawConfig as Record<string, unknown>)._diffusers_version;
  return {
    files,
    config,
    weights,
    schedule,
    dtypes: [...new Set(header.tensors.map((t) => t.dtype))].sort(),
    attentionNaming: legacy > 0 ? 'query/key/value/proj_attn' : current > 0 ? 'to_q/to_k/to_v/to_out.0' : 'none',
    ...(typeof version === 'string' ? { diffusersVersion: version } : {}),
  };
}

export interface WriteDiffusersOptions {
  /** Write a pipeline folder (model_index.json, unet/, scheduler/) rather than a bare UNet2DModel folder. */
  pipeline?: boolean;
  dtype?: 'F32' | 'F16';
}

/**
 * Writes our model as a diffusers folder (atomically per file). A bare model folder also gets scheduler_config.json,
 * so that it is complete on its own; a pipeline folder is what `DDPMPipeline.from_pretrained(dir)` loads.
 * Returns the files written.
 */
export function writeDiffusersModel(
  dir: string,
  config: UNetConfig,
  weights: ReadonlyMap<string, { shape: number[]; data: Float32Array }>,
  schedule: Required<ScheduleConfig>,
  sampling: SamplingConfig,
  o: WriteDiffusersOptions = {},
): string[] {
  const unetConfig = diffusersConfigFromUnet(config);
  const schedulerConfig = diffusersSchedulerConfig(schedule, sampling);
  const tensors: TensorToWrite[] = diffusersKeyPairs(config).map((k) => {
    const w = weights.get(k.ours);
    if (!w) throw new DiffusersFolderError(`the checkpoint has no parameter '${k.ours}'`);
    if (w.shape.join(',') !== k.shape.join(','))
      throw new DiffusersFolderError(`parameter '${k.ours}' is [${w.shape}] but its config needs [${k.shape}]`);
    return {
      name: k.diffusers,
      shape: k.torchShape,
      data: toTorchLayout(w.data, k.shape, k.layout),
      dtype: o.dtype ?? 'F32',
    };
  });
  const unetDir = o.pipeline ? path.join(dir, 'unet') : dir;
  const schedDir = o.pipeline ? path.join(dir, 'scheduler') : dir;
  fs.mkdirSync(unetDir, { recursive: true });
  fs.mkdirSync(schedDir, { recursive: true });
  const json = (v: unknown) => [Buffer.from(`${JSON.stringify(v, null, 2)}\n`, 'utf8')];
  const written: string[] = [];
  const put = (file: string, chunks: Buffer[]) => {
    writeFileAtomic(file, chunks);
    written.push(file);
  };
  put(path.join(unetDir, WEIGHTS_FILE), encodeSafetensors(tensors, { format: 'pt' }));
  put(path.join(unetDir, 'config.json'), json(unetConfig));
  put(path.join(schedDir, 'scheduler_config.json'), json(schedulerConfig));
  if (o.pipeline)
    put(
      path.join(dir, 'model_index.json'),
      json({
        _class_name: 'DDPMPipeline',
        _diffusers_version: unetConfig._diffusers_version,
        scheduler: ['diffusers', 'DDPMScheduler'],
        unet: ['diffusers', 'UNet2DModel'],
      }),
    );
  return written;
}

/** What the inspector says of a foreign safetensors file that holds a diffusers UNet2DModel. */
export interface DiffusersDetection {
  /** The config.json found for it (beside it), or null. */
  config: string | null;
  /** Whether `ddpm import` would take it: config found, supported, and its tensors are the config's. */
  importable: boolean;
  /** Why not, when not. */
  problem?: string;
  model?: UNetConfig;
}

/** A UNet2DModel's state_dict by its tensor names (conv_in, time_embedding, down_blocks), read from the header only. */
export function detectDiffusers(header: SafetensorsHeader): DiffusersDetection | null {
  const names = new Set(header.tensors.map((t) => t.name));
  if (!names.has('conv_in.weight') || !names.has('time_embedding.linear_1.weight') || !names.has('conv_out.weight'))
    return null;
  let files: DiffusersFiles;
  try {
    files = locateDiffusersModel(header.file);
  } catch (e) {
    return { config: null, importable: false, problem: (e as Error).message };
  }
  try {
    const model = unetConfigFromDiffusers(readJson(files.config), files.config);
    const byName = new Map(header.tensors.map((t) => [t.name, t]));
    const used = new Set<string>();
    for (const k of diffusersKeyPairs(model)) {
      const e = byName.get(k.diffusers) ?? (k.legacy ? byName.get(k.legacy) : undefined);
      if (!e || e.shape.join(',') !== k.torchShape.join(','))
        return {
          config: files.config,
          importable: false,
          problem: `its tensors do not match its config.json (${k.diffusers}: ${e ? `[${e.shape}] ≠ [${k.torchShape}]` : 'missing'})`,
          model,
        };
      used.add(e.name);
    }
    if (used.size !== names.size)
      return {
        config: files.config,
        importable: false,
        problem: `${names.size - used.size} of its tensors are not in the model its config.json describes`,
        model,
      };
    return { config: files.config, importable: true, model };
  } catch (e) {
    return { config: files.config, importable: false, problem: (e as Error).message };
  }
}
