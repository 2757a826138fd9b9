/**
 * The policy seam: what a network's policy enforcer (src/policy/enforcer.ts) offers the data
 * path. src/policy implements it; the data path never imports src/policy. Called once per frame
 * on networks that have one, at "[policy egress]" (inside.ts, after decide) and "[policy ingress]"
 * (outside.ts, after the owner check); allocation-free.
 */
export interface PolicyFilter {
  /**
   * True when the frame at b[off..off+len) may pass. `fromHost`: the underlay address (canonical
   * text) of the host that sent a remote frame — the authenticated peer on encrypted networks, ''
   * when unknown — or null for a frame read from this host's TAP.
   */
  filter(b: Uint8Array, off: number, len: number, fromHost: string | null): boolean;
}
