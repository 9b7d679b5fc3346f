// The lintian warnings piinit's packages carry by design, each with the reason. Tests run
// lintian and accept exactly these; any error, or any other warning, fails them.
export const EXPECTED_LINTIAN_WARNINGS: Record<string, string> = {
  'no-manual-page': 'upstream releases ship no manual pages; `<program> --help` is the documentation',
  'hardening-no-pie': 'upstream Go binaries are used exactly as released and verified, not rebuilt',
  'hardening-no-relro': 'upstream Go binaries are used exactly as released and verified, not rebuilt',
  'initial-upload-closes-no-bugs': 'the packages are not uploaded to Debian, so there is no ITP bug to close',
  'non-standard-file-perm':
    'secrets (gossip keys, TLS keys, tokens, Wi-Fi PSK) are 0600/0640 so only root and the daemon can read them',
};

/** Parses lintian output into tag lines: E:/W: severity, package, tag, rest. */
export function parseLintian(out: string): { severity: string; pkg: string; tag: string; line: string }[] {
  const tags: { severity: string; pkg: string; tag: string; line: string }[] = [];
  for (const line of out.split('\n')) {
    const m = /^([EWIPXO]): ([^:\s]+)(?: [a-z]+)?: (\S+)/.exec(line);
    if (m) tags.push({ severity: m[1]!, pkg: m[2]!, tag: m[3]!, line });
  }
  return tags;
}
