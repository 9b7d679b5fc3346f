// The WPA-PSK derived from a passphrase exactly as wpa_passphrase does: PBKDF2-HMAC-SHA1 of
// the passphrase's bytes with the SSID's bytes as salt, 4096 rounds, 32 bytes, lower-case hex.
import { pbkdf2Sync } from 'node:crypto';

export function wpaPsk(ssid: string, passphrase: string): string {
  return pbkdf2Sync(Buffer.from(passphrase, 'utf8'), Buffer.from(ssid, 'utf8'), 4096, 32, 'sha1').toString('hex');
}
