// Broken cluster files and secrets files: each problem with its exact file:line:column,
// field path and message. Line numbers refer to VALID in valid-cluster.ts.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { ClusterValidationError, formatDiagnostic } from '../../../src/cluster/diagnostics.ts';
import { loadCluster, readClusterName } from '../../../src/cluster/load.ts';
import { UserError } from '../../../src/errors.ts';
import { parse } from 'yaml';
import { generateSecrets, renderSecretsYaml } from '../../../src/cluster/secrets.ts';
import { tlsNamesFromClusterData } from '../../../src/security/pki.ts';
import { editLine, tempCluster, VALID } from './valid-cluster.ts';

/** Every diagnostic of loading yaml, formatted with the file's base name. */
async function problems(yaml: string, opts: Parameters<typeof tempCluster>[1] = {}): Promise<string[]> {
  const t = await tempCluster(yaml, opts);
  try {
    await loadCluster(t.cluster);
  } catch (e) {
    if (!(e instanceof ClusterValidationError)) throw e;
    assert.ok(e instanceof UserError, 'a user error: printed without a stack trace');
    // The message lists every diagnostic, one per line.
    for (const d of e.diagnostics) assert.ok(e.message.includes(formatDiagnostic(d)), formatDiagnostic(d));
    return e.diagnostics.map((d) => formatDiagnostic({ ...d, file: basename(d.file) }));
  } finally {
    await t.cleanup();
  }
  assert.fail('expected a ClusterValidationError');
}

const WIFI = `${VALID}wifi:\n  ssid: "Home Net"\n  country: DE\n`;

