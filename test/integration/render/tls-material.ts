// Test-only TLS material made with openssl (an ECDSA CA and the certificates piinit's
// security step issues), until the real generator is used here.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyPair, Secrets } from '../../../src/cluster/types.ts';

function ossl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function issue(dir: string, name: string, cn: string, sans: string[]): KeyPair {
  ossl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}-key.pem`]);
  ossl(dir, ['req', '-new', '-key', `${name}-key.pem`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`]);
  writeFileSync(
    join(dir, `${name}.ext`),
    `subjectAltName=${sans.join(',')}\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n`,
  );
  ossl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-days', '30', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.pem`]);
  return { cert: readFileSync(join(dir, `${name}.pem`), 'utf8'), key: readFileSync(join(dir, `${name}-key.pem`), 'utf8') };
}

export function makeTlsMaterial(dir: string, dc: string, domain: string, serverAddrs: string[]): NonNullable<Secrets['tls']> {
  ossl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca-key.pem']);
  ossl(dir, ['req', '-x509', '-new', '-key', 'ca-key.pem', '-subj', '/CN=piinit test CA', '-days', '30', '-sha256', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'ca.pem']);
  const ca = { cert: readFileSync(join(dir, 'ca.pem'), 'utf8'), key: readFileSync(join(dir, 'ca-key.pem'), 'utf8') };
  const ips = ['127.0.0.1', ...serverAddrs].map((a) => `IP:${a}`);
  return {
    ca,
    consulServer: issue(dir, 'consul-server', `server.${dc}.${domain}`, [`DNS:server.${dc}.${domain}`, 'DNS:localhost', ...ips]),
    nomadServer: issue(dir, 'nomad-server', 'server.global.nomad', ['DNS:server.global.nomad', 'DNS:localhost', ...ips]),
    nomadClient: issue(dir, 'nomad-client', 'client.global.nomad', ['DNS:client.global.nomad', 'DNS:localhost', 'IP:127.0.0.1']),
  };
}
