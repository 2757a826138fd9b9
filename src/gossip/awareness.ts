/**
 * Lifeguard local-health awareness (memberlist awareness.go). A score 0..max−1 grows when this
 * node's own probes behave as if *it* were the slow one (missed nacks from indirect helpers,
 * having to refute a suspicion about itself) and shrinks on every successful probe. Probe
 * intervals and timeouts are multiplied by (score + 1), so an overloaded node slows down and
 * stops accusing healthy members instead of spreading false suspicions.
 */
export class Awareness {
  private score = 0;

  /** `max` is the largest multiplier (score is clamped to [0, max − 1]). */
  constructor(private readonly max: number) {}

  applyDelta(delta: number): void {
    this.score = Math.min(this.max - 1, Math.max(0, this.score + delta));
  }

  getHealthScore(): number {
    return this.score;
  }

  /** Scales a timeout by the current health: timeout × (score + 1). */
  scaleTimeout(ms: number): number {
    return ms * (this.score + 1);
  }
}
