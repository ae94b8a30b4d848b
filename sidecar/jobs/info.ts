/** What this sidecar offers: the model presets and their sizes, and one preset's architecture in detail. */
import { countParams, paramSpecs, presetConfig, PRESET_NAMES, type UNetConfig } from '../ddpm/unet.ts';
import type { InfoResult } from '../protocol.ts';

export function presetSummaries(): InfoResult['presets'] {
  return PRESET_NAMES.map((name) => {
    const c = presetConfig(name);
    return { name, params: countParams(paramSpecs(c)), imageSize: c.imageSize, channels: c.channels };
  });
}

export interface ModelSummary {
  preset: string;
  config: UNetConfig;
  params: number;
  tensors: number;
}

export function modelSummary(preset: string): ModelSummary {
  const config = presetConfig(preset);
  const specs = paramSpecs(config);
  return { preset, config, params: countParams(specs), tensors: specs.length };
}
