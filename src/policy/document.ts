/**
 * Policy documents (YAML or JSON) → typed, validated `Policy` objects. Validated like the config
 * (src/config/load.ts): every problem names its field path and line, unknown keys get a
 * did-you-mean hint, several problems are reported together, and nothing here touches the system.
 *
 *   name: db-ingress                 # 1-63 of [a-z0-9-], starting and ending alphanumeric
 *   network: blue                    # a vxmesh network (checked against the config when given)
 *   endpoints: {app: db}             # selector: {} = every endpoint of the network
 *   policyTypes: [Ingress]           # default: Ingress, plus Egress when `egress` is present
 *   ingress:
 *     - from:                        # omitted or [] = every source
 *         - endpoints: {role: web}   # label selector (or {matchLabels, matchExpressions})
 *         - cidr: 198.18.0.0/24      # an IP block, optionally with `except` blocks inside it
 *           except: [198.18.0.5/32]
 *       ports:                       # omitted or [] = every protocol and port
 *         - {protocol: TCP, port: 5432}
 *         - {protocol: UDP, port: 5000, endPort: 5010}
 *   egress: []                       # same shape, with `to:`
 *
 * Kubernetes NetworkPolicy semantics (docs/policy.md): see semantics.ts.
 */
import * as YAML from 'yaml';
import {
  Problems, type Path, describe, didYouMean, formatPath, integer, list, mapping, string,
} from '../config/check';
import { locate, yamlError } from '../config/load';
import { ConfigError } from '../errors';
import { type Cidr16 as Cidr, cidrInside, parseCidr16 as parseCidr } from '../ipam/cidr';

export const POLICY_TYPES = ['Ingress', 'Egress'] as const;
export type PolicyType = (typeof POLICY_TYPES)[number];
export const PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const;
export type Protocol = (typeof PROTOCOLS)[number];
export const OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;
export type Operator = (typeof OPERATORS)[number];

/** IANA protocol numbers of the protocols a port rule may name. */
export const PROTOCOL_NUMBER: Record<Protocol, number> = { TCP: 6, UDP: 17, SCTP: 132 };

export interface LabelRequirement {
  readonly key: string;
  readonly operator: Operator;
  readonly values: readonly string[];
}

/** A Kubernetes label selector. Both parts empty = matches everything. */
export interface Selector {
  readonly matchLabels: Readonly<Record<string, string>>;
  readonly matchExpressions: readonly LabelRequirement[];
}

export type PolicyPeer =
  | { readonly kind: 'endpoints'; readonly selector: Selector }
  | { readonly kind: 'cidr'; readonly cidr: Cidr; readonly except: readonly Cidr[] };

export interface PolicyPort {
  readonly protocol: Protocol;
  /** null = every port of the protocol. */
  readonly port: number | null;
  /** Last port of a range (≥ port); null = just `port`. */
  readonly endPort: number | null;
}

export interface PolicyRule {
  /** null (omitted or []) = every peer. */
  readonly peers: readonly PolicyPeer[] | null;
  /** null (omitted or []) = every protocol and port. */
  readonly ports: readonly PolicyPort[] | null;
}

export interface Policy {
  readonly name: string;
  readonly network: string;
  readonly selector: Selector;
  readonly policyTypes: readonly PolicyType[];
  readonly ingress: readonly PolicyRule[];
  readonly egress: readonly PolicyRule[];
}

/** Largest policy document accepted, bytes. */
export const MAX_POLICY_BYTES = 1 << 20;
/** Most rules per direction, peers per rule and ports per rule (bounds compile work). */
export const MAX_RULES = 4096;
export const MAX_PEERS = 1024;
export const MAX_PORTS = 1024;
const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** Label keys and values as Kubernetes allows them (prefix/name, 63-character names). */
const LABEL_KEY_RE = /^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE_RE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

const TOP_KEYS = ['name', 'network', 'endpoints', 'policyTypes', 'ingress', 'egress'] as const;

export interface PolicyParseOptions {
  /** Names of the networks that exist: an unknown `network` is an error when given. */
  networks?: readonly string[];
  /**
   * Networks of this host that vxmesh does not carry (mode bridge / macvlan: no overlay, the frames
   * never reach its data path), by name: a policy naming one is refused with that reason.
   */
  localNetworks?: readonly { name: string; mode?: string }[];
  /** Where the text came from, for messages. */
  source?: string;
}

