// The inspector's model card: the rows (label, value) it shows for what ddpm/inspect read from a file's header.
import type { InspectResult } from '../../sidecar/protocol.ts';
import { classesText } from '../shared/classes.ts';

export interface CardRow {
  label: string;
  value: string;
}

/** A file DDPM Studio wrote (its header has our metadata); anything else is a foreign safetensors file. */
export const isOurs = (r: InspectResult): boolean => r.format !== null;

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;

export function modelCard(r: InspectResult): CardRow[] {
  if (!isOurs(r)) {
    return [
      { label: 'format', value: 'foreign safetensors file (not a DDPM Studio checkpoint)' },
      { label: 'values', value: r.params.toLocaleString('en-US') },
      { label: 'file size', value: mb(r.fileSize) },
      ...Object.entries(r.metadata).map(([label, value]) => ({
        label: `metadata: ${label}`,
        value: value.length > 200 ? `${value.slice(0, 200)}…` : value,
      })),
    ];
  }
  const m = r.model;
  const classes = classesText(r);
  return [
    { label: 'kind', value: r.kind ?? '' },
    { label: 'preset', value: r.preset ?? '(custom)' },
    { label: 'parameters', value: r.params.toLocaleString('en-US') },
    { label: 'step', value: r.imported ? 'imported' : String(r.step ?? '') },
    // Imported models (ddpm/import): where from, and how they were stored.
    ...(r.imported
      ? [
          {
            label: 'imported from',
            value: `${r.imported.repo ?? r.imported.path} (${r.imported.format}${r.imported.diffusersVersion ? ` ${r.imported.diffusersVersion}` : ''}, ${r.imported.dtypes.join('/')})`,
          },
        ]
      : []),
    { label: 'images', value: m ? `${m.imageSize}×${m.imageSize}×${m.channels}` : '' },
    {
      label: 'architecture',
      value: m
        ? `ch ${m.ch}, mult (${m.chMult.join(',')}), ${m.numResBlocks} res blocks, attention at ${m.attnResolutions.join(', ') || 'middle only'}${m.attnHeadDim ? ` (heads of ${m.attnHeadDim} channels)` : ''}`
        : '',
    },
    // Class-conditional checkpoints: how many classes, and their names ("10 (0, 1, …, 9)").
    ...(classes ? [{ label: 'classes', value: classes }] : []),
    {
      label: 'schedule',
      value: r.schedule
        ? `${r.schedule.kind}, T = ${r.schedule.T}${r.sampling ? `; DDPM σ² = ${r.sampling.varianceType === 'fixedsmall' ? 'β̃ (fixed_small)' : 'β (fixed_large)'}${r.sampling.clip ? '' : ', x̂0 not clipped'}` : ''}`
        : '',
    },
    { label: 'dataset', value: r.data ? `${r.data.source} (${r.data.size.toLocaleString('en-US')} images)` : '' },
    { label: 'backend', value: r.backend ?? '' },
    { label: 'created', value: r.created ?? '' },
    { label: 'file size', value: mb(r.fileSize) },
  ];
}
