// Every command lives in its own file under src/cli/ and exports register(program).
import type { Command } from '@commander-js/extra-typings';
import { register as init } from './init.ts';
import { register as validate } from './validate.ts';
import { register as render } from './render.ts';
import { register as fetch } from './fetch.ts';
import { register as packages } from './packages.ts';
import { register as image } from './image.ts';
import { register as burn } from './burn.ts';
import { register as devices } from './devices.ts';
import { register as up } from './up.ts';
import { register as down } from './down.ts';
import { register as status } from './status.ts';
import { register as secrets } from './secrets.ts';

export function registerCommands(program: Command): void {
  for (const register of [init, validate, render, fetch, packages, image, burn, devices, up, down, status, secrets]) {
    register(program);
  }
}