/** Parses and validates one policy document. Throws ConfigError (one per problem, joined). */
export function parsePolicy(text: string, opts: PolicyParseOptions = {}): Policy {
  return parsePolicyText(text, opts).policy;
}

/** As parsePolicy, also returning the document as plain data (what is stored and spread). */
export function parsePolicyText(text: string, opts: PolicyParseOptions = {}): { policy: Policy; doc: unknown } {
  if (Buffer.byteLength(text) > MAX_POLICY_BYTES) throw new ConfigError('', `policy document is larger than ${MAX_POLICY_BYTES} bytes`);
  const lc = new YAML.LineCounter();
  const doc = YAML.parseDocument(text, { uniqueKeys: true, lineCounter: lc, prettyErrors: true });
  if (doc.errors.length) throw yamlError(doc.errors[0], /^\s*\{/.test(text) ? 'invalid JSON/YAML' : 'invalid YAML');
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new ConfigError('', `invalid YAML: ${(e as Error).message}`);
  }
  const p = new Problems();
  const policy = validatePolicy(p, raw, opts);
  if (p.count > 0 || !policy) {
    const msgs = p.list.map((pr) => {
      const line = locate(doc, lc, pr.path);
      return `${formatPath(pr.path) || '(document)'}: ${pr.message}${line ? ` (line ${line})` : ''}`;
    });
    throw new PolicyDocumentError(msgs.length ? msgs : ['invalid policy document'], opts.source);
  }
  return { policy, doc: raw };
}

/** A policy document with problems; `problems` lists each (`field: message (line N)`). */
export class PolicyDocumentError extends ConfigError {
  readonly problems: readonly string[];
  constructor(problems: string[], source?: string) {
    super('', `invalid policy${source ? ` ${source}` : ''}:\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}

/** Validates an already-parsed value (e.g. a policy carried in a gossip record or the state file). */
export function validatePolicy(p: Problems, raw: unknown, opts: PolicyParseOptions = {}): Policy | undefined {
  const o = mapping(p, raw, [], TOP_KEYS, 'a policy document (a mapping)');
  if (!o) return undefined;
  const name = string(p, o.name, ['name']);
  if (name !== undefined && !NAME_RE.test(name)) p.add(['name'], `expected 1-63 characters [a-z0-9-] starting and ending with a letter or digit, got ${describe(name)}`);
  const network = string(p, o.network, ['network']);
  const local = network === undefined ? undefined : opts.localNetworks?.find((n) => n.name === network);
  if (local) {
    p.add(['network'], `network ${describe(network)} is a ${local.mode ?? 'local'} network: its frames never pass vxmesh's data path (no overlay), so vxmesh cannot enforce policies on it; policies apply to overlay networks${opts.networks?.length ? ` (${opts.networks.join(', ')})` : ''}`);
  } else if (network !== undefined && opts.networks && !opts.networks.includes(network)) {
    const hint = didYouMean(network, opts.networks);
    p.add(['network'], `unknown network ${describe(network)}${hint ? ` (did you mean "${hint}"?)` : ''}; networks: ${opts.networks.join(', ') || 'none'}`);
  }
  const selector = o.endpoints === undefined ? p.add(['endpoints'], 'required: the endpoints this policy selects ({} = all of the network)') : parseSelector(p, o.endpoints, ['endpoints']);
  const ingress = o.ingress === undefined || o.ingress === null ? [] : parseRules(p, o.ingress, ['ingress'], 'from');
  const egress = o.egress === undefined || o.egress === null ? [] : parseRules(p, o.egress, ['egress'], 'to');
  let policyTypes: PolicyType[];
  if (o.policyTypes === undefined) {
    policyTypes = ['Ingress'];
    if (o.egress !== undefined) policyTypes.push('Egress');
  } else {
    policyTypes = [];
    const l = list(p, o.policyTypes, ['policyTypes'], 'Ingress / Egress') ?? [];
    l.forEach((t, i) => {
      if (t !== 'Ingress' && t !== 'Egress') {
        const hint = typeof t === 'string' ? didYouMean(t, POLICY_TYPES) : null;
        p.add(['policyTypes', i], `expected Ingress or Egress${hint ? ` (did you mean "${hint}"?)` : ''}, got ${describe(t)}`);
      } else if (policyTypes.includes(t)) p.add(['policyTypes', i], `${t} is listed twice`);
      else policyTypes.push(t);
    });
    if (l.length === 0 && Array.isArray(o.policyTypes)) p.add(['policyTypes'], 'expected at least one of Ingress, Egress');
  }
  if (p.count > 0 || name === undefined || network === undefined || !selector || !ingress || !egress) return undefined;
  return { name, network, selector, policyTypes, ingress, egress };
}

function parseSelector(p: Problems, v: unknown, path: Path): Selector | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return p.add(path, `expected a label selector (a mapping of labels, or {matchLabels, matchExpressions}), got ${describe(v)}`);
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  // The structured form: only matchLabels / matchExpressions keys (a label named so must use it).
  if (keys.length > 0 && keys.every((k) => k === 'matchLabels' || k === 'matchExpressions')) {
    const matchLabels = o.matchLabels === undefined ? {} : labelMap(p, o.matchLabels, [...path, 'matchLabels']);
    const exprs: LabelRequirement[] = [];
    if (o.matchExpressions !== undefined) {
      const l = list(p, o.matchExpressions, [...path, 'matchExpressions'], 'label requirements') ?? [];
      l.forEach((e, i) => {
        const r = requirement(p, e, [...path, 'matchExpressions', i]);
        if (r) exprs.push(r);
      });
    }
    return matchLabels ? { matchLabels, matchExpressions: exprs } : undefined;
  }
  const matchLabels = labelMap(p, o, path);
  return matchLabels ? { matchLabels, matchExpressions: [] } : undefined;
}

