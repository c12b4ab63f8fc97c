/**
 * Where a connection is: the framing it speaks and how far it is in its
 * life, as one value. Only the peer moves it, through its named
 * transitions (`enterExtended`, `beginClosing`, the close itself); every
 * other part reads it.
 *
 *   base/open ──hello──▶ extended/open
 *        │                    │
 *        ├──── draining ◀─────┤   no new work; what runs finishes
 *        ├──── ending   ◀─────┤   our side ended, waiting for the transport to close
 *        └──── closed   ◀─────┘   settled: nothing runs, nothing is held
 */

/** The framing: the base framing until a hello succeeds, then the extended protocol. */
export type Framing = 'base' | 'extended';

/** `open`; `draining`: no new calls, those running finish; `ending`: our side is ended; `closed`. */
export type Stage = 'open' | 'draining' | 'ending' | 'closed';

export interface Phase {
  readonly framing: Framing;
  readonly stage: Stage;
}

const STAGES: readonly Stage[] = ['open', 'draining', 'ending', 'closed'];

/** Every phase there is, made once: a transition allocates nothing. */
const PHASES: Readonly<Record<Framing, Readonly<Record<Stage, Phase>>>> = {
  base: Object.fromEntries(STAGES.map((stage) => [stage, Object.freeze({ framing: 'base', stage })])) as Record<Stage, Phase>,
  extended: Object.fromEntries(STAGES.map((stage) => [stage, Object.freeze({ framing: 'extended', stage })])) as Record<Stage, Phase>,
};

export function phaseOf(framing: Framing, stage: Stage): Phase {
  return PHASES[framing][stage];
}

/** Stages only move forward: a closed connection never reopens, an ending one never drains again. */
export function stageAfter(now: Stage, next: Stage): Stage {
  return STAGES.indexOf(next) > STAGES.indexOf(now) ? next : now;
}
