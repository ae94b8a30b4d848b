// What the interpolation view keeps with vscode.setState, so that a window reload restores it (the panel serializer
// gives the restored webview this state back): its caption, the inputs and the strips drawn so far. Pure logic.
import type { InterpolateToWebview } from '../shared/messages.ts';

export interface InterpolateState {
  caption: string;
  /** t of each row. */
  rows: number[];
  /** Each row's strip (base64 PNG), null until it arrives. */
  strips: (string | null)[];
  inputs: { a: string; b: string } | null;
  status: string;
  phase: 'running' | 'done' | 'error' | 'interrupted';
}

export const captionOf = (m: Extract<InterpolateToWebview, { type: 'start' }>): string =>
  `${m.a} ↔ ${m.b} · λ = ${m.lambdas.map((l) => +l.toFixed(3)).join(', ')} · ${m.checkpoint}`;

/** The state after message `m`: the same object when `m` changes nothing worth keeping (progress). */
export function nextState(s: InterpolateState | undefined, m: InterpolateToWebview): InterpolateState | undefined {
  if (m.type === 'start')
    return {
      caption: captionOf(m),
      rows: m.rows,
      strips: m.rows.map(() => null),
      inputs: null,
      status: '',
      phase: 'running',
    };
  if (!s) return s;
  switch (m.type) {
    case 'inputs':
      return { ...s, inputs: { a: m.a, b: m.b } };
    case 'row':
      return { ...s, strips: s.strips.map((p, i) => (i === m.row ? m.strip : p)) };
    case 'done':
      return { ...s, status: doneText(m.seconds), phase: 'done' };
    case 'error':
      return { ...s, status: m.message, phase: 'error' };
    default:
      return s;
  }
}

export const doneText = (seconds: number): string => `done in ${seconds.toFixed(1)} s`;

/** A state restored after a reload: a run that had not finished was ended with its extension host, so it says so. */
export function restoredState(s: InterpolateState): InterpolateState {
  return s.phase === 'running' ? { ...s, status: 'interrupted: the window was reloaded', phase: 'interrupted' } : s;
}