function labelMap(p: Problems, v: unknown, path: Path): Record<string, string> | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return p.add(path, `expected a mapping of labels, got ${describe(v)}`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (!LABEL_KEY_RE.test(k)) p.add([...path, k], `invalid label key ${describe(k)}`);
    if (typeof val !== 'string' || !LABEL_VALUE_RE.test(val)) {
      p.add([...path, k], `expected a label value (a string of up to 63 characters [A-Za-z0-9-_.]; quote numbers and booleans), got ${describe(val)}`);
    } else out[k] = val;
  }
  return out;
}

function requirement(p: Problems, v: unknown, path: Path): LabelRequirement | undefined {
  const o = mapping(p, v, path, ['key', 'operator', 'values'], 'a label requirement {key, operator, values}');
  if (!o) return undefined;
  const key = string(p, o.key, [...path, 'key']);
  if (key !== undefined && !LABEL_KEY_RE.test(key)) p.add([...path, 'key'], `invalid label key ${describe(key)}`);
  let operator: Operator | undefined;
  if (typeof o.operator === 'string' && (OPERATORS as readonly string[]).includes(o.operator)) operator = o.operator as Operator;
  else {
    const hint = typeof o.operator === 'string' ? didYouMean(o.operator, OPERATORS) : null;
    p.add([...path, 'operator'], `expected one of ${OPERATORS.join(', ')}${hint ? ` (did you mean "${hint}"?)` : ''}, got ${describe(o.operator)}`);
  }
  const values: string[] = [];
  if (o.values !== undefined) {
    const l = list(p, o.values, [...path, 'values'], 'label values') ?? [];
    l.forEach((x, i) => {
      if (typeof x !== 'string' || !LABEL_VALUE_RE.test(x)) p.add([...path, 'values', i], `expected a label value, got ${describe(x)}`);
      else values.push(x);
    });
  }
  if (operator === 'In' || operator === 'NotIn') {
    if (values.length === 0) p.add([...path, 'values'], `${operator} needs at least one value`);
  } else if (operator && o.values !== undefined && values.length > 0) {
    p.add([...path, 'values'], `${operator} takes no values`);
  }
  if (key === undefined || !operator) return undefined;
  return { key, operator, values };
}

