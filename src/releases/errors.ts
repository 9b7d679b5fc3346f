// Two kinds of failure when getting a release, treated differently by ensureReleases:
// - UnavailableError: nothing usable here (host unreachable, no build for this arch, not in
//   the cache while offline). Reported per component/arch; the rest is still fetched.
// - VerificationError: something was served but failed a signature or checksum check.
//   Never silently skipped: ensureReleases fails with it after finishing the rest.
import { environmentError, UserError } from '../errors.ts';

export class UnavailableError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'UnavailableError';
  }
}

export class VerificationError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'VerificationError';
  }
}

/** An HTTP 404/410 (or a missing file in a directory mirror). */
export class NotFoundError extends UnavailableError {
  constructor(readonly url: string) {
    super(`not found: ${url}`);
    this.name = 'NotFoundError';
  }
}

/** An archive that could not be unpacked is a bad archive, unless the machine refused the
 *  write (a full disk, a read-only cache): that error stays itself, for the CLI to name the
 *  path and the reason. */
export function unpackError(label: string, err: unknown): Error {
  if (err instanceof VerificationError || environmentError(err)) return err as Error;
  return new VerificationError(`${label}: cannot unpack (${(err as Error).message})`);
}