const cases: { name: string; yaml: string; secretsText?: string; expect: string[] }[] = [
  {
    name: 'YAML syntax error',
    yaml: editLine(11, '    role: server: x'),
    expect: ['cluster.yaml:11:11: error: Nested mappings are not allowed in compact mappings'],
  },
  {
    name: 'tab indentation: one message per broken line',
    yaml: editLine(11, '\trole: server'),
    expect: [
      'cluster.yaml:11:1: error: Tabs are not allowed as indentation',
      'cluster.yaml:12:12: error: Nested mappings are not allowed in compact mappings',
      'cluster.yaml:14:1: error: All mapping items must start at the same column',
      'cluster.yaml:15:1: error: A block sequence may not be used as an implicit map key',
    ],
  },
  {
    name: 'wrong case in an enum, and no misleading server count',
    yaml: editLine(11, '    role: Server'),
    expect: ['cluster.yaml:11:11: error: nodes[0].role: "Server" is not one of: server, client, monitor (did you mean "server"?)'],
  },
  {
    name: 'misspelt source, and no follow-on error',
    yaml: editLine(36, '  consul: { version: 1.8.7, source: debain, suite: bullseye }'),
    expect: [
      'cluster.yaml:36:37: error: components.consul.source: "debain" is not one of: hashicorp, github, debian, mirror (did you mean "debian"?)',
    ],
  },
  {
    name: 'a string where a list belongs',
    yaml: editLine(43, '  authorized_keys: ssh-ed25519 AAAAC3Nz x'),
    expect: [
      'cluster.yaml:43:20: error: ssh.authorized_keys: expected a list, got the text "ssh-ed25519 AAAAC3Nz x" (write it as a list: one "- item" per line)',
    ],
  },
  {
    name: 'address with a prefix length',
    yaml: editLine(14, '    address: 192.168.1.11/24'),
    expect: [
      'cluster.yaml:14:14: error: nodes[0].address: "192.168.1.11/24" is not an IPv4 address or "dhcp" (write it without the prefix length: 192.168.1.11; the network comes from network.cidr)',
    ],
  },
  {
    name: 'duplicate key',
    yaml: editLine(3, 'domain: consul\nname: x'),
    expect: ['cluster.yaml:4:1: error: "name" appears twice in this mapping'],
  },
  {
    name: 'a second document',
    yaml: `${VALID}---\nname: other\n`,
    expect: [`cluster.yaml:${VALID.split('\n').length}:1: error: more than one YAML document (a second '---'): piinit reads one`],
  },
  {
    name: 'a fraction where a whole number belongs',
    yaml: editLine(41, '  raft_multiplier: 2.5'),
    expect: ['cluster.yaml:41:20: error: consul.raft_multiplier: expected a whole number, got the number 2.5'],
  },
  {
    name: 'unknown field with a suggestion',
    yaml: editLine(8, '  adressing: dhcp'),
    expect: ['cluster.yaml:8:3: error: network.adressing: unknown field "adressing" (did you mean "addressing"?)'],
  },
  {
    name: 'unknown field without a close match',
    yaml: editLine(43, '  authorized_keys: []\n  port: 22'),
    expect: ['cluster.yaml:44:3: error: ssh.port: unknown field "port" (expected one of: authorized_keys)'],
  },
  {
    name: 'field in the wrong section',
    yaml: editLine(1, 'name: lab\nraft_multiplier: 3'),
    expect: ['cluster.yaml:2:1: error: raft_multiplier: unknown field "raft_multiplier" here (it belongs under consul:)'],
  },
  {
    name: 'Wi-Fi passphrase in cluster.yaml',
    yaml: `${VALID}wifi:\n  ssid: Home\n  country: DE\n  passphrase: hunter22\n`,
    expect: [
      'cluster.yaml:47:3: error: wifi.passphrase: unknown field "passphrase" here: secrets go into the secrets file, as wifi_passphrase (8-63 characters) or wifi_psk (64 hex digits)',
      'cluster.secrets.yaml:4:1: error: wifi_passphrase: missing: cluster.yaml has a wifi section, so the secrets file needs wifi_passphrase (or the 64-hex-digit wifi_psk)',
    ],
  },
  {
    name: 'bad IPv4 address',
    yaml: editLine(14, '    address: 192.168.1.256'),
    expect: ['cluster.yaml:14:14: error: nodes[0].address: "192.168.1.256" is not an IPv4 address or "dhcp"'],
  },
  {
    name: 'bad CIDR',
    yaml: editLine(5, '  cidr: 192.168.1.0/33'),
    expect: ['cluster.yaml:5:9: error: network.cidr: "192.168.1.0/33" prefix length /33 is larger than 32'],
  },
  {
    name: 'CIDR with host bits',
    yaml: editLine(5, '  cidr: 192.168.1.5/24'),
    expect: ['cluster.yaml:5:9: error: network.cidr: "192.168.1.5/24" has host bits set; the network is 192.168.1.0/24'],
  },
  {
    name: 'bad MAC',
    yaml: editLine(13, '    mac: "dc:a6:32:00:00"'),
    expect: [
      'cluster.yaml:13:10: error: nodes[0].mac: "dc:a6:32:00:00" is not a MAC address (expected six hex bytes like dc:a6:32:12:34:56)',
    ],
  },
  {
    name: 'duplicate node name',
    yaml: editLine(15, '  - name: core1'),
    expect: ['cluster.yaml:15:11: error: nodes[1].name: duplicate node name "core1" (also nodes[0])'],
  },
  {
    name: 'duplicate MAC, written differently',
    yaml: editLine(18, '    mac: "DC-A6-32-00-00-01"'),
    expect: ['cluster.yaml:18:10: error: nodes[1].mac: duplicate MAC address dc:a6:32:00:00:01 (also nodes[0])'],
  },
  {
    name: 'duplicate address',
    yaml: editLine(19, '    address: 192.168.1.11'),
    expect: ['cluster.yaml:19:14: error: nodes[1].address: duplicate address 192.168.1.11 (also nodes[0])'],
  },
  {
    name: 'address outside the network',
    yaml: editLine(24, '    address: 192.168.2.5'),
    expect: ['cluster.yaml:24:14: error: nodes[2].address: 192.168.2.5 is outside the network 192.168.1.0/24'],
  },
  {
    name: 'gateway outside the network',
    yaml: editLine(6, '  gateway: 10.0.0.1'),
    expect: ['cluster.yaml:6:12: error: network.gateway: 10.0.0.1 is outside the network 192.168.1.0/24'],
  },
  {
    name: 'broadcast address',
    yaml: editLine(24, '    address: 192.168.1.255'),
    expect: [
      'cluster.yaml:24:14: error: nodes[2].address: 192.168.1.255 is the broadcast address of 192.168.1.0/24, not a host address',
    ],
  },
  {
    name: 'even number of servers',
    yaml: editLine(26, '    role: server'),
    expect: [
      'cluster.yaml:9:1: error: nodes: 4 servers: an even number halves fault tolerance (4 servers survive 1 failure, no more than 3 do); use 3 or 5, or set consul.allow_even_servers: true',
      'cluster.yaml:9:1: warning: nodes: no node has role monitor: nothing runs Prometheus',
    ],
  },
  {
    name: 'no server',
    yaml: editLine(11, '    role: client', editLine(16, '    role: client', editLine(21, '    role: client'))),
    expect: ['cluster.yaml:9:1: error: nodes: no node has role server: Consul and Nomad need 3 (or 5) servers'],
  },
  {
    name: 'board that cannot run the role',
    yaml: editLine(12, '    board: pi-zero'),
    expect: [
      'cluster.yaml:12:12: error: nodes[0].board: a pi-zero (Raspberry Pi Zero / Zero W (ARMv6), 512 MiB) cannot run the server role; it can run: client',
    ],
  },
  {
    name: 'unknown board',
    yaml: editLine(12, '    board: pi9'),
    expect: ['cluster.yaml:12:12: error: nodes[0].board: "pi9" is not one of: pi-zero, pi1, pi2, pi3, pi4, pi5, amd64'],
  },
  {
    name: 'missing field points at the parent map',
    yaml: editLine(6, null),
    expect: ['cluster.yaml:5:3: error: network.gateway: missing required field'],
  },
  {
    name: 'server on a dynamic address',
    yaml: editLine(19, '    address: dhcp'),
    expect: [
      'cluster.yaml:19:14: error: nodes[1].address: a server needs a fixed IPv4 address (the other nodes find it by address); with addressing: dhcp, give the address your router reserves for its MAC',
    ],
  },
  {
    name: 'monitor without an address, static addressing',
    yaml: editLine(8, '  addressing: static', editLine(29, null)),
    expect: ['cluster.yaml:25:5: error: nodes[3].address: a monitor needs a fixed IPv4 address (the other nodes find it by address)'],
  },
  {
    name: 'version that YAML reads as a number',
    yaml: editLine(37, '  nomad: { version: 1.6 }'),
    expect: ['cluster.yaml:37:21: error: components.nomad.version: expected a string, got the number 1.6 (put it in quotes)'],
  },
  {
    name: 'Debian revision instead of a version',
    yaml: editLine(37, '  nomad: { version: "1.6.5-1+b6+" }'),
    expect: [
      'cluster.yaml:37:21: error: components.nomad.version: "1.6.5-1+b6+" is not a release version (expected MAJOR.MINOR.PATCH like 1.8.7)',
    ],
  },
  {
    name: 'debian-only field with another source',
    yaml: editLine(37, '  nomad: { version: 1.6.5, suite: bookworm }'),
    expect: ['cluster.yaml:37:28: error: components.nomad.suite: "suite" only applies to source: debian (this source is hashicorp)'],
  },
  {
    name: 'raft multiplier out of range',
    yaml: editLine(41, '  raft_multiplier: 0'),
    expect: ['cluster.yaml:41:20: error: consul.raft_multiplier: 0 is too small: the minimum is 1'],
  },
  {
    name: 'bad SSH key',
    yaml: editLine(43, '  authorized_keys: ["ssh-rsa nope"]'),
    expect: [
      'cluster.yaml:43:21: error: ssh.authorized_keys[0]: is not an OpenSSH public key line (expected "ssh-ed25519 AAAA... comment", as in ~/.ssh/id_ed25519.pub)',
    ],
  },
  {
    name: 'empty file',
    yaml: '',
    expect: ['cluster.yaml:1:1: error: the file is empty: expected a mapping with name:, network:, nodes:, components:'],
  },
  {
    name: 'empty node list',
    yaml: editLine(9, 'nodes: []', VALID.split('\n').filter((_, i) => i < 9 || i > 33).join('\n')),
    expect: ['cluster.yaml:9:8: error: nodes: needs at least 1 entry'],
  },
  {
    name: 'empty secrets file',
    yaml: VALID,
    secretsText: '# nothing\n',
    expect: [
      'cluster.secrets.yaml:1:1: error: the file is empty: expected a mapping with consul_gossip_key:, nomad_gossip_key:',
    ],
  },
  {
    name: 'Wi-Fi passphrase too short (in the secrets file)',
    yaml: WIFI,
    secretsText:
      'consul_gossip_key: pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=\n' +
      'nomad_gossip_key: L0Kx0oBuxOV1CBXUGTNtf36d/x4WYKUPwS6+zn8DYQ8=\n' +
      'wifi_passphrase: short\n',
    expect: ['cluster.secrets.yaml:3:18: error: wifi_passphrase: a WPA passphrase is 8 to 63 characters long, this one is 5'],
  },
  {
    name: 'Wi-Fi PSK that is not 64 hex digits',
    yaml: WIFI,
    secretsText:
      'consul_gossip_key: pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=\n' +
      'nomad_gossip_key: L0Kx0oBuxOV1CBXUGTNtf36d/x4WYKUPwS6+zn8DYQ8=\n' +
      `wifi_psk: ${'ab'.repeat(31)}\n`,
    expect: ['cluster.secrets.yaml:3:11: error: wifi_psk: is not a WPA PSK: expected 64 hex digits (or give wifi_passphrase instead)'],
  },
  {
    name: 'Wi-Fi without a passphrase',
    yaml: WIFI,
    secretsText:
      '# a comment\n' +
      'consul_gossip_key: pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=\n' +
      'nomad_gossip_key: L0Kx0oBuxOV1CBXUGTNtf36d/x4WYKUPwS6+zn8DYQ8=\n',
    expect: [
      'cluster.secrets.yaml:2:1: error: wifi_passphrase: missing: cluster.yaml has a wifi section, so the secrets file needs wifi_passphrase (or the 64-hex-digit wifi_psk)',
    ],
  },
  {
    name: 'gossip key that is not 32 bytes of base64',
    yaml: VALID,
    secretsText:
      'consul_gossip_key: pUqJrVyVRj5jsiYEkM/tFQ==\n' + 'nomad_gossip_key: L0Kx0oBuxOV1CBXUGTNtf36d/x4WYKUPwS6+zn8DYQ8=\n',
    expect: [
      'cluster.secrets.yaml:1:20: error: consul_gossip_key: is not a gossip key: expected 32 random bytes in base64 (44 characters ending in "=")',
    ],
  },
  {
    name: 'unknown field in the secrets file',
    yaml: VALID,
    secretsText:
      'consul_gossip_key: pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=\n' +
      'nomad_gossip_key: L0Kx0oBuxOV1CBXUGTNtf36d/x4WYKUPwS6+zn8DYQ8=\n' +
      'tokens:\n  consul_bootstrp: 0b678556-0a51-4f25-8a37-2f4aea2ab3ba\n',
    expect: ['cluster.secrets.yaml:4:3: error: tokens.consul_bootstrp: unknown field "consul_bootstrp" (did you mean "consul_bootstrap"?)'],
  },
  {
    name: 'a secret of the wrong type: its kind is named, never the secret',
    yaml: WIFI,
    secretsText:
      'consul_gossip_key: 12345678\n' +
      'nomad_gossip_key: L0Kx0oBuxOV1CBXUGTNtf36d/x4WYKUPwS6+zn8DYQ8=\n' +
      'wifi_passphrase: 4711081547110815\n' +
      'tokens: 8f1c-secret-token\n',
    expect: [
      'cluster.secrets.yaml:1:20: error: consul_gossip_key: expected a string, got a number (put it in quotes)',
      'cluster.secrets.yaml:3:18: error: wifi_passphrase: expected a string, got a number (put it in quotes)',
      'cluster.secrets.yaml:4:9: error: tokens: expected a mapping (key: value lines), got text',
    ],
  },
  {
    name: 'a secrets line without its colon is not echoed',
    yaml: VALID,
    secretsText: 'consul_gossip_key SECRET=\n',
    expect: ['cluster.secrets.yaml:1:1: error: expected a mapping (key: value lines), got text'],
  },
  {
    name: 'a secret written as an alias: positioned, never echoed',
    yaml: VALID,
    secretsText:
      'consul_gossip_key: *pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=\n' + 'nomad_gossip_key: L0Kx0oBuxOV1CBXUGTNtf36d/x4WYKUPwS6+zn8DYQ8=\n',
    expect: ['cluster.secrets.yaml:1:20: error: Unresolved alias (the anchor must be set before the alias)'],
  },
  {
    name: 'a token behind a tag is not echoed',
    yaml: VALID,
    secretsText:
      'consul_gossip_key: pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=\n' +
      'nomad_gossip_key: L0Kx0oBuxOV1CBXUGTNtf36d/x4WYKUPwS6+zn8DYQ8=\n' +
      'tokens:\n  consul_agent: !0b678556-0a51-4f25-8a37-2f4aea2ab3ba\n',
    expect: ['cluster.secrets.yaml:4:17: warning: Unresolved tag', 'cluster.secrets.yaml:4:54: error: tokens.consul_agent: is not a UUID token'],
  },
  {
    name: 'a token indented as a key is not named',
    yaml: VALID,
    secretsText:
      'consul_gossip_key: pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=\n' +
      'nomad_gossip_key: L0Kx0oBuxOV1CBXUGTNtf36d/x4WYKUPwS6+zn8DYQ8=\n' +
      'tokens:\n  consul_agent:\n  0b678556-0a51-4f25-8a37-2f4aea2ab3ba: y\n',
    expect: [
      'cluster.secrets.yaml:4:3: error: tokens.consul_agent: expected a string, got nothing (null)',
      'cluster.secrets.yaml:5:3: error: tokens: unknown field (not named here: it looks like a value, maybe a secret indented as a key)',
    ],
  },
  {
    name: 'two private keys swapped: each is named as not its certificate',
    yaml: VALID,
    secretsText: (() => {
      const sec = generateSecrets(tlsNamesFromClusterData(parse(VALID)));
      const tls = sec.tls!;
      [tls.ca.key, tls.consulServer.key] = [tls.consulServer.key, tls.ca.key];
      return renderSecretsYaml(sec);
    })(),
    expect: [
      'cluster.secrets.yaml:18:10: error: tls.ca.key: is not the private key of the certificate in cert (their public keys differ)',
      'cluster.secrets.yaml:39:10: error: tls.consul_server.key: is not the private key of the certificate in cert (their public keys differ)',
    ],
  },
  {
    name: 'a damaged certificate body (the header alone is not enough)',
    yaml: VALID,
    secretsText: renderSecretsYaml(generateSecrets(tlsNamesFromClusterData(parse(VALID)))).replace(/(-----BEGIN CERTIFICATE-----\n\s*)\S+/, '$1garbage!!'),
    expect: ['cluster.secrets.yaml:6:11: error: tls.ca.cert: is a damaged PEM certificate: it cannot be read'],
  },
  {
    name: 'an alias without its anchor: positioned, not a crash',
    yaml: editLine(3, 'domain: *dom'),
    expect: ['cluster.yaml:3:9: error: Unresolved alias (the anchor must be set before the alias): dom'],
  },
  {
    name: 'a field every JavaScript object has is just unknown',
    yaml: editLine(3, 'domain: consul\nconstructor: 1'),
    expect: [
      'cluster.yaml:4:1: error: constructor: unknown field "constructor" (expected one of: name, datacenter, domain, secrets_file, network, nodes, components, consul, wifi, ssh, security)',
    ],
  },
  {
    name: 'a node without role: or board: is missing them, not "undefined"',
    yaml: editLine(11, null, editLine(12, null)),
    expect: [
      'cluster.yaml:10:5: error: nodes[0].board: missing required field',
      'cluster.yaml:10:5: error: nodes[0].role: missing required field',
    ],
  },
  {
    name: 'a number too large for a double (1e400 is Infinity)',
    yaml: editLine(41, '  raft_multiplier: 1e400'),
    expect: [
      'cluster.yaml:41:20: error: consul.raft_multiplier: expected a finite number, got infinity',
    ],
  },
  {
    name: '.nan where a number belongs',
    yaml: editLine(41, '  raft_multiplier: .nan'),
    expect: [
      'cluster.yaml:41:20: error: consul.raft_multiplier: expected a finite number, got NaN (not a number)',
    ],
  },
  {
    name: 'a string where the wifi section belongs (a passphrase put there) is never echoed',
    yaml: `${VALID}wifi: "my passphrase"\n`,
    expect: [
      'cluster.yaml:44:7: error: wifi: expected a mapping (key: value lines), got text',
      'cluster.secrets.yaml:4:1: error: wifi_passphrase: missing: cluster.yaml has a wifi section, so the secrets file needs wifi_passphrase (or the 64-hex-digit wifi_psk)',
    ],
  },
  {
    name: 'a private key pasted where the SSH keys go is never echoed',
    yaml: editLine(
      43,
      '  authorized_keys: |\n    -----BEGIN OPENSSH PRIVATE KEY-----\n    b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n    -----END OPENSSH PRIVATE KEY-----',
    ),
    expect: [
      'cluster.yaml:43:20: error: ssh.authorized_keys: expected a list, got a PEM block (BEGIN OPENSSH PRIVATE KEY; not shown) (write it as a list: one "- item" per line)',
    ],
  },
  {
    name: 'long, multi-line or unprintable text is cut to its start and length',
    yaml: editLine(8, '  addressing: "dhcp\\nstatic"', editLine(11, `    role: ${'x'.repeat(300)}`, editLine(12, '    board: "\\apc"'))),
    expect: [
      'cluster.yaml:8:15: error: network.addressing: expected one of: dhcp, static, got the text "dhcp…" (11 characters)',
      'cluster.yaml:11:11: error: nodes[0].role: expected one of: server, client, monitor, got the text "xxxxxxxxxxxxxxxxxxxx…" (300 characters)',
      'cluster.yaml:12:12: error: nodes[0].board: expected one of: pi-zero, pi1, pi2, pi3, pi4, pi5, amd64, got a text of 3 characters',
    ],
  },
  {
    name: "the schema's own messages: a PEM block or long text is not quoted whole, a value under wifi: not at all",
    yaml: editLine(
      1,
      'name: "-----BEGIN PRIVATE KEY-----\\nMC4CAQAwBQYDK2VwBCIEIPL0Ovcumy0m7c9KKNwwS2ePubd\\n-----END PRIVATE KEY-----"',
      editLine(2, `datacenter: ${'x'.repeat(70)}`, WIFI.replace('country: DE', 'country: my secret')),
    ),
    expect: [
      'cluster.yaml:1:7: error: name: a PEM block (BEGIN PRIVATE KEY; not shown) is not a host name label: use 1-63 lower-case letters, digits and "-", not starting or ending with "-"',
      'cluster.yaml:2:13: error: datacenter: "xxxxxxxxxxxxxxxxxxxx…" (70 characters) is not a datacenter name: use lower-case letters, digits, "-" and "_"',
      'cluster.yaml:46:12: error: wifi.country: the value is not a two-letter ISO 3166 country code in capitals (e.g. DE, US, GB)',
      'cluster.secrets.yaml:4:1: error: wifi_passphrase: missing: cluster.yaml has a wifi section, so the secrets file needs wifi_passphrase (or the 64-hex-digit wifi_psk)',
    ],
  },
  {
    name: 'a long unknown field is cut short too',
    yaml: editLine(3, `domain: consul\n${'k'.repeat(100)}: 1`),
    expect: [
      'cluster.yaml:4:1: error: unknown field "kkkkkkkkkkkkkkkkkkkk…" (100 characters) (expected one of: name, datacenter, domain, secrets_file, network, nodes, components, consul, wifi, ssh, security)',
    ],
  },
];