function parseRules(p: Problems, v: unknown, path: Path, peerKey: 'from' | 'to'): PolicyRule[] | undefined {
  const l = list(p, v, path, 'rules');
  if (!l) return undefined;
  if (l.length > MAX_RULES) return p.add(path, `at most ${MAX_RULES} rules, got ${l.length}`);
  const out: PolicyRule[] = [];
  l.forEach((r, i) => {
    const rp = [...path, i];
    const o = mapping(p, r, rp, [peerKey, 'ports'], `a rule {${peerKey}, ports}`);
    if (!o) return;
    let peers: PolicyPeer[] | null = null;
    if (o[peerKey] !== undefined && o[peerKey] !== null) {
      const pl = list(p, o[peerKey], [...rp, peerKey], 'peers') ?? [];
      if (pl.length > MAX_PEERS) p.add([...rp, peerKey], `at most ${MAX_PEERS} peers, got ${pl.length}`);
      const parsed = pl.map((x, j) => parsePeer(p, x, [...rp, peerKey, j])).filter((x): x is PolicyPeer => !!x);
      peers = pl.length === 0 ? null : parsed;
    }
    let ports: PolicyPort[] | null = null;
    if (o.ports !== undefined && o.ports !== null) {
      const pl = list(p, o.ports, [...rp, 'ports'], 'ports') ?? [];
      if (pl.length > MAX_PORTS) p.add([...rp, 'ports'], `at most ${MAX_PORTS} ports, got ${pl.length}`);
      const parsed = pl.map((x, j) => parsePort(p, x, [...rp, 'ports', j])).filter((x): x is PolicyPort => !!x);
      ports = pl.length === 0 ? null : parsed;
    }
    out.push({ peers, ports });
  });
  return out;
}

function parsePeer(p: Problems, v: unknown, path: Path): PolicyPeer | undefined {
  const o = mapping(p, v, path, ['endpoints', 'cidr', 'except'], 'a peer ({endpoints: selector} or {cidr, except})');
  if (!o) return undefined;
  if (o.endpoints !== undefined && o.cidr !== undefined) {
    return p.add(path, 'a peer is either `endpoints` or `cidr`, not both (write two peers to allow either)');
  }
  if (o.endpoints !== undefined) {
    if (o.except !== undefined) p.add([...path, 'except'], '`except` belongs to a `cidr` peer');
    const selector = parseSelector(p, o.endpoints, [...path, 'endpoints']);
    return selector ? { kind: 'endpoints', selector } : undefined;
  }
  if (o.cidr === undefined) return p.add(path, 'expected `endpoints` or `cidr`');
  const c = parseCidr(o.cidr as string);
  if (typeof c === 'string') return p.add([...path, 'cidr'], c);
  const except: Cidr[] = [];
  if (o.except !== undefined) {
    const l = list(p, o.except, [...path, 'except'], 'CIDR blocks') ?? [];
    l.forEach((x, i) => {
      const e = parseCidr(x as string);
      if (typeof e === 'string') p.add([...path, 'except', i], e);
      else if (!cidrInside(e, c) || e.bits === c.bits) p.add([...path, 'except', i], `${e.text} is not inside ${c.text} (an except block must lie within its cidr)`);
      else except.push(e);
    });
  }
  return { kind: 'cidr', cidr: c, except };
}

function parsePort(p: Problems, v: unknown, path: Path): PolicyPort | undefined {
  const o = mapping(p, v, path, ['protocol', 'port', 'endPort'], 'a port {protocol, port, endPort}');
  if (!o) return undefined;
  let protocol: Protocol = 'TCP';
  if (o.protocol !== undefined) {
    if (typeof o.protocol === 'string' && (PROTOCOLS as readonly string[]).includes(o.protocol)) protocol = o.protocol as Protocol;
    else {
      const hint = typeof o.protocol === 'string' ? didYouMean(o.protocol.toUpperCase(), PROTOCOLS) : null;
      p.add([...path, 'protocol'], `expected one of ${PROTOCOLS.join(', ')}${hint ? ` (did you mean "${hint}"?)` : ''}, got ${describe(o.protocol)}`);
    }
  }
  let port: number | null = null;
  if (o.port !== undefined && o.port !== null) {
    if (typeof o.port === 'string') p.add([...path, 'port'], `named ports are not supported (vxmesh endpoints have no port names); give a number, got ${describe(o.port)}`);
    else port = integer(p, o.port, [...path, 'port'], 1, 65535) ?? null;
  }
  let endPort: number | null = null;
  if (o.endPort !== undefined && o.endPort !== null) {
    if (o.port === undefined || o.port === null || typeof o.port !== 'number') p.add([...path, 'endPort'], '`endPort` needs a numeric `port`');
    else {
      endPort = integer(p, o.endPort, [...path, 'endPort'], 1, 65535) ?? null;
      if (endPort !== null && port !== null && endPort < port) p.add([...path, 'endPort'], `expected endPort ≥ port (${port}), got ${endPort}`);
    }
  }
  return { protocol, port, endPort };
}
