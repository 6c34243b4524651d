// The layer rules of design.md as import-x/no-restricted-paths zones (used by eslint.config.js and its test).
//
//   doors (ipc/, server/, cli/, app/)  ->  services/  ->  engine/, library/, downloads/  ->  remote/, model-formats/, platform/
//
// Nothing imports a layer above its own; engine/ and library/ never import each other; a door reaches only
// services/ (and platform/, and another door: `atelier serve` starts the server).

const DOORS = ['cli', 'server', 'ipc', 'app']
const dir = (name) => `./main/${name}`

/** Files of the doors allowed to reach below services/: none (every CLI command runs on services/). */
export const DOOR_EXCEPTIONS = []

function zone(target, from, why, except) {
  return {
    target: target.map(dir),
    from: from.map(dir),
    ...(except ? { except } : {}),
    message: why,
  }
}

/** @param {{ tests: boolean }} opts  tests may import main/cli/index.ts (runCli) to drive the CLI door */
export function layerZones({ tests }) {
  const doors = tests ? DOORS.filter((d) => d !== 'cli') : DOORS
  const upward = (what) => `${what} must not import a layer above it (design.md, "Layers").`
  return [
    zone(
      ['platform'],
      ['model-formats', 'remote', 'engine', 'library', 'downloads', 'services', ...DOORS],
      upward('platform/'),
    ),
    zone(
      ['model-formats'],
      ['remote', 'engine', 'library', 'downloads', 'services', ...DOORS],
      upward('model-formats/'),
    ),
    zone(
      ['remote'],
      ['model-formats', 'engine', 'library', 'downloads', 'services', ...DOORS],
      upward('remote/'),
    ),
    zone(
      ['engine'],
      ['library', 'downloads', 'services', ...doors],
      upward('engine/') + ' engine/ and library/ meet only in services/.',
    ),
    zone(
      ['library'],
      ['engine', 'downloads', 'services', ...doors],
      upward('library/') + ' engine/ and library/ meet only in services/.',
    ),
    zone(['downloads'], ['engine', 'services', ...doors], upward('downloads/')),
    zone(['services'], doors, upward('services/')),
    ...(tests && doors.length < DOORS.length
      ? [zone(['engine', 'library', 'downloads', 'services'], ['cli'], upward('a test'), ['./index.ts'])]
      : []),
  ]
}

/** Doors reach only services/ and platform/. */
export function doorZones() {
  return [
    {
      target: DOORS.map(dir),
      from: ['engine', 'library', 'downloads', 'remote', 'model-formats'].map(dir),
      message:
        'A door (ipc/, server/, cli/, app/) goes through services/, never below it (design.md, "Layers").',
    },
  ]
}