for (const c of cases) {
  test(`broken: ${c.name}`, async () => {
    assert.deepEqual(await problems(c.yaml, { secretsText: c.secretsText }), c.expect);
  });
}

test('several problems in both files are reported at once: cluster.yaml first, each file in line order', async () => {
  let yaml = editLine(1, 'name: Lab');
  yaml = editLine(8, '  adressing: dhcp', yaml);
  yaml = editLine(12, '    board: pi-zero', yaml);
  yaml = editLine(24, '    address: 192.168.2.5', yaml);
  yaml = editLine(33, '    mac: "zz"', yaml);
  yaml = editLine(41, '  raft_multiplier: 11', yaml);
  const secretsText = 'consul_gossip_key: nope\nnomad_gossip_key: L0Kx0oBuxOV1CBXUGTNtf36d/x4WYKUPwS6+zn8DYQ8=\n';
  assert.deepEqual(await problems(yaml, { secretsText }), [
    'cluster.yaml:1:7: error: name: "Lab" is not a host name label: use 1-63 lower-case letters, digits and "-", not starting or ending with "-"',
    'cluster.yaml:8:3: error: network.adressing: unknown field "adressing" (did you mean "addressing"?)',
    'cluster.yaml:12:12: error: nodes[0].board: a pi-zero (Raspberry Pi Zero / Zero W (ARMv6), 512 MiB) cannot run the server role; it can run: client',
    'cluster.yaml:24:14: error: nodes[2].address: 192.168.2.5 is outside the network 192.168.1.0/24',
    'cluster.yaml:33:10: error: nodes[4].mac: "zz" is not a MAC address (expected six hex bytes like dc:a6:32:12:34:56)',
    'cluster.yaml:41:20: error: consul.raft_multiplier: 11 is too large: the maximum is 10',
    'cluster.secrets.yaml:1:20: error: consul_gossip_key: is not a gossip key: expected 32 random bytes in base64 (44 characters ending in "=")',
  ]);
});

