// Starts `lightvlm serve` as a child process and waits for the loopback address it prints on stderr
// ("… at http://127.0.0.1:PORT"). Used by the load generator (npm run load) and the CLI server tests.
import { spawn, type ChildProcess } from 'node:child_process';

export interface ServeProcess {
  url: string;                          // http://127.0.0.1:PORT
  proc: ChildProcess;
  exited: Promise<number | null>;       // the exit code
  stderr: () => string;                 // everything the server has written to stderr so far
  stop: () => Promise<number | null>;   // SIGTERM (graceful drain), then the exit code
}

/** `cli` is dist/src/cli/main.js; `args` follow `serve`. stdout is passed through or ignored. */
export async function spawnServe(cli: string, args: string[], stdout: 'inherit' | 'ignore' = 'ignore'): Promise<ServeProcess> {
  const proc = spawn(process.execPath, [cli, 'serve', ...args], { stdio: ['ignore', stdout, 'pipe'] });
  let err = '';
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const url = await new Promise<string>((resolve, reject) => {
    proc.stderr!.on('data', (d) => {
      err += d;
      const m = /at (http:\/\/127\.0\.0\.1:\d+)/.exec(err);
      if (m) resolve(m[1]!);
    });
    proc.once('exit', () => reject(new Error(`lightvlm serve exited before listening: ${err}`)));
  });
  return { url, proc, exited, stderr: () => err, stop: async () => (proc.kill('SIGTERM'), exited) };
}
