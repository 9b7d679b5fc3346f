// Without Docker, the Docker twin says so plainly and points to the default local mode.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkDocker } from '../../../src/docker/engine.ts';
import { UserError } from '../../../src/errors.ts';

test('no docker command on PATH: a plain UserError suggesting piinit up', async () => {
  await assert.rejects(checkDocker({ ...process.env, PATH: '/nonexistent' }), (e: Error) => {
    assert.ok(e instanceof UserError);
    assert.match(e.message, /Docker is not installed/);
    assert.match(e.message, /piinit up/);
    return true;
  });
});

test('DOCKER_HOST pointing at a dead socket: a plain UserError naming it', async () => {
  await assert.rejects(checkDocker({ ...process.env, DOCKER_HOST: 'unix:///nonexistent/docker.sock' }), (e: Error) => {
    assert.ok(e instanceof UserError);
    assert.match(e.message, /Docker daemon at unix:\/\/\/nonexistent\/docker\.sock is not reachable/);
    assert.match(e.message, /piinit up/);
    return true;
  });
});