test('a device or a file over 1 MiB is a user error naming it, refused before it is read', async () => {
  const refused = (message: string) => (e: unknown) => e instanceof UserError && !(e instanceof ClusterValidationError) && e.message === message;
  await assert.rejects(loadCluster('/dev/zero'), refused('/dev/zero is too large to be a cluster file (over 1048576 bytes)'));
  await assert.rejects(readClusterName('/dev/zero'), refused('/dev/zero is too large to be a cluster file (over 1048576 bytes)'));
  const t = await tempCluster(VALID);
  try {
    await assert.rejects(loadCluster(t.cluster, { secretsPath: '/dev/urandom' }), refused('/dev/urandom is too large to be a secrets file (over 1048576 bytes)'));
    await writeFile(t.secrets, 'x'.repeat(1024 * 1024 + 1));
    await assert.rejects(loadCluster(t.cluster), refused(`${t.secrets} is too large to be a secrets file (1048577 bytes)`));
    await writeFile(t.cluster, `${VALID}#${'x'.repeat(1024 * 1024)}\n`);
    const size = Buffer.byteLength(VALID) + 1024 * 1024 + 2;
    await assert.rejects(readClusterName(t.cluster), refused(`${t.cluster} is too large to be a cluster file (${size} bytes)`));
  } finally {
    await t.cleanup();
  }
});

