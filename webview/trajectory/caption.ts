// The Trajectory view's caption for a run: images, sampler, class choice and guidance (conditional checkpoints),
// seed, checkpoint.
import type { TrajectoryToWebview } from '../shared/messages.ts';

export function startCaption(m: Extract<TrajectoryToWebview, { type: 'start' }>): string {
  return [
    `${m.n} samples`,
    m.sampler,
    m.choice,
    m.guidance !== undefined ? `guidance ${m.guidance}` : undefined,
    m.seed !== undefined ? `seed ${m.seed}` : undefined,
    m.checkpoint,
  ]
    .filter(Boolean)
    .join(' · ');
}
