// A small .deb built with dpkg-deb, standing in for the cluster's packages in boot tests: it
// puts a file under /opt/consul (which must land on the data partition) and a unit that
// prints what it finds on the console.
import { chmod, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

export const PROBE_MARKER = 'PIINIT-PROBE';

export async function buildProbeDeb(dir: string, arch: string): Promise<string> {
  const root = join(dir, `probe-${arch}`);
  await rm(root, { recursive: true, force: true });
  await mkdir(join(root, 'DEBIAN'), { recursive: true });
  await mkdir(join(root, 'opt/consul'), { recursive: true });
  await mkdir(join(root, 'usr/lib/piinit-probe'), { recursive: true });
  await mkdir(join(root, 'etc/systemd/system/multi-user.target.wants'), { recursive: true });
  await writeFile(
    join(root, 'DEBIAN/control'),
    `Package: piinit-probe\nVersion: 1.0\nArchitecture: ${arch}\nMaintainer: piinit tests <tests@piinit.invalid>\nDescription: boot test probe\n`,
  );
  await writeFile(join(root, 'opt/consul/seed.txt'), 'seeded\n');
  await writeFile(
    join(root, 'usr/lib/piinit-probe/probe'),
    `#!/bin/sh
root=rw; touch /probe-write 2>/dev/null || root=ro
data=no; echo x > /opt/consul/probe-write && data=yes
echo "${PROBE_MARKER} seed=$(cat /opt/consul/seed.txt) root-write=$root data-write=$data boots=$(cat /var/lib/piinit/boots 2>/dev/null || echo 0)"
n=$(( $(cat /var/lib/piinit/boots 2>/dev/null || echo 0) + 1 )); echo $n > /var/lib/piinit/boots; sync
`,
  );
  await chmod(join(root, 'usr/lib/piinit-probe/probe'), 0o755);
  await writeFile(
    join(root, 'etc/systemd/system/piinit-probe.service'),
    '[Unit]\nDescription=boot test probe\nAfter=local-fs.target\n\n[Service]\nType=oneshot\nExecStart=/usr/lib/piinit-probe/probe\nStandardOutput=journal+console\n\n[Install]\nWantedBy=multi-user.target\n',
  );
  await symlink('../piinit-probe.service', join(root, 'etc/systemd/system/multi-user.target.wants/piinit-probe.service'));
  const deb = join(dir, `piinit-probe_1.0_${arch}.deb`);
  await execa('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', root, deb], { env: { SOURCE_DATE_EPOCH: '1704067200' } });
  return deb;
}
