// OpenPGP verification: detached signatures (HashiCorp SHA256SUMS) against one key pinned by
// fingerprint, and clear-signed Debian InRelease files against the archive keyring.
import { readFile } from 'node:fs/promises';
import * as openpgp from 'openpgp';
import { HASHICORP_FINGERPRINT, HASHICORP_PUBLIC_KEY } from './hashicorp-key.ts';
import { UnavailableError, VerificationError } from './errors.ts';

/** A public key accepted only because its primary fingerprint equals the pinned one. */
export interface TrustAnchor {
  fingerprint: string; // upper-case hex, no spaces
  key: openpgp.PublicKey;
}

export function normalizeFingerprint(fp: string): string {
  return fp.replace(/\s+/g, '').toUpperCase();
}

/**
 * The only way to make a TrustAnchor: the production HashiCorp key goes through here, and so
 * does a test key. A key whose fingerprint differs from the pinned one is refused.
 */
export async function trustedKey(armoredKey: string, pinnedFingerprint: string): Promise<TrustAnchor> {
  const want = normalizeFingerprint(pinnedFingerprint);
  if (!/^[0-9A-F]{40}$/.test(want)) throw new VerificationError(`not an OpenPGP v4 fingerprint: ${pinnedFingerprint}`);
  let key: openpgp.Key;
  try {
    key = await openpgp.readKey({ armoredKey });
  } catch (err) {
    throw new VerificationError(`cannot read the OpenPGP key pinned to ${want}: ${(err as Error).message}`);
  }
  const got = key.getFingerprint().toUpperCase();
  if (got !== want) {
    throw new VerificationError(`OpenPGP key fingerprint ${got} does not match the pinned fingerprint ${want}`);
  }
  return { fingerprint: want, key: key.toPublic() };
}

let hashicorp: Promise<TrustAnchor> | undefined;
export function hashicorpTrust(): Promise<TrustAnchor> {
  hashicorp ??= trustedKey(HASHICORP_PUBLIC_KEY, HASHICORP_FINGERPRINT);
  return hashicorp;
}

/** Throws VerificationError unless `signature` is a valid signature over `data` by the anchor key (or its subkeys). */
export async function verifyDetached(data: Uint8Array, signature: Uint8Array, anchor: TrustAnchor, what: string): Promise<void> {
  let sig: openpgp.Signature;
  try {
    const text = Buffer.from(signature).toString('latin1');
    sig = text.includes('-----BEGIN PGP SIGNATURE-----')
      ? await openpgp.readSignature({ armoredSignature: text })
      : await openpgp.readSignature({ binarySignature: signature });
  } catch (err) {
    throw new VerificationError(`${what}: the signature file is not an OpenPGP signature (${(err as Error).message})`);
  }
  try {
    const message = await openpgp.createMessage({ binary: data });
    const res = await openpgp.verify({ message, signature: sig, verificationKeys: anchor.key, expectSigned: true });
    await res.signatures[0]?.verified;
  } catch (err) {
    throw new VerificationError(
      `${what}: OpenPGP signature check failed against the key ${anchor.fingerprint} (${(err as Error).message})`,
    );
  }
}

const keyrings = new Map<string, Promise<openpgp.PublicKey[]>>();
async function readKeyring(path: string): Promise<openpgp.PublicKey[]> {
  let p = keyrings.get(path);
  if (!p) {
    p = (async () => {
      const bytes = await readFile(path).catch((err: Error) => {
        throw new UnavailableError(`cannot read the keyring ${path}: ${err.message} (install debian-archive-keyring)`);
      });
      const text = bytes.toString('latin1');
      return text.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----')
        ? openpgp.readKeys({ armoredKeys: text })
        : openpgp.readKeys({ binaryKeys: bytes });
    })();
    keyrings.set(path, p);
  }
  return p;
}

/** Verifies a clear-signed file (Debian InRelease) and returns only the signed text. */
export async function verifyClearsigned(text: string, keyringPath: string, what: string): Promise<string> {
  const keys = await readKeyring(keyringPath);
  let message: openpgp.CleartextMessage;
  try {
    message = await openpgp.readCleartextMessage({ cleartextMessage: text });
  } catch (err) {
    throw new VerificationError(`${what} is not a clear-signed OpenPGP message (${(err as Error).message})`);
  }
  try {
    const res = await openpgp.verify({ message, verificationKeys: keys, expectSigned: true });
    return res.data;
  } catch (err) {
    throw new VerificationError(`${what}: no valid signature by a key in ${keyringPath} (${(err as Error).message})`);
  }
}