test('a secrets file readable by others is refused with the chmod to run', async () => {
  const t = await tempCluster(VALID);
  try {
    await chmod(t.secrets, 0o644);
    await assert.rejects(loadCluster(t.cluster), (e: unknown) => {
      assert.ok(e instanceof ClusterValidationError);
      assert.deepEqual(e.diagnostics.map(formatDiagnostic), [
        `${t.secrets}:1:1: error: the secrets file is readable by group or others (mode 0644); run: chmod 600 ${t.secrets}`,
      ]);
      return true;
    });
  } finally {
    await t.cleanup();
  }
});

test('a missing secrets file says how to create it', async () => {
  const t = await tempCluster(VALID);
  try {
    await assert.rejects(loadCluster(t.cluster, { secretsPath: `${t.dir}/nope.yaml` }), (e: unknown) => {
      assert.ok(e instanceof ClusterValidationError);
      assert.deepEqual(e.diagnostics.map(formatDiagnostic), [
        `${t.dir}/nope.yaml:1:1: error: secrets file not found (check --secrets, or create cluster.secrets.yaml with: piinit init ${t.dir} --secrets-only)`,
      ]);
      return true;
    });
  } finally {
    await t.cleanup();
  }
});

test('warnings: one server, or an even count that is explicitly allowed', async () => {
  const one = await tempCluster(editLine(16, '    role: client', editLine(21, '    role: client')));
  const even = await tempCluster(editLine(26, '    role: server', `${VALID}`.replace('raft_multiplier: 3', 'raft_multiplier: 3\n  allow_even_servers: true')));
  try {
    const r1 = await loadCluster(one.cluster);
    assert.deepEqual(
      r1.warnings.map((d) => formatDiagnostic({ ...d, file: basename(d.file) })),
      ['cluster.yaml:9:1: warning: nodes: only 1 server: the cluster has no fault tolerance (use 3 or 5 servers)'],
    );
    const r2 = await loadCluster(even.cluster);
    assert.deepEqual(
      r2.warnings.map((d) => formatDiagnostic({ ...d, file: basename(d.file) })),
      [
        'cluster.yaml:9:1: warning: nodes: 4 servers: an even number halves fault tolerance (4 servers survive 1 failure, no more than 3 do)',
        'cluster.yaml:9:1: warning: nodes: no node has role monitor: nothing runs Prometheus',
      ],
    );
  } finally {
    await one.cleanup();
    await even.cleanup();
  }
});

