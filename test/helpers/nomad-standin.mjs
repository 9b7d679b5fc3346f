#!/usr/bin/env node
// A stand-in for `nomad agent -config=DIR`, for the local runner's tests: no Nomad binary runs
// on this machine. It reads the JSON configuration piinit rendered (bind_addr, ports.http,
// acl, tls with its certificate files) and serves the part of Nomad's HTTP API that piinit's
// ACL bootstrap uses, with the answers of Nomad's API documentation: /v1/status/leader (the
// first server of retry_join, on its RPC port), /v1/acl/bootstrap (once: an operator
// BootstrapSecret becomes the management token), /v1/acl/token/self (403 "ACL token not
// found" for any other token), /v1/agent/members and /v1/nodes (this agent alone; 403
// "Permission denied" without the management token). Each request is appended to <data_dir>/standin.log.
import { appendFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createServer as createHttp } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { join } from 'node:path';

const dir = process.argv.find((a) => a.startsWith('-config='))?.slice('-config='.length);
if (process.argv[2] !== 'agent' || !dir) {
  console.error('usage: nomad agent -config=DIR');
  process.exit(1);
}
const cfg = Object.assign({}, ...readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8'))));
mkdirSync(cfg.data_dir, { recursive: true });
const log = (line) => appendFileSync(join(cfg.data_dir, 'standin.log'), `${line}\n`);
const leader = (cfg.server?.server_join?.retry_join ?? [])[0];
let management = null;

const handle = (req, res) => {
  let body = '';
  req.on('data', (d) => (body += d));
  req.on('end', () => {
    const reply = (code, answer) => {
      log(`${req.method} ${req.url} ${code}`);
      res.writeHead(code, { 'content-type': code === 200 ? 'application/json' : 'text/plain' });
      res.end(code === 200 ? JSON.stringify(answer) : answer);
    };
    const token = req.headers['x-nomad-token'];
    if (req.method === 'GET' && req.url === '/v1/status/leader') return reply(200, leader ? `${leader}:4647` : '');
    if (!cfg.acl?.enabled && req.url.startsWith('/v1/acl/')) return reply(400, 'ACL support disabled');
    if (req.method === 'POST' && req.url === '/v1/acl/bootstrap') {
      if (management) return reply(400, 'ACL bootstrap already done (reset index: 7)');
      const secret = body ? JSON.parse(body).BootstrapSecret : undefined;
      if (secret !== undefined && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(secret)) return reply(400, 'invalid acl token');
      management = secret ?? '3f4a0fcd-7c42-773c-25db-2d31ba0c05fe';
      return reply(200, { AccessorID: 'b780e702-98ce-521f-2e5f-c6b87de05b24', SecretID: management, Name: 'Bootstrap Token', Type: 'management', Global: true });
    }
    if (req.method === 'GET' && req.url === '/v1/acl/token/self') {
      if (management && token === management) return reply(200, { AccessorID: 'b780e702-98ce-521f-2e5f-c6b87de05b24', SecretID: management, Type: 'management' });
      return reply(403, 'ACL token not found');
    }
    // What piinit status reads; with ACLs on, only for the management token (Nomad answers
    // 403 "Permission denied" to a token it does not know). This agent knows only itself.
    if (req.method === 'GET' && (req.url === '/v1/agent/members' || req.url === '/v1/nodes')) {
      if (cfg.acl?.enabled && (!management || token !== management)) return reply(403, 'Permission denied');
      if (req.url === '/v1/nodes') return reply(200, []);
      return reply(200, { ServerName: cfg.name, ServerRegion: 'global', Members: [{ Name: `${cfg.name}.global`, Addr: cfg.bind_addr, Port: 4648, Status: 'alive' }] });
    }
    reply(404, 'Invalid URL path');
  });
};

const server = cfg.tls?.http ? createHttps({ cert: readFileSync(cfg.tls.cert_file), key: readFileSync(cfg.tls.key_file) }, handle) : createHttp(handle);
server.listen(cfg.ports?.http ?? 4646, cfg.addresses?.http ?? cfg.bind_addr, () => log(`listening ${cfg.tls?.http ? 'https' : 'http'}`));
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => process.exit(0));
