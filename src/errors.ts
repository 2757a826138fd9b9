/**
 * One module for every vxmesh failure: one class per failure, each with a stable `code`
 * (`ERR_VXMESH_*`) that tests and callers match on. Native (errno) failures keep the errno
 * name in `errno`/`syscall` as Node's own system errors do.
 */

export class VxmeshError extends Error {
  readonly code: string;
  readonly details?: Record<string, unknown>;
  constructor(code: string, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }
}

/** Bad configuration: `path` names the field (e.g. `networks[1].vni`). Exit code 2. */
export class ConfigError extends VxmeshError {
  readonly path: string;
  constructor(path: string, message: string) {
    super('ERR_VXMESH_CONFIG', path ? `${path}: ${message}` : message, { path });
    this.path = path;
  }
}

/** Bad command-line usage. Exit code 2. */
export class UsageError extends VxmeshError {
  constructor(message: string) {
    super('ERR_VXMESH_USAGE', message);
  }
}

/** A system call failed in the addon or in a system-changing step (TAP, UDP, bridge). */
export class SystemError extends VxmeshError {
  readonly syscall: string;
  readonly errno: string;
  constructor(code: string, message: string, syscall: string, errno: string) {
    super(code, message, { syscall, errno });
    this.syscall = syscall;
    this.errno = errno;
  }
}

export const ERR_TAP_OPEN = 'ERR_VXMESH_TAP_OPEN';
export const ERR_UDP_BIND = 'ERR_VXMESH_UDP_BIND';
export const ERR_NETDEV = 'ERR_VXMESH_NETDEV';
export const ERR_NATIVE_LOAD = 'ERR_VXMESH_NATIVE_LOAD';
/** TAP read/write failed (other than EAGAIN) on an open device. */
export const ERR_TAP_IO = 'ERR_VXMESH_TAP_IO';
/** UDP receive failed (other than EAGAIN) on an open transport. */
export const ERR_UDP_IO = 'ERR_VXMESH_UDP_IO';
/** sd_notify datagram could not be sent to $NOTIFY_SOCKET. */
export const ERR_SDNOTIFY = 'ERR_VXMESH_SDNOTIFY';

/** Process exit codes used by the CLI. */
export const EXIT_OK = 0;
export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;

/** A state file under `stateDir` that cannot be read or does not parse: never silently reset. */
export class StateError extends VxmeshError {
  readonly file: string;
  constructor(file: string, message: string) {
    super('ERR_VXMESH_STATE', `state file ${file}: ${message} (fix or remove the file; the agent does not reset it on its own)`, { file });
    this.file = file;
  }
}

/** A state file could not be written (disk full, read-only, permissions). */
export const ERR_STATE_WRITE = 'ERR_VXMESH_STATE_WRITE';

/**
 * An endpoint or IPAM request that cannot be honoured. `badInput` requests (unknown network,
 * missing netns, address outside the subnet or taken, interface name in use) are the caller's
 * to fix: the control socket answers 400 and the CLI exits 2; the others (exhausted subnet,
 * agent not ready, system failure) answer 409/503/500 and exit 1.
 */
export class EndpointError extends VxmeshError {
  readonly badInput: boolean;
  constructor(code: string, message: string, badInput: boolean, details?: Record<string, unknown>) {
    super(code, message, details);
    this.badInput = badInput;
  }
}

export const ERR_UNKNOWN_NETWORK = 'ERR_VXMESH_UNKNOWN_NETWORK';
export const ERR_NETNS_MISSING = 'ERR_VXMESH_NETNS_MISSING';
export const ERR_IFNAME_IN_USE = 'ERR_VXMESH_IFNAME_IN_USE';
export const ERR_ENDPOINT_EXISTS = 'ERR_VXMESH_ENDPOINT_EXISTS';
export const ERR_ENDPOINT_NOT_FOUND = 'ERR_VXMESH_ENDPOINT_NOT_FOUND';
export const ERR_BAD_ENDPOINT = 'ERR_VXMESH_BAD_ENDPOINT';
export const ERR_ADDRESS_OUTSIDE = 'ERR_VXMESH_IPAM_OUTSIDE_SUBNET';
export const ERR_ADDRESS_TAKEN = 'ERR_VXMESH_IPAM_ADDRESS_TAKEN';
export const ERR_IPAM_EXHAUSTED = 'ERR_VXMESH_IPAM_EXHAUSTED';
export const ERR_IPAM_NOT_READY = 'ERR_VXMESH_IPAM_NOT_READY';
export const ERR_ATTACH_FAILED = 'ERR_VXMESH_ATTACH_FAILED';