test('warning: a board no image boots (the Pi 5), at its board field', async () => {
  const t = await tempCluster(editLine(12, '    board: pi5'));
  try {
    const r = await loadCluster(t.cluster);
    assert.deepEqual(
      r.warnings.map((d) => formatDiagnostic({ ...d, file: basename(d.file) })),
      [
        "cluster.yaml:12:12: warning: nodes[0].board: piinit image makes no image for a pi5: Debian bookworm cannot boot a Raspberry Pi 5: its kernel (6.1) has no Pi 5 device tree, and the Pi 5's Ethernet (behind its RP1 chip) needs Linux 6.17 or later (piinit up runs it)",
      ],
    );
  } finally {
    await t.cleanup();
  }
});

test('defaults and derived values of a minimal valid file', async () => {
  const minimal = VALID.replace('datacenter: home\ndomain: consul\n', '')
    .replace('  dns: [192.168.1.1]\n', '')
    .replace('addressing: dhcp', 'addressing: static');
  const t = await tempCluster(minimal);
  try {
    const { cluster, warnings } = await loadCluster(t.cluster);
    assert.deepEqual(warnings, []);
    assert.equal(cluster.datacenter, 'dc1');
    assert.equal(cluster.domain, 'consul');
    assert.deepEqual(cluster.network, {
      cidr: '192.168.1.0/24',
      networkAddress: '192.168.1.0',
      prefixLength: 24,
      gateway: '192.168.1.1',
      dns: ['192.168.1.1'],
      addressing: 'static',
    });
    assert.equal(cluster.nodes[4]!.address, null, 'a client may use DHCP even with static addressing');
    assert.equal(cluster.nodes[4]!.arch, 'armel');
    assert.equal(cluster.components.nomad.source, 'hashicorp');
    assert.equal(cluster.components.node_exporter.source, 'github');
    assert.deepEqual(cluster.components.prometheus, {
      name: 'prometheus',
      version: '2.24.1',
      source: 'debian',
      suite: 'bullseye',
      package: 'prometheus',
    });
    assert.equal(cluster.consul.raftMultiplier, 3);
    assert.deepEqual(cluster.security, { tls: true, acl: true });
    assert.equal(cluster.wifi, null);
    assert.deepEqual(cluster.files, { cluster: t.cluster, secrets: t.secrets });
  } finally {
    await t.cleanup();
  }
});

test('a cluster CA piinit cannot sign with (RSA or Ed25519 from openssl, a certificate that is no CA) is an error at tls.ca', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'piinit-foreign-ca-'));
  try {
    const opensslCa = (newkey: string[]) => {
      execFileSync('openssl', ['req', '-x509', ...newkey, '-nodes', '-keyout', join(dir, 'k'), '-out', join(dir, 'c'), '-subj', '/CN=their CA', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE'], { stdio: 'ignore' });
      return { cert: readFileSync(join(dir, 'c'), 'utf8'), key: readFileSync(join(dir, 'k'), 'utf8') };
    };
    const withCa = (ca: (s: ReturnType<typeof generateSecrets>) => { cert: string; key: string }) => {
      const sec = generateSecrets(tlsNamesFromClusterData(parse(VALID)));
      sec.tls!.ca = ca(sec);
      return renderSecretsYaml(sec);
    };
    const rsa = await problems(VALID, { secretsText: withCa(() => opensslCa(['-newkey', 'rsa:2048'])) });
    assert.equal(rsa.length, 1, rsa.join('\n'));
    assert.match(rsa[0]!, /^cluster\.secrets\.yaml:\d+:\d+: error: tls\.ca\.key: is an rsa key; piinit signs with ECDSA P-256 only: delete tls: from the secrets file and run piinit secrets generate/);
    const ed = await problems(VALID, { secretsText: withCa(() => opensslCa(['-newkey', 'ed25519'])) });
    assert.match(ed.join('\n'), /tls\.ca\.key: is an ed25519 key; piinit signs with ECDSA P-256 only/);
    // A server certificate put in as the CA: its key is P-256, but it may not sign.
    const leaf = await problems(VALID, { secretsText: withCa((s) => s.tls!.consulServer) });
    assert.deepEqual(leaf.map((l) => l.replace(/^\S+ /, '')), ['error: tls.ca.cert: is not a CA certificate (no basicConstraints CA:TRUE); delete tls: from the secrets file and run piinit secrets generate for a new one (and re-image every node)']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('readClusterName takes only a name the schema would take: a path-like name is left to the loader', async () => {
  const t = await tempCluster(VALID);
  try {
    assert.equal(await readClusterName(t.cluster), 'lab');
    await writeFile(t.cluster, 'name: ../victim\n');
    await assert.rejects(readClusterName(t.cluster), (e) => e instanceof ClusterValidationError && /name: /.test(e.message));
  } finally {
    await t.cleanup();
  }
});
